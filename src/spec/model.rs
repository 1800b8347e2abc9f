//! The signal model shared by built-in packs and user-written signals. Every field's `///` doc is
//! the user documentation of the spec format.

#![warn(missing_docs)]

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration::PromDuration;

mod alert;
mod slo;
pub use alert::*;
pub use slo::*;

/// One thing worth watching, with everything derived from it: its metrics, where their values come
/// from, the alerts on them and the dashboard panel that shows them.
#[derive(Clone, Debug, Deserialize, JsonSchema, Serialize, PartialEq)]
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
    /// The database (a name under `databases:`) a SQL signal reads; omitted, the only one. In a
    /// pack, set by the pack's enabling instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// Alerts on the signal's metrics.
    #[serde(default)]
    pub alerts: Vec<Alert>,
    /// The dashboard panel; omitted, the signal gets a panel drawing its first alert's expression.
    #[serde(default)]
    pub panel: Option<Panel>,
    /// The runbook's target for the signal's events (`success rate > 99%`), stated once: error
    /// ratio records, burn-rate alerts, their tests and an error budget row come from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<Slo>,
}

pub(crate) fn yes() -> bool {
    true
}

/// A metric's Prometheus type.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, Serialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum MetricType {
    /// Only goes up (or restarts at 0); the name ends in `_total`.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Observations counted into `buckets`, with their sum and count.
    Histogram,
}

/// A metric family.
#[derive(Clone, Debug, Deserialize, JsonSchema, Serialize, PartialEq)]
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
#[derive(Clone, Debug, Deserialize, JsonSchema, Serialize, PartialEq)]
#[serde(untagged)]
pub enum LabelDef {
    /// Any value the source gives (`[kind]`).
    Name(String),
    /// A fixed set of values (`[{name: result, values: [ok, failed]}]`).
    Fixed(FixedLabel),
}

/// A label whose values are known in advance.
#[derive(Clone, Debug, Deserialize, JsonSchema, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FixedLabel {
    /// The label's name.
    pub name: String,
    /// Every value this label can take; each is exported even when zero.
    pub values: Vec<String>,
    /// Value that anything outside `values` is counted under (must be one of `values`).
    #[serde(default)]
    pub other: Option<String>,
}

impl LabelDef {
    /// Every combination of the labels' fixed values, in label order; `None` when a label has no
    /// fixed set (its values are open).
    pub fn combinations(labels: &[LabelDef]) -> Option<Vec<Vec<String>>> {
        let mut combos: Vec<Vec<String>> = vec![vec![]];
        for label in labels {
            let values = label.fixed_values()?;
            combos = combos
                .into_iter()
                .flat_map(|prefix| {
                    values.iter().map(move |v| {
                        let mut next = prefix.clone();
                        next.push(v.clone());
                        next
                    })
                })
                .collect();
        }
        Some(combos)
    }

    /// The label's name, whichever way it was written.
    pub fn name(&self) -> &str {
        match self {
            LabelDef::Name(n) => n,
            LabelDef::Fixed(f) => &f.name,
        }
    }

    /// The fixed values, when the label has a set.
    pub fn fixed_values(&self) -> Option<&[String]> {
        match self {
            LabelDef::Name(_) => None,
            LabelDef::Fixed(f) => Some(&f.values),
        }
    }
}

/// Where a signal's values come from.
#[derive(Clone, Debug, Deserialize, JsonSchema, Serialize, PartialEq)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Source {
    /// A read-only SQL query run in the background on its own interval.
    Sql(SqlSource),
    /// Rules applied to every line of a followed log source.
    Log(LogRules),
    /// A JSON endpoint polled on an interval, values picked by path.
    Http(HttpSource),
}

