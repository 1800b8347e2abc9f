//! The polled sources read once for `diagnose`, through the exporter's own code paths: each
//! query in its read-only transaction with its timeout, each endpoint with its auth and timeout.
//! The database is tried once first, so a database that cannot be reached is one line with the
//! real reason, not one "pool timed out" per query.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::sources::health::ErrorKind;
use crate::sources::http::HttpPoller;
use crate::sources::sql;
use crate::spec::{Model, ResolvedSignal, Source};
use crate::state::Family;

/// What one query or endpoint gave.
pub struct PolledRead {
    pub families: Vec<Family>,
    /// Why it failed (in part, for an endpoint whose answer lacked a value).
    pub error: Option<String>,
    pub took: Duration,
}

/// The database as a whole: where, and whether it could be reached.
pub struct DatabaseRead {
    /// `host:port/db`.
    pub name: String,
    pub error: Option<String>,
}

/// Runs each SQL signal's query once, one after the other.
pub async fn read_database(
    model: &Model,
    spec_dir: &Path,
    signals: &[&ResolvedSignal],
) -> (Option<DatabaseRead>, BTreeMap<String, PolledRead>) {
    let queries: Vec<(&ResolvedSignal, &str, Duration)> = signals
        .iter()
        .filter_map(|s| match (&s.signal.source, s.schedule()) {
            (Source::Sql(q), Some(schedule)) => Some((*s, q.query.as_str(), schedule.timeout.0)),
            _ => None,
        })
        .collect();
    let mut out = BTreeMap::new();
    let Some(db) = (!queries.is_empty()).then_some(()).and(model.config.database.as_ref()) else {
        return (None, out);
    };
    let failed_all = |out: &mut BTreeMap<String, PolledRead>, why: &str| {
        for (s, _, _) in &queries {
            let read =
                PolledRead { families: Vec::new(), error: Some(format!("not run: {why}")), took: Duration::ZERO };
            out.insert(s.signal.id.clone(), read);
        }
    };
    let options = match sql::dsn::load(db, spec_dir).map(|dsn| dsn.options).map_err(|e| e.to_string()) {
        Ok(options) => options,
        Err(e) => {
            failed_all(&mut out, &e);
            return (Some(DatabaseRead { name: "database".into(), error: Some(e) }), out);
        }
    };
    let name = sql::database_label(&options);
    if let Err(e) = sql::reach::connect_once(&options, db.connect_timeout.0).await {
        failed_all(&mut out, &e);
        return (Some(DatabaseRead { name, error: Some(e) }), out);
    }
    let pool = sql::pool(options, 1, db.connect_timeout.0);
    for (signal, query, timeout) in queries {
        let started = Instant::now();
        let result = sql::run_signal(&pool, signal, query, timeout).await;
        let took = started.elapsed();
        let read = match result {
            Ok(run) => PolledRead { families: run.families, error: None, took },
            Err(e) => {
                PolledRead { families: Vec::new(), error: Some(format!("{}: {}", e.kind.as_str(), e.message)), took }
            }
        };
        out.insert(signal.signal.id.clone(), read);
    }
    pool.close().await;
    (Some(DatabaseRead { name, error: None }), out)
}

/// Polls each HTTP signal's endpoint once, all at the same time.
pub async fn read_endpoints(signals: &[&ResolvedSignal]) -> BTreeMap<String, PolledRead> {
    let mut tasks = Vec::new();
    for signal in signals {
        let Some(mut poller) = HttpPoller::new(signal) else { continue };
        let id = signal.signal.id.clone();
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            let families = poller.poll().await;
            let read =
                PolledRead { families, error: poller.last_failure().map(str::to_string), took: started.elapsed() };
            (id, read)
        }));
    }
    let mut out = BTreeMap::new();
    for task in tasks {
        if let Ok((id, read)) = task.await {
            out.insert(id, read);
        }
    }
    out
}
