//! The values a log source's metrics hold, series by series.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::spec::{LabelDef, MetricDef, MetricType};

/// A metric's series as the log source holds them; saved with the offsets in checkpoints.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum SeriesValue {
    Scalar(f64),
    Histogram { counts: Vec<u64>, sum: f64, count: u64 },
}

#[derive(Debug, Clone)]
pub(super) struct MetricState {
    pub(super) def: MetricDef,
    pub(super) series: BTreeMap<Vec<String>, SeriesValue>,
    /// Some rule `set`s this metric: its series age, and are exported only while younger than
    /// the source's `max_age`.
    pub(super) ages: bool,
    /// Some rule writes a line's `timestamp` into this metric.
    pub(super) timestamps: bool,
    /// Aging metrics: when each series was last updated (unix seconds). A series without an
    /// entry (restored from a checkpoint that did not save it) is of unknown age: stale.
    pub(super) updated: BTreeMap<Vec<String>, f64>,
}

impl MetricState {
    pub(super) fn new(def: &MetricDef) -> Self {
        Self { def: def.clone(), series: initial_series(def), ages: false, timestamps: false, updated: BTreeMap::new() }
    }

    /// Whether the series is exported at `now`.
    pub(super) fn fresh(&self, labels: &[String], now: f64, max_age: f64) -> bool {
        !self.ages || self.updated.get(labels).is_some_and(|t| now - t < max_age)
    }
}

/// Counters whose labels all have fixed values start at zero for every combination, so a ratio
/// over them exists from the first scrape and a first failure is an increase, not a new series.
pub(super) fn initial_series(def: &MetricDef) -> BTreeMap<Vec<String>, SeriesValue> {
    let mut series = BTreeMap::new();
    if def.kind != MetricType::Counter {
        return series;
    }
    let Some(combos) = LabelDef::combinations(&def.labels) else { return series };
    for combo in combos {
        series.insert(combo, SeriesValue::Scalar(0.0));
    }
    series
}
