//! The error budget row of a pack's dashboard: per SLO, the budget left over the period and the
//! burn rate over each tier's long window, read from the records of [`super::slo`].

use serde_json::{Value, json};

use super::go_format::go_number;
use super::output::grafana::{PanelSpec, link, ref_id, step};
use super::scope::Scope;
use super::slo::{percent, record_name};
use crate::spec::{
    BURN_TIERS, BurnTier, PanelKind, PromDuration, ResolvedSignal, SLO_PERIOD, Severity, Slo, window_text,
};

/// The burn rate drawn per window: the error ratio over the budget (1 spends the budget in
/// exactly the period).
fn burn(sc: &Scope, slo: &Slo, window: PromDuration) -> String {
    // The records are the fleet's: no `instance`, which `instance=~"$instance|"` lets through.
    let record = super::scope::scoped(&sc.alerts(), &record_name(slo, window), "");
    format!("{record} / {}", go_number(slo.budget()))
}

/// Colours of a burn series: green up to the tier's factor, its colour past it.
fn burn_override(ref_id: &str, tier: &BurnTier) -> Value {
    let color = match tier.severity {
        Severity::Critical => "red",
        Severity::Warning => "orange",
        Severity::Info => "blue",
    };
    json!({
        "matcher": { "id": "byFrameRefID", "options": ref_id },
        "properties": [
            { "id": "thresholds", "value": { "mode": "absolute", "steps": [
                step("green", None),
                // Grafana colours a value with the last step at or below it; the tier fires above.
                step(color, Some(tier.factor.next_up())),
            ] } },
            { "id": "custom.thresholdsStyle", "value": { "mode": "line" } },
        ],
    })
}

/// The SLO's two panels: the budget left over the period (a stat) and the burn rate over each
/// tier's long window (a time series, each coloured by its own tier).
pub fn panels(sc: &Scope, signal: &ResolvedSignal, slo: &Slo) -> (Value, Value) {
    let title = &signal.signal.title;
    let objective = percent(slo.objective);
    let budget = percent(slo.budget());
    let runbook = match &signal.runbook_url {
        Some(url) => vec![link("Runbook", url)],
        None => vec![],
    };
    let left = PanelSpec {
        kind: PanelKind::Stat,
        title: format!("{title}: error budget left"),
        description: format!(
            "Share of the 30-day error budget not yet spent: the objective is {objective} of {}, so {budget} of them may fail over 30 days. 100% is no failure at all, 0 the budget spent, below 0 the objective missed. Orange once three quarters are spent.",
            slo.events.trim()
        ),
        unit: "percentunit".into(),
        targets: vec![(
            format!("1 - {}", burn(sc, slo, SLO_PERIOD)),
            Some("budget left".into()),
        )],
        thresholds: vec![step("red", None), step("orange", Some(0.0)), step("green", Some(0.25))],
        draw_thresholds: false,
        overrides: Vec::new(),
        range: None,
        links: runbook.clone(),
    }
    .build();
    let lines: Vec<String> = BURN_TIERS
        .iter()
        .map(|t| {
            format!(
                "over {} (and {}) {} above {}",
                window_text(t.long),
                window_text(t.short),
                if t.severity == Severity::Critical { "pages" } else { "opens a ticket" },
                go_number(t.factor)
            )
        })
        .collect();
    let rate = PanelSpec {
        kind: PanelKind::Timeseries,
        title: format!("{title}: error budget burn rate"),
        description: format!(
            "How many times faster than the 30-day period the error budget ({budget} of {}) is being spent, over each alerting window: 1 spends it in exactly 30 days. `{}` {}.",
            slo.events.trim(),
            slo.alert,
            lines.join("; ")
        ),
        unit: "short".into(),
        targets: BURN_TIERS
            .iter()
            .map(|t| (burn(sc, slo, t.long), Some(format!("{} burn rate", window_text(t.long)))))
            .collect(),
        thresholds: vec![step("green", None)],
        draw_thresholds: false,
        overrides: BURN_TIERS.iter().enumerate().map(|(i, t)| burn_override(&ref_id(i), t)).collect(),
        range: None,
        links: runbook,
    }
    .build();
    (left, rate)
}
