//! Log rules compiled once and applied to every line: a `RegexSet` finds the few rules a text line
//! can match, and only those run their captures.
//!
//! Longer than most files here on purpose: the compiled rules, the engine and its saved state
//! share the private series types they fill and restore (unit tests are in `rules/tests.rs`).

use std::borrow::Cow;
use std::collections::BTreeMap;

use regex::{Regex, RegexSet};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::timestamp::TimestampParser;
use crate::sources::unix_now;
use crate::spec::{LabelDef, LogAction, LogFormat, LogRule, MetricDef, MetricType};
use crate::state::{Family, Sample, SampleValue};

/// Free-form label values beyond this many series per metric go to one overflow series.
pub const MAX_SERIES_PER_METRIC: usize = 200;
pub const OVERFLOW_VALUE: &str = "__overflow__";
/// Free-form label values are cut to this many bytes unless the log source says otherwise.
pub const DEFAULT_MAX_LABEL_BYTES: usize = 256;
/// JSON lines: the field a rule's `match` reads unless the log source names another.
pub const DEFAULT_MESSAGE_FIELD: &str = "message";

/// A fixed label's allowed values and the value that takes everything else.
type FixedValues = (Vec<String>, Option<String>);

#[derive(Debug, Clone)]
enum LabelSource {
    Literal(String),
    Field(String),
}

#[derive(Debug, Clone)]
pub struct CompiledRule {
    metric: String,
    action: LogAction,
    pattern: Option<Regex>,
    fields: Vec<(String, String)>,
    value: Option<String>,
    /// Whether any label or the value comes from a named capture.
    captures: bool,
    scale: f64,
    /// In the metric's label order.
    labels: Vec<(LabelSource, Option<FixedValues>)>,
    format: LogFormat,
    /// JSON lines: the field `pattern` reads.
    message_field: String,
    /// JSON lines: `pattern` reads the raw line instead of `message_field`.
    whole_line: bool,
}

/// One line, parsed as its source's format needs.
pub enum Line<'a> {
    Text(&'a str),
    /// The parsed object and the line as written.
    Json(&'a serde_json::Map<String, Json>, &'a str),
}

impl CompiledRule {
    pub fn compile(rule: &LogRule, metric: &MetricDef, format: LogFormat) -> Result<Self, String> {
        let pattern = rule.pattern.as_deref().map(Regex::new).transpose().map_err(|e| format!("pattern: {e}"))?;
        let captures: Vec<&str> = pattern.as_ref().map(|p| p.capture_names().flatten().collect()).unwrap_or_default();
        let takes_from_line = |name: &str| format == LogFormat::Json || captures.contains(&name);
        if let Some(v) = &rule.value
            && !takes_from_line(v)
        {
            return Err(format!("value `{v}` is not a named capture of the pattern"));
        }
        let mut labels = Vec::new();
        for def in &metric.labels {
            let spec = rule.labels.get(def.name()).ok_or_else(|| format!("label `{}` is not set", def.name()))?;
            let source = match spec.strip_prefix('$') {
                Some(field) if takes_from_line(field) => LabelSource::Field(field.to_string()),
                Some(field) => {
                    return Err(format!("label `{}` takes `${field}`, which the pattern does not capture", def.name()));
                }
                None => {
                    if let Some(values) = def.fixed_values()
                        && !values.contains(spec)
                    {
                        return Err(format!("label `{}` = `{spec}` is not one of its values {values:?}", def.name()));
                    }
                    LabelSource::Literal(spec.clone())
                }
            };
            let fixed = match def {
                LabelDef::Fixed(f) => Some((f.values.clone(), f.other.clone())),
                LabelDef::Name(_) => None,
            };
            labels.push((source, fixed));
        }
        Ok(Self {
            metric: rule.metric.clone(),
            action: rule.action,
            pattern,
            fields: rule.fields.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            value: rule.value.clone(),
            captures: rule.value.is_some() || labels.iter().any(|(l, _)| matches!(l, LabelSource::Field(_))),
            scale: rule.scale.unwrap_or(1.0),
            labels,
            format,
            message_field: DEFAULT_MESSAGE_FIELD.to_string(),
            whole_line: rule.whole_line,
        })
    }

