//! SQL source: each query runs on its own interval in a read-only transaction with a server-side
//! `statement_timeout`, over a small shared pool. Results are published as snapshots; a scrape
//! never touches the database. A failing query only affects its own signal.

mod decode;
pub mod dsn;
pub mod secret;
mod series;
mod spec;

pub use series::{Series, rows_to_families};

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, Connection, Postgres};

use crate::self_metrics::{self, SelfMetric};
use crate::sources::health::{ErrorKind, PollHealth};
use crate::sources::logs::rules::MAX_SERIES_PER_METRIC;
use crate::sources::poll::{self, FailureLog, Kept, MIN_WAIT, Poll};
use crate::spec::{Model, ResolvedSignal, Source};
use crate::state::{Family, State};

/// The kind's name: producers are `sql:<signal id>`.
pub const KIND: &str = "sql";

/// Why a query run failed; exported as the `kind` label of the error counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum QueryErrorKind {
    /// No connection: database down, network, pool exhausted, authentication.
    Connect,
    /// The server cancelled the query at `statement_timeout`.
    Timeout,
    /// A table or column the query names does not exist.
    Schema,
    /// Any other error the server reported.
    Sql,
    /// The result has a column of a type or shape the exporter cannot turn into a metric.
    Decode,
}

impl ErrorKind for QueryErrorKind {
    const ALL: &'static [QueryErrorKind] = &[Self::Connect, Self::Timeout, Self::Schema, Self::Sql, Self::Decode];

    fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::Schema => "schema",
            Self::Sql => "sql",
            Self::Decode => "decode",
        }
    }
}

#[derive(Debug)]
pub struct QueryError {
    pub kind: QueryErrorKind,
    pub message: String,
}

impl From<sqlx::Error> for QueryError {
    fn from(e: sqlx::Error) -> Self {
        let kind = match &e {
            sqlx::Error::Database(db) => match db.code().as_deref() {
                Some("57014") => QueryErrorKind::Timeout,
                Some("42P01" | "42703" | "3F000" | "42704") => QueryErrorKind::Schema,
                Some(code) if code.starts_with("28") || code.starts_with("08") || code.starts_with("57P") => {
                    QueryErrorKind::Connect
                }
                _ => QueryErrorKind::Sql,
            },
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) | sqlx::Error::TypeNotFound { .. } => {
                QueryErrorKind::Decode
            }
            _ => QueryErrorKind::Connect,
        };
        // Driver and server texts pass through the scrubber: none is known to quote the password,
        // and none ever will be printed if one does.
        QueryError { kind, message: secret::scrub(&e.to_string()) }
    }
}

/// Rows [`run_query`] keeps at most; past them the rest is not fetched (the connection is closed,
/// which ends the query on the server).
pub const MAX_ROWS: usize = 10_000;

/// Server-side keepalive: a server whose client vanished without a FIN (a NAT dropped the flow, a
/// host died) frees the backend after about 60 + 3 x 10 seconds instead of the kernel's two hours.
/// The client side needs none: no call waits longer than its deadline (see [`run_query`]), and a
/// connection that missed a deadline is closed, never reused. (sqlx has no socket option for it.)
const SERVER_KEEPALIVE: [(&str, &str); 3] =
    [("tcp_keepalives_idle", "60"), ("tcp_keepalives_interval", "10"), ("tcp_keepalives_count", "3")];

/// Builds the pool without connecting: the exporter starts, and serves, with the database down.
pub fn pool(options: PgConnectOptions, max_connections: u32, acquire_timeout: Duration) -> PgPool {
    let options = options
        .application_name("integration-exporter")
        .options([("default_transaction_read_only", "on")])
        .options(SERVER_KEEPALIVE);
    PgPoolOptions::new()
        .max_connections(max_connections.max(1))
        .min_connections(0)
        .acquire_timeout(at_least(acquire_timeout, MIN_WAIT))
        .idle_timeout(Some(Duration::from_secs(300)))
        .test_before_acquire(true)
        .connect_lazy_with(options)
}

fn at_least(d: Duration, min: Duration) -> Duration {
    d.max(min)
}

/// How long past the server-side `statement_timeout` the client waits on its own: the server
/// cancels at the timeout and says so at once, so silence past this margin means the network or
/// the server is gone. A quarter of the timeout, between 100 ms and 2 s.
pub fn deadline(timeout: Duration) -> Duration {
    let timeout = at_least(timeout, MIN_WAIT);
    timeout + (timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(2))
}

