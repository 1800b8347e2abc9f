//! Where values come from. Each source kind lives in its own module: its settings' rendering and
//! checks (its `settings` module, behind [`crate::spec::source_kind::SourceSettings`]) and its runtime,
//! started through [`KINDS`]. Polled kinds share one loop ([`poll`]). A new kind is its module, a
//! variant of [`crate::spec::Source`] with its arms in `spec::source_kind`, and a line in [`KINDS`].

pub mod health;
pub mod http;
pub mod logs;
pub mod poll;
pub mod sql;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use sqlx::postgres::PgPool;

use crate::spec::Model;
use crate::state::State;

/// The current unix time in seconds: what the sources stamp successes and line ages with.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// What a kind needs to start its signals.
pub struct Start<'a> {
    pub model: &'a Model,
    pub state: Arc<State>,
    /// Set to stop the kinds that run on threads (they save their state first).
    pub stop: Arc<AtomicBool>,
    /// Each database's pool, by name, when the spec has an enabled SQL signal.
    pub pools: &'a [(String, PgPool)],
    /// The log runners the last sources left, for the log sources whose spec did not change.
    pub logs: &'a logs::handover::Handover,
}

/// The tasks and threads a started kind leaves running: tasks are aborted on stop, threads stop
/// on the flag.
#[derive(Default)]
pub struct Workers {
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
    pub threads: Vec<std::thread::JoinHandle<()>>,
}

/// Why a kind did not start; shown in `serve`'s error at start, and in a reload's log line and
/// answer.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// `state_dir` cannot be used: unsafe owner or mode, or another exporter holds its lock.
    #[error("{0}")]
    StateDir(logs::state_dir::StateDirError),
    /// One log source could not be built: its rules, its timestamp or its checkpoint.
    #[error("log `{id}`: {reason}")]
    Log { id: String, reason: logs::LogSourceError },
    /// The database cannot be used as the spec asks (a pooler that breaks `ha`'s session lock).
    #[error("{0}")]
    Database(String),
}

/// A kind that did not start, named as in [`KINDS`].
#[derive(Debug, thiserror::Error)]
#[error("{kind}: {source}")]
pub struct KindError {
    pub kind: &'static str,
    pub source: StartError,
}

/// Starts every enabled signal of one kind; an error leaves nothing of that kind running.
pub type StartFn = fn(&Start<'_>) -> Result<Workers, StartError>;

/// Every source kind's runtime, started in this order.
pub const KINDS: &[(&str, StartFn)] = &[(sql::KIND, sql::start), (http::KIND, http::start), (logs::KIND, logs::start)];