/// A JSON endpoint, polled on an interval.
#[derive(Clone, Debug, Deserialize, JsonSchema, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpSource {
    /// URL to GET; `{{param}}` placeholders are filled from the pack's parameters.
    pub url: String,
    /// Request headers. A value `env:NAME` is the environment variable's value, `file:PATH` the
    /// file's content (trimmed); `Bearer env:NAME` sends `Bearer `, then the value. Both are read
    /// again before every request (a rotated token is picked up) and never logged; a header whose
    /// variable or file is missing is not sent. `{{param}}` placeholders are filled, as in `url`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, super::schema::Scalar>")]
    pub headers: BTreeMap<String, String>,
    /// How the request authenticates (sets `Authorization`). A 401 or 403 answer, or a token that
    /// cannot be had, counts as an `auth` error of the signal.
    #[serde(default)]
    pub auth: Option<HttpAuth>,
    /// How often the endpoint is polled (default: `poll_defaults.interval`).
    #[serde(default)]
    pub interval: Option<PromDuration>,
    /// No answer within this long counts as down (default: `poll_defaults.timeout`).
    #[serde(default)]
    pub timeout: Option<PromDuration>,
    /// What each metric takes from the answer.
    pub values: Vec<HttpValue>,
}

/// One metric's value from an HTTP answer.
#[derive(Clone, Debug, Deserialize, JsonSchema, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpValue {
    /// The metric (declared in the signal's `metrics`).
    pub metric: String,
    /// A jq path into the JSON body, read as `jq` reads it (`.a.b[0].c`; `."odd key"` or
    /// `.["odd key"]` with JSON's escapes), a comparison `PATH == LITERAL` (also `!=`, `<`, `<=`,
    /// `>`, `>=`, in jq's order of types; 1 when it holds, else 0), `up` (1 when the endpoint
    /// answered 2xx in time, else 0), `duration` (seconds the answer took), or with `each`,
    /// `count`. No functions, variables or recursion. A path that gives no number, none or several
    /// values in a 2xx answer is a `path` error of the signal (logged with the metric's name),
    /// never a silently absent metric.
    pub path: String,
    /// Optional second path whose number is subtracted (`.Max` minus `.Remaining` = used).
    #[serde(default)]
    pub minus: Option<String>,
    /// Makes one value per item: the items are a path with `[]` (every item of an array), then
    /// any number of `| select(COMPARISON)` filters, `| select(PATH | IN(LITERAL, ...))`
    /// membership filters or `| PATH` steps, as in jq:
    /// `.workflows[] | select(.path | IN(".github/workflows/a.yml")) | select(.state != "active")`. With `each`, `path` is read from each item
    /// (`.updated_at`, or a comparison such as `.conclusion == "success"`, which is 1 or 0), or is
    /// `count`: how many items there are (0 for an empty list; a missing list is an error).
    /// No pagination is done: the items are those of this one answer.
    #[serde(default)]
    pub each: Option<String>,
    /// With `each`: label values read from each item (`{workflow: .name}`; a string, a number,
    /// a boolean, or `""` for null). Items with the same labels are one series: `count` counts
    /// them, any other value is the first item's (APIs list newest first, so that is the latest).
    /// The metric declares the same label names; a label with fixed `values` folds anything else
    /// into `other` (or drops the item). Values are cut to 128 bytes and a value makes at most
    /// 200 series per poll; the rest is counted as a `limit` error.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// How the value at `path` is read: `number` (numbers, numeric strings, booleans as 1/0) or
    /// `rfc3339` (a time such as `2026-01-31T08:00:00Z`, exported as unix seconds).
    #[serde(default)]
    pub format: HttpValueFormat,
}

/// How an HTTP value's JSON is read.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum HttpValueFormat {
    /// A JSON number (or a string holding one).
    #[default]
    Number,
    /// An RFC 3339 time, exported as unix seconds.
    Rfc3339,
}

/// How an HTTP source authenticates. Secrets are `env:NAME` or `file:PATH` (never literal text in
/// the spec), read again before every use, never logged and never exported.
#[derive(Clone, Debug, Deserialize, JsonSchema, Serialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum HttpAuth {
    /// `Authorization: Bearer <token>`, the token from `env:NAME` or `file:PATH` (e.g. a GitHub
    /// token, or a session id another process rotates into a file).
    Bearer(#[schemars(with = "super::schema::SecretRef")] String),
    /// The OAuth 2 refresh-token grant (Salesforce, Microsoft and most others): the access token is
    /// fetched from `token_url` on first use and kept until the API answers 401; then it is
    /// fetched again once and the request retried.
    OauthRefresh(OAuthRefresh),
}

