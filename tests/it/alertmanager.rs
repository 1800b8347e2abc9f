//! The generated Alertmanager configuration: amtool accepts it, every generated alert routes to
//! the receiver of its severity (`critical` -> page, `warning` -> ticket, `info` -> null), and the
//! warning of every warning/critical pair is inhibited while its critical fires, for the same
//! series only (one expired platform token never hides another platform's warning).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use integration_exporter::generate::output::rules;
use integration_exporter::generate::plan::Plan;
use integration_exporter::generate::scope::regex_escape;
use integration_exporter::generate::{outputs, promql, rule_files};
use integration_exporter::spec::{Model, SourceText};
use serde_json::Value;

use crate::support::process::{Proc, program};
use crate::support::{free_port, wait};

/// Custom signals with a warning/critical pair (the built-in packs have none yet) and an info alert.
const PAIR_SETTINGS: &str = r#"generate:
  alertmanager:
    page_webhook_url: http://pager.internal:8080/hooks/am
    ticket_webhook_url: https://tickets.example.org/alertmanager?queue=ops
    repeat_interval: 12h
"#;

fn pair_model() -> Model {
    let text = format!("{PAIR_SETTINGS}{}", include_str!("../fixtures/graph_errors.yaml"));
    Model::from_text(&SourceText { name: "pair.yaml".into(), text }).unwrap()
}

/// The receiver the team's conventions send each severity to.
fn expected_receiver(severity: &str) -> &'static str {
    match severity {
        "critical" => "page",
        "warning" => "ticket",
        "info" => "null",
        other => panic!("unknown severity {other}"),
    }
}

