//! Grafana dashboards: one per pack (and one for the user's own signals), one panel per enabled
//! signal. A panel draws the same PromQL its alerts compare with their thresholds, shows those
//! thresholds as lines and names the alerts in its description.
//!
//! Every query is filtered by the dashboard's `job` and `instance` variables and runs on the
//! data source picked in the `datasource` variable.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::alerts;
use super::error::{GenerateError, Item, Subject};
use super::output::grafana::{PanelLinks, PanelSpec, datasource, link, panel_key, ref_id, slo_panel_key, step};
use super::panels::{alert_line, grafana_unit, has_threshold, threshold_override};
use super::promql::{InvalidQuery, escape, measured_on_panel};
use super::scope::{Scope, one_of, regex_escape, scoped, try_scope};
use super::slo_panels;
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

/// Stable dashboard uid: `integration-exporter-<pack>`, at most 40 characters.
pub fn uid(pack: Option<&str>) -> String {
    let name = pack.unwrap_or("custom").replace('_', "-");
    let uid = format!("integration-exporter-{name}");
    if uid.len() <= 40 {
        return uid;
    }
    // Long pack names: a prefix of the name plus a hash of all of it, still stable and unique.
    let hash = format!("{:08x}", tailer::fnv1a(name.as_bytes()) as u32);
    let prefix: String = name.chars().take(40 - 3 - 1 - hash.len()).collect();
    format!("ie-{prefix}-{hash}")
}

/// The dashboard of one pack, or of the user's own signals when `pack` is `None`.
pub fn dashboard(model: &Model, pack: Option<&str>) -> Result<Value, GenerateError> {
    Ok(build(model, pack)?.0)
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
    pub fn of(model: &Model) -> Result<Self, GenerateError> {
        let base = model.config.generate.grafana_url.trim_end_matches('/');
        let mut boards = Vec::new();
        let mut links = PanelLinks::default();
        for pack in groups(model) {
            let uid = uid(pack);
            let (board, ids) = build(model, pack)?;
            for (key, id) in ids {
                links.insert(key, format!("{base}/d/{uid}/{uid}?viewPanel={id}"));
            }
            boards.push((pack.map(str::to_string), board));
        }
        Ok(Self { boards, links })
    }

    /// The dashboard of `pack` (`None`: the user's own signals), in the order of [`groups`].
    pub fn iter(&self) -> impl Iterator<Item = (Option<&str>, &Value)> {
        self.boards.iter().map(|(pack, board)| (pack.as_deref(), board))
    }
}

/// A dashboard and the panel id of each of its signals.
fn build(model: &Model, pack: Option<&str>) -> Result<(Value, Vec<(String, u32)>), GenerateError> {
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
    let mut ids = Vec::new();
    // Before the signals: how the objectives fare is the first thing an on-call reads.
    let slos: Vec<_> = alerts::slos_of(model, pack).collect();
    if !slos.is_empty() {
        panels.push(layout.row("Error budgets (30 days)"));
        for (signal, slo) in slos {
            let (left, rate) = slo_panels::panels(&metrics, signal, slo);
            panels.push(layout.place(left, 6));
            panels.push(layout.place(rate, 18));
            ids.push((slo_panel_key(signal), layout.next_id));
        }
    }
    panels.push(layout.row(&group_title));
    for signal in &signals {
        panels.push(layout.place(signal_panel(model, &metrics, signal, None)?, PANEL_W));
        ids.push((panel_key(signal), layout.next_id));
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
    Ok((board, ids))
}

/// One dashboard across every enabled pack: what fires, and each alerting signal as a stat tile
/// that links to its pack's dashboard.
pub fn overview(model: &Model, links: &PanelLinks) -> Result<Value, GenerateError> {
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
        .flat_map(|s| alerts::of_signal(s).map(|a| a.name.clone()))
        .chain(model.slos().map(|(_, slo)| slo.alert.clone()))
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
                overrides: Vec::new(),
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
            .filter(|s| s.pack.as_deref() == *pack && alerts::of_signal(s).any(has_threshold))
            .collect();
        if signals.is_empty() {
            continue;
        }
        panels.push(layout.row(title));
        for signal in signals {
            let mut tile = signal_panel(model, &metrics, signal, Some(PanelKind::Stat))?;
            if let Some(url) = links.url(signal) {
                tile["links"] = json!([link("Open in the pack dashboard", url)]);
            }
            panels.push(layout.place(tile, 6));
        }
    }
    Ok(board(
        model,
        "integration-exporter-overview",
        "Integration exporter / Overview",
        "Every enabled pack at a glance.",
        vec![],
        annotations(&model.enabled_signals().collect::<Vec<_>>()),
        panels,
    ))
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
        "templating": { "list": variables(&settings.job, &settings.matchers, model.database_label()) },
        "panels": panels,
    })
}