/// What [`run_query`] read.
#[derive(Debug, Default)]
pub struct QueryRows {
    pub rows: Vec<PgRow>,
    /// More than [`MAX_ROWS`] rows came back; only the first ones were read.
    pub truncated: bool,
}

/// Runs one query once and keeps its rows, at most [`MAX_ROWS`] (for `check` and tests; the
/// exporter's own runs go through [`run_signal`], which keeps series, not rows).
pub async fn run_query(pool: &PgPool, query: &str, timeout: Duration) -> Result<QueryRows, QueryError> {
    let mut rows = Vec::new();
    let truncated = run_streaming(pool, query, timeout, &mut |row| {
        if rows.len() == MAX_ROWS {
            return Ok(false);
        }
        rows.push(row);
        Ok(true)
    })
    .await?;
    Ok(QueryRows { rows, truncated })
}

/// Runs a signal's query once: its families, and whether the result had more series than the
/// cap (the rows past the first one too many are never fetched).
pub async fn run_signal(
    pool: &PgPool,
    signal: &ResolvedSignal,
    query: &str,
    timeout: Duration,
) -> Result<(Vec<Family>, bool), QueryError> {
    let mut series = Series::new(signal);
    let truncated = run_streaming(pool, query, timeout, &mut |row| series.add(&row)).await?;
    Ok((series.families(), truncated))
}

/// Runs one query once, in a read-only transaction with the given server-side timeout and a
/// client-side deadline a little past it, handing each row to `on_row` until it says stop.
/// Returns whether it was stopped early. A connection that misses the deadline, or whose result
/// was cut short, is closed rather than returned to the pool: whatever it was waiting for could
/// still arrive, or never.
async fn run_streaming(
    pool: &PgPool,
    query: &str,
    timeout: Duration,
    on_row: &mut (dyn FnMut(PgRow) -> Result<bool, QueryError> + Send),
) -> Result<bool, QueryError> {
    let deadline = deadline(timeout);
    let mut conn = acquire(pool).await?;
    match tokio::time::timeout(deadline, read_rows(&mut conn, query, timeout, on_row)).await {
        Ok(Ok(false)) => {
            give_back(conn, deadline).await;
            Ok(false)
        }
        Ok(Ok(true)) => {
            drop(conn.detach());
            Ok(true)
        }
        Ok(Err(e)) => {
            if e.kind == QueryErrorKind::Connect {
                drop(conn.detach());
            } else {
                give_back(conn, deadline).await;
            }
            Err(e)
        }
        Err(_) => {
            drop(conn.detach());
            Err(QueryError {
                kind: QueryErrorKind::Timeout,
                message: format!(
                    "no answer within {} ms (statement timeout plus a margin); the connection was closed",
                    deadline.as_millis()
                ),
            })
        }
    }
}

/// How long the attempt that explains a pool timeout may take.
const CONNECT_PROBE: Duration = Duration::from_secs(2);

/// A connection from the pool, or an error that names its cause. sqlx retries a refused
/// connection until its acquire timeout and then says only "pool timed out"; one direct attempt
/// then tells refused, unknown host or wrong password apart. It is made only when the pool has a
/// free slot (it could not fill it), so a pool busy with slow queries never gets a connection more.
async fn acquire(pool: &PgPool) -> Result<PoolConnection<Postgres>, QueryError> {
    match pool.acquire().await {
        Ok(conn) => Ok(conn),
        Err(sqlx::Error::PoolTimedOut) => {
            let options = pool.connect_options();
            let at = match options.get_socket() {
                Some(socket) => socket.display().to_string(),
                None => format!("{}:{}", options.get_host(), options.get_port()),
            };
            let cause = if pool.size() >= pool.options().get_max_connections() {
                "every connection of the pool is busy".to_string()
            } else {
                match tokio::time::timeout(CONNECT_PROBE, PgConnection::connect_with(&options)).await {
                    Ok(Ok(conn)) => {
                        let _ = conn.close().await;
                        "the server answers again".to_string()
                    }
                    Ok(Err(e)) => QueryError::from(e).message,
                    Err(_) => format!("no answer within {} s", CONNECT_PROBE.as_secs()),
                }
            };
            Err(QueryError { kind: QueryErrorKind::Connect, message: format!("no connection to {at}: {cause}") })
        }
        Err(e) => Err(e.into()),
    }
}

/// Returns a connection to the pool within a bound. sqlx pings a connection on its way back, and
/// on a network that silently drops packets that ping would hold the pool slot for ever; past the
/// bound the return is abandoned, which closes the connection and frees the slot.
async fn give_back(mut conn: PoolConnection<Postgres>, within: Duration) {
    let _ = tokio::time::timeout(within, conn.return_to_pool()).await;
}

