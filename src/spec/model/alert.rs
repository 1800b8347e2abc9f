//! The alerts of a signal: what they measure, how they compare and where their numbers come from.
//! Part of the spec model; every field's `///` doc is the user documentation of the spec format.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::spec::duration::PromDuration;
use crate::spec::yes;

/// How urgent an alert is; it routes the alert in Alertmanager.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, Serialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
#[derive(Clone, Debug, Deserialize, JsonSchema, Serialize, PartialEq)]
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
    /// Where the alert's numbers come from, shown in the catalog. Each of `threshold`,
    /// `severity`, `window` (for a condition with one) and `for` is
    /// `{runbook: {section: <heading>, quote: <the runbook's words>}}` or `{chosen: <why>}`:
    /// `{threshold: {runbook: ...}, severity: {chosen: ...}, for: {chosen: ...}}`. A lone
    /// `{runbook: ...}` or `{chosen: ...}` speaks for the threshold only. A spec that overrides
    /// one of them makes that one `chosen`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basis: Option<AlertBasis>,
    /// `true` when the runbook's number is about the whole fleet (every worker host's exporter
    /// together): the expression aggregates away the labels that tell exporters apart, so an
    /// idle standby host cannot keep it firing. Counters and histograms are summed, gauges and
    /// timestamps take the maximum, `rise` follows the maximum; `absent` is unchanged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub across_instances: bool,
    /// Fire only while other measurements each cross a number of their own, a list of
    /// `{condition: {increase: {metric: m, window: 10m}}, op: "<", threshold: 1}` (a `gauge` or an
    /// `increase`, aggregated as the alert's own condition is). For a value that means trouble
    /// only in some state: tokens due for refresh are trouble only while the worker runs its
    /// cycles and no refresh is attempted.
    #[serde(default, rename = "while", skip_serializing_if = "Vec::is_empty")]
    pub while_: Vec<Guard>,
}

/// One part of the state an alert fires in: an entry of the alert's `while` list.
#[derive(Clone, Debug, Deserialize, JsonSchema, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Guard {
    /// What is measured: `gauge` or `increase`, written as in an alert's `condition`.
    pub condition: Condition,
    /// `>`, `>=`, `<` or `<=`.
    pub op: Op,
    /// The number it is compared with.
    pub threshold: f64,
}

/// Where an alert's numbers come from.
#[derive(Clone, Debug, Deserialize, JsonSchema, Serialize, PartialEq)]
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

/// Where each of an alert's numbers comes from.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct AlertBasis {
    /// The threshold.
    pub threshold: Option<Basis>,
    /// The severity: why this pages (critical) or opens a ticket (warning).
    pub severity: Option<Basis>,
    /// The window of a rate, ratio or count.
    pub window: Option<Basis>,
    /// How long the condition must hold.
    #[serde(rename = "for")]
    pub for_: Option<Basis>,
}

impl AlertBasis {
    /// The aspects stated, by name, in the order the catalog shows them.
    pub fn stated(&self) -> Vec<(&'static str, &Basis)> {
        [("threshold", &self.threshold), ("severity", &self.severity), ("window", &self.window), ("for", &self.for_)]
            .into_iter()
            .filter_map(|(name, b)| b.as_ref().map(|b| (name, b)))
            .collect()
    }
}

impl<'de> Deserialize<'de> for AlertBasis {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// The full form, one entry per aspect.
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Full {
            threshold: Option<Basis>,
            severity: Option<Basis>,
            window: Option<Basis>,
            #[serde(rename = "for")]
            for_: Option<Basis>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Threshold(Basis),
            Full(Full),
        }
        match Either::deserialize(deserializer) {
            Ok(Either::Threshold(b)) => Ok(AlertBasis { threshold: Some(b), ..AlertBasis::default() }),
            Ok(Either::Full(f)) => {
                Ok(AlertBasis { threshold: f.threshold, severity: f.severity, window: f.window, for_: f.for_ })
            }
            Err(_) => Err(serde::de::Error::custom(
                "basis: `{runbook: {section, quote}}`, `{chosen: why}`, or a map of `threshold`, `severity`, `window` and `for` to one of those",
            )),
        }
    }
}

/// The two forms [`AlertBasis`]'s reader takes: one basis for the threshold, or one per aspect.
impl JsonSchema for AlertBasis {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "AlertBasis".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let basis = generator.subschema_for::<Basis>();
        let aspect = |what: &str| {
            let mut schema = basis.clone();
            schema.insert("description".into(), format!("Where the {what} comes from.").into());
            schema
        };
        schemars::json_schema!({
            "description": "Where an alert's numbers come from: one basis, which speaks for the threshold, or a map from `threshold`, `severity`, `window` and `for` to a basis each.",
            "anyOf": [
                basis,
                {
                    "type": "object",
                    "properties": {
                        "threshold": aspect("threshold"),
                        "severity": aspect("severity"),
                        "window": aspect("window"),
                        "for": aspect("`for` duration")
                    },
                    "additionalProperties": false
                }
            ]
        })
    }
}

fn default_for() -> PromDuration {
    PromDuration::from_secs(300)
}

/// What an alert's values are, for how thresholds and values are written.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, Serialize, PartialEq, Eq, Default)]
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
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, Serialize, PartialEq, Eq)]
pub enum Op {
    /// Fires above the threshold.
    #[serde(rename = ">")]
    Gt,
    /// Fires at or above the threshold.
    #[serde(rename = ">=")]
    Ge,
    /// Fires below the threshold.
    #[serde(rename = "<")]
    Lt,
    /// Fires at or below the threshold.
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
#[derive(Clone, Debug, Deserialize, JsonSchema, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    /// The metric's name.
    pub metric: String,
    /// Label values the series must have.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, crate::spec::schema::Scalar>")]
    pub matchers: BTreeMap<String, String>,
}

/// What an alert measures. Each kind renders to PromQL and knows how to build promtool test input.
#[derive(Clone, Debug, Deserialize, JsonSchema, Serialize, PartialEq)]
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
#[derive(Clone, Debug, Deserialize, JsonSchema, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QuantileSelector {
    /// The histogram's name (without `_bucket`).
    pub metric: String,
    /// Label values the series must have.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, crate::spec::schema::Scalar>")]
    pub matchers: BTreeMap<String, String>,
    /// 0.95 for p95.
    pub quantile: f64,
    /// The range the rates of the buckets are taken over.
    pub window: PromDuration,
}

/// A counter over a window.
#[derive(Clone, Debug, Deserialize, JsonSchema, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WindowedSelector {
    /// The counter's name.
    pub metric: String,
    /// Label values the series must have (for ratios: the ones counted on top).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, crate::spec::schema::Scalar>")]
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AlertBasis, String> {
        serde_saphyr::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_lone_basis_speaks_for_the_threshold_and_the_map_for_each_aspect() {
        let lone = parse("{chosen: why}").unwrap();
        assert_eq!(lone.threshold, Some(Basis::Chosen("why".into())));
        assert_eq!(lone.stated().len(), 1);
        let full = parse(
            "threshold: {runbook: {section: S, quote: Q}}\nseverity: {chosen: pages}\nwindow: {chosen: w}\nfor: {chosen: f}",
        )
        .unwrap();
        let aspects: Vec<&str> = full.stated().into_iter().map(|(a, _)| a).collect();
        assert_eq!(aspects, ["threshold", "severity", "window", "for"]);
        assert_eq!(full.severity, Some(Basis::Chosen("pages".into())));
        assert!(parse("{threshold: {chosen: a}, when: {chosen: b}}").unwrap_err().contains("severity"));
    }
}
