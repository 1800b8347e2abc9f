//! The last hour the status page judges windows and draws sparklines from, in bounded memory:
//! one reading every [`EVERY`] of what the spec's windowed conditions sum (a counter with its
//! matchers, a histogram's buckets), of the gauges a `rise` follows (at most
//! [`MAX_SERIES_PER_METRIC`] series a metric), and of each check's value. Each is a ring of at
//! most [`POINTS`] readings, so memory grows with the spec, never with time or traffic.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use crate::spec::{Condition, Model};
use crate::state::Family;
use crate::verdict::readings::{Labels, bucket_totals, matches, scalars};
use crate::verdict::{Blind, Readings, Windowed};

/// How often a reading is kept.
pub const EVERY: Duration = Duration::from_secs(15);
/// How far back readings are kept: the longest window the page judges, plus a margin for the
/// reading at or before the window's start.
pub const KEEP: f64 = 3600.0 + 5.0 * 60.0;
/// Most readings a ring holds.
pub const POINTS: usize = (KEEP as usize) / 15 + 2;
/// Series of one gauge whose rise is followed; past them the rise is not judged.
pub const MAX_SERIES_PER_METRIC: usize = 50;

/// Readings over time, oldest first, at most [`POINTS`] and none older than [`KEEP`].
#[derive(Debug, Default, Clone)]
pub struct Ring<T> {
    points: VecDeque<(f64, T)>,
}

impl<T: Clone> Ring<T> {
    pub fn push(&mut self, at: f64, value: T) {
        self.points.push_back((at, value));
        while self.points.len() > POINTS || self.points.front().is_some_and(|(t, _)| *t < at - KEEP) {
            self.points.pop_front();
        }
    }

    /// The newest reading at or before `at`, else the oldest kept (then the window was not seen
    /// whole).
    fn base(&self, at: f64) -> Option<&(f64, T)> {
        self.points.iter().rev().find(|(t, _)| *t <= at).or(self.points.front())
    }

    pub fn last(&self) -> Option<&(f64, T)> {
        self.points.back()
    }

    pub fn clear(&mut self) {
        self.points.clear();
    }

    pub fn iter(&self) -> impl Iterator<Item = &(f64, T)> {
        self.points.iter()
    }
}

/// A counter (or histogram) selection: metric and matchers.
type Key = (String, BTreeMap<String, String>);

/// Everything kept.
#[derive(Default)]
pub struct History {
    sums: HashMap<Key, Ring<f64>>,
    buckets: HashMap<Key, Ring<Vec<(f64, f64)>>>,
    gauges: HashMap<(String, Labels), Ring<f64>>,
    /// Each check's value, by [`row_key`].
    pub rows: HashMap<String, Ring<f64>>,
}

/// What the spec's conditions need kept.
#[derive(Default)]
struct Wanted {
    sums: Vec<Key>,
    buckets: Vec<Key>,
    rises: Vec<Key>,
}

fn wanted(model: &Model) -> Wanted {
    let mut out = Wanted::default();
    let conditions = model
        .enabled_signals()
        .flat_map(|s| s.signal.alerts.iter().filter(|a| a.enabled))
        .flat_map(|a| std::iter::once(&a.condition).chain(a.while_.iter().map(|g| &g.condition)));
    for condition in conditions {
        match condition {
            Condition::Increase(w) => out.sums.push((w.metric.clone(), w.matchers.clone())),
            Condition::Ratio(w) => {
                out.sums.push((w.metric.clone(), w.matchers.clone()));
                out.sums.push((w.metric.clone(), BTreeMap::new()));
            }
            Condition::Quantile(q) => out.buckets.push((q.metric.clone(), q.matchers.clone())),
            Condition::Rise(w) => out.rises.push((w.metric.clone(), w.matchers.clone())),
            _ => {}
        }
    }
    out
}

/// The key of a check's value: `signal/Alert:severity`, or the signal's id for one without.
pub fn row_key(signal: &str, alert: Option<(&str, &str)>) -> String {
    match alert {
        Some((name, severity)) => format!("{signal}/{name}:{severity}"),
        None => signal.to_string(),
    }
}

/// The state's families by name.
pub fn index(families: &[Family]) -> HashMap<&str, &Family> {
    families.iter().map(|f| (f.name.as_str(), f)).collect()
}