/// Whether `on_row` stopped the reading early.
async fn read_rows(
    conn: &mut PgConnection,
    query: &str,
    timeout: Duration,
    on_row: &mut (dyn FnMut(PgRow) -> Result<bool, QueryError> + Send),
) -> Result<bool, QueryError> {
    let mut tx = conn.begin().await?;
    sqlx::query("SET TRANSACTION READ ONLY").execute(&mut *tx).await?;
    let set_timeout = format!("SET LOCAL statement_timeout = {}", timeout.as_millis().max(1));
    sqlx::query(AssertSqlSafe(set_timeout)).execute(&mut *tx).await?;
    {
        let mut stream = sqlx::query(AssertSqlSafe(query.to_string())).fetch(&mut *tx);
        while let Some(row) = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
            if !on_row(row?)? {
                // The caller closes the connection; the rest of the result is never read.
                return Ok(true);
            }
        }
    }
    // Nothing was written; rolling back releases the snapshot as cheaply as a commit.
    tx.rollback().await?;
    Ok(false)
}

const TRUNCATED: SelfMetric = self_metrics::QUERY_TRUNCATED;

/// One SQL signal's query, polled by the shared loop.
struct QueryPoller {
    pool: PgPool,
    signal: ResolvedSignal,
    query: String,
    timeout: Duration,
    health: PollHealth<QueryErrorKind>,
    last: Kept<Vec<Family>>,
    failures: FailureLog,
    truncated_runs: u64,
}

impl QueryPoller {
    fn health_families(&self) -> Vec<Family> {
        let id = self.signal.signal.id.as_str();
        let mut families = self.health.families(&self_metrics::QUERY_HEALTH, id);
        families.push(TRUNCATED.family().with(&[("signal", id)], self.truncated_runs as f64));
        families
    }
}

impl Poll for QueryPoller {
    async fn poll(&mut self) -> Vec<Family> {
        let id = self.signal.signal.id.clone();
        let started = Instant::now();
        let result = run_signal(&self.pool, &self.signal, &self.query, self.timeout).await;
        let duration = started.elapsed().as_secs_f64();
        match result {
            Ok((families, truncated)) => {
                if truncated {
                    if self.truncated_runs == 0 {
                        tracing::warn!(signal = %id, max_series = MAX_SERIES_PER_METRIC, "query returned more series than the cap; the rows past it are not read");
                    }
                    self.truncated_runs += 1;
                }
                if self.failures.succeeded() {
                    tracing::info!(signal = %id, "query succeeded");
                }
                self.health.succeeded(duration);
                self.last.set(families);
            }
            Err(e) => {
                if self.failures.failed() {
                    tracing::warn!(signal = %id, kind = e.kind.as_str(), error = %e.message, "query failed");
                }
                self.health.failed(&[e.kind], duration);
            }
        }
        let mut families = self.last.get().cloned().unwrap_or_default();
        families.extend(self.health_families());
        families
    }

    fn initial(&self) -> Vec<Family> {
        self.health_families()
    }
}

/// Starts one task per enabled SQL signal. Each waits for its own previous run before the next.
pub fn spawn_all(model: &Model, pool: PgPool, state: Arc<State>) -> Vec<tokio::task::JoinHandle<()>> {
    let signals = model.enabled_signals().filter_map(|signal| match (&signal.signal.source, signal.schedule()) {
        (Source::Sql(sql), Some(schedule)) => Some((signal, sql, schedule)),
        _ => None,
    });
    signals
        .enumerate()
        .map(|(n, (signal, sql, schedule))| {
            let poller = QueryPoller {
                pool: pool.clone(),
                signal: signal.clone(),
                query: sql.query.clone(),
                timeout: schedule.timeout.0,
                health: PollHealth::default(),
                last: Kept::new(schedule.interval.0),
                failures: FailureLog::default(),
                truncated_runs: 0,
            };
            poll::spawn(KIND, signal, schedule, n, state.clone(), poller)
        })
        .collect()
}

/// [`spawn_all`] through the kinds' registry: nothing to start without a pool.
pub fn start(start: &super::Start<'_>) -> Result<super::Running, String> {
    let tasks = match start.pool {
        Some(pool) => spawn_all(start.model, pool.clone(), start.state.clone()),
        None => Vec::new(),
    };
    Ok(super::Running { tasks, threads: Vec::new() })
}
