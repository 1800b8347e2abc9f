//! A log source's rules applied to its lines: the rules a text line can match are found with one
//! literal scan ([`LiteralFilter`]), only those run their regex, and their metrics' series are
//! updated.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::compiled::{CompiledRule, LabelSource, Line, json_field, json_text};
use super::prefilter::LiteralFilter;
use super::read::{Hit, Hits, Reader, Scratch, value_of};
use super::series::{MetricState, SeriesKey, SeriesValue, search};
use super::{DEFAULT_MAX_LABEL_BYTES, MAX_SERIES_PER_METRIC, OVERFLOW_VALUE};
use crate::sources::logs::timestamp::TimestampParser;
use crate::sources::unix_now;
use crate::spec::{LogAction, LogFormat, LogRule, MetricDef, MetricType};
use crate::state::{Family, Sample, SampleValue};

/// What happened to one line, for the per-file self-metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineOutcome {
    Matched,
    Unmatched,
    /// The line was taken by a rule but could not be used (bad JSON, number or timestamp).
    Unparsable,
}

/// A batch's lines by outcome (see [`RuleEngine::process_lines`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LineCounts {
    pub lines: u64,
    pub matched: u64,
    pub unparsable: u64,
}

impl LineCounts {
    /// The outcome of a batch of one line.
    fn outcome_of_one(&self) -> LineOutcome {
        if self.matched > 0 {
            LineOutcome::Matched
        } else if self.unparsable > 0 {
            LineOutcome::Unparsable
        } else {
            LineOutcome::Unmatched
        }
    }

    fn add(&mut self, outcome: LineOutcome) {
        match outcome {
            LineOutcome::Matched => self.matched += 1,
            LineOutcome::Unparsable => self.unparsable += 1,
            LineOutcome::Unmatched => {}
        }
    }
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
    pub(super) rules: Vec<CompiledRule>,
    /// Text sources: the rules a line may match, by their literals.
    pub(super) prefilter: Option<LiteralFilter>,
    /// Buffers of the line being read and stored, kept to spare allocations per line.
    scratch: Scratch,
    hits: Hits,
    key: Vec<String>,
    pub(super) metrics: BTreeMap<String, MetricState>,
    pub(super) timestamp: TimestampParser,
    pub(super) format: LogFormat,
    pub(super) overflows: BTreeMap<String, u64>,
    pub(super) max_label_bytes: usize,
    pub(super) truncated: BTreeMap<String, u64>,
    /// Seconds a `set` value stays exported.
    pub(super) max_age: f64,
    /// Seconds a line's timestamp may lie ahead of the clock.
    pub(super) future_tolerance: f64,
    /// Reading a file's old content for its gauges only (see [`RuleEngine::seeding`]).
    pub(super) seeding: bool,
}

