//! The seam between the spec and the source kinds. The spec knows a signal's source only through
//! [`SourceSettings`]; each kind implements it for its settings in `sources/<kind>/settings.rs`
//! (how a pack's parameters fill them, what makes them valid, how the source is scheduled and
//! watched), next to its runtime.
//! A new kind is its module, a variant of [`Source`] and one arm in each of the three matches below.

use std::collections::BTreeMap;

use super::config::{PollDefaults, SignalOverride};
use super::pack::Params;
use super::{Model, PromDuration, ResolvedSource, Schedule, Signal, Source};
use crate::self_metrics::{PollHealthMetrics, ValueHealthMetrics};

/// A pack's parameters, as a source kind renders them into its settings.
pub struct PackParams<'a> {
    /// The pack's name (log sources and ids are prefixed with it).
    pub pack: &'a str,
    /// The user's values, else the pack's defaults.
    pub params: &'a Params,
    /// The pack's defaults alone.
    pub defaults: &'a Params,
    /// Per log source of the pack: whether the user kept its default line shape.
    pub default_shapes: &'a BTreeMap<&'a str, bool>,
    /// The pack's shared scans, by name.
    pub scans: &'a BTreeMap<String, super::pack::ScanDef>,
}

/// One thing wrong with a source's settings, before it is located in the spec file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The text to point at in the spec (its first occurrence gives the line and column).
    pub at: String,
    /// What is wrong, as the user reads it after `file:line:col: `.
    pub message: String,
}

impl Problem {
    pub fn new(at: impl Into<String>, message: impl Into<String>) -> Self {
        Problem { at: at.into(), message: message.into() }
    }
}

/// How generated alerts, tests and panels speak of a polled kind's health.
#[derive(Debug)]
pub struct PolledKind {
    /// The kind's health metrics, as its runtime exports them.
    pub health: &'static PollHealthMetrics,
    /// Whether `ok` stays 1 on a poll that answered but could not read every value (an endpoint
    /// answering 2xx without a JSON path): then "failing" is judged by `last_success`, and
    /// "reading" by the mere presence of `ok`.
    pub ok_on_partial_answer: bool,
    /// For a kind whose one answer carries several values read apart (JSON paths): each value's
    /// own health. A value gone from the answer then blinds only the alerts that read it, and
    /// has its own failing alert; the poll's alert is about the answer as a whole.
    pub values: Option<&'static ValueHealthMetrics>,
    /// The source-health alert of a failing poll.
    pub failing_alert: &'static str,
    /// What one poll is, in alert text ("query", "endpoint").
    pub what: &'static str,
    /// The failing alert's summary.
    pub summary: &'static str,
    /// What the on-call engineer checks, by error kind (several kinds may share a line, `sql,
    /// decode`): the failing alert's description and the exporter's runbook both list these.
    pub checks: &'static [(&'static str, &'static str)],
    /// The overview dashboard's health panel of the kind: title and description.
    pub panel: (&'static str, &'static str),
}

/// A source's settings as the spec, the generators and the status page see them, whatever its kind.
pub trait SourceSettings {
    /// The kind's name, as in producer names (`sql:<id>`) and the catalog.
    fn kind(&self) -> &'static str;
    /// Fills a pack's parameters into the settings. Problems are messages about the pack.
    fn render(&mut self, pack: &PackParams<'_>) -> Vec<String>;
    /// Checks the settings against their signal and the whole model.
    fn validate(&self, signal: &Signal, model: &Model) -> Vec<Problem>;
    /// A polled kind's own interval and timeout as written (either may be left to the defaults);
    /// `None` for a kind that is not polled.
    fn own_schedule(&self) -> Option<(Option<PromDuration>, Option<PromDuration>)> {
        None
    }
    /// How the source runs: a polled one on a schedule (the override's, else its own, else the
    /// defaults). A kind that is not polled says how it is fed instead.
    fn resolve(&self, defaults: &PollDefaults, over: &SignalOverride) -> ResolvedSource {
        let (interval, timeout) = self.own_schedule().unwrap_or_default();
        ResolvedSource::Polled(Schedule {
            interval: over.interval.or(interval).unwrap_or(defaults.interval),
            timeout: over.timeout.or(timeout).unwrap_or(defaults.timeout),
        })
    }
    /// Whether the kind reads the spec's `database:`.
    fn needs_database(&self) -> bool {
        false
    }
    /// For a polled kind: how its health is watched. `None` for one that is not polled.
    fn polled(&self) -> Option<&'static PolledKind> {
        None
    }
    /// For a kind whose one answer carries several values read apart (an HTTP answer's JSON
    /// paths): each value's metric and where in the answer it is read (`.pending`). Their own
    /// health tells which alerts a partial answer blinds. Empty for other kinds.
    fn answer_values(&self) -> Vec<(&str, String)> {
        Vec::new()
    }
    /// Whether one of the signal's own alerts already watches its source's health (an HTTP
    /// signal alerting on its `up` probe): a source-health alert would only hide it.
    fn watches_itself(&self, _signal: &Signal) -> bool {
        false
    }
    /// One line for the catalog: the kind and how it runs (`sql every 30s`, `log `app.worker``).
    fn describe(&self, how: &ResolvedSource) -> String {
        match how {
            ResolvedSource::Polled(schedule) => format!("{} every {}", self.kind(), schedule.interval),
            ResolvedSource::Log { log } => format!("{} `{log}`", self.kind()),
        }
    }
}

impl Source {
    /// The source's settings, seen through the seam.
    pub fn settings(&self) -> &dyn SourceSettings {
        match self {
            Source::Sql(sql) => sql,
            Source::Http(http) => http,
            Source::Log(rules) => rules,
        }
    }

    /// The kind's place in listings by kind (the overview's health panels): the order of the
    /// variants.
    pub fn kind_rank(&self) -> usize {
        match self {
            Source::Sql(_) => 0,
            Source::Http(_) => 1,
            Source::Log(_) => 2,
        }
    }

    /// The source's settings, seen through the seam, for rendering.
    pub fn settings_mut(&mut self) -> &mut dyn SourceSettings {
        match self {
            Source::Sql(sql) => sql,
            Source::Http(http) => http,
            Source::Log(rules) => rules,
        }
    }
}
