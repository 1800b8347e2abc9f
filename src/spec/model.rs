//! The signal model shared by built-in packs and user-written signals. Every field's `///` doc is
//! the user documentation of the spec format.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::duration::PromDuration;

/// One thing worth watching, with everything derived from it: its metrics, where their values come
/// from, the alerts on them and the dashboard panel that shows them.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Signal {
    /// Stable id, `<pack>.<name>` (e.g. `token_refresh.degraded_watchers`). Never reuse an id.
    pub id: String,
    /// Short human title; becomes the panel title.
    pub title: String,
    /// What the signal means and what to do when it moves; becomes the panel description.
    #[serde(default)]
    pub description: String,
    /// Heading of the runbook section that handles this signal (the link anchor is derived from it).
    #[serde(default)]
    pub runbook_section: Option<String>,
    /// Set `false` to switch the signal off (its metrics, alerts and panel disappear).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The metric families the signal exports.
    pub metrics: Vec<MetricDef>,
    /// Where the values come from.
    pub source: Source,
    /// Alerts on the signal's metrics.
    #[serde(default)]
    pub alerts: Vec<Alert>,
    /// The dashboard panel; omitted, the signal gets a panel drawing its first alert's expression.
    #[serde(default)]
    pub panel: Option<Panel>,
}

pub(crate) fn yes() -> bool {
    true
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
}

/// A metric family.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MetricDef {
    /// Full metric name, snake_case, with the namespace prefix; counters end in `_total`.
    pub name: String,
    /// `counter`, `gauge` or `histogram`.
    #[serde(rename = "type")]
    pub kind: MetricType,
    /// HELP text.
    pub help: String,
    /// Label names. A label with `values` has a fixed set: every value is exported (zero when
    /// absent) and anything else is folded into the last value when `other` is set.
    #[serde(default)]
    pub labels: Vec<LabelDef>,
    /// SQL sources only: the result column holding the value (default `value`).
    #[serde(default)]
    pub column: Option<String>,
    /// Histograms only: bucket upper bounds.
    #[serde(default)]
    pub buckets: Vec<f64>,
}

/// A label: a bare name, or a name with a fixed value set.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum LabelDef {
    Name(String),
    Fixed(FixedLabel),
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FixedLabel {
    pub name: String,
    /// Every value this label can take; each is exported even when zero.
    pub values: Vec<String>,
    /// Value that anything outside `values` is counted under (must be one of `values`).
    #[serde(default)]
    pub other: Option<String>,
}

impl LabelDef {
    pub fn name(&self) -> &str {
        match self {
            LabelDef::Name(n) => n,
            LabelDef::Fixed(f) => &f.name,
        }
    }

    pub fn fixed_values(&self) -> Option<&[String]> {
        match self {
            LabelDef::Name(_) => None,
            LabelDef::Fixed(f) => Some(&f.values),
        }
    }
}

/// Where a signal's values come from.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Source {
    /// A read-only SQL query run in the background on its own interval.
    Sql(SqlSource),
    /// Rules applied to every line of a followed log source.
    Log(LogRules),
    /// A JSON endpoint polled on an interval, values picked by path.
    Http(HttpSource),
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpSource {
    /// URL to GET; `{{param}}` placeholders are filled from the pack's parameters.
    pub url: String,
    /// Request headers. A value `env:NAME` is read from the environment at start (for tokens),
    /// and is never logged; `Bearer env:NAME` sends `Bearer ` and the variable's value.
    /// `{{param}}` placeholders are filled, as in `url` and `values`' paths.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// How often the endpoint is polled (default: `sql_defaults.interval`).
    #[serde(default)]
    pub interval: Option<PromDuration>,
    /// No answer within this long counts as down (default: `sql_defaults.timeout`).
    #[serde(default)]
    pub timeout: Option<PromDuration>,
    /// What each metric takes from the answer.
    pub values: Vec<HttpValue>,
}