fn sum(families: &HashMap<&str, &Family>, (metric, matchers): &Key) -> Option<f64> {
    let family = families.get(metric.as_str());
    family?;
    Some(scalars(family.copied()).filter(|(l, _)| matches(l, matchers)).map(|(_, v)| v).sum())
}

/// Cumulative bucket counts summed over the selected series, `+Inf` last.
fn bucket_sum(families: &HashMap<&str, &Family>, (metric, matchers): &Key) -> Option<Vec<(f64, f64)>> {
    let family = families.get(metric.as_str())?;
    Some(bucket_totals(Some(family), matchers))
}

impl History {
    /// Keeps a reading of everything the model's conditions need, taken `at` from `families`.
    /// A sum that fell is a counter that started over: its ring starts over with it.
    pub fn record(&mut self, model: &Model, families: &HashMap<&str, &Family>, at: f64) {
        let wanted = wanted(model);
        self.sums.retain(|k, _| wanted.sums.contains(k));
        self.buckets.retain(|k, _| wanted.buckets.contains(k));
        self.gauges.retain(|(metric, _), _| wanted.rises.iter().any(|(m, _)| m == metric));
        for key in &wanted.sums {
            let Some(v) = sum(families, key) else { continue };
            let ring = self.sums.entry(key.clone()).or_default();
            if ring.last().is_some_and(|(_, last)| v < *last) {
                ring.clear();
            }
            ring.push(at, v);
        }
        for key in &wanted.buckets {
            let Some(v) = bucket_sum(families, key) else { continue };
            let ring = self.buckets.entry(key.clone()).or_default();
            let total = |b: &Vec<(f64, f64)>| b.last().map_or(0.0, |(_, n)| *n);
            if ring.last().is_some_and(|(_, last)| total(&v) < total(last) || last.len() != v.len()) {
                ring.clear();
            }
            ring.push(at, v);
        }
        for (metric, matchers) in &wanted.rises {
            let family = families.get(metric.as_str());
            for (labels, v) in scalars(family.copied()).filter(|(l, _)| matches(l, matchers)) {
                let key = (metric.clone(), labels.clone());
                let followed = self.gauges.keys().filter(|(m, _)| m == metric).count();
                if !self.gauges.contains_key(&key) && followed >= MAX_SERIES_PER_METRIC {
                    continue;
                }
                self.gauges.entry(key).or_default().push(at, v);
            }
        }
    }

    /// Drops the values of checks the model no longer has.
    pub fn keep_rows(&mut self, keys: &[String]) {
        self.rows.retain(|k, _| keys.contains(k));
    }
}

/// The readings of the exporter's state `now`, with the history behind it.
pub struct Live<'a> {
    pub families: &'a HashMap<&'a str, &'a Family>,
    pub history: &'a History,
    pub now: f64,
    /// Why a metric's source cannot be read now, by metric, for those that have no value.
    pub failing: &'a HashMap<String, String>,
}

impl Live<'_> {
    /// Why there is nothing of `metric`: its source failing, else no reading yet.
    fn missing(&self, metric: &str) -> Blind {
        match self.failing.get(metric) {
            Some(why) => Blind::Source(why.clone()),
            None => not_yet(metric),
        }
    }
}

/// `Some(seen)` when the oldest reading used is younger than the window's start.
fn seen(base_at: f64, now: f64, window: Duration) -> Option<Duration> {
    (base_at > now - window.as_secs_f64() + EVERY.as_secs_f64())
        .then(|| Duration::from_secs_f64((now - base_at).max(0.0)))
}

fn not_yet(what: &str) -> Blind {
    Blind::NeedsHistory(format!("no reading of {what} kept yet (one every {}s)", EVERY.as_secs()))
}

fn too_long(window: Duration) -> Option<Blind> {
    (window.as_secs_f64() > KEEP).then(|| {
        Blind::NeedsHistory(format!(
            "the page keeps an hour of readings; a window of {} needs Prometheus",
            crate::spec::PromDuration::from_secs(window.as_secs())
        ))
    })
}