    /// JSON lines: reads `match` from this field (a dotted path reaches into nested objects).
    pub fn with_message_field(mut self, field: &str) -> Self {
        self.message_field = field.to_string();
        self
    }

    /// Whether the rule takes this raw line (used by `check` on sample lines).
    pub fn matches_line(&self, raw: &str) -> bool {
        match self.format {
            LogFormat::Text => self.pattern.as_ref().is_some_and(|p| p.is_match(raw)),
            LogFormat::Json => match serde_json::from_str::<serde_json::Map<String, Json>>(raw) {
                Ok(obj) => self.extract(&Line::Json(&obj, raw)).is_some(),
                Err(_) => false,
            },
        }
    }

    /// Label values and the value text, when the line matches. Text lines reach this only after
    /// the prefilter matched the rule's pattern, so a rule that captures nothing needs no second
    /// regex run.
    fn extract(&self, line: &Line<'_>) -> Option<(Vec<String>, Option<String>)> {
        match line {
            Line::Text(text) => {
                if !self.captures {
                    return Some((self.labels_from(|_| None), None));
                }
                let caps = self.pattern.as_ref()?.captures(text)?;
                let field = |name: &str| caps.name(name).map(|m| Cow::Borrowed(m.as_str()));
                let value = match &self.value {
                    Some(v) => Some(field(v)?.into_owned()),
                    None => None,
                };
                Some((self.labels_from(field), value))
            }
            Line::Json(obj, raw) => {
                for (k, want) in &self.fields {
                    if json_text(json_field(obj, k)?)?.as_ref() != want {
                        return None;
                    }
                }
                let message = match &self.pattern {
                    Some(_) if self.whole_line => Some(Cow::Borrowed(*raw)),
                    Some(_) => Some(json_field(obj, &self.message_field).and_then(json_text)?),
                    None => None,
                };
                let caps = match (&self.pattern, &message) {
                    (Some(re), Some(m)) => Some(re.captures(m)?),
                    _ => None,
                };
                // A named capture of the message first, then a field of the object.
                let field = |name: &str| {
                    caps.as_ref()
                        .and_then(|c| c.name(name))
                        .map(|m| Cow::Borrowed(m.as_str()))
                        .or_else(|| json_field(obj, name).and_then(json_text))
                };
                let value = match &self.value {
                    Some(v) => Some(field(v)?.into_owned()),
                    None => None,
                };
                Some((self.labels_from(field), value))
            }
        }
    }

    fn labels_from<'a>(&self, field: impl Fn(&str) -> Option<Cow<'a, str>>) -> Vec<String> {
        self.labels
            .iter()
            .map(|(source, _)| match source {
                LabelSource::Literal(v) => v.clone(),
                LabelSource::Field(f) => field(f).map(Cow::into_owned).unwrap_or_default(),
            })
            .collect()
    }
}

/// A field of the line: the key itself, else a dotted path into nested objects
/// (`rate_limit_budget.total_attempts`), so a key that contains dots still reads as written.
fn json_field<'a>(obj: &'a serde_json::Map<String, Json>, path: &str) -> Option<&'a Json> {
    if let Some(v) = obj.get(path) {
        return Some(v);
    }
    let (first, rest) = path.split_once('.')?;
    match obj.get(first)? {
        Json::Object(inner) => json_field(inner, rest),
        _ => None,
    }
}

fn json_text(v: &Json) -> Option<Cow<'_, str>> {
    match v {
        Json::String(s) => Some(Cow::Borrowed(s)),
        Json::Number(n) => Some(Cow::Owned(n.to_string())),
        Json::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        Json::Null => Some(Cow::Borrowed("")),
        _ => None,
    }
}

/// A metric's series as the log source holds them; saved with the offsets in checkpoints.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum SeriesValue {
    Scalar(f64),
    Histogram { counts: Vec<u64>, sum: f64, count: u64 },
}