/// Writes the generated Alertmanager configuration of `model` into a temporary directory.
fn write_config(model: &Model) -> (tempfile::TempDir, PathBuf) {
    let (_, text) = outputs(model)
        .unwrap()
        .into_iter()
        .find(|(rel, _)| rel == Path::new("alertmanager/alertmanager.yml"))
        .expect("outputs include alertmanager/alertmanager.yml");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alertmanager.yml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn parse(path: &Path) -> Value {
    serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn amtool(args: &[&str]) -> (bool, String) {
    let out = program("amtool").args(args).output().expect("amtool");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// Every generated alert rule of the model, from the same rule files `generate` writes.
fn generated_rules(model: &Model) -> Vec<rules::Rule> {
    let plan = Plan::of(model).expect("generates");
    plan.packs.iter().flat_map(|p| rule_files::rule_file(p).groups).flat_map(|g| g.rules).collect()
}

/// The labels an alert of `rule` carries in Alertmanager.
fn with_name(rule: &rules::Rule) -> BTreeMap<String, String> {
    let mut labels = rule.labels.clone();
    labels.insert("alertname".into(), rule.alert.clone());
    labels
}

/// (warning, critical) labels, alertname included, of every warning/critical pair of the model.
fn pairs(model: &Model) -> Vec<(BTreeMap<String, String>, BTreeMap<String, String>)> {
    let all = generated_rules(model);
    let mut out = Vec::new();
    for warning in all.iter().filter(|r| r.labels["severity"] == "warning") {
        for critical in all.iter().filter(|r| r.labels["severity"] == "critical") {
            if warning.alert == critical.alert
                && warning.labels.contains_key("signal")
                && warning.labels.get("signal") == critical.labels.get("signal")
            {
                out.push((with_name(warning), with_name(critical)));
            }
        }
    }
    out
}

/// `name="value"`, `name!="value"` and `name=~"regex"` matchers (anchored, as in Alertmanager);
/// a missing label is the empty string.
fn matches(matchers: &Value, labels: &BTreeMap<String, String>) -> bool {
    matchers.as_array().unwrap().iter().all(|m| {
        let m = m.as_str().unwrap();
        let (name, value) = m.split_once('=').unwrap_or_else(|| panic!("matcher {m}"));
        let got = labels.get(name.trim_end_matches('!')).cloned().unwrap_or_default();
        if let Some(re) = value.strip_prefix('~') {
            let pattern: String = serde_json::from_str(re).unwrap();
            regex::Regex::new(&format!("^(?:{pattern})$")).unwrap().is_match(&got)
        } else if name.ends_with('!') {
            got != value.trim_matches('"')
        } else {
            got == value.trim_matches('"')
        }
    })
}

/// Source-health alerts: they inhibit the alerts of the signals they blind, on purpose.
fn is_source_health(labels: &BTreeMap<String, String>) -> bool {
    labels["alertname"].starts_with("IntegrationSource") || labels["alertname"] == "IntegrationExporterDown"
}

/// Alertmanager's inhibition rule semantics: does a firing `source` mute `target`? A label
/// missing on one side is the empty string, as in Alertmanager.
fn inhibits(config: &Value, source: &BTreeMap<String, String>, target: &BTreeMap<String, String>) -> bool {
    let get = |labels: &BTreeMap<String, String>, name: &str| labels.get(name).cloned().unwrap_or_default();
    config["inhibit_rules"].as_array().unwrap().iter().any(|rule| {
        matches(&rule["source_matchers"], source)
            && matches(&rule["target_matchers"], target)
            && rule["equal"]
                .as_array()
                .unwrap()
                .iter()
                .all(|l| get(source, l.as_str().unwrap()) == get(target, l.as_str().unwrap()))
    })
}

/// The labels a firing alert of `rule` has in Alertmanager for one series: its rule labels, the
/// scrape target's and those its expression keeps, each set to `value`.
fn series_of(model: &Model, rule: &rules::Rule, value: &str) -> BTreeMap<String, String> {
    let mut labels = with_name(rule);
    let alert = model
        .enabled_signals()
        .filter(|s| Some(&s.signal.id) == rule.labels.get("signal"))
        .flat_map(|s| s.signal.alerts.iter())
        .find(|a| a.name == rule.alert)
        .unwrap();
    for name in ["job", "instance"].into_iter().map(String::from).chain(promql::kept_labels(model, &alert.condition)) {
        labels.insert(name, value.to_string());
    }
    labels
}

#[test]
fn amtool_accepts_the_config_for_the_builtin_packs_and_for_custom_webhooks() {
    for model in [Model::builtin_defaults(), pair_model()] {
        let (_dir, path) = write_config(&model);
        let (ok, out) = amtool(&["check-config", path.to_str().unwrap()]);
        assert!(ok, "{out}");
        let inhibit_rules = format!("{} inhibit rules", parse(&path)["inhibit_rules"].as_array().unwrap().len());
        assert!(out.contains("3 receivers") && out.contains(&inhibit_rules), "{out}");
    }

    let (_dir, path) = write_config(&Model::builtin_defaults());
    let config = parse(&path);
    let url = |i: usize| config["receivers"][i]["webhook_configs"][0]["url"].clone();
    assert_eq!(url(0), "http://127.0.0.1:9095/page");
    assert_eq!(url(1), "http://127.0.0.1:9095/ticket");
    assert_eq!(config["route"]["group_by"], serde_json::json!(["alertname", "signal"]));
    assert_eq!(config["route"]["receiver"], "ticket");

    let (_dir, path) = write_config(&pair_model());
    let config = parse(&path);
    let receivers: BTreeMap<&str, &Value> =
        config["receivers"].as_array().unwrap().iter().map(|r| (r["name"].as_str().unwrap(), r)).collect();
    assert_eq!(receivers["page"]["webhook_configs"][0]["url"], "http://pager.internal:8080/hooks/am");
    assert_eq!(receivers["ticket"]["webhook_configs"][0]["url"], "https://tickets.example.org/alertmanager?queue=ops");
    assert!(receivers["null"].get("webhook_configs").is_none(), "the null receiver sends nothing");
    assert_eq!(config["route"]["repeat_interval"], "12h");
}

#[test]
fn every_generated_alert_routes_to_the_receiver_of_its_severity() {
    let mut severities = std::collections::BTreeSet::new();
    for model in [Model::builtin_defaults(), pair_model()] {
        let (_dir, path) = write_config(&model);
        let config_flag = format!("--config.file={}", path.display());
        let rules = generated_rules(&model);
        assert!(!rules.is_empty());
        for rule in rules {
            let severity = rule.labels["severity"].clone();
            let receiver = expected_receiver(&severity);
            let mut args = vec![
                "config".to_string(),
                "routes".into(),
                "test".into(),
                config_flag.clone(),
                format!("--verify.receivers={receiver}"),
                format!("alertname={}", rule.alert),
            ];
            args.extend(rule.labels.iter().map(|(k, v)| format!("{k}={v}")));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (ok, out) = amtool(&args);
            assert!(ok, "{} ({severity}) should route to {receiver}: {out}", rule.alert);
            severities.insert(severity);
        }
    }
    assert_eq!(severities.into_iter().collect::<Vec<_>>(), ["critical", "info", "warning"]);
}

#[test]
fn the_warning_of_every_pair_is_inhibited_by_its_critical() {
    for model in [Model::builtin_defaults(), pair_model()] {
        let (_dir, path) = write_config(&model);
        let config = parse(&path);
        for (warning, critical) in pairs(&model) {
            assert!(inhibits(&config, &critical, &warning), "{critical:?} must inhibit {warning:?}");
            assert!(!inhibits(&config, &warning, &critical), "{warning:?} must not inhibit {critical:?}");
        }
        // A critical never mutes a warning that is not its own pair's.
        let rules = generated_rules(&model);
        for source in rules.iter().map(with_name).filter(|l| !is_source_health(l)) {
            for target in rules.iter().map(with_name) {
                let same_pair =
                    source["alertname"] == target["alertname"] && source.get("signal") == target.get("signal");
                if !same_pair {
                    assert!(!inhibits(&config, &source, &target), "{source:?} must not inhibit {target:?}");
                }
            }
        }
    }
    assert_eq!(pairs(&pair_model()).len(), 1);
}

#[test]
fn a_critical_mutes_only_the_warning_of_its_own_series() {
    for model in [Model::builtin_defaults(), pair_model()] {
        let (_dir, path) = write_config(&model);
        let config = parse(&path);
        let all = generated_rules(&model);
        for (warning, _) in pairs(&model) {
            let warning = all.iter().find(|r| with_name(r) == warning).unwrap();
            let critical = all
                .iter()
                .find(|r| {
                    r.alert == warning.alert
                        && r.labels.get("signal") == warning.labels.get("signal")
                        && r.labels["severity"] == "critical"
                })
                .unwrap();
            let (c, w) = (series_of(&model, critical, "a"), series_of(&model, warning, "a"));
            assert!(inhibits(&config, &c, &w), "{c:?} must inhibit {w:?}");
            // Any one series label that differs (another platform, another exporter) and the
            // warning stays.
            for label in w.keys().filter(|l| !["alertname", "signal", "severity"].contains(&l.as_str())) {
                let mut other = w.clone();
                other.insert(label.clone(), "b".into());
                assert!(!inhibits(&config, &c, &other), "{c:?} must not inhibit {other:?}");
            }
        }
    }
    // The ETL token pair is per platform and per exporter.
    let (_dir, path) = write_config(&Model::builtin_defaults());
    let config = parse(&path);
    let etl = config["inhibit_rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["source_matchers"].as_array().unwrap().iter().any(|m| m == "alertname=\"IntegrationEtlTokenExpiry\"")
        })
        .expect("an inhibit rule for IntegrationEtlTokenExpiry");
    assert_eq!(etl["equal"], serde_json::json!(["alertname", "signal", "instance", "job", "platform"]));
}

#[test]
fn a_running_alertmanager_keeps_the_warning_of_another_platform() {
    let model = Model::builtin_defaults();
    let (_dir, path) = write_config(&model);
    let am = start_alertmanager(&path);
    let alert = |severity: &str, platform: &str| {
        vec![
            "alertname=IntegrationEtlTokenExpiry".to_string(),
            "signal=etl_token_monitoring.token_expiry".into(),
            format!("severity={severity}"),
            format!("platform={platform}"),
            "job=integration-exporter".into(),
            "instance=exporter:9187".into(),
        ]
    };
    for labels in [alert("critical", "meta"), alert("warning", "meta"), alert("warning", "google")] {
        let mut args = vec!["alert".to_string(), "add".into(), am.url.clone()];
        args.extend(labels);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, out) = amtool(&args);
        assert!(ok, "{out}");
    }
    await_states(
        &am.url,
        ("severity", "platform"),
        &[(("critical", "meta"), "active"), (("warning", "meta"), "suppressed"), (("warning", "google"), "active")],
        "meta's critical mutes meta's warning only",
    );
}

