//! The seam between the spec and the source kinds. The spec knows a signal's source only through
//! [`SourceSpec`]; each kind implements it in its own module under `sources/` (how a pack's
//! parameters fill its settings, what makes them valid, how it is scheduled), next to its runtime.
//! A new kind is its module, a variant of [`Source`] and one arm in each match below.

use std::collections::BTreeMap;

use super::config::{PollDefaults, SignalOverride};
use super::pack::Params;
use super::{Model, ResolvedSource, Signal, Source};

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
}

/// Where a problem is and what it is: the text to point at in the spec, and the message.
pub type Problem = (String, String);

/// What a source kind provides to the spec.
pub trait SourceSpec {
    /// The kind's name, as in producer names (`sql:<id>`) and the catalog.
    fn kind(&self) -> &'static str;
    /// Fills a pack's parameters into the settings. Problems are messages about the pack.
    fn render(&mut self, pack: &PackParams<'_>) -> Vec<String>;
    /// Checks the settings against their signal and the whole model.
    fn validate(&self, signal: &Signal, model: &Model) -> Vec<Problem>;
    /// How the source runs: polled on a schedule (the override's, else its own, else the
    /// defaults) or fed by a log source.
    fn resolve(&self, defaults: &PollDefaults, over: &SignalOverride) -> ResolvedSource;
    /// One line for the catalog: the kind and how it runs (`sql every 30s`, `log `app.worker``).
    fn describe(&self, how: &ResolvedSource) -> String {
        match how {
            ResolvedSource::Polled(schedule) => format!("{} every {}", self.kind(), schedule.interval),
            ResolvedSource::Log { log } => format!("{} `{log}`", self.kind()),
        }
    }
}

impl Source {
    /// The source's kind, seen through the seam.
    pub fn spec(&self) -> &dyn SourceSpec {
        match self {
            Source::Sql(sql) => sql,
            Source::Http(http) => http,
            Source::Log(rules) => rules,
        }
    }

    /// The source's kind, seen through the seam, for rendering.
    pub fn spec_mut(&mut self) -> &mut dyn SourceSpec {
        match self {
            Source::Sql(sql) => sql,
            Source::Http(http) => http,
            Source::Log(rules) => rules,
        }
    }
}
