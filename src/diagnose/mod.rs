//! `integration-exporter diagnose`: the runbook's checks run once, now. Every source of the
//! selected signals is read once (each query, each endpoint, the newest lines of each log), each
//! alert's condition is judged from that by [`crate::verdict`], and the report lists the checks
//! in the runbook's order with value, threshold, verdict, next step and runbook link.

mod logs;
mod polled;
mod report;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::spec::{Condition, Model, ResolvedSignal};
use crate::state::Family;
use crate::verdict::readings::{bucket_totals, matches, scalars};
use crate::verdict::{self, Blind, Finding, Labels, Readings, Windowed};
use logs::LogRead;
use polled::{DatabaseRead, PolledRead};
pub use report::{Format, render};

/// One source as `diagnose` found it.
#[derive(Clone, Debug, Serialize)]
pub struct SourceStatus {
    /// `database`, `sql`, `http` or `log`.
    pub kind: &'static str,
    /// The signal (`sql`, `http`), the log source (`log`) or `host:port/db`.
    pub name: String,
    pub ok: bool,
    /// How it went: what was read, or why nothing was.
    pub detail: String,
}

/// Everything one run found.
#[derive(Clone, Debug, Serialize)]
pub struct Diagnosis {
    /// Unix seconds the sources were read at.
    pub at: f64,
    /// The exit status: 0 all ok, 1 a warning, 2 a critical, 3 something could not be checked.
    pub status: u8,
    pub checks: Vec<Finding>,
    pub sources: Vec<SourceStatus>,
}

/// The checks of `pack` (every pack when `None`), or why there are none to run.
fn selected<'m>(
    model: &'m Model,
    pack: Option<&str>,
) -> Result<Vec<(&'m ResolvedSignal, &'m crate::spec::Alert)>, String> {
    if let Some(pack) = pack
        && !model.packs.iter().any(|p| p.name == pack)
    {
        let known: Vec<&str> = model.packs.iter().map(|p| p.name.as_str()).collect();
        return Err(format!("the spec enables no pack `{pack}` (enabled: {})", known.join(", ")));
    }
    Ok(verdict::checks(model).into_iter().filter(|(s, _)| pack.is_none() || s.pack.as_deref() == pack).collect())
}

/// Every condition of an alert: its own and its guards'.
fn conditions(alert: &crate::spec::Alert) -> impl Iterator<Item = &Condition> {
    std::iter::once(&alert.condition).chain(alert.while_.iter().map(|g| &g.condition))
}

/// The signal exporting `metric`.
fn owner<'m>(model: &'m Model, metric: &str) -> Option<&'m ResolvedSignal> {
    model.metrics().find(|(_, m)| m.name == metric).map(|(s, _)| s)
}

/// Reads every source the selected checks need, once, and judges them.
pub async fn diagnose(model: &Model, spec_dir: &Path, pack: Option<&str>) -> Result<Diagnosis, String> {
    let checks = selected(model, pack)?;
    let now = crate::sources::unix_now();
    // The pack's signals, and those whose metrics its conditions read.
    let mut ids: BTreeSet<&str> = model
        .enabled_signals()
        .filter(|s| pack.is_none() || s.pack.as_deref() == pack)
        .map(|s| s.signal.id.as_str())
        .collect();
    for (_, alert) in &checks {
        for metric in conditions(alert).flat_map(Condition::metrics) {
            if let Some(s) = owner(model, metric) {
                ids.insert(&s.signal.id);
            }
        }
    }
    let signals: Vec<&ResolvedSignal> =
        model.enabled_signals().filter(|s| ids.contains(s.signal.id.as_str())).collect();
    // Per log source, the windows its metrics are counted over.
    let mut windows: BTreeMap<String, BTreeSet<Duration>> = BTreeMap::new();
    for s in &signals {
        if let Some(log) = s.log_id() {
            windows.entry(log.to_string()).or_default();
        }
    }
    for (_, alert) in &checks {
        for condition in conditions(alert) {
            let Some(window) = condition.window() else { continue };
            for metric in condition.metrics() {
                if let Some(log) = owner(model, metric).and_then(ResolvedSignal::log_id) {
                    windows.entry(log.to_string()).or_default().insert(window.0);
                }
            }
        }
    }

    let logs = {
        let model = model.clone();
        tokio::task::spawn_blocking(move || {
            windows
                .into_iter()
                .map(|(id, windows)| {
                    let read = match model.logs.get(&id) {
                        Some(log) => logs::read(&model, &id, log, &windows, now, logs::READ_BUDGET),
                        None => Err(logs::LogReadError::NotDefined),
                    };
                    (id, read)
                })
                .collect::<BTreeMap<String, Result<LogRead, logs::LogReadError>>>()
        })
    };
    let ((databases, mut polled), endpoints) =
        tokio::join!(polled::read_databases(model, spec_dir, &signals), polled::read_endpoints(&signals));
    polled.extend(endpoints);
    let logs = logs.await.map_err(|e| format!("reading the logs failed: {e}"))?;

    let readings = OneShot { model, polled, logs };
    let findings: Vec<Finding> = checks.iter().map(|(s, a)| verdict::evaluate(model, s, a, &readings, now)).collect();
    let sources = readings.sources(&databases, &signals, now);
    let status = status(&findings, &sources);
    Ok(Diagnosis { at: now, status, checks: findings, sources })
}