/// `job` lists the jobs of exporters carrying `generate.matchers`; `instance` those of the
/// picked job.
fn variables(job: &str, matchers: &std::collections::BTreeMap<String, String>, database: Option<&str>) -> Vec<Value> {
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
    let mut list = vec![
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
    ];
    // The databases' names, as their health series carry them (`database`, whatever the
    // series' own label is called).
    if let Some(label) = database {
        let names = format!("label_values({}{{job=~\"$job\"{and}}}, database)", self_metrics::DATABASE_UP.name);
        let mut variable = query(label, "Database", names, json!({ "text": ["All"], "value": ["$__all"] }));
        variable["allValue"] = json!(".*");
        list.push(variable);
    }
    list
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
    let slos = signals.iter().filter_map(|s| alerts::slo_of_signal(s)).map(|slo| slo.alert.as_str());
    let names: BTreeSet<&str> =
        signals.iter().flat_map(|s| alerts::of_signal(s)).map(|a| a.name.as_str()).chain(slos).collect();
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
        overrides: Vec::new(),
        range: Some((0.0, 1.0)),
        links: vec![],
    }
    .build()];

    // One health panel per polled kind, in the kinds' order.
    let mut kinds: BTreeMap<usize, (&PolledKind, Vec<&str>)> = BTreeMap::new();
    for signal in signals.iter() {
        let Some(kind) = signal.signal.source.settings().polled() else { continue };
        kinds.entry(signal.signal.source.kind_rank()).or_insert((kind, Vec::new())).1.push(&signal.signal.id);
    }
    for (kind, ids) in kinds.values() {
        panels.extend(source_health_panel(sc, kind.panel.0, kind.panel.1, kind.health.ok.name, ids));
    }
    // With every query failing at once, the one question is whether the database answers at all.
    if signals.iter().any(|s| s.signal.source.settings().needs_database()) {
        panels.push(
            PanelSpec {
                kind: PanelKind::Stat,
                title: "Database reachable".into(),
                description: "Whether the exporter's last query run got an answer from the database (`integration_exporter_database_up`), by database (`host:port/db`, the worst instance). At 0 every SQL signal below is blind at once: IntegrationDatabaseUnreachable, not one alert per query.".into(),
                unit: "bool_yes_no".into(),
                targets: vec![(
                    format!("min by (database) ({})", scoped(sc, self_metrics::DATABASE_UP.name, "")),
                    Some("{{database}}".into()),
                )],
                thresholds: vec![step("red", None), step("green", Some(1.0))],
                draw_thresholds: false,
                overrides: Vec::new(),
                range: Some((0.0, 1.0)),
                links: vec![],
            }
            .build(),
        );
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
                overrides: Vec::new(),
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
            overrides: Vec::new(),
            range: Some((0.0, 1.0)),
            links: vec![],
        }
        .build(),
    )
}

/// Two queries that are the same PromQL up to white space.
fn same_query(a: &str, b: &str) -> bool {
    a.split_whitespace().eq(b.split_whitespace())
}

