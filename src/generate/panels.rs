//! The threshold colours and words panels share. A panel draws each alert's measured value as a series of its own and colours that
//! series by the alert alone ([`threshold_override`]): green wherever the alert does not fire,
//! the alert's colour wherever it does, in the alert's unit; every other series stays green.

use serde_json::{Value, json};

use super::go_format::threshold as threshold_text;
use super::output::grafana::step;
use crate::spec::{Alert, Condition, Op, Severity, ValueUnit};

fn severity_color(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "red",
        Severity::Warning => "orange",
        Severity::Info => "blue",
    }
}

fn op_words(op: Op) -> &'static str {
    match op {
        Op::Gt => "above",
        Op::Ge => "at or above",
        Op::Lt => "below",
        Op::Le => "at or below",
    }
}

/// Grafana unit of an alert's values.
pub fn grafana_unit(unit: ValueUnit) -> &'static str {
    match unit {
        ValueUnit::Percent => "percentunit",
        ValueUnit::Duration => "s",
        ValueUnit::Count | ValueUnit::Number => "short",
    }
}

/// Alerts that compare a value with a threshold (`absent` has none).
pub fn has_threshold(alert: &Alert) -> bool {
    !matches!(alert.condition, Condition::Absent(_))
}

/// `Alert Name (severity): above 20 for 5m`.
pub fn alert_line(alert: &Alert) -> String {
    let when = match &alert.condition {
        Condition::Absent(_) => "when the series does not exist".to_string(),
        _ => format!("{} {}", op_words(alert.op), threshold_text(alert.unit, alert.threshold)),
    };
    let for_ = if alert.for_.0.is_zero() { String::new() } else { format!(" for {}", alert.for_) };
    let while_: String = alert.while_.iter().map(|g| format!(", while {}", super::promql::guard_text(g))).collect();
    format!("Alert {} ({}): {when}{for_}{while_}", alert.name, alert.severity.as_str())
}

/// Where Grafana must switch to an alert's colour: it colours a value with the last step at or
/// below it, so a step at a `>` alert's threshold would colour the threshold itself, which does
/// not fire (a healthy 0 drawn red under `> 0`). For `>` and `<=` the step sits at the next number
/// after the threshold, for `>=` and `<` at the threshold.
pub fn boundary(alert: &Alert) -> f64 {
    match alert.op {
        Op::Gt | Op::Le => alert.threshold.next_up(),
        Op::Ge | Op::Lt => alert.threshold,
    }
}

/// Threshold steps of alerts that compare one value: each region of values gets the color of the
/// worst alert that fires there and green where none does, with a step only where the colour
/// changes. One `>` alert: green, then its colour from just past its threshold; one `<` alert:
/// its colour, then green from its threshold on.
pub fn threshold_steps(alerts: &[&Alert]) -> Vec<Value> {
    let alerts: Vec<&Alert> = alerts.iter().copied().filter(|a| has_threshold(a) && a.threshold.is_finite()).collect();
    let mut bounds: Vec<f64> = alerts.iter().map(|a| boundary(a)).collect();
    bounds.sort_by(f64::total_cmp);
    bounds.dedup();
    let color_at = |v: f64| {
        alerts.iter().filter(|a| a.op.holds(v, a.threshold)).map(|a| a.severity).min().map_or("green", severity_color)
    };
    let Some(&first) = bounds.first() else {
        return vec![step("green", None)];
    };
    let mut color = color_at(first - first.abs().max(1.0));
    let mut steps = vec![step(color, None)];
    for &at in &bounds {
        // From a boundary on the colour holds up to the next one: the boundary itself is a value
        // of the region it opens.
        let next = color_at(at);
        if next != color {
            steps.push(step(next, Some(at)));
            color = next;
        }
    }
    steps
}

/// The settings of the series (query `ref_id`) that draws what `alerts` compare: their unit,
/// their threshold steps, and on a time series the steps drawn as lines and areas.
pub fn threshold_override(ref_id: &str, alerts: &[&Alert], timeseries: bool) -> Value {
    let unit = alerts.first().map_or("short", |a| grafana_unit(a.unit));
    let mut properties = vec![
        json!({ "id": "unit", "value": unit }),
        json!({ "id": "thresholds", "value": { "mode": "absolute", "steps": threshold_steps(alerts) } }),
    ];
    if timeseries {
        properties.push(json!({ "id": "custom.thresholdsStyle", "value": { "mode": "line+area" } }));
    }
    json!({ "matcher": { "id": "byFrameRefID", "options": ref_id }, "properties": properties })
}