/// The exit status: that of the findings, and 3 when they are all ok but a source failed: a
/// source feeding only signals without alerts was still not checked.
fn status(findings: &[Finding], sources: &[SourceStatus]) -> u8 {
    match verdict::exit_status(findings) {
        0 if sources.iter().any(|s| !s.ok) => 3,
        status => status,
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Readings from one read of every source.
struct OneShot<'m> {
    model: &'m Model,
    /// By signal id.
    polled: BTreeMap<String, PolledRead>,
    /// By log source id.
    logs: BTreeMap<String, Result<LogRead, logs::LogReadError>>,
}

/// The scalar samples of `metric` in `families`; `None` when no family has that name.
fn samples(families: &[Family], metric: &str) -> Option<Vec<(Labels, f64)>> {
    let family = families.iter().find(|f| f.name == metric)?;
    Some(scalars(Some(family)).map(|(labels, v)| (labels.clone(), v)).collect())
}

fn kind(signal: &ResolvedSignal) -> &'static str {
    signal.signal.source.settings().kind()
}

impl OneShot<'_> {
    fn log_of(&self, metric: &str) -> Result<Option<&LogRead>, Blind> {
        let signal =
            owner(self.model, metric).ok_or_else(|| Blind::Source(format!("no enabled signal exports `{metric}`")))?;
        let Some(log) = signal.log_id() else { return Ok(None) };
        match self.logs.get(log) {
            Some(Ok(read)) => Ok(Some(read)),
            Some(Err(e)) => Err(Blind::Source(format!("log `{log}`: {e}"))),
            None => Err(Blind::Source(format!("log `{log}` was not read"))),
        }
    }

    fn window(&self, metric: &str, window: Duration) -> Result<&Windowed<Vec<Family>>, Blind> {
        match self.log_of(metric)? {
            Some(read) => read.windows.get(&window).ok_or_else(|| {
                Blind::Source(format!("the window {}s of `{metric}` was not counted", window.as_secs()))
            }),
            None => Err(Blind::NeedsHistory(format!(
                "`{metric}` is read by polling; its change over {} takes readings over time (Prometheus has them)",
                crate::spec::PromDuration::from_secs(window.as_secs())
            ))),
        }
    }

    fn sources(&self, databases: &[DatabaseRead], signals: &[&ResolvedSignal], now: f64) -> Vec<SourceStatus> {
        let mut out = Vec::new();
        for db in databases {
            let detail = match &db.error {
                // Its queries were not run: said once, here, not once per query.
                Some(e) => format!("{e}; {} not run", plural(db.queries, "query", "queries")),
                None => format!("reachable; {} run", plural(db.runs.len(), "query", "queries")),
            };
            out.push(SourceStatus { kind: "database", name: db.name.clone(), ok: db.error.is_none(), detail });
        }
        let several = databases.len() > 1;
        for db in databases {
            for run in &db.runs {
                let detail = match &run.error {
                    Some(e) => e.clone(),
                    None => format!("read in {} ms", run.took.as_millis()),
                };
                let name = if several { format!("{} on {}", run.signal, db.spec_name) } else { run.signal.clone() };
                out.push(SourceStatus { kind: "sql", name, ok: run.error.is_none(), detail });
            }
        }
        for s in signals.iter().filter(|s| s.schedule().is_some()) {
            if matches!(s.signal.source, crate::spec::Source::Sql(_)) {
                continue;
            }
            let Some(read) = self.polled.get(&s.signal.id) else { continue };
            let detail = match &read.error {
                Some(e) => e.clone(),
                None => format!("read in {} ms", read.took.as_millis()),
            };
            out.push(SourceStatus { kind: kind(s), name: s.signal.id.clone(), ok: read.error.is_none(), detail });
        }
        for (id, read) in &self.logs {
            let (ok, detail) = match read {
                Ok(read) => (true, read.describe(now)),
                Err(e) => (false, e.to_string()),
            };
            out.push(SourceStatus { kind: "log", name: id.clone(), ok, detail });
        }
        out
    }
}