#[derive(Debug, Clone)]
struct MetricState {
    def: MetricDef,
    series: BTreeMap<Vec<String>, SeriesValue>,
    /// Some rule `set`s this metric: its series age, and are exported only while younger than
    /// the source's `max_age`.
    ages: bool,
    /// Some rule writes a line's `timestamp` into this metric.
    timestamps: bool,
    /// Aging metrics: when each series was last updated (unix seconds). A series without an
    /// entry (restored from a checkpoint that did not save it) is of unknown age: stale.
    updated: BTreeMap<Vec<String>, f64>,
}

impl MetricState {
    fn new(def: &MetricDef) -> Self {
        Self { def: def.clone(), series: initial_series(def), ages: false, timestamps: false, updated: BTreeMap::new() }
    }

    /// Whether the series is exported at `now`.
    fn fresh(&self, labels: &[String], now: f64, max_age: f64) -> bool {
        !self.ages || self.updated.get(labels).is_some_and(|t| now - t < max_age)
    }
}

/// Counters a checkpoint carries besides the offsets.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SavedMetrics {
    pub series: BTreeMap<String, Vec<(Vec<String>, SeriesValue)>>,
    /// Each metric's shape when it was saved, so a restart under a changed spec can tell which
    /// values still mean the same thing. Checkpoints of older versions lack it.
    #[serde(default)]
    pub shapes: BTreeMap<String, MetricShape>,
    /// When each series of a `set` metric was last updated (unix seconds), so a restart does
    /// not make an old value young again. Checkpoints of older versions lack it: their values
    /// are of unknown age and stay hidden until a new line sets them.
    #[serde(default)]
    pub updated: BTreeMap<String, Vec<(Vec<String>, f64)>>,
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
    fn of(def: &MetricDef) -> Self {
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

/// What happened to one line, for the per-file self-metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineOutcome {
    Matched,
    Unmatched,
    /// The line was taken by a rule but could not be used (bad JSON, number or timestamp).
    Unparsable,
}

/// When a line is applied: `now` judges timestamps from the future, `read_at` is the line's age
/// when it carries no timestamp (and the latest it may claim when it does).
#[derive(Debug, Clone, Copy)]
pub struct LineClock {
    pub now: f64,
    pub read_at: f64,
}

impl LineClock {
    pub fn at(now: f64) -> Self {
        Self { now, read_at: now }
    }
}

/// Default of the log source's `max_age` and `future_tolerance` (seconds), for engines built
/// without a spec (tests, benches).
const DEFAULT_MAX_AGE: f64 = 300.0;
const DEFAULT_FUTURE_TOLERANCE: f64 = 300.0;

/// All rules of one log source, and the metric values they produced.
#[derive(Clone)]
pub struct RuleEngine {
    rules: Vec<CompiledRule>,
    /// Text sources: indexes of rules with a pattern, in `prefilter` order.
    prefilter: Option<(RegexSet, Vec<usize>)>,
    metrics: BTreeMap<String, MetricState>,
    timestamp: TimestampParser,
    format: LogFormat,
    overflows: BTreeMap<String, u64>,
    max_label_bytes: usize,
    truncated: BTreeMap<String, u64>,
    /// Seconds a `set` value stays exported.
    max_age: f64,
    /// Seconds a line's timestamp may lie ahead of the clock.
    future_tolerance: f64,
    /// Reading a file's old content for its gauges only (see [`RuleEngine::seeding`]).
    seeding: bool,
}

impl RuleEngine {
    pub fn new(
        rules: Vec<(LogRule, MetricDef)>,
        format: LogFormat,
        timestamp: TimestampParser,
    ) -> Result<Self, String> {
        let mut compiled = Vec::new();
        let mut metrics = BTreeMap::new();
        for (rule, def) in &rules {
            compiled.push(CompiledRule::compile(rule, def, format)?);
            let state = metrics.entry(def.name.clone()).or_insert_with(|| MetricState::new(def));
            state.ages |= rule.action == LogAction::Set;
            state.timestamps |= rule.action == LogAction::Timestamp;
        }
        let prefilter = if format == LogFormat::Text {
            let indexed: Vec<(usize, &str)> =
                compiled.iter().enumerate().filter_map(|(i, r)| r.pattern.as_ref().map(|p| (i, p.as_str()))).collect();
            let set = RegexSet::new(indexed.iter().map(|(_, p)| *p)).map_err(|e| e.to_string())?;
            Some((set, indexed.into_iter().map(|(i, _)| i).collect()))
        } else {
            None
        };
        Ok(Self {
            rules: compiled,
            prefilter,
            metrics,
            timestamp,
            format,
            overflows: BTreeMap::new(),
            max_label_bytes: DEFAULT_MAX_LABEL_BYTES,
            truncated: BTreeMap::new(),
            max_age: DEFAULT_MAX_AGE,
            future_tolerance: DEFAULT_FUTURE_TOLERANCE,
            seeding: false,
        })
    }

