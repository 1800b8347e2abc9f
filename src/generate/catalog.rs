//! The signal catalog: every enabled signal with its metrics, source, alerts and runbook section,
//! as a Markdown table (docs/packs.md's signal table is this output) and as JSON.

use serde::Serialize;

use super::go_format::threshold;
use crate::spec::{Alert, BURN_TIERS, Basis, Condition, Model, Slo, window_text};

#[derive(Serialize)]
pub struct Entry {
    pub id: String,
    pub metrics: Vec<String>,
    pub source: String,
    pub alerts: Vec<AlertEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slo: Option<SloEntry>,
    pub runbook_section: Option<String>,
    pub runbook_url: Option<String>,
}

#[derive(Serialize)]
pub struct AlertEntry {
    pub name: String,
    pub severity: String,
    /// The condition as a person reads it: `< 95% over 10m for 5m`.
    pub when: String,
    pub threshold: f64,
    /// `from runbook, <section>: "<quote>"` or `chosen: <why>`.
    pub basis: String,
}

#[derive(Serialize)]
pub struct SloEntry {
    /// The burn-rate alerts' name.
    pub alert: String,
    pub objective: f64,
    /// The tiers as a person reads them: `critical: > 14.4x over 1h and 5m for 2m; ...`.
    pub when: String,
    /// Where the numbers come from, as for alerts.
    pub basis: String,
}

fn slo_entry(slo: &Slo) -> SloEntry {
    let tiers: Vec<String> = BURN_TIERS
        .iter()
        .map(|t| {
            format!(
                "{}: > {}x over {} and {} for {}",
                t.severity.as_str(),
                super::go_format::go_number(t.factor),
                window_text(t.long),
                window_text(t.short),
                t.for_
            )
        })
        .collect();
    let guard = if slo.min_events > 0.0 {
        format!("; at least {} events in the long window", super::go_format::go_number(slo.min_events))
    } else {
        String::new()
    };
    let stated = slo.basis.as_ref().map(|b| b.stated()).unwrap_or_default();
    SloEntry {
        alert: slo.alert.clone(),
        objective: slo.objective,
        when: format!("{}{guard}", tiers.join("; ")),
        basis: if stated.is_empty() { "chosen: not stated".into() } else { stated_text(stated) },
    }
}

fn stated_text(stated: Vec<(&'static str, &Basis)>) -> String {
    let parts: Vec<String> = stated
        .into_iter()
        .map(|(aspect, basis)| match basis {
            Basis::Runbook { section, quote } => format!(
                "{aspect} from runbook, {}: \"{quote}\"",
                section.trim_start_matches(|c: char| !c.is_ascii_alphanumeric())
            ),
            Basis::Chosen(why) => format!("{aspect} chosen: {why}"),
        })
        .collect();
    parts.join("; ")
}

/// The condition as a person reads it: `< 95% over 10m for 5m`, `age > 5m for 1m`, `never
/// seen, for 5m`, each guard after it (`, while ...`).
pub fn when(a: &Alert) -> String {
    let window = a.condition.window().map(|w| format!(" over {w}")).unwrap_or_default();
    let when = match &a.condition {
        Condition::Absent(_) => format!("never seen, for {}", a.for_),
        Condition::Age(_) => format!("age {} {} for {}", a.op.as_str(), threshold(a.unit, a.threshold), a.for_),
        _ => format!("{} {}{window} for {}", a.op.as_str(), threshold(a.unit, a.threshold), a.for_),
    };
    std::iter::once(when)
        .chain(a.while_.iter().map(|g| format!(", while `{}`", super::promql::guard_text(g))))
        .collect()
}

/// How the catalog says where an alert's numbers come from: one part per aspect stated
/// (`threshold from runbook, <section>: "<quote>"; for chosen: <why>`).
pub fn basis(alert: &Alert) -> String {
    let stated = alert.basis.as_ref().map(|b| b.stated()).unwrap_or_default();
    if stated.is_empty() {
        return "chosen: not stated".into();
    }
    stated_text(stated)
}

pub fn entries(model: &Model) -> Vec<Entry> {
    model
        .enabled_signals()
        .map(|s| Entry {
            id: s.signal.id.clone(),
            metrics: s.signal.metrics.iter().map(|m| m.name.clone()).collect(),
            source: s.signal.source.settings().describe(&s.source),
            alerts: s
                .signal
                .alerts
                .iter()
                .filter(|a| a.enabled)
                .map(|a| AlertEntry {
                    name: a.name.clone(),
                    severity: a.severity.as_str().into(),
                    when: when(a),
                    threshold: a.threshold,
                    basis: basis(a),
                })
                .collect(),
            slo: s.signal.slo.as_ref().filter(|slo| slo.enabled).map(slo_entry),
            runbook_section: s.signal.runbook_section.clone(),
            runbook_url: s.runbook_url.clone(),
        })
        .collect()
}

pub fn markdown(model: &Model) -> String {
    let mut out = String::from(
        "| Signal | Metrics | Source | Alert (severity): condition | Runbook section |\n|---|---|---|---|---|\n",
    );
    for e in entries(model) {
        let metrics: Vec<String> = e.metrics.iter().map(|m| format!("`{m}`")).collect();
        let mut alerts: Vec<String> =
            e.alerts.iter().map(|a| format!("`{}` ({}): {} ({})", a.name, a.severity, a.when, a.basis)).collect();
        if let Some(slo) = &e.slo {
            alerts.push(format!(
                "`{}` (SLO {}, error budget burn): {} ({})",
                slo.alert,
                super::go_format::percentage(slo.objective),
                slo.when,
                slo.basis
            ));
        }
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            e.id,
            metrics.join("<br>"),
            e.source,
            if alerts.is_empty() { "—".to_string() } else { alerts.join("<br>") },
            e.runbook_section
                .as_deref()
                .map(|s| s.trim_start_matches(|c: char| !c.is_ascii_alphanumeric()))
                .unwrap_or("—")
        ));
    }
    out
}

pub fn json(model: &Model) -> String {
    serde_json::to_string_pretty(&entries(model)).unwrap_or_default() + "\n"
}
