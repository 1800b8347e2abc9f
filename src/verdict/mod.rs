//! Verdicts: each alert's condition judged now, from the spec's own threshold, window and
//! severity (never restated), by `diagnose` and the status page alike. A verdict is `ok`,
//! `warning` or `critical` (the severity of the alert whose condition holds now, before its
//! `for` has run), or `unknown` with the reason.

pub mod measure;
pub mod readings;

use serde::Serialize;

use crate::generate::go_format;
use crate::spec::{Alert, Condition, Model, Op, ResolvedSignal, Severity, ValueUnit};
use measure::{Measured, measure};
pub use readings::{Blind, Labels, Readings, Windowed};

/// How a check stands, worst last (so `max` is the worst).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Unknown,
    Warning,
    Critical,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Unknown => "unknown",
            Level::Warning => "warning",
            Level::Critical => "critical",
        }
    }
}

/// One metric series a shown value is (or is derived from, for an age): what `/metrics` serves.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Reading {
    /// `metric{label="value"}`, as the exposition writes it.
    pub series: String,
    pub value: f64,
}

/// One check judged: an alert's condition, or a signal without alerts (its value only).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    pub pack: Option<String>,
    pub signal: String,
    /// The signal's title.
    pub title: String,
    /// The alert; `None` for a signal without one.
    pub alert: Option<String>,
    pub severity: Option<Severity>,
    pub verdict: Level,
    /// Why: the comparison made, what kept it quiet, or why it could not be made.
    pub why: String,
    /// Set when the verdict is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blind: Option<Blind>,
    /// The value compared (the worst series'), in the alert's base unit.
    pub value: Option<f64>,
    /// The value as people read it (`21`, `98.5%`, `6m 12s`); `-` when there is none.
    pub value_text: String,
    /// The labels of the series shown, when the condition keeps series (`workflow="CI"`).
    pub series: String,
    /// The condition as written (`> 20 for 5m`).
    pub threshold: String,
    /// The metric series behind the value, when it is one series' own.
    pub reading: Option<Reading>,
    pub runbook_url: Option<String>,
    /// The pack's next step for this alert.
    pub step: Option<String>,
}

impl Finding {
    /// Whether the verdict could not be reached because a source could not be read (as opposed
    /// to a condition one reading cannot judge).
    pub fn source_blind(&self) -> bool {
        matches!(self.blind, Some(Blind::Source(_)))
    }
}

/// The next step the pack gives for `alert` (`Name:severity` before `Name`).
pub fn step(model: &Model, signal: &ResolvedSignal, alert: &Alert) -> Option<String> {
    let pack = model.packs.iter().find(|p| Some(&p.name) == signal.pack.as_ref())?;
    let exact = format!("{}:{}", alert.name, alert.severity.as_str());
    pack.playbook
        .iter()
        .find(|s| s.alert == exact)
        .or_else(|| pack.playbook.iter().find(|s| s.names(&alert.name, alert.severity)))
        .map(|s| s.step.trim().to_string())
}

/// Where `alert` stands in its pack's playbook (the runbook's order); unlisted ones come last.
fn rank(model: &Model, signal: &ResolvedSignal, alert: &Alert) -> usize {
    let Some(pack) = model.packs.iter().find(|p| Some(&p.name) == signal.pack.as_ref()) else { return usize::MAX };
    let exact = format!("{}:{}", alert.name, alert.severity.as_str());
    pack.playbook
        .iter()
        .position(|s| s.alert == exact)
        .or_else(|| pack.playbook.iter().position(|s| s.names(&alert.name, alert.severity)))
        .unwrap_or(usize::MAX)
}

/// Pack names in the order checks are listed: the spec's packs, then the user's own (`None`).
pub fn pack_order(model: &Model) -> Vec<Option<String>> {
    let mut order: Vec<Option<String>> = model.packs.iter().map(|p| Some(p.name.clone())).collect();
    if model.enabled_signals().any(|s| s.pack.is_none()) {
        order.push(None);
    }
    order
}