    /// JSON lines: the field every rule's `match` reads.
    pub fn with_message_field(mut self, field: &str) -> Self {
        for rule in &mut self.rules {
            rule.message_field = field.to_string();
        }
        self
    }

    /// Sets how long `set` values stay exported and how far ahead of the clock a line's
    /// timestamp may be (both in seconds).
    pub fn with_ages(mut self, max_age: f64, future_tolerance: f64) -> Self {
        self.max_age = max_age;
        self.future_tolerance = future_tolerance;
        self
    }

    /// An engine for a file's content from before the start: only `set` and `timestamp` rules
    /// apply, a `timestamp` keeps the latest time of all files and a `set` the value of the
    /// latest line. Its gauges are then taken with [`RuleEngine::adopt_seed`].
    pub fn seeding(&self) -> Self {
        let mut seed = self.clone();
        seed.seeding = true;
        seed
    }

    /// Takes the gauges read by a [`RuleEngine::seeding`] engine, for every series no live
    /// line has set since the start (a live line is newer than anything in the old content).
    pub fn adopt_seed(&mut self, seed: RuleEngine) {
        for (name, from) in seed.metrics {
            if !(from.ages || from.timestamps) {
                continue;
            }
            let Some(state) = self.metrics.get_mut(&name) else { continue };
            for (labels, value) in from.series {
                if state.series.contains_key(&labels) || state.series.len() > MAX_SERIES_PER_METRIC {
                    continue;
                }
                if let Some(t) = from.updated.get(&labels) {
                    state.updated.insert(labels.clone(), *t);
                }
                state.series.insert(labels, value);
            }
        }
    }

    /// The earliest time after `now` at which an exported `set` value goes stale, if any.
    pub fn next_expiry(&self, now: f64) -> Option<f64> {
        self.metrics
            .values()
            .filter(|s| s.ages)
            .flat_map(|s| s.updated.values().map(|t| t + self.max_age))
            .filter(|t| *t > now)
            .min_by(f64::total_cmp)
    }

    /// Sets the length cap of free-form label values.
    pub fn with_max_label_bytes(mut self, max: usize) -> Self {
        self.max_label_bytes = max;
        self
    }

    /// Applies one line read now.
    pub fn process(&mut self, raw: &str) -> LineOutcome {
        self.process_at(raw, LineClock::at(unix_now()))
    }

    pub fn process_at(&mut self, raw: &str, clock: LineClock) -> LineOutcome {
        let mut sink = MetricSink {
            metrics: &mut self.metrics,
            overflows: &mut self.overflows,
            truncated: &mut self.truncated,
            max_label_bytes: self.max_label_bytes,
            clock,
            future_tolerance: self.future_tolerance,
            seeding: self.seeding,
        };
        match self.format {
            LogFormat::Text => {
                let Some((set, index)) = &self.prefilter else { return LineOutcome::Unmatched };
                let timestamp = &self.timestamp;
                // Parsed at most once per line, and only when a timestamp rule matched.
                let ts = std::cell::OnceCell::new();
                let mut outcome = LineOutcome::Unmatched;
                for i in set.matches(raw).iter().map(|i| index[i]) {
                    let r =
                        sink.apply(&self.rules[i], &Line::Text(raw), || *ts.get_or_init(|| timestamp.from_line(raw)));
                    outcome = merge(outcome, r);
                }
                outcome
            }
            LogFormat::Json => {
                let obj = match serde_json::from_str::<serde_json::Map<String, Json>>(raw) {
                    Ok(obj) => obj,
                    Err(_) => return LineOutcome::Unparsable,
                };
                let ts_text = json_field(&obj, &self.timestamp.field).and_then(json_text);
                let mut outcome = LineOutcome::Unmatched;
                for rule in &self.rules {
                    let parser = &self.timestamp;
                    let r =
                        sink.apply(rule, &Line::Json(&obj, raw), || ts_text.as_deref().and_then(|t| parser.parse(t)));
                    outcome = merge(outcome, r);
                }
                outcome
            }
        }
    }