/// An SLO's page (either paging tier) mutes the ticket of the same SLO, never another SLO's.
#[test]
fn a_running_alertmanager_mutes_an_slo_ticket_while_its_page_fires() {
    let model = Model::builtin_defaults();
    let (_dir, path) = write_config(&model);
    let am = start_alertmanager(&path);
    let burn = |name: &str, signal: &str, severity: &str, windows: (&str, &str)| {
        vec![
            format!("alertname={name}"),
            format!("signal={signal}"),
            format!("severity={severity}"),
            format!("long_window={}", windows.0),
            format!("short_window={}", windows.1),
            "job=integration-exporter".into(),
        ]
    };
    let graph = ("IntegrationMicrosoftGraphBudgetBurn", "microsoft_integration.graph_api_requests");
    let model_errors = ("IntegrationSalesforceModelBudgetBurn", "salesforce_incidents.model_errors");
    for labels in [
        burn(graph.0, graph.1, "critical", ("6h", "30m")),
        burn(graph.0, graph.1, "warning", ("3d", "6h")),
        burn(model_errors.0, model_errors.1, "warning", ("3d", "6h")),
    ] {
        let mut args = vec!["alert".to_string(), "add".into(), am.url.clone()];
        args.extend(labels);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, out) = amtool(&args);
        assert!(ok, "{out}");
    }
    await_states(
        &am.url,
        ("alertname", "severity"),
        &[
            ((graph.0, "critical"), "active"),
            ((graph.0, "warning"), "suppressed"),
            ((model_errors.0, "warning"), "active"),
        ],
        "the Graph SLO's page mutes its own ticket only",
    );
}

