//! Where values come from. Each source kind lives in its own module: its settings' rendering and
//! checks (its `spec` module, behind [`crate::spec::source_kind::SourceSpec`]) and its runtime,
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
    /// The database pool, when the spec has a database and an enabled SQL signal.
    pub pool: Option<&'a PgPool>,
}

/// What a started kind leaves running: tasks are aborted on stop, threads stop on the flag.
#[derive(Default)]
pub struct Running {
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
    pub threads: Vec<std::thread::JoinHandle<()>>,
}

/// Starts every enabled signal of one kind; an error leaves nothing of that kind running.
pub type StartFn = fn(&Start<'_>) -> Result<Running, String>;

/// Every source kind's runtime, started in this order.
pub const KINDS: &[(&str, StartFn)] = &[(sql::KIND, sql::start), (http::KIND, http::start), (logs::KIND, logs::start)];
