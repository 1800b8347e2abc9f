//! Grafana dashboards: one per pack (and one for the user's own signals), one panel per enabled
//! signal. A panel draws the same PromQL its alerts compare with their thresholds, shows those
//! thresholds as lines and names the alerts in its description.
//!
//! Every query is filtered by the dashboard's `job` and `instance` variables and runs on the
//! data source picked in the `datasource` variable.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::humanize::threshold as threshold_text;
use super::promql::{self, escape, measured_on_panel};
use crate::spec::{
    Alert, Condition, MetricDef, MetricType, Model, Op, Panel, ResolvedSignal, Severity, Source, ValueUnit,
};

/// Grafana's dashboard JSON schema version the output follows.
pub const SCHEMA_VERSION: u32 = 39;

/// The metric that tells which exporters exist; the `job` and `instance` variables list its labels.
const BUILD_INFO: &str = "integration_exporter_build_info";

/// Panel grid: two columns of 12 by 8.
const PANEL_W: u32 = 12;
const PANEL_H: u32 = 8;

/// Every panel and target queries the data source chosen in the `datasource` variable.
pub fn datasource() -> Value {
    json!({ "type": "prometheus", "uid": "${datasource}" })
}

/// Stable dashboard uid: `integration-exporter-<pack>`, at most 40 characters.
pub fn uid(pack: Option<&str>) -> String {
    let name = pack.unwrap_or("custom").replace('_', "-");
    let uid = format!("integration-exporter-{name}");
    if uid.len() <= 40 {
        return uid;
    }
    // Long pack names: a prefix of the name plus a hash of all of it, still stable and unique.
    let hash = format!("{:08x}", fnv1a(&name) as u32);
    let prefix: String = name.chars().take(40 - 3 - 1 - hash.len()).collect();
    format!("ie-{prefix}-{hash}")
}

fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The dashboard of one pack, or of the user's own signals when `pack` is `None`.
pub fn dashboard(model: &Model, pack: Option<&str>) -> Value {
    let info = pack.and_then(|name| model.packs.iter().find(|p| p.name == name));
    let group_title = match (pack, info) {
        (_, Some(info)) => info.title.clone(),
        (Some(name), None) => name.to_string(),
        (None, _) => "Custom signals".to_string(),
    };
    let signals: Vec<&ResolvedSignal> = model.enabled_signals().filter(|s| s.pack.as_deref() == pack).collect();
    let metrics = Scope::of(model);

    let mut layout = Layout::default();
    let mut panels = Vec::new();
    panels.push(layout.row("Exporter health"));
    for panel in health_panels(&metrics, &signals) {
        panels.push(layout.place(panel, 24 / 3));
    }
    layout.next_line();
    panels.push(layout.row(&group_title));
    for signal in &signals {
        panels.push(layout.place(signal_panel(model, &metrics, signal, None), PANEL_W));
    }

    let mut links = Vec::new();
    if let Some(info) = info {
        let url =
            format!("{}/{}", model.config.runbook_base_url.trim_end_matches('/'), info.runbook.trim_start_matches('/'));
        links.push(link(&format!("Runbook: {}", info.title), &url));
    }

    let description = match pack {
        Some(name) => format!("Signals of the `{name}` pack."),
        None => "Signals defined in the spec itself.".to_string(),
    };
    board(
        model,
        &uid(pack),
        &format!("Integration exporter / {group_title}"),
        &description,
        links,
        annotations(&signals),
        panels,
    )
}

/// Link to the panel that shows `signal` on its pack's dashboard (`viewPanel`), for an alert's
/// `dashboard_url`.
pub fn panel_url(model: &Model, signal: &ResolvedSignal) -> Option<String> {
    let board = dashboard(model, signal.pack.as_deref());
    let id = board["panels"]
        .as_array()?
        .iter()
        .find(|p| p["type"] != "row" && p["title"] == signal.signal.title.as_str())?["id"]
        .as_u64()?;
    let uid = uid(signal.pack.as_deref());
    Some(format!("{}/d/{uid}/{uid}?viewPanel={id}", model.config.generate.grafana_url.trim_end_matches('/')))
}