/// A signal's panel; `kind` overrides the spec's panel type (the overview draws stat tiles).
/// Every value an alert compares with a threshold is one of its series, coloured by that alert
/// (and its twins on the same value) alone; the spec's own queries are drawn beside them.
fn signal_panel(
    model: &Model,
    metrics: &Scope,
    resolved: &ResolvedSignal,
    kind: Option<PanelKind>,
) -> Result<Value, GenerateError> {
    let signal = &resolved.signal;
    let invalid = |e| GenerateError::query(Subject::of_signal(resolved, Item::Panel(signal.title.clone())), e);
    let alerts: Vec<&Alert> = alerts::of_signal(resolved).collect();
    // The values the alerts compare, each once, with the alerts comparing it (`absent(...)` is no
    // line worth drawing; the metrics themselves are drawn instead).
    let mut compared: Vec<(String, Vec<&Alert>)> = Vec::new();
    for alert in alerts.iter().copied().filter(|a| has_threshold(a)) {
        let expr = try_scope(&measured_on_panel(model, alert), metrics).map_err(invalid)?;
        match compared.iter_mut().find(|(e, _)| same_query(e, &expr)) {
            Some((_, group)) => group.push(alert),
            None => compared.push((expr, vec![alert])),
        }
    }
    let drawn = compared.first().and_then(|(_, group)| group.first()).copied();

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
    let own_queries = signal.panel.as_ref().is_some_and(|p| !p.queries.is_empty());
    let mut targets: Vec<(String, Option<String>)> = match &signal.panel {
        Some(panel) if own_queries => panel
            .queries
            .iter()
            .map(|q| Ok((try_scope(q.expr.trim(), metrics).map_err(invalid)?, q.legend.clone())))
            .collect::<Result<_, _>>()?,
        _ if !compared.is_empty() => Vec::new(),
        _ => signal
            .metrics
            .iter()
            .map(|m| Ok((default_query(metrics, m).map_err(invalid)?, None)))
            .collect::<Result<_, _>>()?,
    };
    let kind = kind.unwrap_or(signal.panel.as_ref().map(|p| p.kind).unwrap_or_default());
    let mut overrides = Vec::new();
    for (expr, group) in &compared {
        // An alert's own value is on its panel: the spec's query when it is that value, else a
        // series of its own named after the alert.
        let at = match targets.iter().position(|(t, _)| same_query(t, expr)) {
            Some(at) => at,
            None => {
                let legend = own_queries.then(|| legend_of(model, group));
                targets.push((expr.clone(), legend));
                targets.len() - 1
            }
        };
        overrides.push(threshold_override(&ref_id(at), group, kind == PanelKind::Timeseries));
    }
    let range = (unit == "percentunit").then_some((0.0, 1.0));
    let links = match &resolved.runbook_url {
        Some(url) => {
            let title = signal.runbook_section.as_deref().map_or("Runbook".to_string(), |s| format!("Runbook: {s}"));
            vec![link(&title, url)]
        }
        None => vec![],
    };
    Ok(PanelSpec {
        kind,
        title: signal.title.clone(),
        description,
        unit,
        targets,
        // Series the alerts do not compare are never coloured as if they fired.
        thresholds: vec![step("green", None)],
        draw_thresholds: false,
        overrides,
        range,
        links,
    }
    .build())
}

/// The legend of an alert's series beside the spec's queries: the alert's name and the labels
/// its series keep (`IntegrationCalendarSyncStuck {{provider}}`).
fn legend_of(model: &Model, alerts: &[&Alert]) -> String {
    let mut names: Vec<&str> = alerts.iter().map(|a| a.name.as_str()).collect();
    names.dedup();
    let mut legend = names.join(", ");
    if let Some(alert) = alerts.first() {
        for label in super::promql::kept_labels(model, &alert.condition) {
            legend.push_str(&format!(" {{{{{label}}}}}"));
        }
    }
    legend
}

/// The spec's unit when it names one; otherwise, when the panel draws only what its alerts compare,
/// the unit of those values. The spec's own queries draw something else, whose unit only the spec
/// knows (`short` otherwise); an alert's series carries its own unit either way.
fn panel_unit(panel: Option<&Panel>, drawn: Option<&Alert>) -> String {
    let own_queries = panel.is_some_and(|p| !p.queries.is_empty());
    // `short` is also the default of an omitted `unit`, so it does not override an alert's unit.
    match (panel.map(|p| p.unit.trim()).filter(|u| !u.is_empty() && *u != "short"), drawn) {
        (Some(unit), _) => unit.to_string(),
        (None, Some(alert)) if !own_queries => grafana_unit(alert.unit).to_string(),
        _ => "short".to_string(),
    }
}

/// A metric drawn as it is best read: gauges as they are, counters as a per-second rate,
/// histograms as their 95th percentile.
fn default_query(metrics: &Scope, metric: &MetricDef) -> Result<String, InvalidQuery> {
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
    try_scope(&expr, metrics)
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

    /// Hashed uids as the previous versions published them (the committed `dashboards/`):
    /// Grafana links and provisioning keep pointing at the same dashboards.
    #[test]
    fn hashed_uids_keep_their_published_bytes() {
        assert_eq!(uid(Some("etl_token_monitoring")), "ie-etl-token-monitoring-7856c555");
        assert_eq!(uid(Some("microsoft_integration")), "ie-microsoft-integration-e3a4d280");
        assert_eq!(uid(Some("salesforce_incidents")), "ie-salesforce-incidents-4d031c04");
    }
}
