//! A signal's source as the status page shows it, from the health series the sources export
//! (`integration_exporter_query_*`, `_http_*`, `_log_*`): whether its last read worked, when one
//! last did, and the kind of its latest error. The kind comes from which error counter grew, so
//! the board keeps the counters it last saw.

use std::collections::HashMap;

use serde::Serialize;

use crate::self_metrics;
use crate::spec::ResolvedSignal;
use crate::state::Family;
use crate::verdict::readings::{Labels, scalars};

/// One source's health.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SourceHealth {
    /// `sql`, `http` or `log`.
    pub kind: &'static str,
    /// The signal for a polled source, the log source for a log.
    pub name: String,
    /// Whether its last read worked; `None` before the first.
    pub ok: Option<bool>,
    /// When a read last worked (a poll answered in full, a log line was read), unix seconds.
    pub last_success: Option<f64>,
    /// The kind of its latest error (`connect`, `timeout`, `schema`, `status`, `path`, `no file`,
    /// `read` ...), while it is the latest news.
    pub error_kind: Option<String>,
    /// For a log: how many of its files are open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
}

/// Counters last seen, to tell which error is the newest.
#[derive(Default)]
pub struct Tracked {
    errors: HashMap<(String, String), f64>,
    /// By signal (or log): the kind of the newest error and when it was seen.
    last_error: HashMap<String, (String, f64)>,
    /// By log source: bytes read so far, and when that last grew.
    log_bytes: HashMap<String, (f64, Option<f64>)>,
}

fn samples<'a>(families: &HashMap<&str, &'a Family>, name: &str) -> impl Iterator<Item = (&'a Labels, f64)> {
    scalars(families.get(name).copied())
}

fn label<'a>(labels: &'a Labels, name: &str) -> Option<&'a str> {
    labels.iter().find(|(k, _)| &**k == name).map(|(_, v)| &**v)
}

/// The value of `name{key="value"}`, summed over its other labels.
fn by(families: &HashMap<&str, &Family>, name: &str, key: &str, value: &str) -> Option<f64> {
    let mut found = None;
    for (labels, v) in samples(families, name) {
        if label(labels, key) == Some(value) {
            found = Some(found.unwrap_or(0.0) + v);
        }
    }
    found
}

/// Error counts by kind, of `signal`'s polled source.
fn error_counts(families: &HashMap<&str, &Family>, errors: &str, signal: &str) -> Vec<(String, f64)> {
    samples(families, errors)
        .filter(|(l, _)| label(l, "signal") == Some(signal))
        .filter_map(|(l, v)| Some((label(l, "kind")?.to_string(), v)))
        .collect()
}

impl Tracked {
    /// Notes which error counters grew and when a log last read bytes, from a reading `at`.
    pub fn observe(&mut self, signals: &[&ResolvedSignal], families: &HashMap<&str, &Family>, at: f64) {
        for signal in signals {
            let id = &signal.signal.id;
            if let Some(kind) = signal.signal.source.settings().polled() {
                for (error, count) in error_counts(families, kind.health.errors.name, id) {
                    let before = self.errors.insert((id.clone(), error.clone()), count);
                    if before.is_some_and(|b| count > b) {
                        self.last_error.insert(id.clone(), (error, at));
                    }
                }
            }
            if let Some(log) = signal.log_id() {
                let bytes = by(families, self_metrics::LOG_BYTES_READ.name, "log", log).unwrap_or(0.0);
                let entry = self.log_bytes.entry(log.to_string()).or_insert((bytes, None));
                if bytes > entry.0 {
                    *entry = (bytes, Some(at));
                }
                let errors = by(families, self_metrics::LOG_READ_ERRORS.name, "log", log).unwrap_or(0.0);
                let before = self.errors.insert((log.to_string(), "read".into()), errors);
                if before.is_some_and(|b| errors > b) {
                    self.last_error.insert(log.to_string(), ("read".into(), at));
                }
            }
        }
    }

    /// Forgets what the model no longer reads.
    pub fn keep(&mut self, names: &[String]) {
        self.errors.retain(|(n, _), _| names.contains(n));
        self.last_error.retain(|n, _| names.contains(n));
        self.log_bytes.retain(|n, _| names.contains(n));
    }
}

/// The health of `signal`'s source now; `pending` are the producers that have not finished
/// their first read (their health series are still the zeros published at start).
pub fn of(
    signal: &ResolvedSignal,
    families: &HashMap<&str, &Family>,
    tracked: &Tracked,
    pending: &[String],
) -> SourceHealth {
    let id = signal.signal.id.as_str();
    if let Some(log) = signal.log_id() {
        let files = by(families, self_metrics::LOG_FILES.name, "log", log);
        let last_success = tracked.log_bytes.get(log).and_then(|(_, at)| *at);
        let recent_error = tracked.last_error.get(log).filter(|(_, at)| last_success.is_none_or(|s| *at >= s));
        let error_kind = match files {
            Some(0.0) => Some("no file".to_string()),
            _ => recent_error.map(|(kind, _)| kind.clone()),
        };
        return SourceHealth {
            kind: "log",
            name: log.to_string(),
            ok: files.map(|n| n > 0.0 && error_kind.is_none()),
            last_success,
            error_kind,
            files: files.map(|n| n as u64),
        };
    }
    let kind = signal.signal.source.settings().kind();
    let Some(polled) = signal.signal.source.settings().polled() else {
        return SourceHealth {
            kind,
            name: id.to_string(),
            ok: None,
            last_success: None,
            error_kind: None,
            files: None,
        };
    };
    let first_read_pending = pending.iter().any(|p| p.split_once(':').is_some_and(|(_, of)| of == id));
    let ok = by(families, polled.health.ok.name, "signal", id).map(|v| v == 1.0).filter(|_| !first_read_pending);
    let last_success = by(families, polled.health.last_success.name, "signal", id);
    let newest =
        tracked.last_error.get(id).filter(|(_, at)| last_success.is_none_or(|s| *at >= s)).map(|(k, _)| k.clone());
    let error_kind = newest.or_else(|| {
        // Failing since before the board's first reading: the kind counted most.
        (ok == Some(false))
            .then(|| error_counts(families, polled.health.errors.name, id))
            .and_then(|counts| counts.into_iter().filter(|(_, n)| *n > 0.0).max_by(|a, b| a.1.total_cmp(&b.1)))
            .map(|(k, _)| k)
    });
    SourceHealth { kind, name: id.to_string(), ok, last_success, error_kind, files: None }
}

impl SourceHealth {
    /// Whether the source cannot be read now: why, for a verdict that needs it.
    pub fn failing(&self) -> Option<String> {
        (self.ok == Some(false)).then(|| match &self.error_kind {
            Some(kind) => format!("{} `{}` is failing ({kind})", self.kind, self.name),
            None => format!("{} `{}` is failing", self.kind, self.name),
        })
    }
}
