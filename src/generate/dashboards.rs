//! Grafana dashboards: one per pack (and one for the user's own signals), one panel per enabled
//! signal. A panel draws the same PromQL its alerts compare with their thresholds, shows those
//! thresholds as lines and names the alerts in its description.
//!
//! Every query is filtered by the dashboard's `job` and `instance` variables and runs on the
//! data source picked in the `datasource` variable.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::panels::{PanelSpec, alert_line, grafana_unit, has_threshold, step, threshold_steps};
use super::promql::{escape, measured_on_panel};
use super::scope::{Scope, one_of, regex_escape, scope, scoped};
use crate::self_metrics;
use crate::spec::source_kind::PolledKind;
use crate::spec::{Alert, MetricDef, MetricType, Model, Panel, PanelKind, ResolvedSignal};

/// Grafana's dashboard JSON schema version the output follows.
pub const SCHEMA_VERSION: u32 = 39;

/// The metric that tells which exporters exist; the `job` and `instance` variables list its labels.
const BUILD_INFO: &str = self_metrics::BUILD_INFO.name;

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
    build(model, pack).0
}

/// The dashboards `generate` writes: one per enabled pack, then one of the user's own signals
/// if there are any.
pub fn groups(model: &Model) -> Vec<Option<&str>> {
    let mut groups: Vec<Option<&str>> = model.packs.iter().map(|p| Some(p.name.as_str())).collect();
    if model.enabled_signals().any(|s| s.pack.is_none()) {
        groups.push(None);
    }
    groups
}

/// Every dashboard of [`groups`], each built once, and the link to each signal's panel.
pub struct Dashboards {
    boards: Vec<(Option<String>, Value)>,
    pub links: PanelLinks,
}

impl Dashboards {
    pub fn of(model: &Model) -> Self {
        let base = model.config.generate.grafana_url.trim_end_matches('/');
        let mut boards = Vec::new();
        let mut urls = BTreeMap::new();
        for pack in groups(model) {
            let uid = uid(pack);
            let (board, ids) = build(model, pack);
            for (signal, id) in ids {
                urls.insert(signal, format!("{base}/d/{uid}/{uid}?viewPanel={id}"));
            }
            boards.push((pack.map(str::to_string), board));
        }
        Self { boards, links: PanelLinks { urls } }
    }

    /// The dashboard of `pack` (`None`: the user's own signals), in the order of [`groups`].
    pub fn iter(&self) -> impl Iterator<Item = (Option<&str>, &Value)> {
        self.boards.iter().map(|(pack, board)| (pack.as_deref(), board))
    }
}

/// Where each signal's panel is, for an alert's `dashboard_url` and the overview's tiles: laid
/// out once per model, keyed by signal id.
#[derive(Default)]
pub struct PanelLinks {
    urls: BTreeMap<String, String>,
}

impl PanelLinks {
    pub fn of(model: &Model) -> Self {
        Dashboards::of(model).links
    }

    /// Link to the panel that shows `signal` on its pack's dashboard (`viewPanel`).
    pub fn url(&self, signal: &ResolvedSignal) -> Option<&str> {
        self.urls.get(&signal.signal.id).map(String::as_str)
    }
}

/// A dashboard and the panel id of each of its signals.
fn build(model: &Model, pack: Option<&str>) -> (Value, Vec<(String, u32)>) {
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
    let mut ids = Vec::new();
    for signal in &signals {
        panels.push(layout.place(signal_panel(model, &metrics, signal, None), PANEL_W));
        ids.push((signal.signal.id.clone(), layout.next_id));
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
    let board = board(
        model,
        &uid(pack),
        &format!("Integration exporter / {group_title}"),
        &description,
        links,
        annotations(&signals),
        panels,
    );
    (board, ids)
}

/// One dashboard across every enabled pack: what fires, and each alerting signal as a stat tile
/// that links to its pack's dashboard.
pub fn overview(model: &Model, links: &PanelLinks) -> Value {
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
            if let Some(url) = links.url(signal) {
                tile["links"] = json!([link("Open in the pack dashboard", url)]);
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

    // One health panel per polled kind, in the kinds' order.
    let mut kinds: BTreeMap<usize, (&PolledKind, Vec<&str>)> = BTreeMap::new();
    for signal in signals.iter() {
        let Some(kind) = signal.signal.source.spec().polled() else { continue };
        kinds.entry(signal.signal.source.kind_rank()).or_insert((kind, Vec::new())).1.push(&signal.signal.id);
    }
    for (kind, ids) in kinds.values() {
        panels.extend(source_health_panel(sc, kind.panel.0, kind.panel.1, kind.health.ok.name, ids));
    }

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
                        scoped(sc, self_metrics::LOG_LINES.name, &one_of("log", &logs))
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
    let kind = kind.unwrap_or(signal.panel.as_ref().map(|p| p.kind).unwrap_or_default());
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

    #[test]
    fn uids_are_stable_and_short() {
        assert_eq!(uid(Some("token_refresh")), "integration-exporter-token-refresh");
        assert_eq!(uid(None), "integration-exporter-custom");
        let long = uid(Some("a_very_long_pack_name_that_goes_on_and_on"));
        assert!(long.len() <= 40, "{long}");
        assert_eq!(long, uid(Some("a_very_long_pack_name_that_goes_on_and_on")));
        assert_ne!(long, uid(Some("a_very_long_pack_name_that_goes_on_and_off")));
    }
}
