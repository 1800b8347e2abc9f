//! Golden files of everything `generate` writes for a spec of the user's own signals (the built-in
//! packs' outputs are committed under alerts/, dashboards/ and alertmanager/ and checked by
//! tests/generated.rs). A change to the generators shows here as a reviewable diff;
//! `cargo insta review` (or `INSTA_UPDATE=always`) accepts it.

use integration_exporter::generate::{RuleFormat, files_as, outputs_as};
use integration_exporter::spec::{Model, SourceText};

fn model() -> Model {
    let text = format!(
        "runbook_base_url: https://wiki.example.com/ops\ngenerate: {{grafana_url: https://grafana.example.com}}\n{}",
        include_str!("../fixtures/graph_errors.yaml")
    );
    Model::from_text(&SourceText { name: "graph.yaml".into(), text }).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn user_signals_generate_the_golden_files() {
    for (path, content) in outputs_as(&model(), RuleFormat::Prometheus).unwrap() {
        insta::assert_snapshot!(path.display().to_string().replace(['/', '.'], "_"), content);
    }
    for (path, content) in files_as(&model(), RuleFormat::PrometheusOperator).unwrap() {
        let name = path.display().to_string();
        if name.ends_with(".prometheusrule.yaml") || name == "kustomization.yaml" {
            insta::assert_snapshot!(path.display().to_string().replace(['/', '.'], "_"), content);
        }
    }
}

/// The generated unit tests of a warning/critical pair pass promtool: each half expects its twin
/// wherever both thresholds are crossed.
#[test]
fn the_generated_tests_of_user_signals_pass_promtool() {
    let dir = tempfile::tempdir().unwrap();
    integration_exporter::generate::write_all(&model(), dir.path()).unwrap();
    let out = crate::support::program("promtool")
        .args(["test", "rules", "custom.tests.yml"])
        .current_dir(dir.path().join("alerts"))
        .output()
        .expect("promtool");
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}
