//! Leader election per database, for replicas run side by side (`ha.enabled`): PostgreSQL does the
//! coordinating. Each replica holds one session connection of its own, outside the query pool (a
//! pool closes idle connections, and with them would go the lock), and tries
//! `pg_try_advisory_lock(key)` on it every `retry`. The one that holds the lock leads and runs the
//! queries; when its session ends (process killed, connection cut) PostgreSQL frees the lock and
//! a standby takes it at its next try. The leader checks its session every `retry` and stands by
//! as soon as it is gone, so two replicas never both query for longer than one check.
//!
//! With several databases, the elections of one replica share a [`Spread`], and each round also
//! follows its rules, so leaderships spread over the replicas instead of all going to the first.
//!
//! Only the simple query protocol is used on the lock session: it is one round trip per statement,
//! which a transaction pooler cannot split between two server connections.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgRow};
use sqlx::{AssertSqlSafe, Connection, Row};

use super::spread::{self, Spread};
use super::{DatabaseHealth, QueryError, Reach};
use crate::self_metrics;
use crate::spec::config::HaConfig;
use crate::state::State;

/// Whether this replica leads a database: read by the database's queries before each run.
#[derive(Debug, Default)]
pub struct Leadership {
    leading: AtomicBool,
}

impl Leadership {
    pub fn leads(&self) -> bool {
        self.leading.load(Ordering::SeqCst)
    }
}

/// The default lock key: the same on every replica for the same database whatever address or
/// user it connects with, and unlikely to be a key the application picked for its own locks.
pub fn derived_key(database: &str) -> i64 {
    derived(&format!("integration-exporter leader {database}"))
}

/// Why the lock could not be used.
#[derive(Debug)]
pub enum LockError {
    /// The connection goes through a pooler that does not keep a session: never lead through it.
    Pooler(String),
    /// No connection, or no answer: retried.
    Unreachable { reach: Reach, message: String },
}

impl LockError {
    fn unreachable(e: QueryError) -> LockError {
        let reach = if e.reach == Reach::Answered { Reach::Answered } else { Reach::NoConnection };
        LockError::Unreachable { reach, message: e.message }
    }
}

fn no_answer(what: &str, within: Duration) -> LockError {
    LockError::Unreachable {
        reach: Reach::NoAnswer,
        message: format!("no answer to {what} within {} ms", within.as_millis()),
    }
}

/// One statement on the lock session, within `within`.
async fn one_row(conn: &mut PgConnection, sql: &str, within: Duration) -> Result<PgRow, LockError> {
    match tokio::time::timeout(within, sqlx::raw_sql(AssertSqlSafe(sql.to_string())).fetch_one(&mut *conn)).await {
        Ok(Ok(row)) => Ok(row),
        Ok(Err(e)) => Err(LockError::unreachable(e.into())),
        Err(_) => Err(no_answer(sql, within)),
    }
}

/// A value of a simple-protocol row (sent as text).
fn text(row: &PgRow) -> Result<String, LockError> {
    row.try_get::<String, _>(0).map_err(|e| LockError::unreachable(e.into()))
}

async fn connect(options: &PgConnectOptions, within: Duration) -> Result<PgConnection, LockError> {
    match tokio::time::timeout(within, PgConnection::connect_with(options)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(LockError::unreachable(e.into())),
        Err(_) => Err(no_answer("connecting", within)),
    }
}

async fn backend_pid(conn: &mut PgConnection, within: Duration) -> Result<String, LockError> {
    text(&one_row(conn, "SELECT pg_backend_pid()::text", within).await?)
}

/// The lock's key on this connection's database.
async fn key(conn: &mut PgConnection, ha: &HaConfig, within: Duration) -> Result<i64, LockError> {
    Ok(keys(conn, ha, within).await?.leader)
}

/// The advisory keys an election uses on one database.
#[derive(Debug, Clone, Copy)]
struct Keys {
    /// Exclusive: held by the leader.
    leader: i64,
    /// Shared: held by every live replica (see [`spread`]).
    candidate: i64,
    /// Shared: held by a replica under its share (see [`spread`]).
    want: i64,
}

async fn keys(conn: &mut PgConnection, ha: &HaConfig, within: Duration) -> Result<Keys, LockError> {
    match ha.lock_key {
        Some(key) => Ok(Keys { leader: key, candidate: key.wrapping_add(1), want: key.wrapping_add(2) }),
        None => {
            let database = text(&one_row(conn, "SELECT current_database()::text", within).await?)?;
            Ok(Keys {
                leader: derived_key(&database),
                candidate: derived(&format!("integration-exporter candidate {database}")),
                want: derived(&format!("integration-exporter want {database}")),
            })
        }
    }
}

