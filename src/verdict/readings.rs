//! What a verdict is judged from: the values a source gave now, and for conditions over a window,
//! what the window held. `diagnose` reads every source once ([`crate::diagnose`]); the status
//! page reads the exporter's state and the hour of history it keeps ([`crate::status`]).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::state::{Family, LabelText, SampleValue};

/// A series' labels, in the metric's label order.
pub type Labels = Vec<(LabelText, LabelText)>;

/// Why a value cannot be judged now.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "cause", content = "why", rename_all = "snake_case")]
pub enum Blind {
    /// Its source could not be read: which source, and why.
    Source(String),
    /// One reading cannot tell; it takes readings over time, which Prometheus keeps (a rise over
    /// an hour, the increase of a gauge read by a query).
    NeedsHistory(String),
}

impl Blind {
    pub fn why(&self) -> &str {
        match self {
            Blind::Source(why) | Blind::NeedsHistory(why) => why,
        }
    }
}

/// A value over a window, and how much of the window the readings covered when less than all.
#[derive(Clone, Debug, PartialEq)]
pub struct Windowed<T> {
    pub value: T,
    /// `Some(seen)` when only the last `seen` of the window was read (a log read cut at its
    /// bound, an exporter that started less than a window ago).
    pub seen: Option<Duration>,
}

impl<T> Windowed<T> {
    pub fn whole(value: T) -> Self {
        Windowed { value, seen: None }
    }
}

/// What a verdict reads. Metric names are as the spec writes them (counters with `_total`).
pub trait Readings {
    /// Every series of `metric` now, `Ok(empty)` when there is none.
    fn now(&self, metric: &str) -> Result<Vec<(Labels, f64)>, Blind>;
    /// How much the series of counter `metric` that have `matchers` grew together over the last
    /// `window`.
    fn increase(
        &self,
        metric: &str,
        matchers: &BTreeMap<String, String>,
        window: Duration,
    ) -> Result<Windowed<f64>, Blind>;
    /// Per series of gauge `metric` with `matchers`: how much it rose over the last `window`,
    /// falls ignored.
    fn rise(
        &self,
        metric: &str,
        matchers: &BTreeMap<String, String>,
        window: Duration,
    ) -> Result<Windowed<Vec<(Labels, f64)>>, Blind>;
    /// The observations of histogram `metric` with `matchers` over the last `window`: cumulative
    /// counts by upper bound, ending with `+Inf` (the total).
    fn buckets(
        &self,
        metric: &str,
        matchers: &BTreeMap<String, String>,
        window: Duration,
    ) -> Result<Windowed<Vec<(f64, f64)>>, Blind>;
}

/// Whether a series has every label value `matchers` asks for.
pub fn matches(labels: &Labels, matchers: &BTreeMap<String, String>) -> bool {
    matchers.iter().all(|(k, v)| labels.iter().any(|(name, value)| **name == **k && **value == **v))
}

/// The scalar samples of `family` (none for a histogram or no family).
pub fn scalars(family: Option<&Family>) -> impl Iterator<Item = (&Labels, f64)> {
    family.into_iter().flat_map(|f| &f.samples).filter_map(|s| match s.value {
        SampleValue::Scalar(v) => Some((&s.labels, v)),
        SampleValue::Histogram { .. } => None,
    })
}

/// Cumulative bucket counts of the histogram samples of `family` that have `matchers`, summed
/// over the series, `+Inf` (the count) last; empty when none is a histogram.
pub fn bucket_totals(family: Option<&Family>, matchers: &BTreeMap<String, String>) -> Vec<(f64, f64)> {
    let mut total: Vec<(f64, f64)> = Vec::new();
    for sample in family.into_iter().flat_map(|f| &f.samples).filter(|s| matches(&s.labels, matchers)) {
        if let SampleValue::Histogram { buckets, count, .. } = &sample.value {
            let all = buckets.iter().map(|(le, n)| (*le, *n as f64)).chain([(f64::INFINITY, *count as f64)]);
            if total.is_empty() {
                total = all.collect();
            } else {
                for (sum, (_, n)) in total.iter_mut().zip(all) {
                    sum.1 += n;
                }
            }
        }
    }
    total
}

/// `metric{a="b", c="d"}`, as the exposition writes a series.
pub fn series_name(metric: &str, labels: &Labels) -> String {
    if labels.is_empty() {
        return metric.to_string();
    }
    let inner: Vec<String> =
        labels.iter().map(|(k, v)| format!("{k}=\"{}\"", crate::generate::promql::escape(v))).collect();
    format!("{metric}{{{}}}", inner.join(","))
}

/// `a="b", c="d"`: a series' labels as a person reads them; empty for none.
pub fn label_text(labels: &Labels) -> String {
    labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect::<Vec<_>>().join(", ")
}
