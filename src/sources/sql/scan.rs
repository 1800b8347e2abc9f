//! Shared scans: a pack's query that several signals read, run once per collection for all of
//! them. Readers are grouped by what makes one run serve them all: the scan, its rendered query
//! (the same pack enabling's parameters) and the schedule. A reader whose interval or timeout the
//! user changed runs the scan alone on its own schedule rather than splitting or stretching the
//! others'.

use std::time::Duration;

use sqlx::postgres::PgPool;

use super::{QueryError, Reach, Series, SignalRun, run_streaming, scan_of};
use crate::spec::{ResolvedSignal, Schedule, SqlSource};

/// Signals that one query run serves.
pub struct Group<'a> {
    /// The shared scan, `None` for a signal's own query (always a group of one).
    pub scan: Option<String>,
    pub query: String,
    pub schedule: Schedule,
    pub readers: Vec<&'a ResolvedSignal>,
}

/// The runs a database's enabled SQL signals need, in the order of their first signal.
pub fn groups<'a>(signals: impl Iterator<Item = (&'a ResolvedSignal, &'a SqlSource, Schedule)>) -> Vec<Group<'a>> {
    let mut out: Vec<Group<'a>> = Vec::new();
    for (signal, sql, schedule) in signals {
        let shared = out
            .iter_mut()
            .find(|g| g.scan.is_some() && g.scan == sql.scan && g.query == sql.query && g.schedule == schedule);
        match shared {
            Some(group) => group.readers.push(signal),
            None => {
                out.push(Group { scan: sql.scan.clone(), query: sql.query.clone(), schedule, readers: vec![signal] })
            }
        }
    }
    out
}

/// One reader's side of a run.
struct Reading<'a> {
    series: Series<'a>,
    /// It reached the series cap: the rows after are not its.
    full: bool,
    failed: Option<QueryError>,
}

/// Runs scan `name` once for `readers`: what the run says about the database, and each reader's
/// outcome. A reader whose columns cannot be read fails alone; the others keep reading. Every
/// error names the scan, since the query in the reader's signal is not its own.
pub async fn run(
    pool: &PgPool,
    name: &str,
    readers: &[&ResolvedSignal],
    query: &str,
    timeout: Duration,
) -> (Reach, Vec<Result<SignalRun, QueryError>>) {
    let mut readings: Vec<Reading<'_>> =
        readers.iter().map(|s| Reading { series: Series::new(s), full: false, failed: None }).collect();
    let result = run_streaming(pool, query, timeout, &mut |row| {
        for reading in readings.iter_mut().filter(|r| !r.full && r.failed.is_none()) {
            match reading.series.add(&row) {
                Ok(true) => {}
                Ok(false) => reading.full = true,
                Err(e) => reading.failed = Some(e),
            }
        }
        Ok(readings.iter().any(|r| !r.full && r.failed.is_none()))
    })
    .await;
    let named =
        |e: &QueryError| QueryError { kind: e.kind, message: format!("scan `{name}`: {}", e.message), reach: e.reach };
    match result {
        Err(e) => (e.reach, readings.iter().map(|_| Err(named(&e))).collect()),
        Ok(_) => {
            let runs = readings
                .into_iter()
                .map(|r| match r.failed {
                    Some(e) => Err(named(&e)),
                    None => {
                        let folds = r.series.folds().clone();
                        Ok(SignalRun { families: r.series.families(), truncated: r.full, folds })
                    }
                })
                .collect();
            (Reach::Answered, runs)
        }
    }
}

/// The scans `signals` read, each with its readers' ids, in the order of their first reader:
/// what `check --explain` plans once per scan.
pub fn readers_by_scan<'a>(signals: impl Iterator<Item = &'a ResolvedSignal>) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for signal in signals {
        let Some(scan) = scan_of(signal) else { continue };
        match out.iter_mut().find(|(s, _)| s == scan) {
            Some((_, ids)) => ids.push(signal.signal.id.clone()),
            None => out.push((scan.to_string(), vec![signal.signal.id.clone()])),
        }
    }
    out
}