/// Waits until the Alertmanager at `url` holds exactly these alerts, keyed by the values of two
/// labels, in these states (`active`, `suppressed`); fails with `what` after 10 s.
fn await_states(url: &str, keys: (&str, &str), want: &[((&str, &str), &str)], what: &str) {
    let want: BTreeMap<(String, String), String> =
        want.iter().map(|((a, b), state)| ((a.to_string(), b.to_string()), state.to_string())).collect();
    let states = || {
        let (ok, out) = amtool(&["alert", "query", "-o", "json", "--active", "--inhibited", url]);
        assert!(ok, "{out}");
        let alerts: Value = serde_json::from_str(&out).unwrap();
        alerts
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                let l = &a["labels"];
                let label = |k: &str| l[k].as_str().unwrap().to_string();
                ((label(keys.0), label(keys.1)), a["status"]["state"].as_str().unwrap().to_string())
            })
            .collect::<BTreeMap<(String, String), String>>()
    };
    wait::until(what, Duration::from_secs(10), states, |state| (*state == want).then_some(()));
}

/// A real Alertmanager on a free port, stopped on drop.
struct Alertmanager {
    _proc: Proc,
    url: String,
    _dir: tempfile::TempDir,
}

fn start_alertmanager(config: &Path) -> Alertmanager {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let proc = Proc::start(
        "alertmanager",
        &dir.path().join("alertmanager.log"),
        program("prometheus-alertmanager")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.path().display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address="),
    );
    let am = Alertmanager { _proc: proc, url: format!("--alertmanager.url=http://127.0.0.1:{port}"), _dir: dir };
    let config_shown = || amtool(&["config", "show", &am.url]);
    wait::until("Alertmanager to start", Duration::from_secs(20), config_shown, |(ok, _)| ok.then_some(()));
    am
}

#[test]
fn a_running_alertmanager_inhibits_the_warning_while_its_critical_fires() {
    let model = pair_model();
    let (_dir, path) = write_config(&model);
    let am = start_alertmanager(&path);
    let (warning, critical) = pairs(&model).remove(0);
    let info = generated_rules(&model).iter().find(|r| r.labels["severity"] == "info").map(with_name).unwrap();
    // The warning alone is not inhibited; the warning while its critical fires is.
    let add = |labels: &BTreeMap<String, String>| {
        let mut args = vec!["alert".to_string(), "add".into(), am.url.clone()];
        args.extend(labels.iter().map(|(k, v)| format!("{k}={v}")));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, out) = amtool(&args);
        assert!(ok, "{out}");
    };
    let states = || -> BTreeMap<(String, String), (String, usize)> {
        let (ok, out) = amtool(&["alert", "query", "-o", "json", "--active", "--inhibited", &am.url]);
        assert!(ok, "{out}");
        let alerts: Value = serde_json::from_str(&out).unwrap();
        alerts
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                let labels = &a["labels"];
                (
                    (
                        labels["alertname"].as_str().unwrap().to_string(),
                        labels["severity"].as_str().unwrap().to_string(),
                    ),
                    (
                        a["status"]["state"].as_str().unwrap().to_string(),
                        a["status"]["inhibitedBy"].as_array().map_or(0, Vec::len),
                    ),
                )
            })
            .collect()
    };
    let key = |labels: &BTreeMap<String, String>| (labels["alertname"].clone(), labels["severity"].clone());
    add(&warning);
    add(&info);
    wait::until("the warning alone to be active", Duration::from_secs(10), states, |s| {
        (s.get(&key(&warning)) == Some(&("active".into(), 0)) && s.contains_key(&key(&info))).then_some(())
    });
    add(&critical);
    let s = wait::until("the warning to be inhibited by its critical", Duration::from_secs(10), states, |s| {
        (s.get(&key(&warning)) == Some(&("suppressed".into(), 1))).then(|| s.clone())
    });
    assert_eq!(s.get(&key(&critical)), Some(&("active".into(), 0)), "{s:?}");
    assert_eq!(s.get(&key(&info)), Some(&("active".into(), 0)), "{s:?}");
}

/// The signals reading log source `log`.
fn signals_of_log(model: &Model, log: &str) -> Vec<String> {
    model.enabled_signals().filter(|s| s.log_id() == Some(log)).map(|s| s.signal.id.clone()).collect()
}

#[test]
fn a_blind_source_holds_back_its_signals_alerts_and_nothing_else() {
    let model = Model::builtin_defaults();
    let (_dir, path) = write_config(&model);
    let config = parse(&path);
    let rules = generated_rules(&model);
    let on = |labels: BTreeMap<String, String>, instance: &str| {
        let mut l = labels;
        l.insert("job".into(), "integration-exporter".into());
        l.insert("instance".into(), instance.into());
        l
    };
    let health = |name: &str, key: &str, value: &str| {
        let rule = rules.iter().find(|r| r.alert == name && r.labels.get(key).map(String::as_str) == Some(value));
        on(with_name(rule.unwrap_or_else(|| panic!("{name} {key}={value}"))), "a")
    };
    let cases = [
        (
            health("IntegrationSourceQueryFailing", "signal", "etl_token_monitoring.token_expiry"),
            vec!["etl_token_monitoring.token_expiry".to_string()],
        ),
        (
            health("IntegrationSourceLogUnreadable", "log", "token_refresh.worker"),
            signals_of_log(&model, "token_refresh.worker"),
        ),
        (
            health("IntegrationSourceHttpFailing", "signal", "microsoft_integration.job_queue"),
            vec!["microsoft_integration.job_queue".to_string()],
        ),
    ];
    for (source, blinded) in &cases {
        let mut held = 0;
        for target in rules.iter().map(|r| on(with_name(r), "a")) {
            let blind = !is_source_health(&target) && target.get("signal").is_some_and(|s| blinded.contains(s));
            assert_eq!(inhibits(&config, source, &target), blind, "{source:?} holds back {target:?}: {blind}");
            if blind {
                held += 1;
                // Another exporter's alerts are not blind.
                assert!(!inhibits(&config, source, &on(target.clone(), "b")), "{target:?} on b");
            }
        }
        assert!(held > 0, "{source:?} holds back nothing");
    }
    let down = on(
        BTreeMap::from([
            ("alertname".to_string(), "IntegrationExporterDown".to_string()),
            ("severity".into(), "critical".into()),
        ]),
        "a",
    );
    for target in rules.iter().filter(|r| r.labels.contains_key("signal")).map(|r| on(with_name(r), "a")) {
        assert!(inhibits(&config, &down, &target), "{target:?}");
    }
}