/// An OAuth refresh-token grant that keeps an access token fresh.
#[derive(Clone, Debug, Deserialize, JsonSchema, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OAuthRefresh {
    /// Token endpoint, POSTed `grant_type=refresh_token` as a form
    /// (`https://login.salesforce.com/services/oauth2/token`).
    pub token_url: String,
    /// Client (consumer) id: `env:NAME`, `file:PATH` or the id itself (it is not a secret).
    pub client_id: String,
    /// Client secret: `env:NAME` or `file:PATH`; omitted for public clients.
    #[serde(default)]
    #[schemars(with = "Option<super::schema::SecretRef>")]
    pub client_secret: Option<String>,
    /// Refresh token: `env:NAME` or `file:PATH`.
    #[schemars(with = "super::schema::SecretRef")]
    pub refresh_token: String,
}

/// A read-only SQL query.
#[derive(Clone, Debug, Deserialize, JsonSchema, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SqlSource {
    /// The query. `{{param}}` placeholders are filled from the pack's parameters (identifiers are
    /// quoted, durations become intervals). Label columns are named after the metric's labels.
    /// Left out when `scan` names the query.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub query: String,
    /// In a pack: the pack's shared scan (under `scans:`) this signal's metrics read their
    /// columns from, instead of a query of its own. The scan runs once per collection for all
    /// its enabled readers on the same database, interval and timeout; a reader given another
    /// interval or timeout runs the scan on its own schedule. A failing scan fails each reader,
    /// the scan named in the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan: Option<String>,
    /// How often the query runs (default: `poll_defaults.interval`).
    #[serde(default)]
    pub interval: Option<PromDuration>,
    /// Server-side `statement_timeout` for the query (default: `poll_defaults.timeout`).
    #[serde(default)]
    pub timeout: Option<PromDuration>,
    /// Which pack parameter wrote which part of the query (empty for the user's own queries).
    #[serde(skip)]
    pub origins: Vec<super::pack::Origin>,
}

/// The rules a signal applies to the lines of one log source.
#[derive(Clone, Debug, Deserialize, JsonSchema, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogRules {
    /// Name of the log source (under `logs:`) the rules read.
    pub log: String,
    /// Rules tried on every line; every matching rule applies.
    pub rules: Vec<LogRule>,
}

/// One rule: which lines it takes and what it does to a metric.
#[derive(Clone, Debug, Deserialize, JsonSchema, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogRule {
    /// Text lines: a regex (named captures feed labels and values). JSON lines: a regex on the
    /// `message` field, or omitted to match on `fields` alone.
    #[serde(default, rename = "match")]
    #[schemars(with = "Option<super::schema::Regex>")]
    pub pattern: Option<String>,
    /// JSON lines: `match` reads the whole line as written instead of the message field, for
    /// patterns that may hit any field (a token left in `metadata`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub whole_line: bool,
    /// JSON lines: field values the line must have (`{category: calendar_sync, level: error}`).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, super::schema::Scalar>")]
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
    #[schemars(with = "BTreeMap<String, super::schema::Scalar>")]
    pub labels: BTreeMap<String, String>,
    /// Multiplies the value before it is used (`0.001` turns milliseconds into seconds).
    #[serde(default)]
    pub scale: Option<f64>,
    /// Example lines this rule must match; `check` tries the rule on each.
    #[serde(default)]
    pub samples: Vec<String>,
    /// Only for log sources of this format (`text` or `json`): a pack declares rules for each
    /// line shape it reads, and the source's `format` picks them. Unset: every format.
    #[serde(default)]
    pub format: Option<LogFormat>,
}

/// What a log rule does to its metric.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogAction {
    /// Counter + 1.
    Inc,
    /// Counter + the line's value.
    Add,
    /// Gauge = the line's value.
    Set,
    /// Histogram: the line's value is one observation.
    Observe,
    /// Gauge = the line's own timestamp, unix seconds.
    Timestamp,
}

