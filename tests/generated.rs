//! The generated rules, tests and dashboards: committed copies are current, promtool accepts the
//! rules, and every generated promtool unit test passes (and fails when a threshold moves).

use std::path::Path;
use std::process::Command;

use integration_exporter::generate::outputs;
use integration_exporter::spec::Model;

fn promtool(args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool is needed (Debian package `prometheus`; scripts/test installs it)");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn write_outputs(model: &Model) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    integration_exporter::generate::write_all(model, dir.path()).unwrap();
    dir
}

#[test]
fn committed_outputs_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut stale = Vec::new();
    for (rel, content) in outputs(&Model::builtin_defaults()) {
        let committed = std::fs::read_to_string(root.join(&rel)).unwrap_or_default();
        if committed != content {
            stale.push(rel.display().to_string());
        }
    }
    assert!(stale.is_empty(), "stale generated files {stale:?}: run `cargo run -- generate`");
}

#[test]
fn promtool_accepts_the_rules_and_their_tests_pass() {
    let dir = write_outputs(&Model::builtin_defaults());
    let alerts = dir.path().join("alerts");
    let mut rule_files = Vec::new();
    let mut test_files = Vec::new();
    for entry in std::fs::read_dir(&alerts).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        if name.ends_with(".rules.yml") {
            rule_files.push(name);
        } else if name.ends_with(".tests.yml") {
            test_files.push(name);
        }
    }
    assert!(!rule_files.is_empty() && rule_files.len() == test_files.len());
    for f in &rule_files {
        let (ok, out) = promtool(&["check", "rules", "--lint-fatal", f], &alerts);
        assert!(ok, "{out}");
    }
    for f in &test_files {
        let (ok, out) = promtool(&["test", "rules", f], &alerts);
        assert!(ok, "{out}");
    }
}

#[test]
fn generated_tests_fail_when_a_threshold_moves() {
    let dir = write_outputs(&Model::builtin_defaults());
    let alerts = dir.path().join("alerts");
    let rules = alerts.join("token-refresh.rules.yml");
    let text = std::fs::read_to_string(&rules).unwrap();
    // The tests were written for the spec's thresholds; a rule file edited by hand must fail them.
    for (from, to) in [("> 20", "> 19"), (") < 0.95", ") < 0.97"), ("> 300", "> 360")] {
        assert!(text.contains(from), "{from}");
        std::fs::write(&rules, text.replacen(from, to, 1)).unwrap();
        let (ok, out) = promtool(&["test", "rules", "token-refresh.tests.yml"], &alerts);
        assert!(!ok, "tests passed with `{to}` instead of `{from}`:\n{out}");
    }
}

#[test]
fn thresholds_and_windows_come_from_the_user_spec() {
    let text = "database: {url_env: X}\nrunbook_base_url: https://wiki.example.org/ops/\npacks:\n  token_refresh:\n    alerts:\n      IntegrationTokenRefreshTokensExpiring: {threshold: 35, for: 2m}\n      IntegrationTokenRefreshSuccessRateLow: {window: 30m, min_events: 50}\n";
    let model =
        Model::from_text(&integration_exporter::spec::SourceText { name: "t.yaml".into(), text: text.into() }).unwrap();
    let dir = write_outputs(&model);
    let rules = std::fs::read_to_string(dir.path().join("alerts/token-refresh.rules.yml")).unwrap();
    assert!(rules.contains("integration_token_refresh_tokens_expiring > 35"), "{rules}");
    assert!(rules.contains("[30m]") && rules.contains(">= 50"), "{rules}");
    assert!(
        rules.contains("https://wiki.example.org/ops/token-refresh.md#2-token-refresh-heartbeat-not-running"),
        "{rules}"
    );
    assert!(rules.contains("(alert above 35)"), "{rules}");
    let (ok, out) = promtool(&["test", "rules", "token-refresh.tests.yml"], &dir.path().join("alerts"));
    assert!(ok, "{out}");
}

#[test]
fn readme_signal_table_is_the_catalog() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let table = integration_exporter::generate::catalog::markdown(&Model::builtin_defaults());
    let expected = format!("<!-- catalog:start -->\n{table}<!-- catalog:end -->");
    assert!(
        readme.contains(&expected),
        "README's signal table is stale: paste `integration-exporter catalog` between the markers"
    );
}
