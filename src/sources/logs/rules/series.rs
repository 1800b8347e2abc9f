//! The values a log source's metrics hold, series by series.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::spec::{LabelDef, MetricDef, MetricType};
use crate::state::LabelText;

/// A series' label values, in its metric's label order. Each value is stored once and shared
/// with every published snapshot that serves the series, instead of copied into each.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SeriesKey(Box<[LabelText]>);

impl SeriesKey {
    pub fn values(&self) -> &[LabelText] {
        &self.0
    }
}

impl From<&[String]> for SeriesKey {
    fn from(values: &[String]) -> Self {
        Self(values.iter().map(|v| LabelText::from(v.as_str())).collect())
    }
}

impl From<Vec<String>> for SeriesKey {
    fn from(values: Vec<String>) -> Self {
        Self::from(values.as_slice())
    }
}

/// Saved as the list of its values, as checkpoints always held them.
impl Serialize for SeriesKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|v| &**v))
    }
}

impl<'de> Deserialize<'de> for SeriesKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<String>::deserialize(deserializer).map(Self::from)
    }
}

/// Label values a series map can be searched by: a series' own key, or the values a line is
/// being read into (a reused `[String]`, so finding a known series allocates nothing).
pub(super) trait LabelValues {
    fn count(&self) -> usize;
    fn value(&self, i: usize) -> &str;
}

impl LabelValues for SeriesKey {
    fn count(&self) -> usize {
        self.0.len()
    }
    fn value(&self, i: usize) -> &str {
        &self.0[i]
    }
}

impl LabelValues for Vec<String> {
    fn count(&self) -> usize {
        self.len()
    }
    fn value(&self, i: usize) -> &str {
        &self[i]
    }
}

// Ordered as `SeriesKey`'s derived order is (value by value, then length), so a search by
// `dyn LabelValues` finds what the key's own order placed.
impl Ord for dyn LabelValues + '_ {
    fn cmp(&self, other: &Self) -> Ordering {
        let mine = (0..self.count()).map(|i| self.value(i));
        mine.cmp((0..other.count()).map(|i| other.value(i)))
    }
}

impl PartialOrd for dyn LabelValues + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for dyn LabelValues + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for dyn LabelValues + '_ {}

impl<'a> Borrow<dyn LabelValues + 'a> for SeriesKey {
    fn borrow(&self) -> &(dyn LabelValues + 'a) {
        self
    }
}

/// `labels` as a series map's search key.
// A `Vec`, not a slice: an unsized slice cannot be made a trait object.
#[allow(clippy::ptr_arg)]
pub(super) fn search(labels: &Vec<String>) -> &dyn LabelValues {
    labels
}

/// A metric's series as the log source holds them; saved with the offsets in checkpoints.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum SeriesValue {
    Scalar(f64),
    Histogram { counts: Vec<u64>, sum: f64, count: u64 },
}

#[derive(Debug, Clone)]
pub(super) struct MetricState {
    pub(super) def: MetricDef,
    pub(super) series: BTreeMap<SeriesKey, SeriesValue>,
    /// The metric's label names, shared by every sample published.
    pub(super) names: Vec<LabelText>,
    /// Some rule `set`s this metric: its series age, and are exported only while younger than
    /// the source's `max_age`.
    pub(super) ages: bool,
    /// Some rule writes a line's `timestamp` into this metric.
    pub(super) timestamps: bool,
    /// Aging metrics: when each series was last updated (unix seconds). A series without an
    /// entry (restored from a checkpoint that did not save it) is of unknown age: stale.
    pub(super) updated: BTreeMap<SeriesKey, f64>,
}

impl MetricState {
    pub(super) fn new(def: &MetricDef) -> Self {
        Self {
            def: def.clone(),
            series: initial_series(def),
            names: def.labels.iter().map(|l| LabelText::from(l.name())).collect(),
            ages: false,
            timestamps: false,
            updated: BTreeMap::new(),
        }
    }

    /// Whether the series is exported at `now`.
    pub(super) fn fresh(&self, labels: &SeriesKey, now: f64, max_age: f64) -> bool {
        !self.ages || self.updated.get(labels).is_some_and(|t| now - t < max_age)
    }
}

/// Counters whose labels all have fixed values start at zero for every combination, so a ratio
/// over them exists from the first scrape and a first failure is an increase, not a new series.
pub(super) fn initial_series(def: &MetricDef) -> BTreeMap<SeriesKey, SeriesValue> {
    let mut series = BTreeMap::new();
    if def.kind != MetricType::Counter {
        return series;
    }
    let Some(combos) = LabelDef::combinations(&def.labels) else { return series };
    for combo in combos {
        series.insert(SeriesKey::from(combo), SeriesValue::Scalar(0.0));
    }
    series
}
