//! Generated Grafana dashboards: valid against Grafana's dashboard JSON schema (and the panel
//! plugins' option schemas), scoped to the `datasource`, `job` and `instance` variables, and
//! showing every alert's threshold on the panel of its signal.
//!
//! The schemas are a copy from grafana/grafana-foundation-sdk in `tests/schemas/grafana-dashboard/`
//! (see NOTICE.md there).

use std::collections::BTreeSet;
use std::path::Path;

use integration_exporter::generate::dashboards::dashboard;
use integration_exporter::spec::{Condition, MetricType, Model, Op, Severity, SourceText};
use serde_json::{Value, json};

fn schema(file: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemas/grafana-dashboard").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut schema: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // Grafana's CUE types a field override's matcher options and property value as `_` (any: a
    // refId string, a unit string, a thresholds object); the generated schema renders `_` as an
    // object, which would refuse every override Grafana writes itself. See NOTICE.md.
    for (definition, property) in [("MatcherConfig", "options"), ("DynamicConfigValue", "value")] {
        if let Some(p) = schema.pointer_mut(&format!("/definitions/{definition}/properties/{property}")) {
            *p = json!({});
        }
    }
    schema
}

/// The schema of `file` with its root pointed at `#/definitions/<definition>`.
fn definition(file: &str, definition: &str) -> Value {
    let mut schema = schema(file);
    schema["$ref"] = json!(format!("#/definitions/{definition}"));
    schema
}

fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::validator_for(schema).unwrap_or_else(|e| panic!("schema does not compile: {e}"))
}

/// Every error, as `<what> <instance path>: <message> (schema <schema path>)`.
fn errors(validator: &jsonschema::Validator, instance: &Value, what: &str) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("{what} {}: {e} (schema {})", e.instance_path, e.schema_path))
        .collect()
}

/// The user's own signals: a stat panel, mixed `<` and `>` alerts, an `absent`-only signal, a
/// counter without panel or alerts, no descriptions, custom job and tags.
const CUSTOM: &str = r#"
database: {url_env: DATABASE_URL}
generate: {job: my-exporter, dashboard_tags: [oauth, custom]}
logs:
  app:
    paths: [/var/log/app.log]
signals:
  - id: custom.sync_errors
    title: Sync errors
    description: Sync errors logged by the app.
    metrics:
      - name: app_sync_errors_total
        type: counter
        help: Sync errors by kind.
        labels: [{name: kind, values: [auth, other], other: other}]
    source:
      log:
        log: app
        rules:
          - match: 'sync error kind=(?P<kind>\w+)'
            metric: app_sync_errors_total
            action: inc
            labels: {kind: $kind}
  - id: custom.pending_jobs
    title: Pending jobs
    metrics:
      - name: app_pending_jobs
        type: gauge
        help: Jobs waiting to run.
    source:
      sql:
        query: SELECT count(*) AS value FROM jobs
    alerts:
      - name: IntegrationAppPendingJobsLow
        severity: warning
        condition: {gauge: {metric: app_pending_jobs}}
        op: "<"
        threshold: 5
        summary: Few jobs are pending.
        description: "{value} jobs pending."
      - name: IntegrationAppPendingJobsLow
        severity: critical
        condition: {gauge: {metric: app_pending_jobs}}
        op: "<"
        threshold: 2
        summary: Almost no jobs are pending.
        description: "{value} jobs pending."
      - name: IntegrationAppPendingJobsHigh
        severity: warning
        condition: {gauge: {metric: app_pending_jobs}}
        op: ">="
        threshold: 100
        summary: Too many jobs are pending.
        description: "{value} jobs pending."
    panel:
      type: stat
  - id: custom.last_seen
    title: Last job seen
    description: When the last job ran.
    metrics:
      - name: app_last_job_timestamp_seconds
        type: gauge
        help: Time of the last job, unix seconds.
    source:
      sql:
        query: SELECT extract(epoch FROM max(ran_at)) AS value FROM jobs
    alerts:
      - name: IntegrationAppNoJobs
        severity: critical
        condition: {absent: {metric: app_last_job_timestamp_seconds}}
        op: ">"
        threshold: 0
        summary: No job was ever seen.
        description: No job has run.
"#;

fn custom_model() -> Model {
    Model::from_text(&SourceText { name: "custom.yaml".into(), text: CUSTOM.into() }).unwrap_or_else(|e| panic!("{e}"))
}

/// Every dashboard `generate` writes for the model, with the pack it belongs to.
fn dashboards(model: &Model) -> Vec<(Option<String>, Value)> {
    let mut packs: Vec<Option<String>> = model.packs.iter().map(|p| Some(p.name.clone())).collect();
    if model.enabled_signals().any(|s| s.pack.is_none()) {
        packs.push(None);
    }
    packs.into_iter().map(|p| (p.clone(), dashboard(model, p.as_deref()).expect("generates"))).collect()
}

fn all_dashboards() -> Vec<(Model, Option<String>, Value)> {
    let mut out = Vec::new();
    for model in [Model::builtin_defaults(), custom_model()] {
        for (pack, d) in dashboards(&model) {
            out.push((model.clone(), pack, d));
        }
    }
    assert!(out.len() >= 2, "expected the built-in and the custom dashboards");
    out
}

/// Panels that are not rows.
fn panels(d: &Value) -> Vec<&Value> {
    d["panels"].as_array().expect("panels").iter().filter(|p| p["type"] != "row").collect()
}

fn panel_of<'a>(d: &'a Value, title: &str) -> &'a Value {
    panels(d).into_iter().find(|p| p["title"] == title).unwrap_or_else(|| panic!("no panel titled {title:?}"))
}

fn exprs(panel: &Value) -> Vec<&str> {
    panel["targets"].as_array().expect("targets").iter().map(|t| t["expr"].as_str().expect("expr")).collect()
}

