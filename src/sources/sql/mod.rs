//! SQL source: each query runs on its own interval in a read-only transaction with a server-side
//! `statement_timeout`, over a small shared pool. Results are published as snapshots; a scrape
//! never touches the database. A failing query only affects its own signal.

mod decode;
pub mod dsn;
pub mod leader;
pub mod reach;
pub mod scan;
pub mod secret;
mod series;
mod settings;
pub mod spread;
pub mod tls;

pub use series::{Folds, MAX_LABEL_BYTES, Series, rows_to_families};

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
    /// What the failure says about the database itself, apart from this query.
    pub reach: Reach,
}

/// What a query run says about the database as a whole: a run the server answered (even with an
/// error about the query) shows it reachable; one without a connection or without an answer shows
/// it unreachable; some failures tell nothing either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// The server answered: the error is about the query (schema, SQL, decoding, its own
    /// server-side timeout).
    Answered,
    /// No usable connection: refused, unknown host, TLS, authentication, the server shutting down.
    NoConnection,
    /// A connection, but no answer by the client's deadline: the network or the server is gone.
    NoAnswer,
    /// Nothing learned about the server: every connection of the pool busy with other queries, or
    /// a pool that failed while a direct connection works.
    Unknown,
}

impl Reach {
    /// The `kind` of `integration_exporter_database_errors_total` this counts as, if any.
    fn unreachable_kind(self) -> Option<&'static str> {
        match self {
            Reach::NoConnection => Some("connect"),
            Reach::NoAnswer => Some("timeout"),
            Reach::Answered | Reach::Unknown => None,
        }
    }
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
        let reach = if kind == QueryErrorKind::Connect { Reach::NoConnection } else { Reach::Answered };
        // Driver and server texts pass through the scrubber: none is known to quote the password,
        // and none ever will be printed if one does.
        let message = match tls::hint(&e) {
            Some(hint) => format!("{e}; {hint}"),
            None => e.to_string(),
        };
        QueryError { kind, message: secret::scrub(&message), reach }
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

/// The session every connection of the exporter opens: named, read-only, with keepalives.
pub fn session_options(options: PgConnectOptions) -> PgConnectOptions {
    options
        .application_name("integration-exporter")
        .options([("default_transaction_read_only", "on")])
        .options(SERVER_KEEPALIVE)
}