/// One dashboard across every enabled pack: what fires, and each alerting signal as a stat tile
/// that links to its pack's dashboard.
pub fn overview(model: &Model) -> Value {
    let metrics = Scope::of(model);
    let mut layout = Layout::default();
    let mut panels = Vec::new();
    let mut groups: Vec<(Option<&str>, String)> =
        model.packs.iter().map(|p| (Some(p.name.as_str()), p.title.clone())).collect();
    if model.enabled_signals().any(|s| s.pack.is_none()) {
        groups.push((None, "Custom signals".to_string()));
    }
    let names: Vec<String> = model
        .enabled_signals()
        .flat_map(|s| s.signal.alerts.iter().filter(|a| a.enabled).map(|a| a.name.clone()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    panels.push(layout.row("Alerts"));
    panels.push(
        layout.place(
            PanelSpec {
                kind: PanelKind::Timeseries,
                title: "Firing alerts".into(),
                description: "Alerts of every enabled pack that are firing, by alert name and severity.".into(),
                unit: "short".into(),
                targets: vec![(
                    format!(
                        "count by (alertname, severity) ({})",
                        scoped(
                            &metrics.alerts(),
                            "ALERTS",
                            &format!("alertstate=\"firing\", {}", one_of("alertname", &names))
                        )
                    ),
                    Some("{{alertname}} ({{severity}})".into()),
                )],
                thresholds: vec![step("green", None), step("red", Some(1.0))],
                draw_thresholds: false,
                range: None,
                links: vec![],
            }
            .build(),
            24,
        ),
    );
    for (pack, title) in &groups {
        let signals: Vec<&ResolvedSignal> = model
            .enabled_signals()
            .filter(|s| s.pack.as_deref() == *pack && s.signal.alerts.iter().any(|a| a.enabled && has_threshold(a)))
            .collect();
        if signals.is_empty() {
            continue;
        }
        panels.push(layout.row(title));
        for signal in signals {
            let mut tile = signal_panel(model, &metrics, signal, Some(PanelKind::Stat));
            if let Some(url) = panel_url(model, signal) {
                tile["links"] = json!([link("Open in the pack dashboard", &url)]);
            }
            panels.push(layout.place(tile, 6));
        }
    }
    board(
        model,
        "integration-exporter-overview",
        "Integration exporter / Overview",
        "Every enabled pack at a glance.",
        vec![],
        annotations(&model.enabled_signals().collect::<Vec<_>>()),
        panels,
    )
}

/// The dashboard around its panels: the settings every generated dashboard shares.
fn board(
    model: &Model,
    uid: &str,
    title: &str,
    description: &str,
    links: Vec<Value>,
    annotations: Vec<Value>,
    panels: Vec<Value>,
) -> Value {
    let settings = &model.config.generate;
    json!({
        "uid": uid,
        "title": title,
        "description": format!("{description} Generated by `integration-exporter generate`; edit the spec, not this file."),
        "tags": settings.dashboard_tags,
        "timezone": "utc",
        "editable": false,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": SCHEMA_VERSION,
        "time": { "from": "now-6h", "to": "now" },
        "timepicker": {},
        "fiscalYearStartMonth": 0,
        "liveNow": false,
        "links": links,
        "annotations": { "list": annotations },
        "templating": { "list": variables(&settings.job, &settings.matchers) },
        "panels": panels,
    })
}

/// `job` lists the jobs of exporters carrying `generate.matchers`; `instance` those of the
/// picked job.
fn variables(job: &str, matchers: &std::collections::BTreeMap<String, String>) -> Vec<Value> {
    let extra: Vec<String> = matchers.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
    let (only, and) = if extra.is_empty() {
        (String::new(), String::new())
    } else {
        (format!("{{{}}}", extra.join(", ")), format!(", {}", extra.join(", ")))
    };
    let query = |name: &str, label: &str, query: String, current: Value| {
        json!({
            "type": "query",
            "name": name,
            "label": label,
            "datasource": datasource(),
            "query": query,
            "definition": query,
            "refresh": 2,
            "sort": 1,
            "multi": true,
            "includeAll": true,
            "allValue": ".+",
            "regex": "",
            "hide": 0,
            "current": current,
            "options": [],
        })
    };
    vec![
        json!({
            "type": "datasource",
            "name": "datasource",
            "label": "Data source",
            "query": "prometheus",
            "regex": "",
            "refresh": 1,
            "hide": 0,
            "multi": false,
            "includeAll": false,
            "current": { "text": "default", "value": "default" },
            "options": [],
        }),
        query("job", "Job", format!("label_values({BUILD_INFO}{only}, job)"), json!({ "text": [job], "value": [job] })),
        query(
            "instance",
            "Instance",
            format!("label_values({BUILD_INFO}{{job=~\"$job\"{and}}}, instance)"),
            json!({ "text": ["All"], "value": ["$__all"] }),
        ),
    ]
}

fn annotations(signals: &[&ResolvedSignal]) -> Vec<Value> {
    let mut list = vec![json!({
        "builtIn": 1,
        "datasource": { "type": "grafana", "uid": "-- Grafana --" },
        "enable": true,
        "hide": true,
        "iconColor": "rgba(0, 211, 255, 1)",
        "name": "Annotations & Alerts",
        "type": "dashboard",
    })];
    let names: BTreeSet<&str> =
        signals.iter().flat_map(|s| s.signal.alerts.iter().filter(|a| a.enabled)).map(|a| a.name.as_str()).collect();
    if !names.is_empty() {
        let names: Vec<String> = names.into_iter().map(regex_escape).collect();
        list.push(json!({
            "name": "Firing alerts",
            "datasource": datasource(),
            "enable": true,
            "hide": false,
            "iconColor": "red",
            "expr": format!("ALERTS{{alertstate=\"firing\", alertname=~\"{}\"}}", escape(&names.join("|"))),
            "step": "1m",
            "titleFormat": "{{alertname}} ({{severity}})",
            "textFormat": "{{signal}}",
            "tagKeys": "severity,signal",
        }));
    }
    list
}

fn link(title: &str, url: &str) -> Value {
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

/// Places panels left to right, top to bottom.
#[derive(Default)]
struct Layout {
    next_id: u32,
    x: u32,
    y: u32,
    line_height: u32,
}

impl Layout {
    fn id(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }

    fn next_line(&mut self) {
        if self.x > 0 {
            self.y += self.line_height;
            self.x = 0;
            self.line_height = 0;
        }
    }

    fn row(&mut self, title: &str) -> Value {
        self.next_line();
        let row = json!({
            "type": "row",
            "id": self.id(),
            "title": title,
            "collapsed": false,
            "panels": [],
            "gridPos": { "h": 1, "w": 24, "x": 0, "y": self.y },
        });
        self.y += 1;
        row
    }

    fn place(&mut self, mut panel: Value, w: u32) -> Value {
        if self.x + w > 24 {
            self.next_line();
        }
        let (x, y) = (self.x, self.y);
        self.x += w;
        self.line_height = self.line_height.max(PANEL_H);
        if let Some(obj) = panel.as_object_mut() {
            obj.insert("id".into(), json!(self.id()));
            obj.insert("gridPos".into(), json!({ "h": PANEL_H, "w": w, "x": x, "y": y }));
        }
        panel
    }
}

/// What every query of a dashboard is scoped with: the metric names [`promql::inject`] knows,
/// and the matchers: the `job` and `instance` variables, then `generate.matchers`, which
/// restrict further whatever the variables pick.
pub struct Scope {
    metrics: BTreeSet<String>,
    matchers: String,
}

impl Scope {
    pub fn of(model: &Model) -> Self {
        let mut matchers = "job=~\"$job\", instance=~\"$instance\"".to_string();
        for (k, v) in &model.config.generate.matchers {
            matchers.push_str(&format!(", {k}=\"{}\"", escape(v)));
        }
        Self { metrics: promql::metric_names(model), matchers }
    }

    /// For `ALERTS`: an alert of the whole fleet (`across_instances`) or of an `absent()`
    /// series has no `instance`, and shows whichever instances are picked.
    fn alerts(&self) -> Scope {
        let matchers = self.matchers.replacen("instance=~\"$instance\"", "instance=~\"$instance|\"", 1);
        Scope { metrics: self.metrics.clone(), matchers }
    }
}

/// `expr` with every selector of a known metric scoped (see [`promql::inject`]).
pub fn scope(expr: &str, sc: &Scope) -> String {
    promql::inject(expr, &sc.metrics, &sc.matchers)
}

/// `metric{job=~"$job", instance=~"$instance", <matchers>, <extra>}` for queries built here.
fn scoped(sc: &Scope, metric: &str, extra: &str) -> String {
    let m = &sc.matchers;
    if extra.is_empty() { format!("{metric}{{{m}}}") } else { format!("{metric}{{{m}, {extra}}}") }
}

fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `label=~"a|b"` matching exactly the given values.
fn one_of(label: &str, values: &[&str]) -> String {
    let alternatives: Vec<String> = values.iter().map(|v| regex_escape(v)).collect();
    format!("{label}=~\"{}\"", escape(&alternatives.join("|")))
}

/// The first row: is the exporter up, do its queries succeed, does it read its logs.
fn health_panels(sc: &Scope, signals: &[&ResolvedSignal]) -> Vec<Value> {
    let mut panels = vec![PanelSpec {
        kind: PanelKind::Stat,
        title: "Exporter up".into(),
        description: "Whether Prometheus can scrape the exporter (`up`), per instance. Nothing else on this dashboard is fresh while this is 0.".into(),
        unit: "bool_yes_no".into(),
        targets: vec![(format!("min by (instance) ({})", scoped(sc, "up", "")), Some("{{instance}}".into()))],
        thresholds: vec![step("red", None), step("green", Some(1.0))],
        draw_thresholds: false,
        range: Some((0.0, 1.0)),
        links: vec![],
    }
    .build()];

    let ids = |kind: fn(&Source) -> bool| -> Vec<&str> {
        signals.iter().filter(|s| kind(&s.signal.source)).map(|s| s.signal.id.as_str()).collect()
    };
    panels.extend(source_health_panel(
        sc,
        "SQL query success",
        "1 when the last run of the signal's query succeeded, by signal (the worst instance). A 0 means the signal's panel below shows stale or no data; see `integration_exporter_query_errors_total` for why.",
        "integration_exporter_query_success",
        &ids(|s| matches!(s, Source::Sql(_))),
    ));
    panels.extend(source_health_panel(
        sc,
        "HTTP endpoints up",
        "1 when the signal's endpoint answered 2xx within its timeout at the last poll, by signal (the worst instance). See `integration_exporter_http_errors_total` for why it did not.",
        "integration_exporter_http_up",
        &ids(|s| matches!(s, Source::Http(_))),
    ));

    let logs: BTreeSet<&str> = signals.iter().filter_map(|s| s.log_id()).collect();
    if !logs.is_empty() {
        let logs: Vec<&str> = logs.into_iter().collect();
        panels.push(
            PanelSpec {
                kind: PanelKind::Timeseries,
                title: "Log lines read".into(),
                description: "Complete lines read per second from each followed log. Flat at zero while the application is busy means the exporter is not following the right file.".into(),
                unit: "cps".into(),
                targets: vec![(
                    format!(
                        "sum by (log) (rate({}[$__rate_interval]))",
                        scoped(sc, "integration_exporter_log_lines_total", &one_of("log", &logs))
                    ),
                    Some("{{log}}".into()),
                )],
                thresholds: vec![step("green", None)],
                draw_thresholds: false,
                range: None,
                links: vec![],
            }
            .build(),
        );
    }
    panels
}

/// A 0/1 health gauge of polled sources, worst instance per signal; none when no signal polls.
fn source_health_panel(sc: &Scope, title: &str, description: &str, metric: &str, signals: &[&str]) -> Option<Value> {
    if signals.is_empty() {
        return None;
    }
    Some(
        PanelSpec {
            kind: PanelKind::Timeseries,
            title: title.into(),
            description: description.into(),
            unit: "short".into(),
            targets: vec![(
                format!("min by (signal) ({})", scoped(sc, metric, &one_of("signal", signals))),
                Some("{{signal}}".into()),
            )],
            thresholds: vec![step("red", None), step("green", Some(1.0))],
            draw_thresholds: false,
            range: Some((0.0, 1.0)),
            links: vec![],
        }
        .build(),
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum PanelKind {
    Timeseries,
    Stat,
}

/// A panel before placement.
struct PanelSpec {
    kind: PanelKind,
    title: String,
    description: String,
    unit: String,
    /// (expr, legend)
    targets: Vec<(String, Option<String>)>,
    thresholds: Vec<Value>,
    /// Draw the thresholds as lines with a shaded area (time series).
    draw_thresholds: bool,
    /// Soft axis range (time series) or min/max (stat).
    range: Option<(f64, f64)>,
    links: Vec<Value>,
}

impl PanelSpec {
    fn build(self) -> Value {
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

fn step(color: &str, value: Option<f64>) -> Value {
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
fn grafana_unit(unit: ValueUnit) -> &'static str {
    match unit {
        ValueUnit::Percent => "percentunit",
        ValueUnit::Duration => "s",
        ValueUnit::Count | ValueUnit::Number => "short",
    }
}

/// Alerts that compare a value with a threshold (`absent` has none).
fn has_threshold(alert: &Alert) -> bool {
    !matches!(alert.condition, Condition::Absent(_))
}

/// `Alert Name (severity): above 20 for 5m`.
pub fn alert_line(alert: &Alert) -> String {
    let when = match &alert.condition {
        Condition::Absent(_) => "when the series does not exist".to_string(),
        _ => format!("{} {}", op_words(alert.op), threshold_text(alert.unit, alert.threshold)),
    };
    let for_ = if alert.for_.0.is_zero() { String::new() } else { format!(" for {}", alert.for_) };
    format!("Alert {} ({}): {when}{for_}", alert.name, alert.severity.as_str())
}

/// Threshold steps from the alerts: each region of values gets the color of the worst alert that
/// fires there (green where none does), with a step at every alert's threshold.
fn threshold_steps(alerts: &[&Alert]) -> Vec<Value> {
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

/// A signal's panel; `kind` overrides the spec's panel type (the overview draws stat tiles).
fn signal_panel(model: &Model, metrics: &Scope, resolved: &ResolvedSignal, kind: Option<PanelKind>) -> Value {
    let signal = &resolved.signal;
    let alerts: Vec<&Alert> = signal.alerts.iter().filter(|a| a.enabled).collect();
    // The alert whose value the panel draws: the first one comparing a value with a threshold
    // (`absent(...)` is no line worth drawing; the metrics themselves are drawn instead).
    let drawn = alerts.iter().find(|a| has_threshold(a)).copied();

    let mut description = signal.description.trim().to_string();
    if description.is_empty() {
        let helps: Vec<String> = signal.metrics.iter().map(|m| format!("`{}`: {}", m.name, m.help.trim())).collect();
        description = helps.join("\n\n");
    }
    for alert in &alerts {
        description.push_str("\n\n");
        description.push_str(&alert_line(alert));
    }

    let unit = panel_unit(signal.panel.as_ref(), drawn);
    let targets: Vec<(String, Option<String>)> = match (&signal.panel, drawn) {
        (Some(panel), _) if !panel.queries.is_empty() => {
            panel.queries.iter().map(|q| (scope(q.expr.trim(), metrics), q.legend.clone())).collect()
        }
        (_, Some(alert)) => vec![(scope(&measured_on_panel(model, alert), metrics), None)],
        (_, None) => signal.metrics.iter().map(|m| (default_query(metrics, m), None)).collect(),
    };
    let kind = kind.unwrap_or(match signal.panel.as_ref().map(|p| p.kind.as_str()) {
        Some("stat") => PanelKind::Stat,
        _ => PanelKind::Timeseries,
    });
    let range = (unit == "percentunit").then_some((0.0, 1.0));
    let links = match &resolved.runbook_url {
        Some(url) => {
            let title = signal.runbook_section.as_deref().map_or("Runbook".to_string(), |s| format!("Runbook: {s}"));
            vec![link(&title, url)]
        }
        None => vec![],
    };
    PanelSpec {
        kind,
        title: signal.title.clone(),
        description,
        unit,
        targets,
        draw_thresholds: alerts.iter().any(|a| has_threshold(a)),
        thresholds: threshold_steps(&alerts),
        range,
        links,
    }
    .build()
}

/// The spec's unit when it names one; otherwise the unit of the drawn alert's values.
fn panel_unit(panel: Option<&Panel>, drawn: Option<&Alert>) -> String {
    // `short` is also the default of an omitted `unit`, so it does not override an alert's unit.
    match (panel.map(|p| p.unit.trim()).filter(|u| !u.is_empty() && *u != "short"), drawn) {
        (Some(unit), _) => unit.to_string(),
        (None, Some(alert)) => grafana_unit(alert.unit).to_string(),
        _ => "short".to_string(),
    }
}

/// A metric drawn as it is best read: gauges as they are, counters as a per-second rate,
/// histograms as their 95th percentile.
fn default_query(metrics: &Scope, metric: &MetricDef) -> String {
    let own: Vec<&str> = metric.labels.iter().map(|l| l.name()).collect();
    let expr = match metric.kind {
        MetricType::Gauge => metric.name.clone(),
        MetricType::Counter => {
            format!("sum without ({}) (rate({}[$__rate_interval]))", own.join(", "), metric.name)
        }
        MetricType::Histogram => format!(
            "histogram_quantile(0.95, sum without ({}) (rate({}_bucket[$__rate_interval])))",
            own.join(", "),
            metric.name
        ),
    };
    scope(&expr, metrics)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope_of(list: &[&str]) -> Scope {
        Scope {
            metrics: list.iter().map(|s| s.to_string()).collect(),
            matchers: "job=~\"$job\", instance=~\"$instance\"".into(),
        }
    }

    #[test]
    fn scope_injects_into_model_metrics_only() {
        let m = scope_of(&["foo_total", "bar", "baz"]);
        assert_eq!(scope("bar", &m), "bar{job=~\"$job\", instance=~\"$instance\"}");
        assert_eq!(
            scope("sum by (bar) (rate(foo_total{result=\"bar\"}[5m]))", &m),
            "sum by (bar) (rate(foo_total{job=~\"$job\", instance=~\"$instance\", result=\"bar\"}[5m]))"
        );
        assert_eq!(scope("time() - baz", &m), "time() - baz{job=~\"$job\", instance=~\"$instance\"}");
        assert_eq!(scope("baz {}", &m), "baz {job=~\"$job\", instance=~\"$instance\"}");
        assert_eq!(scope("bar_other + bar2", &m), "bar_other + bar2");
        assert_eq!(
            scope("sum by (bar) (baz) / on (bar) group_left (baz) bar", &m),
            "sum by (bar) (baz{job=~\"$job\", instance=~\"$instance\"}) / on (bar) group_left (baz) bar{job=~\"$job\", instance=~\"$instance\"}"
        );
        assert_eq!(
            scope("label_replace(x, \"bar\", \"baz\", \"\", \"\")", &m),
            "label_replace(x, \"bar\", \"baz\", \"\", \"\")"
        );
    }

    #[test]
    fn uids_are_stable_and_short() {
        assert_eq!(uid(Some("token_refresh")), "integration-exporter-token-refresh");
        assert_eq!(uid(None), "integration-exporter-custom");
        let long = uid(Some("a_very_long_pack_name_that_goes_on_and_on"));
        assert!(long.len() <= 40, "{long}");
        assert_eq!(long, uid(Some("a_very_long_pack_name_that_goes_on_and_on")));
        assert_ne!(long, uid(Some("a_very_long_pack_name_that_goes_on_and_off")));
    }

    #[test]
    fn ref_ids() {
        assert_eq!(ref_id(0), "A");
        assert_eq!(ref_id(25), "Z");
        assert_eq!(ref_id(26), "AA");
        assert_eq!(ref_id(27), "AB");
    }
}