    /// Every value, whatever its age (`replay` shows what a file produced).
    pub fn families(&self) -> Vec<Family> {
        self.families_where(|_, _| true)
    }

    /// The values to serve at `now`: `set` values older than `max_age` are left out.
    pub fn fresh_families(&self, now: f64) -> Vec<Family> {
        self.families_where(|state, labels| state.fresh(labels, now, self.max_age))
    }

    fn families_where(&self, keep: impl Fn(&MetricState, &[String]) -> bool) -> Vec<Family> {
        let mut out = Vec::new();
        for state in self.metrics.values() {
            let mut family = Family::new(&state.def.name, &state.def.help, state.def.kind);
            let names: Vec<&str> = state.def.labels.iter().map(LabelDef::name).collect();
            for (values, value) in state.series.iter().filter(|(labels, _)| keep(state, labels)) {
                let labels = names.iter().zip(values).map(|(k, v)| (k.to_string(), v.clone())).collect();
                let value = match value {
                    SeriesValue::Scalar(v) => SampleValue::Scalar(*v),
                    SeriesValue::Histogram { counts, sum, count } => SampleValue::Histogram {
                        buckets: state.def.buckets.iter().copied().zip(counts.iter().copied()).collect(),
                        sum: *sum,
                        count: *count,
                    },
                };
                family.samples.push(Sample { labels, value });
            }
            out.push(family);
        }
        out
    }

    pub fn overflows(&self) -> &BTreeMap<String, u64> {
        &self.overflows
    }

    /// Updates whose free-form label values were cut to the length cap, by metric.
    pub fn truncations(&self) -> &BTreeMap<String, u64> {
        &self.truncated
    }

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
    series: &[(Vec<String>, SeriesValue)],
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
        if labels.len() != def.labels.len() {
            return Err(ResetReason::LabelsChanged);
        }
        let fixed_ok = def
            .labels
            .iter()
            .zip(labels)
            .all(|(d, v)| d.fixed_values().is_none_or(|values| values.contains(v)) || v == OVERFLOW_VALUE);
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

/// The mutable half of the engine, borrowed while the rules are read.
struct MetricSink<'a> {
    metrics: &'a mut BTreeMap<String, MetricState>,
    overflows: &'a mut BTreeMap<String, u64>,
    truncated: &'a mut BTreeMap<String, u64>,
    max_label_bytes: usize,
    clock: LineClock,
    future_tolerance: f64,
    seeding: bool,
}