impl Readings for OneShot<'_> {
    fn now(&self, metric: &str) -> Result<Vec<(Labels, f64)>, Blind> {
        if let Some(read) = self.log_of(metric)? {
            return Ok(samples(&read.all, metric).unwrap_or_default());
        }
        let signal =
            owner(self.model, metric).ok_or_else(|| Blind::Source(format!("no enabled signal exports `{metric}`")))?;
        let id = &signal.signal.id;
        let Some(read) = self.polled.get(id) else {
            return Err(Blind::Source(format!("{} `{id}` was not read", kind(signal))));
        };
        match (samples(&read.families, metric), &read.error) {
            (Some(series), _) => Ok(series),
            (None, Some(e)) => Err(Blind::Source(format!("{} `{id}`: {e}", kind(signal)))),
            (None, None) => Ok(Vec::new()),
        }
    }

    fn increase(
        &self,
        metric: &str,
        matchers: &BTreeMap<String, String>,
        window: Duration,
    ) -> Result<Windowed<f64>, Blind> {
        let counted = self.window(metric, window)?;
        let total = samples(&counted.value, metric)
            .unwrap_or_default()
            .iter()
            .filter(|(labels, _)| matches(labels, matchers))
            .map(|(_, v)| v)
            .sum();
        Ok(Windowed { value: total, seen: counted.seen })
    }

    fn rise(
        &self,
        metric: &str,
        _: &BTreeMap<String, String>,
        window: Duration,
    ) -> Result<Windowed<Vec<(Labels, f64)>>, Blind> {
        // Only a source failure outranks "one reading cannot tell".
        self.now(metric)?;
        Err(Blind::NeedsHistory(format!(
            "the rise of `{metric}` over {} takes a reading every minute of it; one reading cannot tell (Prometheus, or the status page after an hour, can)",
            crate::spec::PromDuration::from_secs(window.as_secs())
        )))
    }

    fn buckets(
        &self,
        metric: &str,
        matchers: &BTreeMap<String, String>,
        window: Duration,
    ) -> Result<Windowed<Vec<(f64, f64)>>, Blind> {
        let counted = self.window(metric, window)?;
        let total = bucket_totals(counted.value.iter().find(|f| f.name == metric), matchers);
        Ok(Windowed { value: total, seen: counted.seen })
    }
}

/// The subcommand: reads the spec's sources once and prints the report; the exit status is
/// [`Diagnosis::status`], 3 when nothing could be checked.
pub fn main(spec: &Path, model: &Model, pack: Option<&str>, format: Format) -> u8 {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start runtime: {e}");
            return 3;
        }
    };
    let spec_dir = Model::spec_dir(spec);
    match runtime.block_on(diagnose(model, &spec_dir, pack)) {
        Ok(diagnosis) => {
            let text = render(model, spec, &diagnosis, format, report::colours_on_stdout());
            use std::io::Write;
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
            diagnosis.status
        }
        Err(e) => {
            eprintln!("{e}");
            3
        }
    }
}
