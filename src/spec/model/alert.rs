//! The alerts of a signal: what they measure, how they compare and where their numbers come from.
//! Part of the spec model; every field's `///` doc is the user documentation of the spec format.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::spec::duration::PromDuration;
use crate::spec::yes;

/// How urgent an alert is; it routes the alert in Alertmanager.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Someone must act now.
    Critical,
    /// Someone should look soon.
    Warning,
    /// Worth knowing; pages nobody.
    Info,
}

impl Severity {
    /// The name as written in the spec and in the `severity` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// An alert on the signal's metrics. Its PromQL, its promtool tests, the threshold line on the
/// panel and the threshold quoted in its description all come from these fields.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Alert {
    /// CamelCase alert name with the shared `Integration` prefix, at most 40 characters. Two
    /// alerts may share a name when they differ in severity (a warning/critical pair).
    pub name: String,
    /// `critical` pages, `warning` opens a ticket, `info` only shows.
    pub severity: Severity,
    /// What is measured.
    pub condition: Condition,
    /// `>`, `>=`, `<` or `<=`.
    pub op: Op,
    /// The runbook's threshold, in the metric's base unit (ratios 0..1, durations in seconds).
    pub threshold: f64,
    /// How long the condition must hold before the alert fires.
    #[serde(rename = "for", default = "default_for")]
    pub for_: PromDuration,
    /// One sentence, no templating, ending with a period.
    pub summary: String,
    /// Description; `{value}` becomes the humanised current value, `{threshold}`, `{window}` and
    /// `{for}` the configured numbers.
    pub description: String,
    /// How values are shown: `count`, `number`, `percent` (a 0..1 ratio) or `duration` (seconds).
    #[serde(default)]
    pub unit: ValueUnit,
    /// Set `false` to drop this alert.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Where the threshold, window and `for` come from, shown in the catalog:
    /// `{runbook: {section: <heading>, quote: <the runbook's words>}}` or `{chosen: <why>}`.
    /// A spec that overrides the threshold, window or `for` makes it `chosen`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basis: Option<Basis>,
    /// `true` when the runbook's number is about the whole fleet (every worker host's exporter
    /// together): the expression aggregates away the labels that tell exporters apart, so an
    /// idle standby host cannot keep it firing. Counters and histograms are summed, gauges and
    /// timestamps take the maximum; `absent` and `rise` are unchanged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub across_instances: bool,
}

/// Where an alert's numbers come from.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Basis {
    /// The runbook states them: its heading and its own words.
    Runbook {
        /// The runbook's heading the numbers are under.
        section: String,
        /// The runbook's exact words.
        quote: String,
    },
    /// The runbook is silent (or the spec overrode them): why these numbers.
    Chosen(String),
}

fn default_for() -> PromDuration {
    PromDuration::from_secs(300)
}

/// What an alert's values are, for how thresholds and values are written.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ValueUnit {
    /// A whole number of things.
    #[default]
    Count,
    /// Any number.
    Number,
    /// A ratio from 0 to 1, written as a percentage.
    Percent,
    /// Seconds, written as a duration.
    Duration,
}

/// How an alert compares its value with its threshold.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub enum Op {
    /// `>`
    #[serde(rename = ">")]
    Gt,
    /// `>=`
    #[serde(rename = ">=")]
    Ge,
    /// `<`
    #[serde(rename = "<")]
    Lt,
    /// `<=`
    #[serde(rename = "<=")]
    Le,
}

impl Op {
    /// The operator as PromQL writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
        }
    }

    /// Whether `value` crosses `threshold` this way.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Gt => value > threshold,
            Op::Ge => value >= threshold,
            Op::Lt => value < threshold,
            Op::Le => value <= threshold,
        }
    }
}

/// A series selector: a metric and exact-match label values.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    /// The metric's name.
    pub metric: String,
    /// Label values the series must have.
    #[serde(default)]
    pub matchers: BTreeMap<String, String>,
}

/// What an alert measures. Each kind renders to PromQL and knows how to build promtool test input.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// The gauge's current value, per series.
    Gauge(Selector),
    /// One gauge divided by another from the same line or row (`used / limit`).
    GaugeRatio {
        /// The gauge on top (`used`).
        numerator: Selector,
        /// The gauge below (`limit`).
        denominator: Selector,
    },
    /// Share of a counter's increase over `window` that matches `matchers`: the numerator is
    /// `metric{matchers}`, the denominator all of `metric`. Quiet while fewer than `min_events`
    /// happened in the window, so a handful of attempts cannot page anyone.
    Ratio(WindowedSelector),
    /// A counter's increase over `window`.
    Increase(WindowedSelector),
    /// How much a gauge rose over `window`, minute by minute, falls ignored: the new entries of a
    /// backlog that is only emptied by hand (failed events), so the alert fires on new entries and
    /// resolves once none came for a window, however large the backlog stays.
    Rise(WindowedSelector),
    /// Seconds since the timestamp held by a `..._timestamp_seconds` gauge.
    Age(Selector),
    /// The series does not exist at all (nothing was ever seen). Threshold and op are ignored.
    Absent(Selector),
    /// A quantile of a histogram over `window` (`histogram_quantile`), in the metric's unit.
    Quantile(QuantileSelector),
}

/// A quantile of a histogram over a window.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QuantileSelector {
    /// The histogram's name (without `_bucket`).
    pub metric: String,
    /// Label values the series must have.
    #[serde(default)]
    pub matchers: BTreeMap<String, String>,
    /// 0.95 for p95.
    pub quantile: f64,
    /// The range the rates of the buckets are taken over.
    pub window: PromDuration,
}

/// A counter over a window.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WindowedSelector {
    /// The counter's name.
    pub metric: String,
    /// Label values the series must have (for ratios: the ones counted on top).
    #[serde(default)]
    pub matchers: BTreeMap<String, String>,
    /// The range the increase is taken over.
    pub window: PromDuration,
    /// Ratios only: fewest events in the window for the alert to be allowed to fire.
    #[serde(default)]
    pub min_events: f64,
}

impl Condition {
    /// The metrics the condition reads.
    pub fn metrics(&self) -> Vec<&str> {
        match self {
            Condition::GaugeRatio { numerator, denominator } => {
                vec![&numerator.metric, &denominator.metric]
            }
            Condition::Gauge(s) | Condition::Age(s) | Condition::Absent(s) => vec![&s.metric],
            Condition::Ratio(w) | Condition::Increase(w) | Condition::Rise(w) => vec![&w.metric],
            Condition::Quantile(q) => vec![&q.metric],
        }
    }

    /// The range the condition looks back over, when it has one.
    pub fn window(&self) -> Option<PromDuration> {
        match self {
            Condition::Ratio(w) | Condition::Increase(w) | Condition::Rise(w) => Some(w.window),
            Condition::Quantile(q) => Some(q.window),
            _ => None,
        }
    }

    /// The window, to change it (a pack parameter may set it).
    pub fn window_mut(&mut self) -> Option<&mut PromDuration> {
        match self {
            Condition::Ratio(w) | Condition::Increase(w) | Condition::Rise(w) => Some(&mut w.window),
            Condition::Quantile(q) => Some(&mut q.window),
            _ => None,
        }
    }
}