/// One entry of `logs:`: the files followed together, and how their lines are read.
#[derive(Clone, Debug, Deserialize, JsonSchema, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogFiles {
    /// Paths or globs (`*`, `?`, `[...]` in the file name).
    pub paths: Vec<String>,
    /// `text` (one line, regex rules) or `json` (one JSON object per line).
    #[serde(default)]
    pub format: LogFormat,
    /// Where a line's own time is and how to read it.
    #[serde(default)]
    pub timestamp: TimestampSpec,
    /// JSON lines: the field a rule's `match` reads (`message` for most JSON loggers, `event` for
    /// structlog). A dotted path reads a nested field.
    #[serde(default = "default_message_field")]
    pub message_field: String,
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
    #[schemars(with = "Option<super::schema::StartAt>")]
    pub start_at: Option<tailer::StartAt>,
    /// A value `set` from a line is exported for this long after the line (its own timestamp
    /// when the source parses one, else when it was read), then dropped until the next such
    /// line: one old line cannot keep an alert firing, and a restored checkpoint cannot revive
    /// it. Give it a few times the interval at which the application logs the value.
    #[serde(default = "default_max_age")]
    pub max_age: PromDuration,
    /// A line whose own timestamp is further than this in the future (a bad clock, a wrong
    /// `timezone`) is ignored by `timestamp` rules, so it cannot hide a heartbeat that stopped;
    /// other rules count it as any line (the event happened, only its time is wrong), and it is
    /// counted as unparsable when no rule took it.
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
    /// Most files of this source open at once, renamed or deleted ones still being read
    /// included: each holds a file descriptor, and the HTTP endpoint needs some too. When the
    /// paths match more, the most recently written files are read and the others wait for a
    /// place, counted in `integration_exporter_log_files_skipped` (and alerted on). Omitted: an
    /// even share, among the log sources, of half the exporter's open-file limit once a reserve
    /// is set aside (about 470 with the usual 1024, 32,000 with the 65,536 of the systemd unit).
    #[serde(default)]
    pub max_files: Option<usize>,
}

fn default_message_field() -> String {
    "message".into()
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

/// The shape of a log source's lines.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Plain text lines, read with regexes.
    #[default]
    Text,
    /// One JSON object per line, read by field.
    Json,
}

/// How to read a line's own timestamp.
#[derive(Clone, Debug, Deserialize, JsonSchema, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TimestampSpec {
    /// Text lines: regex whose first capture (or `ts` capture) is the timestamp.
    /// JSON lines: ignored, see `field`.
    #[serde(default = "default_ts_regex")]
    #[schemars(with = "super::schema::Regex")]
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

/// A dashboard panel.
#[derive(Clone, Debug, Deserialize, JsonSchema, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Panel {
    /// `timeseries` (the default) or `stat`.
    #[serde(default, rename = "type")]
    pub kind: PanelKind,
    /// Grafana unit (`short`, `percentunit`, `s`, `dateTimeFromNow`, ...).
    #[serde(default = "default_panel_unit")]
    pub unit: String,
    /// PromQL queries; omitted, the first alert's measured expression is drawn.
    #[serde(default)]
    pub queries: Vec<PanelQuery>,
}

/// How a signal's panel draws its queries.
#[derive(Clone, Copy, Debug, Default, Deserialize, JsonSchema, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PanelKind {
    /// Lines over time, the alerts' thresholds drawn across them.
    #[default]
    Timeseries,
    /// The latest value, colored by the alerts' thresholds.
    Stat,
}

fn default_panel_unit() -> String {
    "short".into()
}

/// One query a panel draws.
#[derive(Clone, Debug, Deserialize, JsonSchema, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PanelQuery {
    /// PromQL; every selector of a known metric gets the dashboard's `job` and `instance`. A query
    /// PromQL's parser refuses fails `check`. Grafana's variables may stand for a duration (in a
    /// range, a subquery step, after `offset`) or a number, and anywhere inside a string.
    pub expr: String,
    /// Grafana legend format (`{{signal}}`); omitted, Grafana's automatic one.
    #[serde(default)]
    pub legend: Option<String>,
}