/// Builds the pool without connecting: the exporter starts, and serves, with the database down.
pub fn pool(options: PgConnectOptions, max_connections: u32, acquire_timeout: Duration) -> PgPool {
    let options = session_options(options);
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

/// What one run of a signal's query gave.
#[derive(Debug)]
pub struct SignalRun {
    pub families: Vec<Family>,
    /// The result had more series than the cap (the rows past the first one too many are never
    /// fetched).
    pub truncated: bool,
    /// Label values cut and rows summed into one series, by metric.
    pub folds: Folds,
}

/// Runs a signal's query once.
pub async fn run_signal(
    pool: &PgPool,
    signal: &ResolvedSignal,
    query: &str,
    timeout: Duration,
) -> Result<SignalRun, QueryError> {
    let mut series = Series::new(signal);
    let truncated = run_streaming(pool, query, timeout, &mut |row| series.add(&row)).await?;
    let folds = series.folds().clone();
    Ok(SignalRun { families: series.families(), truncated, folds })
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
                reach: Reach::NoAnswer,
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
            let at = reach::address(&options);
            let (cause, reach) = if pool.size() >= pool.options().get_max_connections() {
                ("every connection of the pool is busy".to_string(), Reach::Unknown)
            } else {
                match tokio::time::timeout(CONNECT_PROBE, PgConnection::connect_with(&options)).await {
                    Ok(Ok(conn)) => {
                        let _ = conn.close().await;
                        ("the server answers again".to_string(), Reach::Unknown)
                    }
                    Ok(Err(e)) => (QueryError::from(e).message, Reach::NoConnection),
                    Err(_) => (format!("no answer within {} s", CONNECT_PROBE.as_secs()), Reach::NoConnection),
                }
            };
            Err(QueryError { kind: QueryErrorKind::Connect, message: format!("no connection to {at}: {cause}"), reach })
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

/// The producer the database's own health is published as: one for the whole pool, beside the
/// queries' `sql:<signal id>` (with several databases, `:<name>` follows both).
pub const DATABASE_PRODUCER: &str = "exporter:database";

/// `host:port/db` (or the socket directory for a Unix socket): the `database` label of the
/// database's health. Names where, never who: no user, no password.
pub fn database_label(options: &PgConnectOptions) -> String {
    let at = match options.get_socket() {
        Some(socket) => socket.display().to_string(),
        None => format!("{}:{}", options.get_host(), options.get_port()),
    };
    match options.get_database() {
        Some(db) => format!("{at}/{db}"),
        None => at,
    }
}

/// The database as a whole, as the queries find it: reachable when a run got an answer,
/// unreachable when one got no connection or no answer. Every query of the pool reports here and
/// it is published once, so "the database is unreachable" is one series and one alert, not one
/// per query.
pub struct DatabaseHealth {
    label: String,
    producer: String,
    state: Arc<State>,
    inner: std::sync::Mutex<DatabaseReach>,
}

#[derive(Default)]
struct DatabaseReach {
    /// Unknown until a run reaches a verdict: nothing is published as down before anything tried.
    up: Option<bool>,
    last_success: Option<f64>,
    errors: std::collections::BTreeMap<&'static str, u64>,
}

/// The kinds of `integration_exporter_database_errors_total`, all exported from the start.
const UNREACHABLE_KINDS: [&str; 2] = ["connect", "timeout"];

impl DatabaseHealth {
    /// Publishes the counters at zero at once, so an outage from the first run on still shows as
    /// an increase.
    pub fn new(label: String, producer: String, state: Arc<State>) -> Arc<DatabaseHealth> {
        let health = Arc::new(DatabaseHealth { label, producer, state, inner: Default::default() });
        health.publish(&health.lock());
        health
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DatabaseReach> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What one run said about the database.
    pub fn record(&self, reach: Reach) {
        let mut inner = self.lock();
        match reach {
            Reach::Answered => {
                inner.up = Some(true);
                inner.last_success = Some(crate::sources::unix_now());
            }
            Reach::Unknown => return,
            Reach::NoConnection | Reach::NoAnswer => {
                inner.up = Some(false);
                if let Some(kind) = reach.unreachable_kind() {
                    *inner.errors.entry(kind).or_default() += 1;
                }
            }
        }
        self.publish(&inner);
    }

    fn publish(&self, inner: &DatabaseReach) {
        let l = [("database", self.label.as_str())];
        let mut errors = self_metrics::DATABASE_ERRORS.family();
        for kind in UNREACHABLE_KINDS {
            let count = *inner.errors.get(kind).unwrap_or(&0) as f64;
            errors.push(&[("database", self.label.as_str()), ("kind", kind)], count);
        }
        let mut families = vec![errors];
        if let Some(up) = inner.up {
            families.push(self_metrics::DATABASE_UP.family().with(&l, if up { 1.0 } else { 0.0 }));
        }
        if let Some(ts) = inner.last_success {
            families.push(self_metrics::DATABASE_LAST_SUCCESS.family().with(&l, ts));
        }
        self.state.publish(&self.producer, families);
    }
}

/// One signal's side of a polled query: its series, its health and its log lines. A query of its
/// own has one; a shared scan one per reader, each told the scan's outcome as if it had run it.
struct Reader {
    signal: ResolvedSignal,
    health: PollHealth<QueryErrorKind>,
    last: Kept<Vec<Family>>,
    failures: FailureLog,
    truncated_runs: u64,
    /// Every run's [`Folds`], added up: counters.
    folds: Folds,
}

impl Reader {
    fn new(signal: ResolvedSignal, interval: Duration) -> Reader {
        Reader {
            signal,
            health: PollHealth::default(),
            last: Kept::new(interval),
            failures: FailureLog::default(),
            truncated_runs: 0,
            folds: Folds::default(),
        }
    }

    fn health_families(&self) -> Vec<Family> {
        let id = self.signal.signal.id.as_str();
        let mut families = self.health.families(&self_metrics::QUERY_HEALTH, id);
        families.push(TRUNCATED.family().with(&[("signal", id)], self.truncated_runs as f64));
        // Every metric from the start, so the first merge is an increase().
        let mut merged = self_metrics::QUERY_MERGED_ROWS.family();
        for metric in &self.signal.signal.metrics {
            let n = self.folds.merged.get(&metric.name).copied().unwrap_or(0);
            merged.push(&[("signal", id), ("metric", &metric.name)], n as f64);
        }
        families.push(merged);
        if !self.folds.cut.is_empty() {
            let mut cut = self_metrics::LABEL_TRUNCATED.family();
            for (metric, n) in &self.folds.cut {
                cut.push(&[("metric", metric)], *n as f64);
            }
            families.push(cut);
        }
        families
    }

    /// Adds one run's folds, saying so in the log the first time a metric has them.
    fn count_folds(&mut self, run: Folds) {
        let id = self.signal.signal.id.as_str();
        for (metric, n) in run.merged {
            let total = self.folds.merged.entry(metric.clone()).or_default();
            if *total == 0 {
                tracing::warn!(signal = %id, %metric, rows = n, "rows with the same label values were summed into one series; if the value does not add up, the query repeats rows (a join fanning out?)");
            }
            *total += n;
        }
        for (metric, n) in run.cut {
            let total = self.folds.cut.entry(metric.clone()).or_default();
            if *total == 0 {
                tracing::warn!(signal = %id, %metric, rows = n, max_bytes = MAX_LABEL_BYTES, "label values longer than the cap were cut");
            }
            *total += n;
        }
    }

    /// A standby shows nothing of the query, not even its health: the leader's series are the
    /// truth, and a standby's stale or absent ones must not fire an alert. Values of an earlier
    /// leadership are dropped, not served when it leads again.
    fn stand_by(&mut self, interval: Duration) -> Vec<Family> {
        self.last = Kept::new(interval);
        Vec::new()
    }

    /// Takes one run's outcome (`duration` seconds long); what to serve.
    fn record(&mut self, result: Result<SignalRun, QueryError>, duration: f64) -> Vec<Family> {
        let id = self.signal.signal.id.clone();
        let scan = scan_of(&self.signal).unwrap_or_default().to_string();
        match result {
            Ok(SignalRun { families, truncated, folds }) => {
                self.count_folds(folds);
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
                    if scan.is_empty() {
                        tracing::warn!(signal = %id, kind = e.kind.as_str(), error = %e.message, "query failed");
                    } else {
                        tracing::warn!(signal = %id, %scan, kind = e.kind.as_str(), error = %e.message, "query failed");
                    }
                }
                self.health.failed(&[e.kind], duration);
            }
        }
        let mut families = self.last.get().cloned().unwrap_or_default();
        families.extend(self.health_families());
        families
    }
}

/// The shared scan a SQL signal reads (`<pack>.<scan>`), if it reads one.
pub fn scan_of(signal: &ResolvedSignal) -> Option<&str> {
    match &signal.signal.source {
        Source::Sql(sql) => sql.scan.as_deref(),
        _ => None,
    }
}

/// One SQL signal's own query, polled by the shared loop.
struct QueryPoller {
    pool: PgPool,
    /// With `ha` on, whether this replica leads the database; a standby runs nothing.
    leader: Option<Arc<leader::Leadership>>,
    interval: Duration,
    database: Arc<DatabaseHealth>,
    query: String,
    timeout: Duration,
    reader: Reader,
}

impl Poll for QueryPoller {
    async fn poll(&mut self) -> Vec<Family> {
        if self.leader.as_ref().is_some_and(|l| !l.leads()) {
            return self.reader.stand_by(self.interval);
        }
        let started = Instant::now();
        let result = run_signal(&self.pool, &self.reader.signal, &self.query, self.timeout).await;
        let duration = started.elapsed().as_secs_f64();
        self.database.record(match &result {
            Ok(_) => Reach::Answered,
            Err(e) => e.reach,
        });
        self.reader.record(result, duration)
    }

    fn initial(&self) -> Vec<Family> {
        self.reader.health_families()
    }
}

/// A pack's shared scan, run once per interval for all its readers on one database: each reader
/// gets the scan's outcome as its own (its series, its duration, its errors named by the scan),
/// so per-signal health, blind-spot alerts and the status page read as before.
struct ScanPoller {
    pool: PgPool,
    leader: Option<Arc<leader::Leadership>>,
    interval: Duration,
    database: Arc<DatabaseHealth>,
    scan: String,
    query: String,
    timeout: Duration,
    readers: Vec<Reader>,
    tag: Option<DatabaseTag>,
}

impl ScanPoller {
    fn tagged(&self, families: Vec<Family>) -> Vec<Family> {
        match &self.tag {
            Some(tag) => tag.apply(families),
            None => families,
        }
    }
}

impl poll::PollMany for ScanPoller {
    async fn poll(&mut self) -> Vec<Vec<Family>> {
        if self.leader.as_ref().is_some_and(|l| !l.leads()) {
            return self.readers.iter_mut().map(|r| r.stand_by(self.interval)).collect();
        }
        let started = Instant::now();
        let signals: Vec<&ResolvedSignal> = self.readers.iter().map(|r| &r.signal).collect();
        let (reach, runs) = scan::run(&self.pool, &self.scan, &signals, &self.query, self.timeout).await;
        let duration = started.elapsed().as_secs_f64();
        self.database.record(reach);
        let served: Vec<Vec<Family>> =
            self.readers.iter_mut().zip(runs).map(|(reader, run)| reader.record(run, duration)).collect();
        served.into_iter().map(|f| self.tagged(f)).collect()
    }

    fn initial(&self) -> Vec<Vec<Family>> {
        self.readers.iter().map(|r| self.tagged(r.health_families())).collect()
    }
}

/// [`spawn_database`] for a spec's first (with `database:`, only) database.
pub fn spawn_all(model: &Model, pool: PgPool, state: Arc<State>) -> Vec<tokio::task::JoinHandle<()>> {
    let first = model.config.databases().first().map(|(name, _)| name.to_string());
    let spread = spread_for(model);
    first.map(|name| spawn_database(model, &name, pool, state, &spread)).unwrap_or_default()
}

/// Whether database `name` has SQL queries to run (and, with `ha`, an election).
fn has_queries(model: &Model, name: &str) -> bool {
    model.for_database(name).enabled_signals().any(|s| matches!(s.signal.source, Source::Sql(_)))
}

/// This replica's [`spread::Spread`] over the databases of `model` that have queries.
fn spread_for(model: &Model) -> Arc<spread::Spread> {
    let databases = model.config.databases().iter().filter(|(name, _)| has_queries(model, name)).count();
    let replica = model.config.ha.replica.clone().unwrap_or_else(spread::default_replica);
    spread::Spread::new(databases, replica)
}

/// Starts one task per enabled SQL signal of database `name` (see [`Model::for_database`]). Each
/// waits for its own previous run before the next; a database's tasks share only its pool, so a
/// database that is down holds its own tasks and no other's.
pub fn spawn_database(
    model: &Model,
    name: &str,
    pool: PgPool,
    state: Arc<State>,
    spread: &Arc<spread::Spread>,
) -> Vec<tokio::task::JoinHandle<()>> {
    if !has_queries(model, name) {
        return Vec::new();
    }
    let model = model.for_database(name);
    // With one database, its health is labelled where it is and the queries' series carry no
    // label (what a spec of one database always exported); with several, both carry the name
    // the spec gives it, so a database's alerts and its queries' series join on one value.
    let tag = model.database_label().map(|label| DatabaseTag { label: label.into(), name: name.into() });
    let (health_label, health_producer) = match &tag {
        None => (database_label(&pool.connect_options()), DATABASE_PRODUCER.to_string()),
        Some(tag) => (tag.name.to_string(), format!("{DATABASE_PRODUCER}:{}", tag.name)),
    };
    let database = DatabaseHealth::new(health_label.clone(), health_producer, state.clone());
    let mut tasks = Vec::new();
    let leader = model.config.ha.enabled.then(|| {
        let leadership = Arc::new(leader::Leadership::default());
        let election = leader::Election {
            options: (*pool.connect_options()).clone(),
            ha: model.config.ha.clone(),
            within: pool.options().get_acquire_timeout(),
            database: health_label,
            state: state.clone(),
            health: database.clone(),
            leadership: leadership.clone(),
            spread: spread.clone(),
        };
        tasks.push(election.spawn());
        leadership
    });
    let signals = model.enabled_signals().filter_map(|signal| match (&signal.signal.source, signal.schedule()) {
        (Source::Sql(sql), Some(schedule)) => Some((signal, sql, schedule)),
        _ => None,
    });
    let producer = |signal: &ResolvedSignal| match &tag {
        None => poll::producer(KIND, signal),
        Some(tag) => format!("{}:{}", poll::producer(KIND, signal), tag.name),
    };
    for (n, group) in scan::groups(signals).into_iter().enumerate() {
        let schedule = group.schedule;
        let interval = schedule.interval.0;
        let Some(scan) = group.scan else {
            let signal = group.readers[0];
            let poller = QueryPoller {
                pool: pool.clone(),
                leader: leader.clone(),
                interval,
                database: database.clone(),
                query: group.query,
                timeout: schedule.timeout.0,
                reader: Reader::new(signal.clone(), interval),
            };
            tasks.push(match &tag {
                None => poll::spawn_as(producer(signal), schedule, n, state.clone(), poller),
                Some(tag) => {
                    let poller = Tagged { tag: tag.clone(), poller };
                    poll::spawn_as(producer(signal), schedule, n, state.clone(), poller)
                }
            });
            continue;
        };
        let producers = group.readers.iter().map(|s| producer(s)).collect();
        let poller = ScanPoller {
            pool: pool.clone(),
            leader: leader.clone(),
            interval,
            database: database.clone(),
            scan,
            query: group.query,
            timeout: schedule.timeout.0,
            readers: group.readers.into_iter().map(|s| Reader::new(s.clone(), interval)).collect(),
            tag: tag.clone(),
        };
        tasks.push(poll::spawn_many(producers, schedule, n, state.clone(), poller));
    }
    tasks
}

/// The label a database's series carry when there are several.
#[derive(Clone)]
struct DatabaseTag {
    label: crate::state::LabelText,
    name: crate::state::LabelText,
}

impl DatabaseTag {
    fn apply(&self, mut families: Vec<Family>) -> Vec<Family> {
        for sample in families.iter_mut().flat_map(|f| f.samples.iter_mut()) {
            sample.labels.push((self.label.clone(), self.name.clone()));
        }
        families
    }
}

/// A query's poller whose every series, its values and its health, names its database: the same
/// signal polled on two databases is two series, never one family with duplicates.
struct Tagged {
    tag: DatabaseTag,
    poller: QueryPoller,
}

impl Poll for Tagged {
    async fn poll(&mut self) -> Vec<Family> {
        let families = self.poller.poll().await;
        self.tag.apply(families)
    }

    fn initial(&self) -> Vec<Family> {
        self.tag.apply(self.poller.initial())
    }
}

/// [`spawn_database`] for each database through the kinds' registry: nothing to start without a pool.
pub fn start(start: &super::Start<'_>) -> Result<super::Workers, super::StartError> {
    let mut tasks = Vec::new();
    let spread = spread_for(start.model);
    for (name, pool) in start.pools {
        if start.model.config.ha.enabled {
            refuse_pooler(start.model, pool)?;
        }
        tasks.extend(spawn_database(start.model, name, pool.clone(), start.state.clone(), &spread));
    }
    Ok(super::Workers { tasks, threads: Vec::new() })
}

/// [`leader::preflight`] from the kinds' synchronous start: a pooler that breaks session locks
/// stops `serve` (or fails a reload) before any query runs.
fn refuse_pooler(model: &Model, pool: &PgPool) -> Result<(), super::StartError> {
    let options = pool.connect_options();
    let label = database_label(&options);
    let within = pool.options().get_acquire_timeout();
    let check = leader::preflight(&options, &model.config.ha, within, &label);
    // `serve` runs on the multi-threaded runtime, where a worker may block on a future.
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(check))
        .map_err(super::StartError::Database)
}