impl Readings for Live<'_> {
    fn now(&self, metric: &str) -> Result<Vec<(Labels, f64)>, Blind> {
        match self.families.get(metric) {
            None if self.failing.contains_key(metric) => Err(self.missing(metric)),
            family => Ok(scalars(family.copied()).map(|(l, v)| (l.clone(), v)).collect()),
        }
    }

    fn increase(
        &self,
        metric: &str,
        matchers: &BTreeMap<String, String>,
        window: Duration,
    ) -> Result<Windowed<f64>, Blind> {
        if let Some(blind) = too_long(window) {
            return Err(blind);
        }
        let key = (metric.to_string(), matchers.clone());
        let current = sum(self.families, &key).ok_or_else(|| self.missing(metric))?;
        let ring = self.history.sums.get(&key).ok_or_else(|| not_yet(metric))?;
        let (at, base) = *ring.base(self.now - window.as_secs_f64()).ok_or_else(|| not_yet(metric))?;
        // Below the base: the counter started over since; what it counted since is the increase.
        let grown = if current < base { current } else { current - base };
        Ok(Windowed { value: grown, seen: seen(at, self.now, window) })
    }

    fn rise(
        &self,
        metric: &str,
        matchers: &BTreeMap<String, String>,
        window: Duration,
    ) -> Result<Windowed<Vec<(Labels, f64)>>, Blind> {
        if let Some(blind) = too_long(window) {
            return Err(blind);
        }
        let start = self.now - window.as_secs_f64();
        let mut out = Vec::new();
        let mut narrowest: Option<Duration> = None;
        for (labels, current) in self.now(metric)?.into_iter().filter(|(l, _)| matches(l, matchers)) {
            let Some(ring) = self.history.gauges.get(&(metric.to_string(), labels.clone())) else {
                let followed = self.history.gauges.keys().filter(|(m, _)| m == metric).count();
                if followed < MAX_SERIES_PER_METRIC {
                    return Err(not_yet(metric));
                }
                return Err(Blind::NeedsHistory(format!(
                    "`{metric}` has more series than the {MAX_SERIES_PER_METRIC} the page follows; Prometheus judges this one"
                )));
            };
            let Some((first, _)) = ring.base(start).copied() else { return Err(not_yet(metric)) };
            let mut rose = 0.0;
            let mut last: Option<f64> = None;
            for (_, v) in ring.iter().filter(|(t, _)| *t >= first).chain([&(self.now, current)]) {
                if let Some(l) = last {
                    rose += (v - l).max(0.0);
                }
                last = Some(*v);
            }
            if let Some(s) = seen(first, self.now, window) {
                narrowest = Some(narrowest.map_or(s, |n| n.min(s)));
            }
            out.push((labels, rose));
        }
        Ok(Windowed { value: out, seen: narrowest })
    }

    fn buckets(
        &self,
        metric: &str,
        matchers: &BTreeMap<String, String>,
        window: Duration,
    ) -> Result<Windowed<Vec<(f64, f64)>>, Blind> {
        if let Some(blind) = too_long(window) {
            return Err(blind);
        }
        let key = (metric.to_string(), matchers.clone());
        let current = bucket_sum(self.families, &key).ok_or_else(|| self.missing(metric))?;
        let ring = self.history.buckets.get(&key).ok_or_else(|| not_yet(metric))?;
        let (at, base) = ring.base(self.now - window.as_secs_f64()).cloned().ok_or_else(|| not_yet(metric))?;
        let restarted = base.len() != current.len()
            || current.last().map_or(0.0, |(_, n)| *n) < base.last().map_or(0.0, |(_, n)| *n);
        let value = if restarted {
            current
        } else {
            current.iter().zip(&base).map(|((le, now), (_, then))| (*le, now - then)).collect()
        };
        Ok(Windowed { value, seen: seen(at, self.now, window) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_keep_an_hour_at_most() {
        let mut ring = Ring::default();
        for i in 0..1000 {
            ring.push(f64::from(i) * 15.0, f64::from(i));
        }
        assert!(ring.iter().count() <= POINTS);
        let (oldest, _) = ring.iter().next().unwrap();
        assert!(*oldest >= 999.0 * 15.0 - KEEP);
        assert_eq!(ring.base(999.0 * 15.0 - 600.0).map(|(t, _)| *t), Some(999.0 * 15.0 - 600.0));
    }
}
