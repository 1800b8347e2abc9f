//! The exported state: every producer (a query, a log source, the exporter itself) publishes a
//! complete snapshot of its families; a scrape only reads snapshots and never waits on a source.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::spec::MetricType;

#[derive(Clone, Debug, PartialEq)]
pub enum SampleValue {
    Scalar(f64),
    /// Cumulative bucket counts by upper bound (without +Inf), sum and count.
    Histogram {
        buckets: Vec<(f64, u64)>,
        sum: f64,
        count: u64,
    },
}

/// A label's name or value. Shared, not copied: a log source's series hand theirs to every
/// snapshot that serves them, so 100k series with long values are held once, not once per
/// snapshot.
pub type LabelText = Arc<str>;

#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub labels: Vec<(LabelText, LabelText)>,
    pub value: SampleValue,
}

impl Sample {
    pub fn scalar(labels: Vec<(LabelText, LabelText)>, value: f64) -> Self {
        Self { labels, value: SampleValue::Scalar(value) }
    }

    /// The labels as text pairs, to compare or print.
    pub fn label_pairs(&self) -> Vec<(&str, &str)> {
        self.labels.iter().map(|(k, v)| (&**k, &**v)).collect()
    }
}

/// A metric family. Counter names carry their `_total` suffix.
#[derive(Clone, Debug, PartialEq)]
pub struct Family {
    pub name: String,
    pub help: String,
    pub kind: MetricType,
    pub samples: Vec<Sample>,
}

impl Family {
    pub fn new(name: impl Into<String>, help: impl Into<String>, kind: MetricType) -> Self {
        Self { name: name.into(), help: help.into(), kind, samples: Vec::new() }
    }

    pub fn with(mut self, labels: &[(&str, &str)], value: f64) -> Self {
        self.push(labels, value);
        self
    }

    pub fn push(&mut self, labels: &[(&str, &str)], value: f64) {
        let labels = labels.iter().map(|(k, v)| (LabelText::from(*k), LabelText::from(*v))).collect();
        self.samples.push(Sample::scalar(labels, value));
    }
}

/// Latest snapshot of every producer.
#[derive(Default)]
pub struct State {
    producers: RwLock<Producers>,
    pub readiness: Readiness,
}

#[derive(Default)]
struct Producers {
    /// Each producer's snapshot, with the epoch it was last published in.
    snapshots: BTreeMap<String, (u64, Arc<Vec<Family>>)>,
    /// Changes on every publish and removal: what a scrape encoded is still good while it holds.
    version: u64,
    /// Bumped when the sources are replaced (a reload), to tell old producers from new ones.
    epoch: u64,
}

impl State {
    pub fn publish(&self, producer: &str, families: Vec<Family>) {
        let mut guard = self.producers.write().unwrap_or_else(|p| p.into_inner());
        guard.version += 1;
        let epoch = guard.epoch;
        guard.snapshots.insert(producer.to_string(), (epoch, Arc::new(families)));
    }

    /// The version of the published state; any publish changes it.
    pub fn version(&self) -> u64 {
        self.producers.read().unwrap_or_else(|p| p.into_inner()).version
    }

    /// Called once the old sources have stopped and before new ones start: from now on, what
    /// they publish (or announce with [`Readiness::expect`]) is what survives [`State::sweep`].
    /// Old snapshots keep being served meanwhile, so a reload leaves no gap in the series.
    pub fn begin_epoch(&self) {
        let mut guard = self.producers.write().unwrap_or_else(|p| p.into_inner());
        guard.epoch += 1;
        self.readiness.clear();
    }

    /// Drops producers of earlier epochs that the new sources have not announced: the series of
    /// a signal removed by a reload disappear instead of freezing.
    pub fn sweep(&self) {
        let pending = self.readiness.pending();
        let mut guard = self.producers.write().unwrap_or_else(|p| p.into_inner());
        let epoch = guard.epoch;
        guard.snapshots.retain(|name, (e, _)| *e == epoch || pending.iter().any(|p| p == name));
        guard.version += 1;
    }

    /// All families, merged by name (several producers may export one family) and sorted.
    pub fn gather(&self) -> Vec<Family> {
        self.snapshot().1
    }

    /// Every producer's snapshot as published (shared, not copied), in producer order, with the
    /// version they make up.
    pub fn snapshots(&self) -> (u64, Vec<Arc<Vec<Family>>>) {
        let guard = self.producers.read().unwrap_or_else(|p| p.into_inner());
        (guard.version, guard.snapshots.values().map(|(_, s)| s.clone()).collect())
    }

    /// [`State::gather`] with the version it was gathered at.
    pub fn snapshot(&self) -> (u64, Vec<Family>) {
        let (version, snapshots) = self.snapshots();
        let mut merged: BTreeMap<&str, Family> = BTreeMap::new();
        for snapshot in &snapshots {
            for family in snapshot.iter() {
                merged
                    .entry(&family.name)
                    .and_modify(|f| f.samples.extend(family.samples.iter().cloned()))
                    .or_insert_with(|| family.clone());
            }
        }
        (version, merged.into_values().collect())
    }
}

/// Producers that have not finished their first run yet; `/ready` answers 200 when empty.
#[derive(Default)]
pub struct Readiness {
    pending: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

impl Readiness {
    pub fn expect(&self, producer: &str) {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).insert(producer.to_string());
    }

    pub fn done(&self, producer: &str) {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(producer);
    }

    /// Forgets every producer (a reload: the new sources announce theirs again).
    fn clear(&self) {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    pub fn pending(&self) -> Vec<String> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn family(name: &str) -> Vec<Family> {
        vec![Family::new(name, "H.", MetricType::Gauge).with(&[], 1.0)]
    }

    #[test]
    fn a_reload_keeps_old_snapshots_until_the_sweep_and_drops_only_unannounced_ones() {
        let state = State::default();
        state.publish("log:a", family("a"));
        state.publish("sql:gone", family("gone"));
        state.readiness.expect("sql:slow");
        state.publish("sql:slow", family("slow"));
        let before = state.version();

        state.begin_epoch();
        assert!(state.readiness.pending().is_empty());
        // The new sources: `log:a` publishes at once, `sql:slow` only announces itself.
        state.publish("log:a", family("a"));
        state.readiness.expect("sql:slow");
        let names = |s: &State| s.gather().into_iter().map(|f| f.name).collect::<Vec<_>>();
        assert_eq!(names(&state), ["a", "gone", "slow"], "nothing vanishes before the sweep");
        state.sweep();
        assert_eq!(names(&state), ["a", "slow"]);
        assert!(state.version() > before);
    }
}