/// One metric's value from an HTTP answer.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpValue {
    /// The metric (declared in the signal's `metrics`).
    pub metric: String,
    /// `.a.b[0].c`-style path into the JSON body, or `up` (1 when the endpoint answered 2xx in
    /// time, else 0) or `duration` (seconds the answer took).
    pub path: String,
    /// Optional second path whose number is subtracted (`.Max` minus `.Remaining` = used).
    #[serde(default)]
    pub minus: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SqlSource {
    /// The query. `{{param}}` placeholders are filled from the pack's parameters (identifiers are
    /// quoted, durations become intervals). Label columns are named after the metric's labels.
    pub query: String,
    /// How often the query runs (default: `sql_defaults.interval`).
    #[serde(default)]
    pub interval: Option<PromDuration>,
    /// Server-side `statement_timeout` for the query (default: `sql_defaults.timeout`).
    #[serde(default)]
    pub timeout: Option<PromDuration>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogRules {
    /// Name of the log source (under `logs:`) the rules read.
    pub log: String,
    /// Rules tried on every line; every matching rule applies.
    pub rules: Vec<LogRule>,
}

/// One rule: which lines it takes and what it does to a metric.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogRule {
    /// Text lines: a regex (named captures feed labels and values). JSON lines: a regex on the
    /// `message` field, or omitted to match on `fields` alone.
    #[serde(default, rename = "match")]
    pub pattern: Option<String>,
    /// JSON lines: field values the line must have (`{category: calendar_sync, level: error}`).
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// The metric the rule updates.
    pub metric: String,
    /// `inc` (counter +1), `add` (counter + value), `set` (gauge = value), `observe` (histogram),
    /// `timestamp` (gauge = the line's own timestamp, unix seconds).
    pub action: LogAction,
    /// For `add`, `set`, `observe`: the named capture (or JSON field) holding the number.
    #[serde(default)]
    pub value: Option<String>,
    /// Label values: a literal, or `$capture` / `$field` to take it from the line.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Multiplies the value before it is used (`0.001` turns milliseconds into seconds).
    #[serde(default)]
    pub scale: Option<f64>,
    /// Example lines this rule must match; `check` tries the rule on each.
    #[serde(default)]
    pub samples: Vec<String>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogAction {
    Inc,
    Add,
    Set,
    Observe,
    Timestamp,
}

/// A followed log source.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogSource {
    /// Paths or globs (`*`, `?`, `[...]` in the file name).
    pub paths: Vec<String>,
    /// `text` (one line, regex rules) or `json` (one JSON object per line).
    #[serde(default)]
    pub format: LogFormat,
    /// Where a line's own time is and how to read it.
    #[serde(default)]
    pub timestamp: TimestampSpec,
    /// Where counters start in files present when there is no checkpoint to continue from:
    /// `beginning` counts the lines already there, `end` only the lines written from then on.
    /// Omitted: `beginning` at the first start with a `state_dir` (those lines are then in the
    /// checkpoint and never counted twice), `end` otherwise: without a `state_dir` every start
    /// is a first start, and counting the files again would show Prometheus old lines as new
    /// ones (after a rotation, the whole file as an `increase()`); after an unreadable
    /// checkpoint was set aside, its lines were counted already. Starting at the end, the
    /// existing content is still read once for gauges: `set` values (which keep their age, see
    /// `max_age`) and `timestamp`s, so a heartbeat alert knows the last beat right after a
    /// restart. Files that appear later are always read from their first byte.
    #[serde(default)]
    pub start_at: Option<tailer::StartAt>,
    /// A value `set` from a line is exported for this long after the line (its own timestamp
    /// when the source parses one, else when it was read), then dropped until the next such
    /// line: one old line cannot keep an alert firing, and a restored checkpoint cannot revive
    /// it. Give it a few times the interval at which the application logs the value.
    #[serde(default = "default_max_age")]
    pub max_age: PromDuration,
    /// A line whose own timestamp is further than this in the future (a bad clock, a wrong
    /// `timezone`) is counted as unparsable and its `timestamp` rules ignore it, so it cannot
    /// hide a heartbeat that stopped.
    #[serde(default = "default_future_tolerance")]
    pub future_tolerance: PromDuration,
    /// How long a renamed or deleted file is still read after its last write (100ms to 1d: at
    /// zero, lines still being written to a rotated file would be lost).
    #[serde(default = "default_rotate_wait")]
    pub rotate_wait: PromDuration,
    /// Lines longer than this are dropped and counted.
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
    /// Label values taken from lines (`$capture` or `$field` of a label without fixed values) are
    /// cut to this many bytes, at a character boundary, and the cuts counted in
    /// `integration_exporter_label_truncated_total`: one odd line cannot make a huge series.
    #[serde(default = "default_max_label_bytes")]
    pub max_label_bytes: usize,
}

