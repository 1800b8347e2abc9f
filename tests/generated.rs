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

/// The anchors GitHub renders for a runbook's headings, duplicates numbered `-1`, `-2`, ... as
/// GitHub does; headings inside code fences are not headings.
fn github_anchors(markdown: &str) -> Vec<(String, String)> {
    let link = regex::Regex::new(r"\[([^\]]*)\]\([^)]*\)").unwrap();
    let dropped = regex::Regex::new(r"[^\p{L}\p{Nl}\p{M}\p{Nd}\p{Pc}\- ]").unwrap();
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    let mut out = Vec::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if fenced || hashes == 0 || hashes > 6 || !line[hashes..].starts_with(' ') {
            continue;
        }
        let text = link.replace_all(line[hashes..].trim(), "$1").to_string();
        let base = dropped.replace_all(&text.to_lowercase(), "").replace(' ', "-");
        let n = seen.entry(base.clone()).or_insert(0);
        let anchor = if *n == 0 { base.clone() } else { format!("{base}-{n}") };
        *n += 1;
        out.push((text, anchor));
    }
    out
}

#[test]
fn every_generated_runbook_link_is_a_heading_github_renders() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/runbooks");
    let url = regex::Regex::new(r#"https://runbooks\.example\.com/([a-z-]+\.md)(?:#([^\s"'\\]+))?"#).unwrap();
    let model = Model::builtin_defaults();
    let mut checked = 0;
    for (rel, content) in outputs(&model) {
        for m in url.captures_iter(&content) {
            let file = &m[1];
            let markdown = std::fs::read_to_string(fixtures.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
            let Some(anchor) = m.get(2).map(|a| a.as_str()) else { continue };
            let anchors = github_anchors(&markdown);
            assert!(
                anchors.iter().any(|(_, a)| a == anchor),
                "{}: {file}#{anchor} is no heading of {file}; its headings render as {:?}",
                rel.display(),
                anchors.iter().map(|(_, a)| a.as_str()).collect::<Vec<_>>()
            );
            checked += 1;
        }
    }
    assert!(checked > 50, "only {checked} links found");
    // Each signal's link is its own runbook's heading, named as the spec names it.
    for signal in model.enabled_signals() {
        let (Some(section), Some(pack)) = (&signal.signal.runbook_section, &signal.pack) else { continue };
        let info = model.packs.iter().find(|p| &p.name == pack).unwrap();
        let markdown = std::fs::read_to_string(fixtures.join(&info.runbook)).unwrap();
        let headings = github_anchors(&markdown);
        let (_, anchor) = headings
            .iter()
            .find(|(text, _)| text.replace(['*', '`'], "") == section.replace(['*', '`'], ""))
            .unwrap_or_else(|| panic!("{}: `{section}` is no heading of {}", signal.signal.id, info.runbook));
        assert!(
            signal.runbook_url.as_deref().is_some_and(|u| u.ends_with(&format!("#{anchor}"))),
            "{}: {:?} should end in #{anchor}",
            signal.signal.id,
            signal.runbook_url
        );
    }
}

/// Evaluates the generated expression of `alert` in `rules_file` with promtool on `input`
/// (a `promql_expr_test` per (minute, expected value or none)).
fn promql_expr_test(rules_file: &Path, alert: &str, input: &str, at: &[(u64, Option<f64>)]) -> (bool, String) {
    let rules: serde_json::Value = serde_saphyr::from_str(&std::fs::read_to_string(rules_file).unwrap()).unwrap();
    let rule = rules["groups"][0]["rules"].as_array().unwrap().iter().find(|r| r["alert"] == alert).unwrap();
    let expr = rule["expr"].as_str().unwrap();
    let labels = r#"{instance="exporter:9187", job="integration-exporter"}"#;
    let cases: Vec<serde_json::Value> = at
        .iter()
        .map(|(minute, value)| {
            serde_json::json!({
                "expr": expr,
                "eval_time": format!("{minute}m"),
                "exp_samples": value.map(|v| vec![serde_json::json!({"labels": labels, "value": v})]).unwrap_or_default(),
            })
        })
        .collect();
    let (series, values) = input.split_once(' ').unwrap();
    let doc = serde_json::json!({
        "tests": [{"interval": "1m", "input_series": [{"series": series, "values": values}], "promql_expr_test": cases}]
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.yml"), serde_json::to_string(&doc).unwrap()).unwrap();
    promtool(&["test", "rules", "t.yml"], dir.path())
}

#[test]
fn failed_calendar_events_alert_on_new_failures_not_on_the_backlog() {
    let dir = write_outputs(&Model::builtin_defaults());
    let rules = dir.path().join("alerts/calendar-sync.rules.yml");
    // A backlog of 5 for two hours, 3 new failures, then most of the backlog reset by hand.
    let series = r#"integration_calendar_sync_failed_events{instance="exporter:9187", job="integration-exporter"} 5x120 8x60 3x60"#;
    let (ok, out) = promql_expr_test(
        &rules,
        "IntegrationCalendarSyncFailedEvents",
        series,
        // Quiet on the standing backlog; 3 new ones fire for the hour after; clearing is no failure.
        &[(60, None), (119, None), (121, Some(3.0)), (175, Some(3.0)), (190, None), (240, None)],
    );
    assert!(ok, "{out}");
}
