//! Pack settings a user fits without copying the pack: the rate-limit budget's `max_age` (a
//! parameter of the token refresh pack, reaching the exporter's log source) and an alert's
//! fleet-wide aggregation (`across_instances` in the pack's `alerts:` overrides, reaching the
//! generated rules and their promtool tests).

use crate::support;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use integration_exporter::spec::{Model, SourceText};
use support::fidelity::{Exported, collect};

fn model(text: &str) -> Result<Model, String> {
    Model::from_text(&SourceText { name: "spec.yaml".into(), text: text.into() }).map_err(|e| e.to_string())
}

fn token_refresh(dir: &Path, extra: &str) -> String {
    format!(
        "database: {{url_env: UNUSED}}\npacks:\n  token_refresh:\n    params:\n      worker_log: {}/worker.log\n{extra}",
        dir.display()
    )
}

/// `2026-02-06 12:00:01,000` (Python logging's default, UTC) of `ago` before now.
fn python_time(ago: Duration) -> String {
    let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap() - ago;
    let out =
        support::program("date").args(["-u", "-d", &format!("@{}", at.as_secs()), "+%Y-%m-%d %H:%M:%S,000"]).output();
    String::from_utf8_lossy(&out.unwrap().stdout).trim().to_string()
}

/// What the worker log's runner serves now, after reading its file.
fn serve_log(model: &Model) -> Exported {
    let mut runner = support::fidelity::log_runner(model, "token_refresh.worker");
    support::fidelity::drain(&mut runner);
    let mut out = Exported::new();
    collect(&mut out, runner.families());
    out
}

#[test]
fn rate_limit_max_age_parameter_reaches_the_log_source() {
    let dir = tempfile::tempdir().unwrap();
    let ago = Duration::from_secs(120);
    let mut file = std::fs::File::create(dir.path().join("worker.log")).unwrap();
    writeln!(
        file,
        "{} INFO [graph_client] M6:RateLimit rate_limit_budget={{'total_attempts': 95, 'max_requests': 100}}",
        python_time(ago)
    )
    .unwrap();

    // The default (5m) keeps a budget line of two minutes ago.
    let default = model(&token_refresh(dir.path(), "")).unwrap();
    assert_eq!(default.logs["token_refresh.worker"].max_age.0, Duration::from_secs(300));
    let served = serve_log(&default);
    assert_eq!(served["integration_token_refresh_rate_limit_attempts"].values().copied().collect::<Vec<_>>(), [95.0]);

    // 90s: the same line is too old to alert on, so the value is not served.
    let short = model(&token_refresh(dir.path(), "      rate_limit_max_age: 90s\n")).unwrap();
    assert_eq!(short.logs["token_refresh.worker"].max_age.0, Duration::from_secs(90));
    let served = serve_log(&short);
    assert!(
        served.get("integration_token_refresh_rate_limit_attempts").is_none_or(|s| s.is_empty()),
        "a line older than max_age is not served: {served:#?}"
    );
    // The line was read: only its age keeps it out.
    assert!(served["integration_token_refresh_rate_limit_lines_total"].values().all(|v| *v == 1.0));

    // Bounded like a log source's own max_age, and the error names it.
    let err = model(&token_refresh(dir.path(), "      rate_limit_max_age: 0s\n")).unwrap_err();
    assert!(err.contains("max_age") && err.contains("0s"), "{err}");
}

/// (alert, expr) of every generated token refresh rule, written with the rest under `dir`.
fn generated(text: &str, dir: &Path) -> Vec<(String, String)> {
    let model = model(text).unwrap();
    integration_exporter::generate::write_all(&model, dir).unwrap();
    let rules = std::fs::read_to_string(dir.join("alerts/token-refresh.rules.yml")).unwrap();
    let doc: serde_json::Value = serde_saphyr::from_str(&rules).unwrap();
    doc["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().iter())
        .map(|r| (r["alert"].as_str().unwrap().to_string(), r["expr"].as_str().unwrap().to_string()))
        .collect()
}

fn promtool_tests_pass(dir: &Path) {
    let out = support::program("promtool")
        .args(["test", "rules", "token-refresh.tests.yml"])
        .current_dir(dir.join("alerts"))
        .output()
        .expect("promtool");
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

#[test]
fn across_instances_is_an_alert_override() {
    let dir = tempfile::tempdir().unwrap();
    let exprs =
        |extra: &str, out: &Path| -> Vec<(String, String)> { generated(&token_refresh(dir.path(), extra), out) };
    let expr = |rules: &[(String, String)], name: &str| -> String {
        rules.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("{name} in {rules:?}")).1.clone()
    };

    // The pack's defaults: the success rate is the fleet's, the degraded watchers gauge per instance.
    let out = tempfile::tempdir().unwrap();
    let rules = exprs("", out.path());
    assert!(expr(&rules, "IntegrationTokenRefreshSuccessRateLow").contains("without (result, instance)"));
    assert!(!expr(&rules, "IntegrationTokenRefreshDegradedWatchers").contains("instance"));

    // Both turned around by the user.
    let over = "    alerts:\n      IntegrationTokenRefreshSuccessRateLow: {across_instances: false}\n      \
                IntegrationTokenRefreshDegradedWatchers: {across_instances: true}\n";
    let out = tempfile::tempdir().unwrap();
    let rules = exprs(over, out.path());
    let rate = expr(&rules, "IntegrationTokenRefreshSuccessRateLow");
    assert!(rate.contains("without (result)") && !rate.contains("instance"), "per instance: {rate}");
    let degraded = expr(&rules, "IntegrationTokenRefreshDegradedWatchers");
    assert!(degraded.contains("instance"), "across the fleet: {degraded}");
    // The generated promtool tests follow the rules they test.
    promtool_tests_pass(out.path());

    // Like the other overrides, a name the pack does not have is an error naming it.
    let err =
        model(&token_refresh(dir.path(), "    alerts:\n      NoSuchAlert: {across_instances: true}\n")).unwrap_err();
    assert!(err.contains("no alert `NoSuchAlert`"), "{err}");
}