/// Every enabled alert of an enabled signal, pack by pack, each pack's in the runbook's order
/// (its playbook), the user's own signals last in the order written.
pub fn checks(model: &Model) -> Vec<(&ResolvedSignal, &Alert)> {
    let mut out = Vec::new();
    for pack in pack_order(model) {
        let mut of_pack: Vec<(usize, &ResolvedSignal, &Alert)> = model
            .enabled_signals()
            .filter(|s| s.pack == pack)
            .flat_map(|s| s.signal.alerts.iter().filter(|a| a.enabled).map(move |a| (s, a)))
            .map(|(s, a)| (rank(model, s, a), s, a))
            .collect();
        of_pack.sort_by_key(|(rank, _, _)| *rank);
        out.extend(of_pack.into_iter().map(|(_, s, a)| (s, a)));
    }
    out
}

/// A value as people read it, in the alert's unit.
pub fn show(unit: ValueUnit, v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    match unit {
        ValueUnit::Count if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.0}"),
        ValueUnit::Count | ValueUnit::Number => go_format::go_g4(v),
        ValueUnit::Percent => go_format::percentage(v),
        ValueUnit::Duration => go_format::duration(v),
    }
}

fn base(signal: &ResolvedSignal) -> Finding {
    Finding {
        pack: signal.pack.clone(),
        signal: signal.signal.id.clone(),
        title: signal.signal.title.clone(),
        alert: None,
        severity: None,
        verdict: Level::Ok,
        why: String::new(),
        blind: None,
        value: None,
        value_text: "-".into(),
        series: String::new(),
        threshold: String::new(),
        reading: None,
        runbook_url: signal.runbook_url.clone(),
        step: None,
    }
}

fn unknown(mut finding: Finding, blind: Blind) -> Finding {
    finding.verdict = Level::Unknown;
    finding.why = blind.why().to_string();
    finding.blind = Some(blind);
    finding
}

/// `(over the last 4m of the 10m window)` when only part of the window was read.
fn partly(seen: Option<std::time::Duration>, window: Option<crate::spec::PromDuration>) -> String {
    match (seen, window) {
        (Some(seen), Some(window)) => format!(
            " (from the last {} of the {window} window)",
            crate::spec::PromDuration::from_secs(seen.as_secs().max(1))
        ),
        _ => String::new(),
    }
}

/// Judges `alert` of `signal` at `now` (unix seconds).
pub fn evaluate(model: &Model, signal: &ResolvedSignal, alert: &Alert, readings: &dyn Readings, now: f64) -> Finding {
    let mut finding = Finding {
        alert: Some(alert.name.clone()),
        severity: Some(alert.severity),
        threshold: crate::generate::catalog::when(alert),
        step: step(model, signal, alert),
        ..base(signal)
    };
    let measured = match measure(&alert.condition, readings, now) {
        Ok(m) => m,
        Err(blind) => return unknown(finding, blind),
    };
    let absent = matches!(alert.condition, Condition::Absent(_));
    let holds = |v: f64| absent || alert.op.holds(v, alert.threshold);
    let holding = measured.series.iter().filter(|(_, v)| holds(*v)).count();
    let Some(worst) = worst(&measured, alert.op, &holds) else {
        finding.why = measured.quiet.clone().unwrap_or_else(|| match absent {
            true => "seen: present".into(),
            false => "no series: nothing to compare".into(),
        });
        finding.why.push_str(&partly(measured.seen, alert.condition.window()));
        return finding;
    };
    let (labels, value) = measured.series[worst].clone();
    finding.value = Some(value);
    finding.value_text = if absent { "never seen".into() } else { show(alert.unit, value) };
    finding.series = readings::label_text(&labels);
    finding.reading = measured.readings[worst]
        .as_ref()
        .map(|(metric, labels, v)| Reading { series: readings::series_name(metric, labels), value: *v });
    let threshold = go_format::threshold(alert.unit, alert.threshold);
    let of = if measured.series.len() > 1 {
        format!(" ({holding} of {} series)", measured.series.len())
    } else {
        String::new()
    };
    let window = partly(measured.seen, alert.condition.window());
    if holding == 0 || measured.quiet.is_some() {
        finding.why = match &measured.quiet {
            Some(quiet) => format!("{}: {quiet}", finding.value_text),
            None => format!("{}, not {} {threshold}", finding.value_text, alert.op.as_str()),
        };
        finding.why.push_str(&window);
        return finding;
    }
    for guard in &alert.while_ {
        let m = match measure(&guard.condition, readings, now) {
            Ok(m) => m,
            Err(blind) => return unknown(finding, blind),
        };
        if m.quiet.is_some() || !m.series.iter().any(|(_, v)| guard.op.holds(*v, guard.threshold)) {
            finding.why = format!(
                "{} {} {threshold}{of}, but quiet while `{}` does not hold",
                finding.value_text,
                alert.op.as_str(),
                crate::generate::promql::guard_text(guard)
            );
            return finding;
        }
    }
    let comparison = if absent {
        "never seen".to_string()
    } else {
        format!("{} {} {threshold}", finding.value_text, alert.op.as_str())
    };
    let fires = if alert.for_.0.is_zero() {
        "fires at once".to_string()
    } else {
        format!("fires once it holds for {}", alert.for_)
    };
    finding.verdict = match alert.severity {
        Severity::Critical => Level::Critical,
        Severity::Warning => Level::Warning,
        Severity::Info => Level::Ok,
    };
    finding.why = match alert.severity {
        Severity::Info => format!("{comparison}{of} now{window}; an info alert pages nobody"),
        _ => format!("{comparison}{of} now{window}; {fires}"),
    };
    finding
}

