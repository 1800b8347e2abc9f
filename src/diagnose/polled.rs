//! The polled sources read once for `diagnose`, through the exporter's own code paths: each
//! query in its read-only transaction with its timeout, each endpoint with its auth and timeout.
//! Each database is tried once first, so a database that cannot be reached is one line with the
//! real reason, not one "pool timed out" per query; the databases are read at the same time and
//! apart, so one that is down never holds back or hides another's answers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::sources::health::ErrorKind;
use crate::sources::http::HttpPoller;
use crate::sources::sql;
use crate::spec::config::DatabaseConfig;
use crate::spec::{Model, ResolvedSignal, Source};
use crate::state::Family;

/// What one query or endpoint gave (for a query read on several databases, all of them).
pub struct PolledRead {
    pub families: Vec<Family>,
    /// Why it failed (in part, for an endpoint whose answer lacked a value, or for a query one
    /// of whose databases failed).
    pub error: Option<String>,
    pub took: Duration,
}

/// One query run on one database.
pub struct QueryRun {
    pub signal: String,
    pub error: Option<String>,
    pub took: Duration,
}

/// One database as a whole: where, whether it could be reached, and its queries' runs.
pub struct DatabaseRead {
    /// The spec's name for it (`default` for `database:`).
    pub spec_name: String,
    /// `host:port/db`, or the spec's name when its URL could not even be loaded.
    pub name: String,
    pub error: Option<String>,
    /// The queries it was to run.
    pub queries: usize,
    /// Each query run, when it could be reached.
    pub runs: Vec<QueryRun>,
}

/// Runs the queries of the selected signals once on each database they read: a database's
/// queries one after the other, the databases at the same time. Returns the databases in the
/// spec's order and each signal's reads merged over its databases (series labelled with their
/// database when the spec has several, as the exporter labels them).
pub async fn read_databases(
    model: &Model,
    spec_dir: &Path,
    signals: &[&ResolvedSignal],
) -> (Vec<DatabaseRead>, BTreeMap<String, PolledRead>) {
    let ids: BTreeSet<String> = signals
        .iter()
        .filter(|s| matches!(s.signal.source, Source::Sql(_)) && s.schedule().is_some())
        .map(|s| s.signal.id.clone())
        .collect();
    let label = model.database_label().map(str::to_string);
    let mut tasks = tokio::task::JoinSet::new();
    let order: Vec<String> = model.config.databases().iter().map(|(name, _)| name.to_string()).collect();
    for (name, db) in model.config.databases() {
        let model = model.for_database(name);
        if !model.enabled_signals().any(|s| ids.contains(&s.signal.id) && !s.databases.is_empty()) {
            continue;
        }
        let (name, db, spec_dir, ids) = (name.to_string(), db.clone(), spec_dir.to_path_buf(), ids.clone());
        let label = label.clone();
        tasks.spawn(async move { read_database(&model, &name, &db, &spec_dir, &ids, label.as_deref()).await });
    }
    let mut databases = Vec::new();
    let mut merged: BTreeMap<String, PolledRead> = BTreeMap::new();
    while let Some(done) = tasks.join_next().await {
        let Ok((database, reads)) = done else { continue };
        for (id, read) in reads {
            match merged.get_mut(&id) {
                None => {
                    merged.insert(id, read);
                }
                Some(into) => merge(into, read),
            }
        }
        databases.push(database);
    }
    databases.sort_by_key(|d| order.iter().position(|n| *n == d.spec_name));
    (databases, merged)
}

/// One signal's read on another database added to its reads so far: a family read on both is
/// one family holding both databases' series.
fn merge(into: &mut PolledRead, read: PolledRead) {
    for family in read.families {
        match into.families.iter_mut().find(|f| f.name == family.name) {
            Some(f) => f.samples.extend(family.samples),
            None => into.families.push(family),
        }
    }
    into.error = match (into.error.take(), read.error) {
        (Some(a), Some(b)) => Some(format!("{a}; {b}")),
        (a, b) => a.or(b),
    };
    into.took += read.took;
}

/// Runs the queries of `ids` that `model` (seen from database `name`) binds to it.
async fn read_database(
    model: &Model,
    name: &str,
    db: &DatabaseConfig,
    spec_dir: &Path,
    ids: &BTreeSet<String>,
    label: Option<&str>,
) -> (DatabaseRead, BTreeMap<String, PolledRead>) {
    let queries: Vec<(&ResolvedSignal, &str, Duration)> = model
        .enabled_signals()
        .filter(|s| ids.contains(&s.signal.id))
        .filter_map(|s| match (&s.signal.source, s.schedule()) {
            (Source::Sql(q), Some(schedule)) => Some((s, q.query.as_str(), schedule.timeout.0)),
            _ => None,
        })
        .collect();
    // With several databases every message says which one it is about.
    let on = |text: String| if label.is_some() { format!("database `{name}`: {text}") } else { text };
    let mut out = BTreeMap::new();
    let mut database = DatabaseRead {
        spec_name: name.to_string(),
        name: name.to_string(),
        error: None,
        queries: queries.len(),
        runs: Vec::new(),
    };
    let failed_all = |out: &mut BTreeMap<String, PolledRead>, why: &str| {
        for (s, _, _) in &queries {
            let read =
                PolledRead { families: Vec::new(), error: Some(on(format!("not run: {why}"))), took: Duration::ZERO };
            out.insert(s.signal.id.clone(), read);
        }
    };
    let options = match sql::dsn::load(db, spec_dir).map(|dsn| dsn.options).map_err(|e| e.to_string()) {
        Ok(options) => options,
        Err(e) => {
            failed_all(&mut out, &e);
            database.error = Some(e);
            return (database, out);
        }
    };
    database.name = match label {
        Some(_) => format!("{name} ({})", sql::database_label(&options)),
        None => sql::database_label(&options),
    };
    if let Err(e) = sql::reach::connect_once(&options, db.connect_timeout.0).await {
        failed_all(&mut out, &e);
        database.error = Some(e);
        return (database, out);
    }
    let pool = sql::pool(options, 1, db.connect_timeout.0);
    for (signal, query, timeout) in queries {
        let started = Instant::now();
        let result = sql::run_signal(&pool, signal, query, timeout).await;
        let took = started.elapsed();
        let read = match result {
            Ok(run) => {
                let mut families = run.families;
                if let Some(label) = label {
                    for sample in families.iter_mut().flat_map(|f| f.samples.iter_mut()) {
                        sample.labels.push((label.into(), name.into()));
                    }
                }
                PolledRead { families, error: None, took }
            }
            Err(e) => PolledRead {
                families: Vec::new(),
                error: Some(on(format!("{}: {}", e.kind.as_str(), e.message))),
                took,
            },
        };
        database.runs.push(QueryRun { signal: signal.signal.id.clone(), error: read.error.clone(), took });
        out.insert(signal.signal.id.clone(), read);
    }
    pool.close().await;
    (database, out)
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