fn derived(text: &str) -> i64 {
    let digest = Sha256::digest(text.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

async fn try_lock(conn: &mut PgConnection, key: i64, within: Duration) -> Result<bool, LockError> {
    Ok(text(&one_row(conn, &format!("SELECT pg_try_advisory_lock({key})::text"), within).await?)? == "true")
}

/// Checks that `conn` is a session of its own on the server, which a session lock needs: its
/// backend stays the same from one transaction to the next, it holds the lock in `pg_locks` when
/// `holds`, and a second connection gets another backend, which cannot take the lock. A pooler in
/// transaction mode hands each transaction whichever server connection is free: the backend
/// changes, or two client connections share one, and a lock outlives the client that took it.
async fn verify_session(
    conn: &mut PgConnection,
    options: &PgConnectOptions,
    key: i64,
    holds: bool,
    within: Duration,
) -> Result<(), LockError> {
    let first = backend_pid(conn, within).await?;
    let second = backend_pid(conn, within).await?;
    if first != second {
        return Err(LockError::Pooler(format!(
            "one connection was served by backend {first}, then by backend {second}"
        )));
    }
    if holds {
        let (high, low) = spread::lock_columns(key);
        let sql = format!(
            "SELECT count(*)::text FROM pg_locks WHERE locktype = 'advisory' AND granted \
             AND pid = {first} AND classid = '{high}'::oid AND objid = '{low}'::oid AND objsubid = 1"
        );
        if text(&one_row(conn, &sql, within).await?)? != "1" {
            return Err(LockError::Pooler(format!("the lock this connection took is not held by its backend {first}")));
        }
    }
    let mut other = connect(options, within).await?;
    let result = async {
        let other_pid = backend_pid(&mut other, within).await?;
        if other_pid == first {
            return Err(LockError::Pooler(format!("two connections were both served by backend {first}")));
        }
        if holds && try_lock(&mut other, key, within).await? {
            return Err(LockError::Pooler("a second connection took the lock the first one holds".into()));
        }
        Ok(())
    }
    .await;
    let _ = tokio::time::timeout(within, other.close()).await;
    result
}

/// What a refusal says: the problem and the fix.
pub fn pooler_message(database: &str, evidence: &str) -> String {
    format!(
        "ha: the connection to {database} goes through a pooler that does not keep a session ({evidence}); \
         a session advisory lock cannot elect a leader through it (PgBouncer in `pool_mode = transaction` or \
         `statement` does this). Connect the exporter to PostgreSQL directly, or through a pool in session \
         mode (PgBouncer `pool_mode = session`)"
    )
}

/// The check `serve` makes at start: refuses a pooler that breaks session locks before anything
/// runs. With the database unreachable it cannot tell, and says so; the election checks again
/// each time it takes the lock.
pub async fn preflight(
    options: &PgConnectOptions,
    ha: &HaConfig,
    within: Duration,
    database: &str,
) -> Result<(), String> {
    let mut conn = match connect(options, within).await {
        Ok(conn) => conn,
        Err(e) => {
            tracing::warn!(%database, error = %describe(&e), "ha: cannot check for a transaction pooler at start; checked when the lock is taken");
            return Ok(());
        }
    };
    let result = async {
        let key = key(&mut conn, ha, within).await?;
        let holds = try_lock(&mut conn, key, within).await?;
        verify_session(&mut conn, options, key, holds, within).await?;
        if holds {
            one_row(&mut conn, &format!("SELECT pg_advisory_unlock({key})::text"), within).await?;
        }
        Ok(())
    }
    .await;
    let _ = tokio::time::timeout(within, conn.close()).await;
    match result {
        Err(LockError::Pooler(evidence)) => Err(pooler_message(database, &evidence)),
        Err(e) => {
            tracing::warn!(%database, error = %describe(&e), "ha: cannot check for a transaction pooler at start; checked when the lock is taken");
            Ok(())
        }
        Ok(()) => Ok(()),
    }
}

fn describe(e: &LockError) -> &str {
    match e {
        LockError::Pooler(m) | LockError::Unreachable { message: m, .. } => m,
    }
}

/// One database's election: its lock session, its `integration_exporter_leader` series.
pub struct Election {
    pub options: PgConnectOptions,
    pub ha: HaConfig,
    /// Bound on connecting and on each statement of the lock session.
    pub within: Duration,
    /// The `database` label.
    pub database: String,
    pub state: Arc<State>,
    pub health: Arc<DatabaseHealth>,
    pub leadership: Arc<Leadership>,
    /// This replica's leaderships over all its databases.
    pub spread: Arc<Spread>,
}

/// An election's lock session and what it holds.
struct Session {
    conn: PgConnection,
    keys: Keys,
    /// The candidate lock is held (taken once per session, with several databases).
    candidate: bool,
    /// The want lock is held.
    wanting: bool,
}

impl Election {
    fn producer(&self) -> String {
        format!("exporter:leader:{}", self.database)
    }

    fn set(&self, leading: bool) {
        self.leadership.leading.store(leading, Ordering::SeqCst);
        if !leading {
            self.spread.forget(&self.database);
        }
        let family = self_metrics::LEADER
            .family()
            .with(&[("database", self.database.as_str())], if leading { 1.0 } else { 0.0 });
        self.state.publish(&self.producer(), vec![family]);
    }

    /// Runs the election until the task is aborted (which closes the session, freeing the lock).
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        self.set(false);
        tokio::spawn(async move { self.run().await })
    }

    async fn run(self) {
        let retry = self.ha.retry.0.max(super::poll::MIN_WAIT);
        let mut ticker = tokio::time::interval(retry);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut session: Option<Session> = None;
        let mut failing = false;
        loop {
            ticker.tick().await;
            let step = match session.as_mut() {
                Some(open) => self.step(open).await,
                None => match self.open().await {
                    Ok(mut open) => {
                        let step = self.step(&mut open).await;
                        session = Some(open);
                        step
                    }
                    Err(e) => Err(e),
                },
            };
            match step {
                Ok(leading) => {
                    self.health.record(Reach::Answered);
                    if failing {
                        tracing::info!(database = %self.database, "ha: the lock session works again");
                        failing = false;
                    }
                    if leading != self.leadership.leads() {
                        if leading {
                            tracing::info!(database = %self.database, "ha: took the lock; leading, running the queries");
                        }
                        self.set(leading);
                    }
                }
                Err(LockError::Pooler(evidence)) => {
                    self.spread.forget(&self.database);
                    // Leading through it could make two leaders; standing by for ever is safe
                    // and the log says why.
                    self.set(false);
                    tracing::error!(database = %self.database, "{}", pooler_message(&self.database, &evidence));
                    return;
                }
                Err(LockError::Unreachable { reach, message }) => {
                    // A leadership claimed this round, before the session failed, counts no more.
                    self.spread.forget(&self.database);
                    if self.leadership.leads() {
                        // The lock may already be someone else's: stop querying at once.
                        self.set(false);
                        tracing::warn!(database = %self.database, error = %message, "ha: lost the lock session; standing by");
                    } else if !failing {
                        tracing::warn!(database = %self.database, error = %message, "ha: no lock session; standing by");
                    }
                    failing = true;
                    self.health.record(reach);
                    // A session that failed is never reused: whatever it was waiting for could
                    // still arrive, or never.
                    session = None;
                }
            }
        }
    }

    async fn open(&self) -> Result<Session, LockError> {
        let mut conn = connect(&self.options, self.within).await?;
        let keys = keys(&mut conn, &self.ha, self.within).await?;
        Ok(Session { conn, keys, candidate: false, wanting: false })
    }

    /// One round: the leader checks its session is alive, a standby tries for the lock (and checks
    /// the session is one of its own when it gets it). Whether this replica leads after it.
    async fn step(&self, session: &mut Session) -> Result<bool, LockError> {
        if self.spread.active() {
            return self.spread_step(session).await;
        }
        let (conn, key) = (&mut session.conn, session.keys.leader);
        if self.leadership.leads() {
            one_row(conn, "SELECT 1", self.within).await?;
            return Ok(true);
        }
        if !try_lock(conn, key, self.within).await? {
            return Ok(false);
        }
        verify_session(conn, &self.options, key, true, self.within).await?;
        Ok(true)
    }

    /// [`Self::step`] with several databases: the round also counts the live replicas and the
    /// wants on this database (which checks the session too), and follows [`Spread`]'s rules.
    async fn spread_step(&self, session: &mut Session) -> Result<bool, LockError> {
        let (within, keys) = (self.within, session.keys);
        let conn = &mut session.conn;
        if !session.candidate {
            one_row(conn, &format!("SELECT pg_advisory_lock_shared({})::text", keys.candidate), within).await?;
            session.candidate = true;
        }
        let answer = text(&one_row(conn, &spread::view_sql(keys.candidate, keys.want), within).await?)?;
        let view = spread::parse_view(&answer).ok_or_else(|| LockError::Unreachable {
            reach: Reach::Answered,
            message: format!("unexpected answer counting the replicas: {answer:?}"),
        })?;
        let wants = self.spread.wants(view.live);
        if wants != session.wanting {
            let call = if wants { "pg_advisory_lock_shared" } else { "pg_advisory_unlock_shared" };
            one_row(conn, &format!("SELECT {call}({})::text", keys.want), within).await?;
            session.wanting = wants;
        }
        if self.leadership.leads() {
            if self.spread.release(&self.database, view) {
                // Stop querying before the lock is free for another replica to take.
                self.set(false);
                one_row(conn, &format!("SELECT pg_advisory_unlock({})::text", keys.leader), within).await?;
                tracing::info!(database = %self.database, replicas = view.live, share = self.spread.share(view.live), "ha: gave this leadership up for another replica to take");
                return Ok(false);
            }
            return Ok(true);
        }
        if !self.spread.may_try(view) || !try_lock(conn, keys.leader, within).await? {
            return Ok(false);
        }
        if !self.spread.claim(&self.database, view.live) {
            one_row(conn, &format!("SELECT pg_advisory_unlock({})::text", keys.leader), within).await?;
            return Ok(false);
        }
        verify_session(conn, &self.options, keys.leader, true, within).await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_keys_are_stable_and_differ_by_database() {
        assert_eq!(derived_key("app"), derived_key("app"));
        assert_ne!(derived_key("app"), derived_key("app2"));
    }
}