/// The series to show: the one furthest past the threshold among those that hold, else the one
/// nearest to it. `None` when there is no series.
fn worst(measured: &Measured, op: Op, holds: &dyn Fn(f64) -> bool) -> Option<usize> {
    let higher_is_worse = matches!(op, Op::Gt | Op::Ge);
    let key = |i: usize| {
        let v = measured.series[i].1;
        let v = if v.is_nan() {
            f64::NEG_INFINITY
        } else if higher_is_worse {
            v
        } else {
            -v
        };
        (holds(measured.series[i].1), v)
    };
    // Reversed: of equal ones, `max_by` keeps the last, which is then the first listed.
    (0..measured.series.len()).rev().max_by(|a, b| {
        let (ha, va) = key(*a);
        let (hb, vb) = key(*b);
        ha.cmp(&hb).then(va.total_cmp(&vb))
    })
}

/// A signal without alerts: its value (the one series, or the sum of its first metric's), `ok`
/// while its source reads, `unknown` when it does not.
pub fn observe(signal: &ResolvedSignal, readings: &dyn Readings) -> Finding {
    let mut finding = Finding { threshold: "no alert".into(), ..base(signal) };
    let Some(metric) = signal.signal.metrics.first() else { return finding };
    let series = match readings.now(&metric.name) {
        Ok(series) => series,
        Err(blind) => return unknown(finding, blind),
    };
    match series.as_slice() {
        [] => finding.why = "no series yet".into(),
        [(labels, v)] => {
            finding.value = Some(*v);
            finding.value_text = show(ValueUnit::Number, *v);
            finding.series = readings::label_text(labels);
            finding.reading = Some(Reading { series: readings::series_name(&metric.name, labels), value: *v });
            finding.why = "read; no alert watches it".into();
        }
        many => {
            let sum: f64 = many.iter().map(|(_, v)| *v).filter(|v| v.is_finite()).sum();
            finding.value = Some(sum);
            finding.value_text = show(ValueUnit::Number, sum);
            finding.why = format!("sum of {} series; no alert watches it", many.len());
        }
    }
    finding
}

/// The exit status of a set of findings: 2 with a critical, else 1 with a warning, else 3 when a
/// source could not be read, else 0.
pub fn exit_status(findings: &[Finding]) -> u8 {
    let worst = findings.iter().map(|f| f.verdict).max().unwrap_or(Level::Ok);
    match worst {
        Level::Critical => 2,
        Level::Warning => 1,
        _ if findings.iter().any(Finding::source_blind) => 3,
        _ => 0,
    }
}

#[cfg(test)]
mod tests;
