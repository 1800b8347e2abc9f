//! What each condition kind measures, from [`Readings`]: the same value the generated PromQL
//! compares (`generate::promql::measured`), per series where the rule keeps series and summed
//! where it sums them, so a verdict and the alert cannot disagree on what is measured.

use std::collections::BTreeMap;
use std::time::Duration;

use super::readings::{Blind, Labels, Readings, matches};
use crate::spec::Condition;

/// The values a condition compares with its threshold.
#[derive(Clone, Debug, PartialEq)]
pub struct Measured {
    /// Every series the condition compares (one for an aggregate).
    pub series: Vec<(Labels, f64)>,
    /// When the window was only partly read: how much of it was.
    pub seen: Option<Duration>,
    /// Why it cannot fire whatever the value (a ratio under its `min_events`).
    pub quiet: Option<String>,
    /// The one metric series each value is, when the value is a series' own (a gauge), or its
    /// timestamp (an age): shown beside `/metrics`.
    pub readings: Vec<Option<(String, Labels, f64)>>,
}

impl Measured {
    fn of(series: Vec<(Labels, f64)>) -> Self {
        let readings = vec![None; series.len()];
        Measured { series, seen: None, quiet: None, readings }
    }
}

fn selected(
    readings: &dyn Readings,
    metric: &str,
    matchers: &BTreeMap<String, String>,
) -> Result<Vec<(Labels, f64)>, Blind> {
    Ok(readings.now(metric)?.into_iter().filter(|(labels, _)| matches(labels, matchers)).collect())
}

/// The less covered of two partial windows.
fn narrower(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Measures `condition` at `now` (unix seconds). For `absent`, one series of value 1 when
/// nothing is there, none when something is.
pub fn measure(condition: &Condition, readings: &dyn Readings, now: f64) -> Result<Measured, Blind> {
    match condition {
        Condition::Gauge(s) => {
            let series = selected(readings, &s.metric, &s.matchers)?;
            let own = series.iter().map(|(l, v)| Some((s.metric.clone(), l.clone(), *v))).collect();
            Ok(Measured { readings: own, ..Measured::of(series) })
        }
        Condition::Age(s) => {
            let series = selected(readings, &s.metric, &s.matchers)?;
            let own = series.iter().map(|(l, v)| Some((s.metric.clone(), l.clone(), *v))).collect();
            let ages = series.into_iter().map(|(l, v)| (l, now - v)).collect();
            Ok(Measured { readings: own, ..Measured::of(ages) })
        }
        Condition::GaugeRatio { numerator, denominator } => {
            let tops = selected(readings, &numerator.metric, &numerator.matchers)?;
            let bottoms = selected(readings, &denominator.metric, &denominator.matchers)?;
            // `a / b` in PromQL pairs series with the same labels.
            let series = tops
                .into_iter()
                .filter_map(|(labels, top)| {
                    let (_, bottom) = bottoms.iter().find(|(l, _)| *l == labels)?;
                    Some((labels, top / bottom))
                })
                .collect();
            Ok(Measured::of(series))
        }
        Condition::Absent(s) => {
            let series = selected(readings, &s.metric, &s.matchers)?;
            Ok(Measured::of(if series.is_empty() { vec![(Vec::new(), 1.0)] } else { Vec::new() }))
        }
        Condition::Increase(w) => {
            let grown = readings.increase(&w.metric, &w.matchers, w.window.0)?;
            Ok(Measured { seen: grown.seen, ..Measured::of(vec![(Vec::new(), grown.value)]) })
        }
        Condition::Ratio(w) => {
            let top = readings.increase(&w.metric, &w.matchers, w.window.0)?;
            let all = readings.increase(&w.metric, &BTreeMap::new(), w.window.0)?;
            let seen = narrower(top.seen, all.seen);
            if all.value <= 0.0 {
                // 0/0: PromQL has no number, and the alert no series.
                return Ok(Measured {
                    seen,
                    quiet: Some(format!("no events in {}", w.window)),
                    ..Measured::of(Vec::new())
                });
            }
            let quiet = (all.value < w.min_events).then(|| {
                format!(
                    "{} events in {}, fewer than the {} it takes to judge",
                    crate::generate::go_format::go_g4(all.value),
                    w.window,
                    crate::generate::go_format::go_g4(w.min_events)
                )
            });
            Ok(Measured { seen, quiet, ..Measured::of(vec![(Vec::new(), top.value / all.value)]) })
        }
        Condition::Rise(w) => {
            let rises = readings.rise(&w.metric, &w.matchers, w.window.0)?;
            Ok(Measured { seen: rises.seen, ..Measured::of(rises.value) })
        }
        Condition::Quantile(q) => {
            let buckets = readings.buckets(&q.metric, &q.matchers, q.window.0)?;
            let series = match quantile(q.quantile, &buckets.value) {
                Some(v) => vec![(Vec::new(), v)],
                None => Vec::new(),
            };
            let quiet = series.is_empty().then(|| format!("no observations in {}", q.window));
            Ok(Measured { seen: buckets.seen, quiet, ..Measured::of(series) })
        }
    }
}

/// PromQL's `histogram_quantile` on cumulative `(upper bound, count)` buckets ending with
/// `+Inf`: linear within the bucket the rank falls in, the lowest bucket starting at 0, and the
/// highest finite bound when the rank falls in `+Inf`. `None` without observations.
pub fn quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last().map(|(_, n)| *n)?;
    if total <= 0.0 || !q.is_finite() {
        return None;
    }
    if q < 0.0 {
        return Some(f64::NEG_INFINITY);
    }
    if q > 1.0 {
        return Some(f64::INFINITY);
    }
    let rank = q * total;
    let at = buckets.iter().position(|(_, n)| *n >= rank)?;
    let (upper, count) = buckets[at];
    if upper.is_infinite() {
        return Some(if at == 0 { 0.0 } else { buckets[at - 1].0 });
    }
    let (lower, below) = if at == 0 { (0.0_f64.min(upper), 0.0) } else { buckets[at - 1] };
    let inside = count - below;
    if inside <= 0.0 {
        return Some(upper);
    }
    Some(lower + (upper - lower) * (rank - below) / inside)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_as_prometheus_does() {
        let b = [(1.0, 10.0), (5.0, 90.0), (10.0, 100.0), (f64::INFINITY, 100.0)];
        assert_eq!(quantile(0.5, &b), Some(1.0 + 4.0 * (50.0 - 10.0) / 80.0));
        assert_eq!(quantile(0.05, &b), Some(0.5));
        assert_eq!(quantile(1.0, &b), Some(10.0));
        let over = [(1.0, 1.0), (f64::INFINITY, 10.0)];
        assert_eq!(quantile(0.95, &over), Some(1.0), "a rank in +Inf is the highest finite bound");
        assert_eq!(quantile(0.95, &[(1.0, 0.0), (f64::INFINITY, 0.0)]), None);
    }
}