impl MetricSink<'_> {
    fn apply(&mut self, rule: &CompiledRule, line: &Line<'_>, ts: impl FnOnce() -> Option<f64>) -> LineOutcome {
        if self.seeding && !matches!(rule.action, LogAction::Set | LogAction::Timestamp) {
            return LineOutcome::Unmatched;
        }
        let Some((mut labels, value_text)) = rule.extract(line) else { return LineOutcome::Unmatched };
        // Computed at most once, and only for the rules that need a line's time.
        let mut ts = Some(ts);
        let mut line_time = || ts.take().and_then(|f| f());
        let value = match rule.action {
            LogAction::Inc => 1.0,
            // A clock far ahead would hold the heartbeat in the future, where no age alert sees it.
            LogAction::Timestamp => match line_time() {
                Some(t) if t <= self.clock.now + self.future_tolerance => t,
                _ => return LineOutcome::Unparsable,
            },
            LogAction::Add | LogAction::Set | LogAction::Observe => {
                match value_text.as_deref().map(str::trim).and_then(|v| v.parse::<f64>().ok()) {
                    // `1e308` with `scale: 1000` is as unusable as `abc`: a value that is not
                    // finite would be exported as such and cannot be saved in a checkpoint.
                    Some(v) if (v * rule.scale).is_finite() => v * rule.scale,
                    _ => return LineOutcome::Unparsable,
                }
            }
        };
        if rule.action == LogAction::Add && value < 0.0 {
            return LineOutcome::Unparsable;
        }
        let mut cut = false;
        for (i, (source, fixed)) in rule.labels.iter().enumerate() {
            match fixed {
                Some((values, other)) if !values.contains(&labels[i]) => match other {
                    Some(o) => labels[i] = o.clone(),
                    None => return LineOutcome::Unparsable,
                },
                Some(_) => {}
                None if matches!(source, LabelSource::Field(_)) && labels[i].len() > self.max_label_bytes => {
                    let end = labels[i].floor_char_boundary(self.max_label_bytes);
                    labels[i].truncate(end);
                    cut = true;
                }
                None => {}
            }
        }
        let Some(state) = self.metrics.get_mut(&rule.metric) else { return LineOutcome::Unmatched };
        if !state.series.contains_key(&labels) && state.series.len() >= MAX_SERIES_PER_METRIC {
            *self.overflows.entry(rule.metric.clone()).or_default() += 1;
            labels = vec![OVERFLOW_VALUE.to_string(); labels.len()];
        }
        // A `set` value's age: its line's own time, never later than when it was read.
        let updated = match rule.action {
            LogAction::Set => Some(line_time().map_or(self.clock.read_at, |t| t.min(self.clock.read_at))),
            LogAction::Timestamp => Some(value.min(self.clock.read_at)),
            _ => None,
        }
        .filter(|_| state.ages);
        // Reading old content, the latest line of all files wins, not the last file read.
        if self.seeding
            && let Some(t) = updated
            && rule.action == LogAction::Set
            && state.updated.get(&labels).is_some_and(|prev| *prev > t)
        {
            return LineOutcome::Matched;
        }
        let MetricState { def, series, updated: times, .. } = state;
        if let Some(t) = updated {
            times.insert(labels.clone(), t);
        }
        let buckets = &def.buckets;
        let entry = series.entry(labels).or_insert_with(|| match def.kind {
            MetricType::Histogram => SeriesValue::Histogram { counts: vec![0; buckets.len()], sum: 0.0, count: 0 },
            _ => SeriesValue::Scalar(0.0),
        });
        // The new value is checked before it is stored: a sum that overflows refuses the line
        // and keeps the series as it was.
        match (rule.action, entry) {
            (LogAction::Inc | LogAction::Add, SeriesValue::Scalar(v)) if (*v + value).is_finite() => *v += value,
            (LogAction::Set, SeriesValue::Scalar(v)) => *v = value,
            // Old content of several files: the latest of their last lines.
            (LogAction::Timestamp, SeriesValue::Scalar(v)) if self.seeding => *v = v.max(value),
            // The latest line, not the greatest time ever seen: a clock stepped back or one odd
            // line must not freeze the heartbeat (lines from the future were refused above).
            (LogAction::Timestamp, SeriesValue::Scalar(v)) => *v = value,
            (LogAction::Observe, SeriesValue::Histogram { counts, sum, count }) if (*sum + value).is_finite() => {
                for (n, bound) in counts.iter_mut().zip(buckets) {
                    if value <= *bound {
                        *n = n.saturating_add(1);
                    }
                }
                *sum += value;
                *count = count.saturating_add(1);
            }
            _ => return LineOutcome::Unparsable,
        }
        if cut {
            *self.truncated.entry(rule.metric.clone()).or_default() += 1;
        }
        LineOutcome::Matched
    }
}

fn merge(a: LineOutcome, b: LineOutcome) -> LineOutcome {
    match (a, b) {
        (LineOutcome::Matched, _) | (_, LineOutcome::Matched) => LineOutcome::Matched,
        (LineOutcome::Unparsable, _) | (_, LineOutcome::Unparsable) => LineOutcome::Unparsable,
        _ => LineOutcome::Unmatched,
    }
}

/// Counters whose labels all have fixed values start at zero for every combination, so a ratio
/// over them exists from the first scrape and a first failure is an increase, not a new series.
fn initial_series(def: &MetricDef) -> BTreeMap<Vec<String>, SeriesValue> {
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

#[cfg(test)]
mod tests;