fn default_max_age() -> PromDuration {
    PromDuration::from_secs(300)
}
fn default_future_tolerance() -> PromDuration {
    PromDuration::from_secs(300)
}
fn default_rotate_wait() -> PromDuration {
    PromDuration::from_secs(10)
}
fn default_max_line_bytes() -> usize {
    1 << 20
}
fn default_max_label_bytes() -> usize {
    256
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// How to read a line's own timestamp.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TimestampSpec {
    /// Text lines: regex whose first capture (or `ts` capture) is the timestamp.
    /// JSON lines: ignored, see `field`.
    #[serde(default = "default_ts_regex")]
    pub pattern: String,
    /// JSON lines: field holding the timestamp.
    #[serde(default = "default_ts_field")]
    pub field: String,
    /// strftime format (`%Y-%m-%d %H:%M:%S,%3f` is Python logging's default), or `rfc3339`,
    /// or `unix` (seconds, fractions allowed).
    #[serde(default = "default_ts_format")]
    pub format: String,
    /// Time zone of timestamps that carry none: `UTC`, an IANA name (`Europe/Berlin`) or `local`.
    #[serde(default = "default_tz")]
    pub timezone: String,
}

impl Default for TimestampSpec {
    fn default() -> Self {
        Self {
            pattern: default_ts_regex(),
            field: default_ts_field(),
            format: default_ts_format(),
            timezone: default_tz(),
        }
    }
}

fn default_ts_regex() -> String {
    r"^(?P<ts>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?)".into()
}
fn default_ts_field() -> String {
    "timestamp".into()
}
fn default_ts_format() -> String {
    "%Y-%m-%d %H:%M:%S,%3f".into()
}
fn default_tz() -> String {
    "UTC".into()
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Warning,
    Info,
}

impl Severity {
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
}

fn default_for() -> PromDuration {
    PromDuration::from_secs(300)
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ValueUnit {
    #[default]
    Count,
    Number,
    Percent,
    Duration,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub enum Op {
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
        }
    }

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
    pub metric: String,
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
    GaugeRatio { numerator: Selector, denominator: Selector },
    /// Share of a counter's increase over `window` that matches `matchers`: the numerator is
    /// `metric{matchers}`, the denominator all of `metric`. Quiet while fewer than `min_events`
    /// happened in the window, so a handful of attempts cannot page anyone.
    Ratio(WindowedSelector),
    /// A counter's increase over `window`.
    Increase(WindowedSelector),
    /// Seconds since the timestamp held by a `..._timestamp_seconds` gauge.
    Age(Selector),
    /// The series does not exist at all (nothing was ever seen). Threshold and op are ignored.
    Absent(Selector),
    /// A quantile of a histogram over `window` (`histogram_quantile`), in the metric's unit.
    Quantile(QuantileSelector),
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QuantileSelector {
    /// The histogram's name (without `_bucket`).
    pub metric: String,
    #[serde(default)]
    pub matchers: BTreeMap<String, String>,
    /// 0.95 for p95.
    pub quantile: f64,
    pub window: PromDuration,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WindowedSelector {
    pub metric: String,
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
            Condition::Ratio(w) | Condition::Increase(w) => vec![&w.metric],
            Condition::Quantile(q) => vec![&q.metric],
        }
    }

    pub fn window(&self) -> Option<PromDuration> {
        match self {
            Condition::Ratio(w) | Condition::Increase(w) => Some(w.window),
            Condition::Quantile(q) => Some(q.window),
            _ => None,
        }
    }

    pub fn window_mut(&mut self) -> Option<&mut PromDuration> {
        match self {
            Condition::Ratio(w) | Condition::Increase(w) => Some(&mut w.window),
            Condition::Quantile(q) => Some(&mut q.window),
            _ => None,
        }
    }
}

/// A dashboard panel.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Panel {
    /// `timeseries` or `stat`.
    #[serde(default = "default_panel_type", rename = "type")]
    pub kind: String,
    /// Grafana unit (`short`, `percentunit`, `s`, `dateTimeFromNow`, ...).
    #[serde(default = "default_panel_unit")]
    pub unit: String,
    /// PromQL queries; omitted, the first alert's measured expression is drawn.
    #[serde(default)]
    pub queries: Vec<PanelQuery>,
}

fn default_panel_type() -> String {
    "timeseries".into()
}
fn default_panel_unit() -> String {
    "short".into()
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PanelQuery {
    pub expr: String,
    #[serde(default)]
    pub legend: Option<String>,
}
