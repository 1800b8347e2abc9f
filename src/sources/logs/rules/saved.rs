//! What a checkpoint keeps of a log source's metrics besides the offsets, and whether it still
//! fits the spec when it is restored: values saved under another type, other labels or buckets,
//! or values no rule could have produced, are left out.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::OVERFLOW_VALUE;
use super::engine::RuleEngine;
use super::series::{SeriesKey, SeriesValue};
use crate::sources::unix_now;
use crate::spec::{MetricDef, MetricType};

/// Counters a checkpoint carries besides the offsets.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SavedMetrics {
    pub series: BTreeMap<String, Vec<(SeriesKey, SeriesValue)>>,
    /// Each metric's shape when it was saved, so a restart under a changed spec can tell which
    /// values still mean the same thing. Checkpoints of older versions lack it.
    #[serde(default)]
    pub shapes: BTreeMap<String, MetricShape>,
    /// When each series of a `set` metric was last updated (unix seconds), so a restart does
    /// not make an old value young again. Checkpoints of older versions lack it: their values
    /// are of unknown age and stay hidden until a new line sets them.
    #[serde(default)]
    pub updated: BTreeMap<String, Vec<(SeriesKey, f64)>>,
}

/// What a metric's saved values depend on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MetricShape {
    pub kind: MetricType,
    pub labels: Vec<String>,
    #[serde(default)]
    pub buckets: Vec<f64>,
}

impl MetricShape {
    pub(super) fn of(def: &MetricDef) -> Self {
        Self {
            kind: def.kind,
            labels: def.labels.iter().map(|l| l.name().to_string()).collect(),
            buckets: if def.kind == MetricType::Histogram { def.buckets.clone() } else { Vec::new() },
        }
    }
}

/// Why a restore left a saved metric out: its values would be wrong under the current spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ResetReason {
    /// The metric is no longer produced by this log source.
    Removed,
    TypeChanged,
    /// Label names changed, or a fixed label no longer allows a saved value.
    LabelsChanged,
    BucketsChanged,
    /// Values no spec could have produced (hand-edited or damaged file).
    Damaged,
}

impl ResetReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ResetReason::Removed => "removed",
            ResetReason::TypeChanged => "type_changed",
            ResetReason::LabelsChanged => "labels_changed",
            ResetReason::BucketsChanged => "buckets_changed",
            ResetReason::Damaged => "damaged",
        }
    }
}

impl RuleEngine {
    pub fn save(&self) -> SavedMetrics {
        SavedMetrics {
            series: self
                .metrics
                .iter()
                .map(|(name, s)| (name.clone(), s.series.iter().map(|(k, v)| (k.clone(), v.clone())).collect()))
                .collect(),
            shapes: self.metrics.iter().map(|(name, s)| (name.clone(), MetricShape::of(&s.def))).collect(),
            updated: self
                .metrics
                .iter()
                .filter(|(_, s)| s.ages)
                .map(|(name, s)| (name.clone(), s.updated.iter().map(|(k, t)| (k.clone(), *t)).collect()))
                .collect(),
        }
    }

    /// Restores values saved with the offsets. A metric whose saved values would be wrong under
    /// the current spec (other type, labels or buckets, or values no rule could produce) starts
    /// over instead; each such metric is returned once with the reason.
    pub fn restore(&mut self, saved: &SavedMetrics) -> Vec<(String, ResetReason)> {
        self.restore_at(saved, unix_now())
    }

    /// [`RuleEngine::restore`] at `now`: a saved `timestamp` further in the future than the
    /// tolerance (written by a version that kept the maximum ever seen) is not restored, so it
    /// cannot hide a heartbeat that stopped.
    pub fn restore_at(&mut self, saved: &SavedMetrics, now: f64) -> Vec<(String, ResetReason)> {
        let mut resets = Vec::new();
        let latest = now + self.future_tolerance;
        for (name, series) in &saved.series {
            let Some(state) = self.metrics.get_mut(name) else {
                resets.push((name.clone(), ResetReason::Removed));
                continue;
            };
            let shape = saved.shapes.get(name);
            match check_saved(&state.def, shape, series) {
                Ok(()) => {
                    let believable = |v: &SeriesValue| {
                        !state.timestamps || state.ages || matches!(v, SeriesValue::Scalar(t) if *t <= latest)
                    };
                    state.series.extend(series.iter().filter(|(_, v)| believable(v)).cloned());
                    if state.ages {
                        let times = saved.updated.get(name).into_iter().flatten();
                        let known = times.filter(|(k, t)| t.is_finite() && state.series.contains_key(k));
                        state.updated.extend(known.cloned());
                    }
                }
                Err(reason) => resets.push((name.clone(), reason)),
            }
        }
        resets
    }
}

/// Whether a metric's saved series can be restored under its current definition.
fn check_saved(
    def: &MetricDef,
    shape: Option<&MetricShape>,
    series: &[(SeriesKey, SeriesValue)],
) -> Result<(), ResetReason> {
    let now = MetricShape::of(def);
    if let Some(shape) = shape {
        if shape.kind != now.kind {
            return Err(ResetReason::TypeChanged);
        }
        if shape.labels != now.labels {
            return Err(ResetReason::LabelsChanged);
        }
        if shape.buckets != now.buckets {
            return Err(ResetReason::BucketsChanged);
        }
    }
    // Checkpoints without shapes, and damaged ones, are judged by the values themselves.
    for (labels, value) in series {
        match (value, def.kind) {
            (SeriesValue::Histogram { .. }, MetricType::Histogram) => {}
            (SeriesValue::Scalar(_), kind) if kind != MetricType::Histogram => {}
            _ => return Err(ResetReason::TypeChanged),
        }
        let labels = labels.values();
        if labels.len() != def.labels.len() {
            return Err(ResetReason::LabelsChanged);
        }
        let fixed_ok = def.labels.iter().zip(labels).all(|(d, v)| {
            d.fixed_values().is_none_or(|values| values.iter().any(|f| **f == **v)) || &**v == OVERFLOW_VALUE
        });
        if !fixed_ok {
            return Err(ResetReason::LabelsChanged);
        }
        match value {
            SeriesValue::Histogram { counts, .. } if counts.len() != def.buckets.len() => {
                return Err(ResetReason::BucketsChanged);
            }
            SeriesValue::Histogram { counts, sum, count } => {
                let cumulative = counts.windows(2).all(|w| w[0] <= w[1]);
                if !sum.is_finite() || !cumulative || counts.last().is_some_and(|last| last > count) {
                    return Err(ResetReason::Damaged);
                }
            }
            SeriesValue::Scalar(v) if !v.is_finite() => return Err(ResetReason::Damaged),
            SeriesValue::Scalar(v) if def.kind == MetricType::Counter && *v < 0.0 => {
                return Err(ResetReason::Damaged);
            }
            SeriesValue::Scalar(_) => {}
        }
    }
    Ok(())
}
