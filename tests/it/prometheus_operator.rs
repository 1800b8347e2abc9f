//! `generate --format prometheus-operator`: one `PrometheusRule` per pack whose `spec` is exactly
//! the plain rule file, which promtool accepts once extracted.

use std::path::{Path, PathBuf};

use integration_exporter::generate::{RuleFormat, outputs_as};
use integration_exporter::spec::{Model, SourceText};
use serde_json::{Value, json};

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap()
}

fn files(model: &Model, format: RuleFormat) -> Vec<(PathBuf, String)> {
    outputs_as(model, format).unwrap()
}

fn content<'a>(files: &'a [(PathBuf, String)], rel: &str) -> &'a str {
    &files.iter().find(|(p, _)| p == Path::new(rel)).unwrap_or_else(|| panic!("{rel} not generated")).1
}

fn promtool_check_rules(spec: &Value) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("extracted.rules.yml");
    // JSON is YAML: the extracted `spec` is a plain rule file.
    std::fs::write(&path, serde_json::to_string_pretty(spec).unwrap()).unwrap();
    let out = crate::support::program("promtool")
        .args(["check", "rules", "--lint-fatal"])
        .arg(&path)
        .output()
        .expect("promtool");
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

#[test]
fn builtin_packs_become_prometheus_rules_with_the_plain_groups() {
    let model = Model::builtin_defaults();
    let operator = files(&model, RuleFormat::PrometheusOperator);
    let plain = files(&model, RuleFormat::Prometheus);

    let names: Vec<String> = operator.iter().map(|(p, _)| p.display().to_string()).collect();
    assert!(names.iter().all(|n| !n.ends_with(".rules.yml") && !n.ends_with(".tests.yml")), "{names:?}");
    assert!(names.contains(&"dashboards/token-refresh.json".to_string()), "{names:?}");
    assert!(names.contains(&"alertmanager/alertmanager.yml".to_string()), "{names:?}");

    let object = yaml(content(&operator, "alerts/token-refresh.prometheusrule.yaml"));
    assert_eq!(object["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(object["kind"], "PrometheusRule");
    assert_eq!(object["metadata"]["name"], "integration-exporter-token-refresh");
    assert!(object["metadata"].get("namespace").is_none(), "{object}");
    assert_eq!(object["metadata"]["labels"], json!({"release": "prometheus"}));
    assert_eq!(object.as_object().unwrap().len(), 4, "{object}");

    let rule_file = yaml(content(&plain, "alerts/token-refresh.rules.yml"));
    assert_eq!(object["spec"]["groups"], rule_file["groups"]);
    assert_eq!(object["spec"], rule_file);
    assert!(!object["spec"]["groups"][0]["rules"].as_array().unwrap().is_empty());
    promtool_check_rules(&object["spec"]);

    // Dashboards and the Alertmanager configuration do not depend on the rule format; the
    // `AlertmanagerConfig` object is the operator format's own (tests/alertmanager.rs).
    for (rel, text) in &operator {
        if !rel.starts_with("alerts") && rel != Path::new("alertmanager/alertmanagerconfig.yaml") {
            assert_eq!(text, content(&plain, &rel.display().to_string()), "{}", rel.display());
        }
    }
}

#[test]
fn namespace_labels_and_custom_signals_come_from_the_spec() {
    let text = format!(
        "generate:\n  prometheus_operator:\n    namespace: monitoring\n    labels: {{release: kube-prom, team: integrations}}\npacks:\n  token_refresh: {{}}\ndatabase: {{url_env: X}}\n{}",
        include_str!("../fixtures/graph_errors.yaml")
    );
    let model = Model::from_text(&SourceText { name: "op.yaml".into(), text }).unwrap();
    let operator = files(&model, RuleFormat::PrometheusOperator);
    let plain = files(&model, RuleFormat::Prometheus);
    for (stem, name) in
        [("token-refresh", "integration-exporter-token-refresh"), ("custom", "integration-exporter-custom")]
    {
        let object = yaml(content(&operator, &format!("alerts/{stem}.prometheusrule.yaml")));
        assert_eq!(object["metadata"]["name"], name);
        assert_eq!(object["metadata"]["namespace"], "monitoring");
        assert_eq!(object["metadata"]["labels"], json!({"release": "kube-prom", "team": "integrations"}));
        let rule_file = yaml(content(&plain, &format!("alerts/{stem}.rules.yml")));
        assert_eq!(object["spec"]["groups"], rule_file["groups"]);
        promtool_check_rules(&object["spec"]);
    }
}
