//! One Grafana panel from its parts ([`PanelSpec`]), and the threshold colors and words panels
//! share.

use serde_json::{Value, json};

use super::dashboards::datasource;
use super::humanize::threshold as threshold_text;
use crate::spec::{Alert, Condition, Op, PanelKind, Severity, ValueUnit};

/// A panel before placement.
pub struct PanelSpec {
    pub kind: PanelKind,
    pub title: String,
    pub description: String,
    pub unit: String,
    /// (expr, legend)
    pub targets: Vec<(String, Option<String>)>,
    pub thresholds: Vec<Value>,
    /// Draw the thresholds as lines with a shaded area (time series).
    pub draw_thresholds: bool,
    /// Soft axis range (time series) or min/max (stat).
    pub range: Option<(f64, f64)>,
    pub links: Vec<Value>,
}

impl PanelSpec {
    pub fn build(self) -> Value {
        let targets: Vec<Value> = self
            .targets
            .iter()
            .enumerate()
            .map(|(i, (expr, legend))| {
                json!({
                    "refId": ref_id(i),
                    "datasource": datasource(),
                    "editorMode": "code",
                    "expr": expr,
                    "legendFormat": legend.clone().unwrap_or_else(|| "__auto".into()),
                    "range": true,
                    "instant": false,
                })
            })
            .collect();
        let mut defaults = json!({
            "unit": self.unit,
            "thresholds": { "mode": "absolute", "steps": self.thresholds },
        });
        let (kind, options) = match self.kind {
            PanelKind::Timeseries => {
                let mut custom = json!({
                    "drawStyle": "line",
                    "lineInterpolation": "linear",
                    "lineWidth": 1,
                    "fillOpacity": 10,
                    "gradientMode": "none",
                    "showPoints": "never",
                    "spanNulls": false,
                    "axisPlacement": "auto",
                    "thresholdsStyle": { "mode": if self.draw_thresholds { "line+area" } else { "off" } },
                });
                if let (Some((min, max)), Some(obj)) = (self.range, custom.as_object_mut()) {
                    obj.insert("axisSoftMin".into(), json!(min));
                    obj.insert("axisSoftMax".into(), json!(max));
                }
                if let Some(obj) = defaults.as_object_mut() {
                    obj.insert("color".into(), json!({ "mode": "palette-classic" }));
                    obj.insert("custom".into(), custom);
                }
                (
                    "timeseries",
                    json!({
                        "legend": { "displayMode": "list", "placement": "bottom", "showLegend": true, "calcs": [] },
                        "tooltip": { "mode": "multi", "sort": "desc" },
                    }),
                )
            }
            PanelKind::Stat => {
                if let Some(obj) = defaults.as_object_mut() {
                    obj.insert("color".into(), json!({ "mode": "thresholds" }));
                    if let Some((min, max)) = self.range {
                        obj.insert("min".into(), json!(min));
                        obj.insert("max".into(), json!(max));
                    }
                }
                (
                    "stat",
                    json!({
                        "graphMode": "area",
                        "colorMode": "value",
                        "justifyMode": "auto",
                        "textMode": "auto",
                        "wideLayout": true,
                        "showPercentChange": false,
                        "percentChangeColorMode": "standard",
                        "orientation": "auto",
                        "reduceOptions": { "calcs": ["lastNotNull"], "fields": "", "values": false },
                    }),
                )
            }
        };
        let mut panel = json!({
            "type": kind,
            "title": self.title,
            "description": self.description,
            "datasource": datasource(),
            "targets": targets,
            "options": options,
            "fieldConfig": { "defaults": defaults, "overrides": [] },
        });
        if !self.links.is_empty()
            && let Some(obj) = panel.as_object_mut()
        {
            obj.insert("links".into(), Value::Array(self.links));
        }
        panel
    }
}

/// `A`..`Z`, then `AA`, `AB`, ...
fn ref_id(i: usize) -> String {
    let mut n = i;
    let mut id = Vec::new();
    loop {
        id.push(char::from(b'A' + (n % 26) as u8));
        if n < 26 {
            break;
        }
        n = n / 26 - 1;
    }
    id.iter().rev().collect()
}

pub fn step(color: &str, value: Option<f64>) -> Value {
    json!({ "color": color, "value": value })
}

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

/// Threshold steps from the alerts: each region of values gets the color of the worst alert that
/// fires there (green where none does), with a step at every alert's threshold.
pub fn threshold_steps(alerts: &[&Alert]) -> Vec<Value> {
    let mut values: Vec<f64> =
        alerts.iter().filter(|a| has_threshold(a)).map(|a| a.threshold).filter(|v| v.is_finite()).collect();
    values.sort_by(f64::total_cmp);
    values.dedup();
    let color_at = |v: f64| {
        alerts
            .iter()
            .filter(|a| has_threshold(a) && a.op.holds(v, a.threshold))
            .map(|a| a.severity)
            .min()
            .map_or("green", severity_color)
    };
    let Some(&first) = values.first() else {
        return vec![step("green", None)];
    };
    let mut steps = vec![step(color_at(first - first.abs().max(1.0)), None)];
    for (i, &v) in values.iter().enumerate() {
        let probe = match values.get(i + 1) {
            Some(&next) => v + (next - v) / 2.0,
            None => v + v.abs().max(1.0),
        };
        steps.push(step(color_at(probe), Some(v)));
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_ids() {
        assert_eq!(ref_id(0), "A");
        assert_eq!(ref_id(25), "Z");
        assert_eq!(ref_id(26), "AA");
        assert_eq!(ref_id(27), "AB");
    }
}
