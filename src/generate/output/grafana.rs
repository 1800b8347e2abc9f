//! Grafana dashboard JSON: a panel from its parts ([`PanelSpec`]), threshold steps, links and the
//! data source every query uses. Dashboards are JSON values ([`serde_json::Value`]) built with
//! these.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::spec::{PanelKind, ResolvedSignal};

/// Every panel and target queries the data source chosen in the `datasource` variable.
pub fn datasource() -> Value {
    json!({ "type": "prometheus", "uid": "${datasource}" })
}

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
    /// Per-series settings (`fieldConfig.overrides`): each alert's series, its unit and thresholds.
    pub overrides: Vec<Value>,
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
            "fieldConfig": { "defaults": defaults, "overrides": self.overrides },
        });
        if !self.links.is_empty()
            && let Some(obj) = panel.as_object_mut()
        {
            obj.insert("links".into(), Value::Array(self.links));
        }
        panel
    }
}

/// `A`..`Z`, then `AA`, `AB`, ...: the query's `refId`, in order.
pub fn ref_id(i: usize) -> String {
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

/// A link to a runbook, on a dashboard or a panel.
pub fn link(title: &str, url: &str) -> Value {
    json!({
        "title": title,
        "type": "link",
        "icon": "doc",
        "tooltip": "Open the runbook",
        "url": url,
        "tags": [],
        "asDropdown": false,
        "targetBlank": true,
        "includeVars": false,
        "keepTime": false,
    })
}

/// Where each signal's panel is, for an alert's `dashboard_url` and the overview's tiles: laid
/// out once per model (by the dashboards), keyed by [`panel_key`] or [`slo_panel_key`].
#[derive(Default)]
pub struct PanelLinks {
    urls: BTreeMap<String, String>,
}

impl PanelLinks {
    /// The panel of `key` is at `url`.
    pub fn insert(&mut self, key: String, url: String) {
        self.urls.insert(key, url);
    }

    /// Link to the panel that shows `signal` on its pack's dashboard (`viewPanel`).
    pub fn url(&self, signal: &ResolvedSignal) -> Option<&str> {
        self.urls.get(&panel_key(signal)).map(String::as_str)
    }

    /// Link to the burn-rate panel of `signal`'s SLO.
    pub fn slo_url(&self, signal: &ResolvedSignal) -> Option<&str> {
        self.urls.get(&slo_panel_key(signal)).map(String::as_str)
    }
}

/// Where a signal's panel is kept.
pub fn panel_key(signal: &ResolvedSignal) -> String {
    signal.signal.id.clone()
}

/// Where an SLO's burn-rate panel is kept among the signals' panels.
pub fn slo_panel_key(signal: &ResolvedSignal) -> String {
    format!("{}#slo", signal.signal.id)
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