/// Runs every schema check on one dashboard; returns every error.
fn schema_errors(d: &Value) -> Vec<String> {
    let dashboard = validator(&schema("dashboard.jsonschema.json"));
    let timeseries_options = validator(&definition("timeseries.jsonschema.json", "Options"));
    let timeseries_custom = validator(&definition("timeseries.jsonschema.json", "FieldConfig"));
    let stat_options = validator(&definition("stat.jsonschema.json", "Options"));
    let target = validator(&schema("prometheus.jsonschema.json"));

    let title = d["title"].as_str().unwrap_or("?");
    let mut errs = errors(&dashboard, d, &format!("[{title}] dashboard"));
    for panel in panels(d) {
        let what = format!("[{title}] panel {:?}", panel["title"].as_str().unwrap_or("?"));
        let custom = &panel["fieldConfig"]["defaults"]["custom"];
        match panel["type"].as_str() {
            Some("timeseries") => {
                errs.extend(errors(&timeseries_options, &panel["options"], &format!("{what} options")));
                errs.extend(errors(&timeseries_custom, custom, &format!("{what} fieldConfig.defaults.custom")));
            }
            Some("stat") => {
                errs.extend(errors(&stat_options, &panel["options"], &format!("{what} options")));
                // The stat plugin has no custom field config.
                if !(custom.is_null() || custom == &json!({})) {
                    errs.push(format!("{what}: stat panels have no fieldConfig.defaults.custom, got {custom}"));
                }
            }
            other => errs.push(format!("{what}: unexpected panel type {other:?}")),
        }
        for (i, t) in panel["targets"].as_array().map(Vec::as_slice).unwrap_or_default().iter().enumerate() {
            errs.extend(errors(&target, t, &format!("{what} target {i}")));
        }
    }
    errs
}

#[test]
fn dashboards_validate_against_grafana_schemas() {
    let mut errs = Vec::new();
    for (_, _, d) in all_dashboards() {
        errs.extend(schema_errors(&d));
    }
    assert!(errs.is_empty(), "{} schema errors:\n{}", errs.len(), errs.join("\n"));
}

