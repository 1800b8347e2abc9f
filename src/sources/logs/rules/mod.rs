//! Log rules compiled once and applied to every line: a literal scan finds the few rules a text
//! line can match, and only those run their regex.
//!
//! [`compiled`] is one rule ready to read a line, [`engine`] applies a log source's rules and
//! holds their metrics' [`series`], [`saved`] is what a checkpoint keeps of those series and
//! whether it still fits the spec (unit tests are in `rules/tests.rs`).

mod compiled;
mod engine;
mod prefilter;
mod read;
mod saved;
mod series;

pub use compiled::{CompiledRule, Line};
pub use engine::{LineClock, LineCounts, LineOutcome, RuleEngine};
pub use saved::{MetricShape, ResetReason, SavedMetrics};
pub use series::{SeriesKey, SeriesValue};

/// Free-form label values beyond this many series per metric go to one overflow series.
pub const MAX_SERIES_PER_METRIC: usize = 200;
pub const OVERFLOW_VALUE: &str = "__overflow__";
/// Free-form label values are cut to this many bytes unless the log source says otherwise.
pub const DEFAULT_MAX_LABEL_BYTES: usize = 256;
/// JSON lines: the field a rule's `match` reads unless the log source names another.
pub const DEFAULT_MESSAGE_FIELD: &str = "message";

#[cfg(test)]
mod tests;