impl RuleEngine {
    pub fn new(
        rules: Vec<(LogRule, MetricDef)>,
        format: LogFormat,
        timestamp: TimestampParser,
    ) -> Result<Self, String> {
        let mut compiled: Vec<CompiledRule> = Vec::new();
        let mut metrics = BTreeMap::new();
        for (rule, def) in &rules {
            let mut c = CompiledRule::compile(rule, def, format)?;
            // Rules with one pattern (two values of one line, say) read the line once.
            c.shares = compiled.iter().position(|o| o.pattern_text == c.pattern_text).unwrap_or(compiled.len());
            compiled.push(c);
            let state = metrics.entry(def.name.clone()).or_insert_with(|| MetricState::new(def));
            state.ages |= rule.action == LogAction::Set;
            state.timestamps |= rule.action == LogAction::Timestamp;
        }
        let prefilter = if format == LogFormat::Text {
            let patterns: Vec<Option<&str>> = compiled.iter().map(|r| r.pattern_text.as_deref()).collect();
            let captures: Vec<bool> = compiled.iter().map(|r| r.captures).collect();
            Some(LiteralFilter::new(&patterns, &captures)?)
        } else {
            None
        };
        Ok(Self {
            rules: compiled,
            prefilter,
            scratch: Scratch::default(),
            hits: Hits::default(),
            key: Vec::new(),
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

    /// The same engine with every text rule running its regex on every line, to check the
    /// literal prefilter against.
    #[cfg(test)]
    pub(super) fn without_prefilter(mut self) -> Self {
        if self.prefilter.is_some() {
            let patterns: Vec<Option<&str>> = self.rules.iter().map(|r| r.pattern_text.as_deref()).collect();
            self.prefilter = Some(LiteralFilter::every_rule(&patterns));
        }
        self
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
        match self.format {
            LogFormat::Text => {
                if self.prefilter.is_none() {
                    return LineOutcome::Unmatched;
                }
                // One line is a batch of one: text lines are read and stored in one place.
                self.process_lines(std::slice::from_ref(&raw), clock).outcome_of_one()
            }
            LogFormat::Json => {
                let mut sink = MetricSink {
                    metrics: &mut self.metrics,
                    overflows: &mut self.overflows,
                    truncated: &mut self.truncated,
                    max_label_bytes: self.max_label_bytes,
                    seeding: self.seeding,
                    key: &mut self.key,
                };
                let obj = match serde_json::from_str::<serde_json::Map<String, Json>>(raw) {
                    Ok(obj) => obj,
                    Err(_) => return LineOutcome::Unparsable,
                };
                let ts_text = json_field(&obj, &self.timestamp.field).and_then(json_text);
                let parser = &self.timestamp;
                let line_time = || ts_text.as_deref().and_then(|t| parser.parse(t));
                let mut outcome = LineOutcome::Unmatched;
                for rule in &self.rules {
                    if self.seeding && !matches!(rule.action, LogAction::Set | LogAction::Timestamp) {
                        continue;
                    }
                    let Some((labels, value_text)) = rule.extract(&Line::Json(&obj, raw)) else { continue };
                    let (value, updated) =
                        value_of(rule, value_text.as_deref(), line_time, clock, self.future_tolerance);
                    let r = sink.store(rule, value, updated, |i| labels[i].as_str());
                    outcome = merge(outcome, r);
                }
                outcome
            }
        }
    }

    /// Applies a batch of complete lines, all read at `clock`, and counts them by outcome: the
    /// same as [`RuleEngine::process_at`] on each line in turn. A large batch of text lines is
    /// read on every core (reading a line touches no value), then its hits are stored in line
    /// order on this thread, so every counter, gauge, histogram, series limit and age ends as it
    /// would line by line.
    pub fn process_lines(&mut self, lines: &[&str], clock: LineClock) -> LineCounts {
        let mut counts = LineCounts { lines: lines.len() as u64, ..LineCounts::default() };
        let Some(filter) = self.prefilter.as_ref().filter(|_| self.format == LogFormat::Text) else {
            for line in lines {
                counts.add(self.process_at(line, clock));
            }
            return counts;
        };
        let reader = Reader {
            rules: &self.rules,
            filter,
            timestamp: &self.timestamp,
            clock,
            future_tolerance: self.future_tolerance,
            seeding: self.seeding,
        };
        self.hits.clear();
        reader.read_batch(lines, &mut self.scratch, &mut self.hits);
        let mut sink = MetricSink {
            metrics: &mut self.metrics,
            overflows: &mut self.overflows,
            truncated: &mut self.truncated,
            max_label_bytes: self.max_label_bytes,
            seeding: self.seeding,
            key: &mut self.key,
        };
        // The outcome of the line whose hits are being stored.
        let mut current: Option<(usize, LineOutcome)> = None;
        for hit in &self.hits.hits {
            let r = sink.store_hit(&self.rules, hit, &self.hits.spans, lines[hit.line]);
            current = match current {
                Some((line, outcome)) if line == hit.line => Some((line, merge(outcome, r))),
                done => {
                    if let Some((_, outcome)) = done {
                        counts.add(outcome);
                    }
                    Some((hit.line, r))
                }
            };
        }
        if let Some((_, outcome)) = current {
            counts.add(outcome);
        }
        counts
    }

    /// The line's own time (unix seconds), as its timestamp rules read it; `None` when it
    /// carries none the source can parse.
    pub fn line_time(&self, raw: &str) -> Option<f64> {
        match self.format {
            LogFormat::Text => self.timestamp.from_line(raw),
            LogFormat::Json => {
                let obj = serde_json::from_str::<serde_json::Map<String, Json>>(raw).ok()?;
                let text = json_field(&obj, &self.timestamp.field).and_then(json_text)?;
                self.timestamp.parse(&text)
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

    fn families_where(&self, keep: impl Fn(&MetricState, &SeriesKey) -> bool) -> Vec<Family> {
        let mut out = Vec::with_capacity(self.metrics.len());
        for state in self.metrics.values() {
            let mut family = Family::new(&state.def.name, &state.def.help, state.def.kind);
            family.samples.reserve_exact(state.series.len());
            for (values, value) in state.series.iter().filter(|(labels, _)| keep(state, labels)) {
                // The snapshot shares the series' names and values: no label text is copied.
                let labels = state.names.iter().cloned().zip(values.values().iter().cloned()).collect();
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
}

/// The mutable half of the engine, borrowed while hits are stored.
pub(super) struct MetricSink<'a> {
    pub(super) metrics: &'a mut BTreeMap<String, MetricState>,
    pub(super) overflows: &'a mut BTreeMap<String, u64>,
    pub(super) truncated: &'a mut BTreeMap<String, u64>,
    pub(super) max_label_bytes: usize,
    pub(super) seeding: bool,
    /// The label values of the hit being stored: a series is found without a new `String` per
    /// line, and one is made only for a series seen for the first time.
    pub(super) key: &'a mut Vec<String>,
}

impl MetricSink<'_> {
    /// Stores a hit read from the text line `raw` (see [`Reader::read`]).
    pub(super) fn store_hit(
        &mut self,
        rules: &[CompiledRule],
        hit: &Hit,
        spans: &[(usize, usize)],
        raw: &str,
    ) -> LineOutcome {
        let rule = &rules[hit.rule];
        let label = |i: usize| match &rule.labels[i].0 {
            LabelSource::Literal(v) => v.as_str(),
            LabelSource::Field(_) => {
                let (s, e) = spans[hit.spans + i];
                raw.get(s..e).unwrap_or_default()
            }
        };
        self.store(rule, hit.value, hit.updated, label)
    }

    /// Stores one rule's value for a line: `label(i)` is the line's text for the rule's label
    /// `i`, before fixed values and the length cap apply.
    pub(super) fn store<'l>(
        &mut self,
        rule: &CompiledRule,
        value: Option<f64>,
        updated: Option<f64>,
        label: impl Fn(usize) -> &'l str,
    ) -> LineOutcome {
        let Some(value) = value else { return LineOutcome::Unparsable };
        let key = &mut *self.key;
        key.resize_with(rule.labels.len(), String::new);
        let mut cut = false;
        for (i, (source, fixed)) in rule.labels.iter().enumerate() {
            let text = label(i);
            let text: &str = match fixed {
                Some((values, other)) if !values.iter().any(|v| v == text) => match other {
                    Some(o) => o,
                    None => return LineOutcome::Unparsable,
                },
                Some(_) => text,
                None if matches!(source, LabelSource::Field(_)) && text.len() > self.max_label_bytes => {
                    cut = true;
                    &text[..text.floor_char_boundary(self.max_label_bytes)]
                }
                None => text,
            };
            key[i].clear();
            key[i].push_str(text);
        }
        let Some(state) = self.metrics.get_mut(&rule.metric) else { return LineOutcome::Unmatched };
        let mut known = state.series.contains_key(search(key));
        if !known && state.series.len() >= MAX_SERIES_PER_METRIC {
            *self.overflows.entry(rule.metric.clone()).or_default() += 1;
            for k in key.iter_mut() {
                k.clear();
                k.push_str(OVERFLOW_VALUE);
            }
            known = state.series.contains_key(search(key));
        }
        let updated = updated.filter(|_| state.ages);
        // Reading old content, the latest line of all files wins, not the last file read.
        if self.seeding
            && let Some(t) = updated
            && rule.action == LogAction::Set
            && state.updated.get(search(key)).is_some_and(|prev| *prev > t)
        {
            return LineOutcome::Matched;
        }
        let MetricState { def, series, updated: times, .. } = state;
        // A new series' key is made once, and shared by its value and its age.
        let mut new_key = None;
        let mut made = || new_key.get_or_insert_with(|| SeriesKey::from(key.as_slice())).clone();
        if let Some(t) = updated {
            match times.get_mut(search(key)) {
                Some(at) => *at = t,
                None => {
                    times.insert(made(), t);
                }
            }
        }
        let buckets = &def.buckets;
        if !known {
            let fresh = match def.kind {
                MetricType::Histogram => SeriesValue::Histogram { counts: vec![0; buckets.len()], sum: 0.0, count: 0 },
                _ => SeriesValue::Scalar(0.0),
            };
            series.insert(made(), fresh);
        }
        let Some(entry) = series.get_mut(search(key)) else { return LineOutcome::Unmatched };
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