/// The checks can fail: a broken dashboard is reported with the path of each error.
#[test]
fn schema_checks_catch_broken_dashboards() {
    let model = Model::builtin_defaults();
    let (_, mut d) = dashboards(&model).remove(0);
    d["templating"]["list"][0]["current"] = json!({ "text": "default" });
    d["__inputs"] = json!([]);
    let first =
        d["panels"].as_array().expect("panels").iter().position(|p| p["type"] == "timeseries").expect("a time series");
    d["panels"][first]["gridPos"]["w"] = json!(30);
    d["panels"][first]["options"]["legend"]["displayMode"] = json!("sideways");
    d["panels"][first]["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] = json!("glow");
    d["panels"][first]["targets"][0]["exprr"] = json!("up");
    let errs = schema_errors(&d).join("\n");
    for path in [
        "dashboard /templating/list/0/current",
        "dashboard : Additional properties",
        "dashboard /panels/",
        "options /legend/displayMode",
        "custom /thresholdsStyle/mode",
        "target 0 : Additional properties",
    ] {
        assert!(errs.contains(path), "expected an error at {path:?}, got:\n{errs}");
    }
}

#[test]
fn dashboard_settings() {
    let mut uids = BTreeSet::new();
    for (model, pack, d) in all_dashboards() {
        let uid = d["uid"].as_str().expect("uid");
        assert!(!uid.is_empty() && uid.len() <= 40, "uid {uid:?}");
        assert!(uids.insert(uid.to_string()), "uid {uid} used twice");
        assert_eq!(dashboard(&model, pack.as_deref()).expect("generates"), d, "generation is deterministic");
        assert_eq!(d["tags"], json!(model.config.generate.dashboard_tags));
        assert_eq!(d["timezone"], "utc");
        assert_eq!(d["refresh"], "30s");
        assert_eq!(d["schemaVersion"], 39);
        assert_eq!(d["editable"], false);
        assert_eq!(d["graphTooltip"], 1);
        assert_eq!(d["time"], json!({ "from": "now-6h", "to": "now" }));
    }
    let builtin = dashboard(&Model::builtin_defaults(), Some("token_refresh")).expect("generates");
    assert_eq!(builtin["title"], "Integration exporter / Token refresh");
    assert_eq!(builtin["uid"], "integration-exporter-token-refresh");
    let custom = dashboard(&custom_model(), None).expect("generates");
    assert_eq!(custom["tags"], json!(["oauth", "custom"]));
}

#[test]
fn variables_pick_data_source_job_and_instance() {
    for (model, _, d) in all_dashboards() {
        let list = d["templating"]["list"].as_array().expect("templating.list");
        let var = |name: &str| list.iter().find(|v| v["name"] == name).unwrap_or_else(|| panic!("no variable {name}"));
        let ds = var("datasource");
        assert_eq!(ds["type"], "datasource");
        assert_eq!(ds["query"], "prometheus");
        assert_eq!(ds["label"], "Data source");
        assert!(ds["current"]["text"].is_string() && ds["current"]["value"].is_string(), "{ds}");
        for name in ["job", "instance"] {
            let v = var(name);
            assert_eq!(v["type"], "query");
            assert_eq!(v["datasource"], json!({ "type": "prometheus", "uid": "${datasource}" }));
            let query = v["query"].as_str().expect("query is a string");
            assert!(query.starts_with("label_values(integration_exporter_build_info"), "{query}");
            assert!(query.ends_with(&format!(", {name})")), "{query}");
            assert_eq!(v["multi"], true);
            assert_eq!(v["includeAll"], true);
            assert_eq!(v["allValue"], ".+");
            assert!(!v["current"]["text"].is_null() && !v["current"]["value"].is_null(), "{v}");
        }
        assert_eq!(var("job")["current"]["value"], json!([model.config.generate.job]));
    }
}

#[test]
fn every_panel_has_title_description_unit_and_the_datasource_variable() {
    for (_, _, d) in all_dashboards() {
        for panel in panels(&d) {
            let title = panel["title"].as_str().unwrap_or_default();
            assert!(!title.trim().is_empty(), "panel without title: {panel}");
            assert!(!panel["description"].as_str().unwrap_or_default().trim().is_empty(), "{title}: no description");
            assert!(
                !panel["fieldConfig"]["defaults"]["unit"].as_str().unwrap_or_default().is_empty(),
                "{title}: no unit"
            );
            let ds = json!({ "type": "prometheus", "uid": "${datasource}" });
            assert_eq!(panel["datasource"], ds, "{title}");
            let targets = panel["targets"].as_array().expect("targets");
            assert!(!targets.is_empty(), "{title}: no queries");
            for t in targets {
                assert_eq!(t["datasource"]["uid"], "${datasource}", "{title}");
                assert_eq!(t["datasource"], ds, "{title}");
            }
        }
    }
}

#[test]
fn panels_sit_on_a_grid_without_overlap() {
    for (model, pack, d) in all_dashboards() {
        let mut cells = BTreeSet::new();
        let mut ids = BTreeSet::new();
        for p in d["panels"].as_array().expect("panels") {
            assert!(ids.insert(p["id"].as_u64().expect("id")), "panel id used twice");
            let g = &p["gridPos"];
            let (x, y, w, h) = (
                g["x"].as_u64().expect("x"),
                g["y"].as_u64().expect("y"),
                g["w"].as_u64().expect("w"),
                g["h"].as_u64().expect("h"),
            );
            assert!(x + w <= 24, "{g}");
            for cx in x..x + w {
                for cy in y..y + h {
                    assert!(cells.insert((cx, cy)), "panels overlap at {cx},{cy}");
                }
            }
        }
        let signals: Vec<_> = model.enabled_signals().filter(|s| s.pack == pack).collect();
        let health_row = &d["panels"][0];
        assert_eq!(health_row["type"], "row");
        assert_eq!(health_row["title"], "Exporter health");
        for s in &signals {
            let g = &panel_of(&d, &s.signal.title)["gridPos"];
            assert_eq!((g["w"].as_u64(), g["h"].as_u64()), (Some(12), Some(8)), "{}", s.signal.id);
        }
        // One panel per enabled signal, after the health panels.
        let titles: Vec<&str> = panels(&d).iter().filter_map(|p| p["title"].as_str()).collect();
        let signal_titles: Vec<&str> = signals.iter().map(|s| s.signal.title.as_str()).collect();
        assert_eq!(titles[titles.len() - signal_titles.len()..], signal_titles[..]);
    }
}

#[test]
fn health_row_shows_query_success_and_log_lines() {
    let d = dashboard(&Model::builtin_defaults(), Some("token_refresh")).expect("generates");
    let success = exprs(panel_of(&d, "SQL query success")).join("\n");
    assert!(success.contains("integration_exporter_query_success{job=~\"$job\", instance=~\"$instance\""), "{success}");
    assert!(success.contains("by (signal)"), "{success}");
    let lines = exprs(panel_of(&d, "Log lines read")).join("\n");
    assert!(
        lines.contains("rate(integration_exporter_log_lines_total{job=~\"$job\", instance=~\"$instance\""),
        "{lines}"
    );
    assert!(lines.contains("[$__rate_interval]"), "{lines}");
    let database = exprs(panel_of(&d, "Database reachable")).join("\n");
    assert_eq!(
        database,
        "min by (database) (integration_exporter_database_up{job=~\"$job\", instance=~\"$instance\"})"
    );
    // A pack that reads no database has no such panel.
    let salesforce = dashboard(&Model::builtin_defaults(), Some("salesforce_incidents")).expect("generates");
    assert!(panels(&salesforce).iter().all(|p| p["title"] != "Database reachable"));
}

/// Every selector of a model metric carries the job and instance matchers, and counters are
/// only read through rate() or increase().
#[test]
fn queries_are_scoped_and_counters_are_rated() {
    for (model, _, d) in all_dashboards() {
        let metrics: Vec<(&str, MetricType)> = model.metrics().map(|(_, m)| (m.name.as_str(), m.kind)).collect();
        for panel in panels(&d) {
            for expr in exprs(panel) {
                let mut rest = expr;
                let mut offset = 0;
                while let Some(at) = rest.find(|c: char| c.is_ascii_alphabetic() || c == '_') {
                    let start = offset + at;
                    let len = expr[start..]
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                        .unwrap_or(expr.len() - start);
                    let word = &expr[start..start + len];
                    let after = &expr[start + len..];
                    if let Some((_, kind)) = metrics.iter().find(|(m, _)| *m == word) {
                        assert!(
                            after.starts_with("{job=~\"$job\", instance=~\"$instance\""),
                            "`{word}` without job/instance matchers in {expr}"
                        );
                        if *kind == MetricType::Counter {
                            let before = expr[..start].trim_end();
                            assert!(
                                before.ends_with("rate(") || before.ends_with("increase("),
                                "counter `{word}` outside rate()/increase() in {expr}"
                            );
                        }
                    }
                    offset = start + len;
                    rest = &expr[offset..];
                }
                if expr.contains("$__rate_interval") {
                    assert!(expr.contains("rate("), "{expr}");
                }
            }
        }
    }
}

/// The colour Grafana gives `v` under threshold `steps`: the last step at or below it, the first
/// (`null`) being the base.
fn grafana_color(steps: &[Value], v: f64) -> &str {
    let mut color = steps[0]["color"].as_str().expect("color");
    for step in &steps[1..] {
        if step["value"].as_f64().is_some_and(|at| v >= at) {
            color = step["color"].as_str().expect("color");
        }
    }
    color
}

/// The threshold steps and unit Grafana applies to the series of query `ref_id`: an override
/// matching that refId, else the panel's defaults.
fn field_config(panel: &Value, ref_id: &str) -> (Vec<Value>, String) {
    let defaults = &panel["fieldConfig"]["defaults"];
    let mut steps = defaults["thresholds"]["steps"].as_array().expect("steps").clone();
    let mut unit = defaults["unit"].as_str().expect("unit").to_string();
    for o in panel["fieldConfig"]["overrides"].as_array().expect("overrides") {
        if o["matcher"]["id"] != "byFrameRefID" || o["matcher"]["options"] != ref_id {
            continue;
        }
        for property in o["properties"].as_array().expect("properties") {
            match property["id"].as_str() {
                Some("thresholds") => steps = property["value"]["steps"].as_array().expect("steps").clone(),
                Some("unit") => unit = property["value"].as_str().expect("unit").to_string(),
                _ => {}
            }
        }
    }
    (steps, unit)
}

/// The threshold steps and unit of the series that draws what `alert` compares on `panel`.
fn alert_field(model: &Model, panel: &Value, alert: &integration_exporter::spec::Alert) -> (Vec<Value>, String) {
    use integration_exporter::generate::promql::measured_on_panel;
    use integration_exporter::generate::scope::{Scope, try_scope};
    let expr = try_scope(&measured_on_panel(model, alert), &Scope::of(model)).expect("generates");
    let target = panel["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .find(|t| t["expr"].as_str().unwrap_or_default().split_whitespace().eq(expr.split_whitespace()))
        .unwrap_or_else(|| panic!("{}: no series draws `{expr}`", alert.name));
    field_config(panel, target["refId"].as_str().expect("refId"))
}

fn severity_color(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "red",
        Severity::Warning => "orange",
        Severity::Info => "blue",
    }
}

/// Every generated dashboard (each pack's, the user's own, the overview's tiles): every value an
/// alert compares is a series of its signal's panel, drawn in the alert's unit; a value at which
/// none of its alerts fires is green, one at which one fires has the colour of the worst firing
/// there (so a healthy 0 under `> 0` is green, and under `< 0.95` the colours are inverted); each
/// step sits where the alert's comparison switches: at its threshold, or for `>` and `<=` at the
/// next number after it (Grafana colours a value at a step with that step's colour). Series no
/// alert compares, and the exporter-health panels at their healthy value, are green.
#[test]
fn every_panel_draws_what_its_alerts_compare_green_until_they_fire() {
    use integration_exporter::generate::dashboards::{Dashboards, overview};
    use integration_exporter::generate::promql::measured_on_panel;
    use integration_exporter::generate::scope::{Scope, try_scope};
    let same = |a: &str, b: &str| a.split_whitespace().eq(b.split_whitespace());
    let mut checked = 0;
    for model in [Model::builtin_defaults(), custom_model()] {
        let sc = Scope::of(&model);
        let links = Dashboards::of(&model).expect("generates").links;
        let mut boards: Vec<(Option<String>, Value)> = dashboards(&model);
        let tiles = overview(&model, &links).expect("generates");
        boards.push((Some("overview".into()), tiles));
        for (pack, board) in &boards {
            for panel in panels(board) {
                let title = panel["title"].as_str().expect("title");
                let signal = model.enabled_signals().find(|s| {
                    if pack.as_deref() == Some("overview") {
                        links.url(s).is_some_and(|u| panel["links"][0]["url"] == u)
                    } else {
                        &s.pack == pack && s.signal.title == title
                    }
                });
                let targets: Vec<(String, String)> = panel["targets"]
                    .as_array()
                    .expect("targets")
                    .iter()
                    .map(|t| (t["refId"].as_str().unwrap().to_string(), t["expr"].as_str().unwrap().to_string()))
                    .collect();
                let Some(signal) = signal else {
                    // The exporter's health and the firing alerts: green at their healthy value.
                    let up = [" up", "success", "reachable"].iter().any(|w| title.contains(w));
                    // An SLO's row: the whole budget left, no burn at all.
                    let healthy = if title.ends_with(": error budget left") {
                        1.0
                    } else if title.ends_with(": error budget burn rate") {
                        0.0
                    } else if up {
                        1.0
                    } else {
                        0.0
                    };
                    for (ref_id, _) in &targets {
                        let (steps, _) = field_config(panel, ref_id);
                        assert_eq!(grafana_color(&steps, healthy), "green", "{title}: {healthy} is healthy: {steps:?}");
                    }
                    continue;
                };
                let id = &signal.signal.id;
                let description = panel["description"].as_str().expect("description");
                let alerts: Vec<&integration_exporter::spec::Alert> =
                    signal.signal.alerts.iter().filter(|a| a.enabled).collect();
                for alert in &alerts {
                    let line = format!("Alert {} ({})", alert.name, alert.severity.as_str());
                    assert!(description.contains(&line), "{id}: description does not name {line}:\n{description}");
                }
                let compared: Vec<_> =
                    alerts.iter().filter(|a| !matches!(a.condition, Condition::Absent(_))).copied().collect();
                for alert in &compared {
                    let expr = try_scope(&measured_on_panel(&model, alert), &sc).expect("generates");
                    assert!(
                        targets.iter().any(|(_, t)| same(t, &expr)),
                        "{id}: {} compares `{expr}`, which its panel does not draw: {targets:?}",
                        alert.name
                    );
                }
                for (ref_id, expr) in &targets {
                    let (steps, unit) = field_config(panel, ref_id);
                    let here: Vec<_> = compared
                        .iter()
                        .filter(|a| same(&try_scope(&measured_on_panel(&model, a), &sc).expect("generates"), expr))
                        .copied()
                        .collect();
                    if here.is_empty() {
                        assert!(
                            steps.iter().all(|s| s["color"] == "green"),
                            "{id}: `{expr}` is no alert's value, yet coloured: {steps:?}"
                        );
                        continue;
                    }
                    for alert in &here {
                        let want = integration_exporter::generate::panels::grafana_unit(alert.unit);
                        assert_eq!(unit, want, "{id}: {} is drawn in {unit}, not its unit {want}", alert.name);
                    }
                    let mut probes = vec![0.0, -1.0, 1.0, 1e9, -1e9];
                    for a in &here {
                        let t = a.threshold;
                        probes.extend([t, t.next_up(), t.next_down(), t - 1.0, t + 1.0, t * 0.5, t * 1.5]);
                    }
                    for v in probes {
                        let want = here
                            .iter()
                            .filter(|a| a.op.holds(v, a.threshold))
                            .map(|a| a.severity)
                            .min()
                            .map_or("green", severity_color);
                        assert_eq!(grafana_color(&steps, v), want, "{id} `{expr}` at {v}: steps {steps:?}");
                        checked += 1;
                    }
                    for step in steps.iter().skip(1) {
                        let at = step["value"].as_f64().expect("a step value");
                        assert!(
                            here.iter().any(|a| at == a.threshold
                                || (matches!(a.op, Op::Gt | Op::Le) && at == a.threshold.next_up())),
                            "{id}: a step at {at} is no alert's threshold: {steps:?}"
                        );
                    }
                }
            }
        }
    }
    assert!(checked > 500, "only {checked} values checked");
}

#[test]
fn panels_follow_the_spec() {
    let model = Model::builtin_defaults();
    let d = dashboard(&model, Some("token_refresh")).expect("generates");
    let expiring = panel_of(&d, "Tokens expiring soon");
    assert_eq!(expiring["type"], "timeseries");
    assert_eq!(exprs(expiring), ["integration_token_refresh_tokens_expiring{job=~\"$job\", instance=~\"$instance\"}"]);
    assert!(
        expiring["description"]
            .as_str()
            .unwrap_or_default()
            .contains("Alert IntegrationTokenRefreshTokensExpiring (critical): above 20 for 5m")
    );
    // `> 20`: 20 itself does not fire, so red starts at the next number after it; the series
    // carries the alert's own unit and thresholds, drawn as lines and areas.
    let (steps, unit) = field_config(expiring, "A");
    assert_eq!(
        steps,
        vec![json!({ "color": "green", "value": null }), json!({ "color": "red", "value": 20f64.next_up() })]
    );
    assert_eq!(unit, "short");
    assert_eq!(expiring["fieldConfig"]["overrides"][0]["properties"][2]["value"]["mode"], "line+area");
    assert_eq!(
        expiring["fieldConfig"]["defaults"]["thresholds"]["steps"],
        json!([{ "color": "green", "value": null }])
    );
    let success = panel_of(&d, "Proactive refresh success rate");
    assert_eq!(success["fieldConfig"]["defaults"]["unit"], "percentunit");
    // `< 95%`: the colours are inverted, and 95% itself is green.
    let (steps, _) = field_config(success, "A");
    assert_eq!(steps, vec![json!({ "color": "orange", "value": null }), json!({ "color": "green", "value": 0.95 })]);
    // Age: the panel draws seconds since the timestamp, the threshold is in seconds; the fleet's
    // newest heartbeat, as the alert compares it (a standby host's old one is not the fleet's).
    let lag = panel_of(&d, "Heartbeat lag");
    assert_eq!(lag["fieldConfig"]["defaults"]["unit"], "s");
    assert_eq!(
        exprs(lag),
        [
            "time() - max without (instance) (integration_token_refresh_last_cycle_timestamp_seconds{job=~\"$job\", instance=~\"$instance\"})"
        ]
    );
    // The pack's query is the alert's value: it carries the alert's unit and thresholds.
    assert_eq!(field_config(lag, "A").1, "s");
    let backoff = panel_of(&d, "Tokens in backoff");
    assert_eq!(
        exprs(backoff),
        ["sum by (revoked) (integration_token_refresh_tokens_in_backoff{job=~\"$job\", instance=~\"$instance\"})"]
    );

    let custom = dashboard(&custom_model(), None).expect("generates");
    let pending = panel_of(&custom, "Pending jobs");
    assert_eq!(pending["type"], "stat");
    let (steps, _) = field_config(pending, "A");
    assert_eq!(
        json!(steps),
        json!([
            { "color": "red", "value": null },
            { "color": "orange", "value": 2.0 },
            { "color": "green", "value": 5.0 },
            { "color": "orange", "value": 100.0 },
        ])
    );
    assert!(
        pending["fieldConfig"]["overrides"][0]["properties"].as_array().unwrap().len() == 2,
        "a stat has no line style"
    );
    assert!(pending["description"].as_str().unwrap_or_default().contains("Jobs waiting to run."));
    let errors = panel_of(&custom, "Sync errors");
    assert_eq!(
        exprs(errors),
        ["sum without (kind) (rate(app_sync_errors_total{job=~\"$job\", instance=~\"$instance\"}[$__rate_interval]))"]
    );
    // absent() alone is nothing to draw: the metric itself is.
    let last = panel_of(&custom, "Last job seen");
    assert_eq!(exprs(last), ["app_last_job_timestamp_seconds{job=~\"$job\", instance=~\"$instance\"}"]);
}

/// The overview validates like the pack dashboards, has a tile for every signal with a
/// threshold alert, and every tile links to the panel of its signal (the alert's `dashboard_url`).
#[test]
fn overview_validates_and_links_every_alerting_signal() {
    use integration_exporter::generate::dashboards::{Dashboards, overview};
    for model in [Model::builtin_defaults(), custom_model()] {
        let links = Dashboards::of(&model).expect("generates").links;
        let d = overview(&model, &links).expect("generates");
        let errs = schema_errors(&d);
        assert!(errs.is_empty(), "{}", errs.join("\n"));
        let tiles = panels(&d);
        for signal in model.enabled_signals().filter(|s| s.signal.alerts.iter().any(|a| a.enabled)) {
            let url = links.url(signal).expect("a panel for every signal");
            let id: u64 = url.rsplit("viewPanel=").next().unwrap().parse().unwrap();
            let board = dashboard(&model, signal.pack.as_deref()).expect("generates");
            let target = panels(&board).into_iter().find(|p| p["id"] == id).expect("the linked panel exists");
            assert_eq!(target["title"], signal.signal.title.as_str());
            let absent_only = signal
                .signal
                .alerts
                .iter()
                .all(|a| matches!(a.condition, integration_exporter::spec::Condition::Absent(_)));
            if !absent_only {
                let tile = tiles.iter().find(|p| p["links"][0]["url"] == url).expect("a tile linking the panel");
                assert_eq!(tile["type"], "stat");
                assert_eq!(tile["title"], signal.signal.title.as_str());
            }
        }
    }
}

/// The ranges of every `rate(`, `irate(` and `increase(` call in `expr` (the text between the
/// first `[` after the call and its `]`).
fn rate_ranges(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    for call in ["rate(", "increase("] {
        // `rate(` also finds `irate(`.
        for (at, _) in expr.match_indices(call) {
            let rest = &expr[at..];
            let open = rest.find('[').unwrap_or_else(|| panic!("{call} without a range in {expr}"));
            let close = rest[open..].find(']').unwrap() + open;
            out.push(rest[open + 1..close].to_string());
        }
    }
    out
}

/// Every expression parses: promtool loads them as recording rules (Grafana's variables replaced
/// by values of the same type, as Grafana interpolates them before sending).
fn promtool_parses(exprs: &[String]) -> (bool, String) {
    let rules: Vec<Value> = exprs
        .iter()
        .enumerate()
        .map(|(i, e)| json!({"record": format!("lint:expr_{i}"), "expr": e.replace("$__rate_interval", "1m")}))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lint.rules.yml");
    std::fs::write(&path, json!({"groups": [{"name": "lint", "rules": rules}]}).to_string()).unwrap();
    let out = crate::support::program("promtool").args(["check", "rules"]).arg(&path).output().expect("promtool");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// grafana/dashboard-linter's rules, reimplemented (the linter is a Go tool): the template,
/// panel and target rules, for every pack dashboard and the overview of both models. Returns
/// every finding as `<dashboard> / <panel>: <rule>`.
fn lint(name: &str, d: &Value) -> (Vec<String>, Vec<String>) {
    let mut found = Vec::new();
    let variables = d["templating"]["list"].as_array().cloned().unwrap_or_default();
    let variable = |n: &str| variables.iter().find(|v| v["name"] == n).cloned();
    match variable("datasource") {
        Some(v) if v["type"] == "datasource" && v["query"] == "prometheus" => {}
        _ => found.push(format!("{name}: template-datasource-rule")),
    }
    for (var, rule) in [("job", "template-job-rule"), ("instance", "template-instance-rule")] {
        match variable(var) {
            Some(v)
                if v["type"] == "query"
                    && v["datasource"]["uid"].as_str().is_some_and(|u| u.contains("datasource")) => {}
            _ => found.push(format!("{name}: {rule}")),
        }
    }
    let mut all = Vec::new();
    for panel in panels(d) {
        let at = format!("{name} / {}", panel["title"]);
        if !matches!(panel["datasource"]["uid"].as_str(), Some("$datasource" | "${datasource}")) {
            found.push(format!("{at}: panel-datasource-rule"));
        }
        if panel["title"].as_str().is_none_or(str::is_empty) || panel["description"].as_str().is_none_or(str::is_empty)
        {
            found.push(format!("{at}: panel-title-description-rule"));
        }
        if ["timeseries", "stat"].contains(&panel["type"].as_str().unwrap_or(""))
            && panel["fieldConfig"]["defaults"]["unit"].as_str().is_none_or(str::is_empty)
        {
            found.push(format!("{at}: panel-units-rule"));
        }
        for expr in panel["targets"].as_array().into_iter().flatten().filter_map(|t| t["expr"].as_str()) {
            if !expr.contains(r#"job=~"$job""#) {
                found.push(format!("{at}: target-job-rule {expr}"));
            }
            if !expr.contains(r#"instance=~"$instance"#) {
                found.push(format!("{at}: target-instance-rule {expr}"));
            }
            for range in rate_ranges(expr) {
                if range != "$__rate_interval" {
                    found.push(format!("{at}: target-rate-interval-rule [{range}] in {expr}"));
                }
            }
            all.push(expr.to_string());
        }
    }
    (found, all)
}

#[test]
fn dashboards_pass_the_dashboard_linter_rules() {
    let mut findings = Vec::new();
    let mut exprs = Vec::new();
    for model in [Model::builtin_defaults(), custom_model()] {
        let mut boards: Vec<(String, Value)> =
            dashboards(&model).into_iter().map(|(p, d)| (p.unwrap_or("custom".into()), d)).collect();
        boards.push((
            "overview".into(),
            integration_exporter::generate::dashboards::overview(
                &model,
                &integration_exporter::generate::dashboards::Dashboards::of(&model).expect("generates").links,
            )
            .expect("generates"),
        ));
        for (name, d) in boards {
            let (found, all) = lint(&name, &d);
            findings.extend(found);
            exprs.extend(all);
        }
    }
    assert!(findings.is_empty(), "{}", findings.join("\n"));
    let (ok, out) = promtool_parses(&exprs);
    assert!(ok, "target-promql-rule: {out}");
    assert!(exprs.len() > 50, "{}", exprs.len());
}

/// The rules find what they look for.
#[test]
fn the_dashboard_linter_rules_catch_broken_dashboards() {
    let mut d = dashboard(&Model::builtin_defaults(), Some("token_refresh")).expect("generates");
    let panel = d["panels"].as_array_mut().unwrap().iter_mut().find(|p| p["type"] == "timeseries").unwrap();
    panel["datasource"]["uid"] = "prometheus".into();
    panel["description"] = "".into();
    panel["fieldConfig"]["defaults"]["unit"] = Value::Null;
    panel["targets"][0]["expr"] = "sum(rate(x_total{job=\"a\"}[5m])) +".into();
    let (found, exprs) = lint("broken", &d);
    let found = found.join("\n");
    for rule in [
        "panel-datasource-rule",
        "panel-title-description-rule",
        "panel-units-rule",
        "target-job-rule",
        "target-instance-rule",
        "target-rate-interval-rule [5m]",
    ] {
        assert!(found.contains(rule), "{rule} not found in:\n{found}");
    }
    assert!(!promtool_parses(&exprs).0, "promtool parsed a broken expression");
    d["templating"]["list"] = json!([]);
    let found = lint("broken", &d).0.join("\n");
    for rule in ["template-datasource-rule", "template-job-rule", "template-instance-rule"] {
        assert!(found.contains(rule), "{rule} not found in:\n{found}");
    }
}

/// Alerts link to their signal's panel by the signal, not its title: two signals may share a
/// title, and each alert's `dashboard_url` opens the panel that draws its own metric.
#[test]
fn panels_are_linked_by_signal_not_by_title() {
    use integration_exporter::generate::dashboards::Dashboards;
    let spec = r#"
database: {url_env: DATABASE_URL}
signals:
  - id: custom.queue_a
    title: Queue depth
    metrics: [{name: app_queue_a, type: gauge, help: Queue A depth.}]
    source: {sql: {query: SELECT 1 AS value}}
    alerts:
      - {name: IntegrationQueueADeep, severity: warning, condition: {gauge: {metric: app_queue_a}}, op: ">", threshold: 5, summary: Queue A is deep., description: "{value} deep."}
  - id: custom.queue_b
    title: Queue depth
    metrics: [{name: app_queue_b, type: gauge, help: Queue B depth.}]
    source: {sql: {query: SELECT 1 AS value}}
    alerts:
      - {name: IntegrationQueueBDeep, severity: warning, condition: {gauge: {metric: app_queue_b}}, op: ">", threshold: 5, summary: Queue B is deep., description: "{value} deep."}
"#;
    let model = Model::from_text(&SourceText { name: "same-title.yaml".into(), text: spec.into() })
        .unwrap_or_else(|e| panic!("two signals may share a title: {e}"));
    let links = Dashboards::of(&model).expect("generates").links;
    let board = dashboard(&model, None).expect("generates");
    for signal in model.enabled_signals() {
        let url = links.url(signal).expect("a panel for every signal");
        let id: u64 = url.rsplit("viewPanel=").next().unwrap().parse().unwrap();
        let panel = panels(&board).into_iter().find(|p| p["id"] == id).expect("the linked panel exists");
        let metric = &signal.signal.metrics[0].name;
        assert!(exprs(panel).iter().any(|e| e.contains(metric.as_str())), "{url} does not draw {metric}");
    }
}

/// A panel type the generator does not draw is a load error at its place, not a time series.
#[test]
fn an_unknown_panel_type_is_a_load_error_with_its_place() {
    let text = CUSTOM.replace("    panel:\n      type: stat\n", "    panel:\n      type: stats\n");
    assert_ne!(text, CUSTOM);
    let line = text.lines().position(|l| l == "      type: stats").expect("the typo") + 1;
    let err = Model::from_text(&SourceText { name: "custom.yaml".into(), text })
        .expect_err("an unknown panel type must not load")
        .to_string();
    assert!(err.starts_with(&format!("custom.yaml:{line}:13: ")), "{err}");
    assert!(err.contains("stats") && err.contains("timeseries"), "{err}");
}

/// The runbook packs.
const RUNBOOK_PACKS: [&str; 5] =
    ["token_refresh", "microsoft_integration", "calendar_sync", "etl_token_monitoring", "salesforce_incidents"];

/// The runbook packs with every signal on, but for an alternative that exports the same metrics
/// as the default it replaces (Salesforce's limits call through OAuth).
fn runbook_packs_every_signal() -> Model {
    let mut text = String::from("database: {url_env: X}\npacks:\n");
    for pack in RUNBOOK_PACKS {
        let def = integration_exporter::spec::builtin_pack(pack).unwrap().unwrap();
        let on: Vec<String> = def
            .signals
            .iter()
            .filter(|s| s.id != "salesforce_incidents.api_usage_oauth")
            .map(|s| format!("{}: {{enabled: true}}", s.id))
            .collect();
        text.push_str(&format!("  {pack}:\n    signals: {{{}}}\n", on.join(", ")));
    }
    Model::from_text(&SourceText { name: "t.yaml".into(), text }).unwrap_or_else(|e| panic!("{e}"))
}

/// Grafana's color for `value`: the last step at or below it.
fn color_at(steps: &[Value], value: f64) -> &str {
    steps
        .iter()
        .rev()
        .find(|s| s["value"].as_f64().is_none_or(|v| v <= value))
        .and_then(|s| s["color"].as_str())
        .unwrap_or_default()
}

/// During triage a panel must read like its alerts: it draws what they compare, in their unit,
/// and a healthy reading (no count, full success, no age) is green, not the alert's color.
#[test]
fn runbook_panels_draw_what_their_alerts_compare_green_when_healthy() {
    use integration_exporter::generate::panels::grafana_unit;
    use integration_exporter::generate::promql::measured_on_panel;
    use integration_exporter::spec::{Op, ValueUnit};
    let model = runbook_packs_every_signal();
    let unscoped = |expr: &str| {
        expr.replace("job=~\"$job\", instance=~\"$instance\", ", "")
            .replace("{job=~\"$job\", instance=~\"$instance\"}", "")
    };
    for pack in RUNBOOK_PACKS {
        let d = dashboard(&model, Some(pack)).expect("generates");
        for s in model.enabled_signals().filter(|s| s.pack.as_deref() == Some(pack)) {
            let alerts: Vec<_> =
                s.signal.alerts.iter().filter(|a| a.enabled && !matches!(a.condition, Condition::Absent(_))).collect();
            if alerts.is_empty() {
                continue;
            }
            let panel = panel_of(&d, &s.signal.title);
            let drawn: Vec<String> = exprs(panel).into_iter().map(unscoped).collect();
            for alert in &alerts {
                let who = format!("{}: {}", s.signal.id, alert.name);
                // The series of what the alert compares carries its unit and its thresholds.
                let (steps, unit) = alert_field(&model, panel, alert);
                let steps = &steps;
                assert_eq!(unit, grafana_unit(alert.unit), "{who}: unit");
                match &alert.condition {
                    // Guarded (`while`), the value is drawn in the state the alert fires in.
                    Condition::Gauge(g) if !alert.while_.is_empty() => {
                        let guard = alert.while_[0].condition.metrics()[0];
                        assert!(
                            drawn.iter().any(|e| e.contains(&g.metric) && e.contains(guard)),
                            "{who}: {} is not drawn with {guard}: {drawn:?}",
                            g.metric
                        )
                    }
                    // A gauge may be drawn summed over a label its threshold holds for (any > 0).
                    Condition::Gauge(g) => {
                        assert!(drawn.iter().any(|e| e.contains(&g.metric)), "{who}: {} not drawn: {drawn:?}", g.metric)
                    }
                    _ => {
                        let measured = measured_on_panel(&model, alert);
                        assert!(drawn.contains(&measured), "{who}: draws {drawn:?}, not what it compares: {measured}")
                    }
                }
                let healthy = match (alert.op, alert.unit) {
                    (Op::Lt | Op::Le, ValueUnit::Percent) => 1.0,
                    (Op::Lt | Op::Le, _) => alert.threshold * 2.0 + 1.0,
                    (Op::Gt | Op::Ge, _) => 0.0,
                };
                if alerts.iter().all(|a| !a.op.holds(healthy, a.threshold)) {
                    assert_eq!(color_at(steps, healthy), "green", "{who}: a healthy {healthy} on {steps:?}");
                }
            }
        }
    }
}

/// The panels someone triages the ETL and Salesforce incidents on draw what their alerts compare,
/// in the alerts' unit, green while healthy: each workflow's state (1 green, 0 red), the MCP
/// server's `up` alone, the model error ratio against its 5% (no rates beside it), and a count
/// of REQUEST_LIMIT_EXCEEDED errors that is green at 0.
#[test]
fn triage_panels_draw_what_their_alerts_compare() {
    use integration_exporter::generate::panels::grafana_unit;
    let model = Model::builtin_defaults();
    // The thresholds of the panel's alert's series (each of these panels has one alert).
    let steps = |panel: &Value| {
        let signal = model.enabled_signals().find(|s| s.signal.title == panel["title"].as_str().unwrap()).unwrap();
        let alert = signal.signal.alerts.iter().find(|a| a.enabled && !matches!(a.condition, Condition::Absent(_)));
        alert_field(&model, panel, alert.expect("an alert with a threshold")).0
    };
    for pack in ["etl_token_monitoring", "salesforce_incidents"] {
        let d = dashboard(&model, Some(pack)).expect("generates");
        for s in model.enabled_signals().filter(|s| s.pack.as_deref() == Some(pack)) {
            let panel = panel_of(&d, &s.signal.title);
            for alert in s.signal.alerts.iter().filter(|a| a.enabled && !matches!(a.condition, Condition::Absent(_))) {
                assert_eq!(
                    alert_field(&model, panel, alert).1,
                    grafana_unit(alert.unit),
                    "{}: the panel is not in the unit of {}",
                    s.signal.id,
                    alert.name
                );
            }
        }
    }

    let etl = dashboard(&model, Some("etl_token_monitoring")).expect("generates");
    let workflows = panel_of(&etl, "GitHub Actions workflows");
    assert_eq!(exprs(workflows), ["integration_etl_workflow_active{job=~\"$job\", instance=~\"$instance\"}"]);
    assert_eq!(workflows["targets"][0]["legendFormat"], "{{workflow}}");
    assert_eq!(color_at(&steps(workflows), 1.0), "green", "an active workflow");
    assert_eq!(color_at(&steps(workflows), 0.0), "red", "a disabled one");

    let sf = dashboard(&model, Some("salesforce_incidents")).expect("generates");
    let health = panel_of(&sf, "MCP server health");
    assert_eq!(exprs(health), ["integration_salesforce_mcp_server_up{job=~\"$job\", instance=~\"$instance\"}"]);
    assert_eq!(color_at(&steps(health), 1.0), "green");
    let errors = panel_of(&sf, "Model error rate");
    assert_eq!(errors["fieldConfig"]["defaults"]["unit"], "percentunit");
    let [ratio] = exprs(errors)[..] else { panic!("one query: {:?}", exprs(errors)) };
    assert!(ratio.contains("result=\"error\"") && ratio.contains("\n/\n"), "the error ratio: {ratio}");
    assert_eq!(color_at(&steps(errors), 0.0), "green", "no failed request is healthy");
    assert_eq!(color_at(&steps(errors), 0.06), "orange");
    let limit = panel_of(&sf, "REQUEST_LIMIT_EXCEEDED returned to MCP tools");
    assert_eq!(color_at(&steps(limit), 0.0), "green", "no error is healthy");
    assert_eq!(color_at(&steps(limit), 1.0), "red");
    let rate_limited = panel_of(&sf, "Model 429 Too Many Requests");
    assert_eq!(exprs(rate_limited).len(), 1);
}