#[test]
fn a_running_alertmanager_holds_back_the_alerts_of_a_blind_query() {
    let model = Model::builtin_defaults();
    let (_dir, path) = write_config(&model);
    let am = start_alertmanager(&path);
    let add = |labels: &[&str]| {
        let mut args = vec!["alert", "add", am.url.as_str()];
        args.extend(labels);
        args.extend(["signal=etl_token_monitoring.token_expiry", "job=integration-exporter"]);
        let (ok, out) = amtool(&args);
        assert!(ok, "{out}");
    };
    add(&["alertname=IntegrationSourceQueryFailing", "severity=critical", "kind=timeout", "instance=a"]);
    add(&["alertname=IntegrationEtlTokenExpiry", "severity=critical", "platform=meta", "instance=a"]);
    add(&["alertname=IntegrationEtlTokenExpiry", "severity=critical", "platform=meta", "instance=b"]);
    await_states(
        &am.url,
        ("alertname", "instance"),
        &[
            (("IntegrationSourceQueryFailing", "a"), "active"),
            (("IntegrationEtlTokenExpiry", "a"), "suppressed"),
            (("IntegrationEtlTokenExpiry", "b"), "active"),
        ],
        "the blind query holds back its own signal on its own exporter",
    );
}

/// An Alertmanager that already routes other teams' alerts, with `alertmanager/route.yml` merged
/// as docs/alerting.md says: the subtree's route into the root's routes, its receivers and inhibit
/// rules appended. Returns the directory and the merged file.
fn merged_root_config(model: &Model) -> (tempfile::TempDir, PathBuf) {
    let (_, text) = outputs(model)
        .unwrap()
        .into_iter()
        .find(|(rel, _)| rel == Path::new("alertmanager/route.yml"))
        .expect("outputs include alertmanager/route.yml");
    let subtree: Value = serde_saphyr::from_str(&text).unwrap();
    let mut receivers = vec![serde_json::json!({"name": "platform-team"})];
    receivers.extend(subtree["receivers"].as_array().unwrap().iter().cloned());
    let root = serde_json::json!({
        "route": {
            "receiver": "platform-team",
            "group_by": ["alertname"],
            "routes": [
                {"receiver": "platform-team", "matchers": ["team=\"platform\""]},
                subtree["route"].clone(),
            ],
        },
        "receivers": receivers,
        "inhibit_rules": subtree["inhibit_rules"].clone(),
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("root.yml");
    std::fs::write(&path, serde_json::to_string_pretty(&root).unwrap()).unwrap();
    (dir, path)
}

fn routes_to(config: &Path, receiver: &str, labels: &[String]) -> (bool, String) {
    let mut args = vec![
        "config".to_string(),
        "routes".into(),
        "test".into(),
        format!("--config.file={}", config.display()),
        format!("--verify.receivers={receiver}"),
    ];
    args.extend(labels.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    amtool(&args)
}

#[test]
fn the_route_subtree_merged_under_an_existing_root_routes_every_alert_and_leaves_others_alone() {
    for model in [Model::builtin_defaults(), pair_model()] {
        let (_dir, path) = merged_root_config(&model);
        let (ok, out) = amtool(&["check-config", path.to_str().unwrap()]);
        assert!(ok && out.contains("4 receivers"), "{out}");
        let mut all = generated_rules(&model);
        all.extend(
            rule_files::exporter_rule_file(&Plan::of(&model).expect("generates"))
                .groups
                .into_iter()
                .flat_map(|g| g.rules),
        );
        for rule in all {
            let severity = &rule.labels["severity"];
            let mut labels = vec![format!("alertname={}", rule.alert)];
            labels.extend(rule.labels.iter().map(|(k, v)| format!("{k}={v}")));
            let (ok, out) = routes_to(&path, expected_receiver(severity), &labels);
            assert!(ok, "{} ({severity}) through the merged root: {out}", rule.alert);
        }
    }
    // Another team's alerts, of any severity, never reach our receivers.
    let (_dir, path) = merged_root_config(&Model::builtin_defaults());
    for severity in ["critical", "warning", "info"] {
        let labels = ["alertname=DiskFull".to_string(), format!("severity={severity}")];
        let (ok, out) = routes_to(&path, "platform-team", &labels);
        assert!(ok, "{out}");
    }
}

/// Names reach `=~` matchers through `scope::regex_escape`, written for Go's RE2 (the engine of
/// Alertmanager and Prometheus alike): a name holding every metacharacter, or the punctuation
/// left unescaped, is matched by the alternation the generator would build, and a name one
/// character off, or reading a metacharacter as syntax, is not.
#[test]
fn an_escaped_name_is_matched_exactly_by_alertmanager() {
    let names = [r"a.b+c*d?e(f)g|h[i]j{k}l^m$n\o", "api-access #1 & ~x", "é \"quoted\" /", "b"];
    let alternation: Vec<String> = names.iter().map(|n| regex_escape(n)).collect();
    let matcher = format!("name=~\"{}\"", promql::escape(&alternation.join("|")));
    let config = serde_json::json!({
        "route": { "receiver": "miss", "routes": [{ "receiver": "hit", "matchers": [matcher] }] },
        "receivers": [{ "name": "miss" }, { "name": "hit" }],
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("escape.yml");
    std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    let (ok, out) = amtool(&["check-config", path.to_str().unwrap()]);
    assert!(ok, "{matcher}: {out}");
    let label = |value: &str| vec![format!("name=\"{}\"", promql::escape(value))];
    for name in names {
        let (ok, out) = routes_to(&path, "hit", &label(name));
        assert!(ok, "{name:?} by {matcher}: {out}");
        for near in [format!("{name}x"), format!("x{name}")] {
            let (ok, out) = routes_to(&path, "miss", &label(&near));
            assert!(ok, "{near:?} by {matcher}: {out}");
        }
    }
    for syntax in [r"aXb+c*d?e(f)g|h[i]j{k}l^m$n\o", "aXbbefg", "abefg"] {
        let (ok, out) = routes_to(&path, "miss", &label(syntax));
        assert!(ok, "{syntax:?} by {matcher}: {out}");
    }
}

#[test]
fn group_by_extra_labels_are_appended_in_every_routing_output() {
    let text = format!(
        "generate:\n  alertmanager:\n    group_by_extra: [cluster, env, signal]\n{}",
        include_str!("../fixtures/graph_errors.yaml")
    );
    let model = Model::from_text(&SourceText { name: "extra.yaml".into(), text }).unwrap();
    let want = serde_json::json!(["alertname", "signal", "cluster", "env"]);
    let (_dir, path) = write_config(&model);
    assert_eq!(parse(&path)["route"]["group_by"], want);
    let (ok, out) = amtool(&["check-config", path.to_str().unwrap()]);
    assert!(ok, "{out}");
    let subtree =
        outputs(&model).unwrap().into_iter().find(|(rel, _)| rel == Path::new("alertmanager/route.yml")).unwrap().1;
    assert_eq!(serde_saphyr::from_str::<Value>(&subtree).unwrap()["route"]["group_by"], want);
    let object = integration_exporter::generate::outputs_as(
        &model,
        integration_exporter::generate::RuleFormat::PrometheusOperator,
    )
    .unwrap()
    .into_iter()
    .find(|(rel, _)| rel == Path::new("alertmanager/alertmanagerconfig.yaml"))
    .expect("the operator format writes an AlertmanagerConfig")
    .1;
    let object: Value = serde_saphyr::from_str(&object).unwrap();
    assert_eq!(object["spec"]["route"]["groupBy"], want);
}

#[test]
fn the_alertmanager_config_object_is_the_subtree_in_the_operators_shape() {
    let model = pair_model();
    let subtree: Value = serde_saphyr::from_str(
        &outputs(&model).unwrap().into_iter().find(|(rel, _)| rel == Path::new("alertmanager/route.yml")).unwrap().1,
    )
    .unwrap();
    let object = integration_exporter::generate::outputs_as(
        &model,
        integration_exporter::generate::RuleFormat::PrometheusOperator,
    )
    .unwrap()
    .into_iter()
    .find(|(rel, _)| rel == Path::new("alertmanager/alertmanagerconfig.yaml"))
    .unwrap()
    .1;
    let object: Value = serde_saphyr::from_str(&object).unwrap();
    assert_eq!(object["apiVersion"], "monitoring.coreos.com/v1alpha1");
    assert_eq!(object["kind"], "AlertmanagerConfig");
    let spec = &object["spec"];
    // Matchers are objects: turned back into text they are the subtree's, one for one.
    let text = |m: &Value| {
        format!(
            "{}{}{}",
            m["name"].as_str().unwrap(),
            m["matchType"].as_str().unwrap(),
            serde_json::to_string(m["value"].as_str().unwrap()).unwrap()
        )
    };
    let texts = |v: &Value| v.as_array().unwrap().iter().map(text).collect::<Vec<_>>();
    let strings = |v: &Value| v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(texts(&spec["route"]["matchers"]), strings(&subtree["route"]["matchers"]));
    for (child, plain) in
        spec["route"]["routes"].as_array().unwrap().iter().zip(subtree["route"]["routes"].as_array().unwrap())
    {
        assert_eq!(child["receiver"], plain["receiver"]);
        assert_eq!(texts(&child["matchers"]), strings(&plain["matchers"]));
    }
    assert_eq!(spec["route"]["repeatInterval"], "12h");
    let rules = spec["inhibitRules"].as_array().unwrap();
    assert_eq!(rules.len(), subtree["inhibit_rules"].as_array().unwrap().len());
    for (rule, plain) in rules.iter().zip(subtree["inhibit_rules"].as_array().unwrap()) {
        assert_eq!(texts(&rule["sourceMatch"]), strings(&plain["source_matchers"]));
        assert_eq!(texts(&rule["targetMatch"]), strings(&plain["target_matchers"]));
        assert_eq!(rule["equal"], plain["equal"]);
    }
    let page = &spec["receivers"][0];
    assert_eq!(page["name"], "page");
    assert_eq!(page["webhookConfigs"][0]["url"], "http://pager.internal:8080/hooks/am");
    assert_eq!(page["webhookConfigs"][0]["sendResolved"], true);
}

/// The rule of `name` whose labels include every one of `pairs`.
fn rule_with<'a>(rules: &'a [rules::Rule], name: &str, pairs: &[(&str, &str)]) -> &'a rules::Rule {
    rules
        .iter()
        .find(|r| r.alert == name && pairs.iter().all(|(k, v)| r.labels.get(*k).map(String::as_str) == Some(*v)))
        .unwrap_or_else(|| panic!("no {name} with {pairs:?}"))
}

/// `labels` as an alert of exporter `instance` carries them in Alertmanager.
fn on_exporter(labels: BTreeMap<String, String>, instance: &str, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut l = labels;
    l.insert("job".into(), "integration-exporter".into());
    l.insert("instance".into(), instance.into());
    l.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    l
}

/// Every built-in pack, and a user signal reading two values from one endpoint's answer, each
/// with its own alert (`tests/fixtures/queue_values.yaml`).
fn queue_model() -> Model {
    let mut text = String::from("database: {url_env: DATABASE_URL}\npacks:\n");
    for (name, _) in integration_exporter::spec::pack::BUILTIN {
        text.push_str(&format!("  {name}: {{}}\n"));
    }
    text.push_str(&include_str!("../fixtures/queue_values.yaml").replace("QUEUE_URL", "http://queue.internal/metrics"));
    Model::from_text(&SourceText { name: "queue.yaml".into(), text }).unwrap_or_else(|e| panic!("{e}"))
}

/// A value gone from an endpoint's answer (`.failed`, the dead-letter count) holds back the alert
/// reading it, never the backlog alert whose `.pending` is still read; the endpoint failing as a
/// whole holds back both; a value read in part (`limit`) holds back nothing.
#[test]
fn a_missing_value_holds_back_the_alerts_reading_it_and_nothing_else() {
    let model = queue_model();
    let (_dir, path) = write_config(&model);
    let config = parse(&path);
    let rules = generated_rules(&model);
    let signal = "ops.queue";
    let value = with_name(rule_with(
        &rules,
        "IntegrationSourceHttpFailing",
        &[("signal", signal), ("metric", "ops_queue_dead_letter_jobs")],
    ));
    let endpoint = rules
        .iter()
        .find(|r| {
            r.alert == "IntegrationSourceHttpFailing"
                && r.labels["signal"] == signal
                && !r.labels.contains_key("metric")
        })
        .map(with_name)
        .expect("the endpoint's own alert");
    let gone = on_exporter(value.clone(), "a", &[("kind", "path")]);
    let partly = on_exporter(value, "a", &[("kind", "limit")]);
    let down = on_exporter(endpoint, "a", &[("kind", "connect")]);
    let mut held = Vec::new();
    for target in rules.iter().map(|r| on_exporter(with_name(r), "a", &[])) {
        if is_source_health(&target) {
            assert!(!inhibits(&config, &gone, &target), "{target:?}");
            continue;
        }
        let of_signal = target.get("signal").map(String::as_str) == Some(signal);
        assert_eq!(inhibits(&config, &down, &target), of_signal, "the dead endpoint and {target:?}");
        let reads_it = of_signal && target["alertname"] == "IntegrationOpsDeadLetterJobs";
        assert_eq!(inhibits(&config, &gone, &target), reads_it, "the missing value and {target:?}");
        assert!(!inhibits(&config, &partly, &target), "a value read in part holds back {target:?}");
        if inhibits(&config, &gone, &target) {
            held.push(target["alertname"].clone());
            assert!(!inhibits(&config, &gone, &on_exporter(target.clone(), "b", &[])), "another exporter's");
        }
    }
    assert_eq!(held, ["IntegrationOpsDeadLetterJobs"]);
}

/// The database unreachable is one alert: it holds back the per-query alerts that are its echo
/// (kind connect or timeout) and the SQL signals' own alerts, on its exporter only; a query
/// failing for its own reason (schema) still speaks, and nothing of the HTTP and log signals is
/// held back.
#[test]
fn the_unreachable_database_holds_back_its_echoes_and_the_sql_signals_only() {
    let model = Model::builtin_defaults();
    let (_dir, path) = write_config(&model);
    let config = parse(&path);
    let rules = generated_rules(&model);
    let exporter_rules: Vec<rules::Rule> = rule_files::exporter_rule_file(&Plan::of(&model).expect("generates"))
        .groups
        .into_iter()
        .flat_map(|g| g.rules)
        .collect();
    let unreachable = on_exporter(
        with_name(rule_with(&exporter_rules, "IntegrationDatabaseUnreachable", &[])),
        "a",
        &[("database", "db:5432/app"), ("kind", "connect")],
    );
    let sql: Vec<String> = model
        .enabled_signals()
        .filter(|s| s.signal.source.settings().needs_database())
        .map(|s| s.signal.id.clone())
        .collect();
    assert!(sql.len() > 20, "{sql:?}");
    let mut held = 0;
    for rule in &rules {
        let target = on_exporter(with_name(rule), "a", &[]);
        let of_sql = target.get("signal").is_some_and(|s| sql.contains(s));
        if rule.alert == "IntegrationSourceQueryFailing" {
            for (kind, echo) in [("connect", true), ("timeout", true), ("schema", false), ("sql", false)] {
                let failing = on_exporter(target.clone(), "a", &[("kind", kind)]);
                assert_eq!(inhibits(&config, &unreachable, &failing), echo, "{failing:?}");
            }
            continue;
        }
        let blind = of_sql && !is_source_health(&target);
        assert_eq!(inhibits(&config, &unreachable, &target), blind, "{target:?}");
        if blind {
            held += 1;
            assert!(!inhibits(&config, &unreachable, &on_exporter(target, "b", &[])), "another exporter's");
        }
    }
    assert!(held > 10, "{held}");
}

/// With the real Alertmanager: the dead-letter count gone from the queue endpoint's answer
/// holds back the dead-letter alert and leaves the backlog alert active; the database
/// unreachable holds back a query's connect alert and leaves another query's schema alert active.
#[test]
fn a_running_alertmanager_holds_back_only_what_is_blind() {
    let model = queue_model();
    let (_dir, path) = write_config(&model);
    let am = start_alertmanager(&path);
    let add = |labels: &[&str]| {
        let mut args = vec!["alert", "add", am.url.as_str()];
        args.extend(labels);
        args.extend(["job=integration-exporter", "instance=a"]);
        let (ok, out) = amtool(&args);
        assert!(ok, "{out}");
    };
    let queue = "signal=ops.queue";
    add(&[
        "alertname=IntegrationSourceHttpFailing",
        "severity=warning",
        queue,
        "metric=ops_queue_dead_letter_jobs",
        "kind=path",
    ]);
    add(&["alertname=IntegrationOpsQueueBacklog", "severity=warning", queue]);
    add(&["alertname=IntegrationOpsDeadLetterJobs", "severity=warning", queue]);
    add(&[
        "alertname=IntegrationDatabaseUnreachable",
        "severity=critical",
        "database=db:5432/app",
        "kind=connect",
        "signal=-",
    ]);
    add(&[
        "alertname=IntegrationSourceQueryFailing",
        "severity=critical",
        "signal=token_refresh.expiring_tokens",
        "kind=connect",
    ]);
    add(&[
        "alertname=IntegrationSourceQueryFailing",
        "severity=warning",
        "signal=calendar_sync.stuck_syncs",
        "kind=schema",
    ]);
    add(&[
        "alertname=IntegrationTokenRefreshTokensExpiring",
        "severity=critical",
        "signal=token_refresh.expiring_tokens",
    ]);
    await_states(
        &am.url,
        ("alertname", "signal"),
        &[
            (("IntegrationSourceHttpFailing", "ops.queue"), "active"),
            (("IntegrationOpsQueueBacklog", "ops.queue"), "active"),
            (("IntegrationOpsDeadLetterJobs", "ops.queue"), "suppressed"),
            (("IntegrationDatabaseUnreachable", "-"), "active"),
            (("IntegrationSourceQueryFailing", "token_refresh.expiring_tokens"), "suppressed"),
            (("IntegrationSourceQueryFailing", "calendar_sync.stuck_syncs"), "active"),
            (("IntegrationTokenRefreshTokensExpiring", "token_refresh.expiring_tokens"), "suppressed"),
        ],
        "only the blind alerts are held back",
    );
}
