//! The exporter binary end to end: a real PostgreSQL, a real log file, HTTP scrapes.

use crate::support;

use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

use support::exporter::Exporter;
use support::http::{self, Response};
use support::{Cluster, exporter_bin, free_port, pack_schema, pack_seed, wait};

fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> Response {
    http::request(port, "GET", path, headers).unwrap_or_else(|| panic!("no answer to GET {path}"))
}

fn spec(dir: &std::path::Path, port: u16, log: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("spec.yaml");
    let text = format!(
        "listen: 127.0.0.1:{port}\nstate_dir: {}\ndatabase: {{url_env: TEST_DATABASE_URL, connect_timeout: 1s}}\npoll_defaults: {{interval: 1s, timeout: 2s}}\npacks:\n  token_refresh:\n    params:\n      worker_log: {}\n",
        dir.join("state").display(),
        log.display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_runbook_numbers_survives_a_database_outage_and_passes_promtool() {
    let cluster = Cluster::start();
    let url = cluster.url("postgres");
    let db = support::TestDb { url: url.clone(), _cluster: None };
    db.execute(&pack_schema("token_refresh", &[])).await;
    db.execute(&pack_seed("token_refresh", &[])).await;

    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("email_watcher.log");
    let mut file = std::fs::File::create(&log).unwrap();
    writeln!(file, "2026-02-06 12:00:01,234 INFO [graph_client] ProactiveRefresh ✓ user=a refreshed token").unwrap();
    let port = free_port();
    let exporter = Exporter::serve(&spec(dir.path(), port, &log), port)
        .env("TEST_DATABASE_URL", &url)
        .env("RUST_LOG", "info")
        .start();

    let m = exporter.wait_for("first query run", |m| m.get("integration_token_refresh_degraded_watchers").is_some());
    assert_eq!(m.get("integration_token_refresh_degraded_watchers"), Some(4.0));
    assert_eq!(m.get("integration_token_refresh_tokens_expiring"), Some(11.0));
    assert_eq!(m.get("integration_exporter_query_success{signal=\"token_refresh.expiring_tokens\"}"), Some(1.0));
    assert!(!m.text.contains("secret-access-token") && !m.text.contains("secret-refresh-token"));

    // A new line shows up within a poll.
    writeln!(
        file,
        "2026-02-06 12:00:02,000 WARNING [graph_client] ProactiveRefresh ✗ user=b failed error=invalid_grant"
    )
    .unwrap();
    exporter.wait_for("the failure line", |m| {
        m.get("integration_token_refresh_proactive_refreshes_total{result=\"failure\"}") == Some(1.0)
    });

    // promtool finds nothing to complain about in the live exposition.
    let complaints = support::promtool_check_metrics(&exporter.metrics().text);
    assert!(complaints.is_empty(), "promtool check metrics:\n{complaints}");

    // Every self-metric served (SQL, logs with a checkpoint, the process) is in the catalog.
    let served = http::catalogued_self_metrics(&exporter.metrics().text);
    for family in
        ["query_success", "log_lines_total", "checkpoint_save_failures_total", "build_info", "start_time_seconds"]
    {
        assert!(served.contains(&format!("integration_exporter_{family}")), "{family} not served: {served:?}");
    }

    // OpenMetrics when asked, gzip when asked, and the small endpoints.
    let answer = get(port, "/metrics", &[("Accept", "application/openmetrics-text; version=1.0.0")]);
    assert_eq!(answer.status, 200);
    assert!(answer.header("content-type").is_some_and(|t| t.contains("application/openmetrics-text")));
    assert!(answer.text().ends_with("# EOF\n"));
    let answer = get(port, "/metrics", &[("Accept-Encoding", "gzip")]);
    assert_eq!(answer.header("content-encoding"), Some("gzip"));
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(&answer.body[..]).read_to_string(&mut unzipped).unwrap();
    assert!(unzipped.contains("integration_token_refresh_degraded_watchers"));
    assert_eq!(get(port, "/healthz", &[]).status, 200);
    // Ready once every query has run once (their first runs are spread a little apart).
    let ready = || get(port, "/ready", &[]);
    wait::until("/ready to say 200", Duration::from_secs(20), ready, |r| (r.status == 200).then_some(()));
    assert!(get(port, "/", &[]).text().contains("/metrics"));

    // The database goes away: the exporter keeps serving, reports the failure, then recovers.
    cluster.stop();
    let down = exporter.wait_for("query failure", |m| {
        m.get("integration_exporter_query_success{signal=\"token_refresh.expiring_tokens\"}") == Some(0.0)
    });
    assert!(
        down.get("integration_exporter_query_errors_total{signal=\"token_refresh.expiring_tokens\",kind=\"connect\"}")
            .unwrap_or(0.0)
            >= 1.0,
        "{down:?}"
    );
    assert_eq!(get(port, "/metrics", &[]).status, 200);
    // The log side is untouched by the outage.
    assert_eq!(down.get("integration_token_refresh_proactive_refreshes_total{result=\"failure\"}"), Some(1.0));
    cluster.restart();
    exporter.wait_for("recovery", |m| {
        m.get("integration_exporter_query_success{signal=\"token_refresh.expiring_tokens\"}") == Some(1.0)
            && m.get("integration_token_refresh_degraded_watchers") == Some(4.0)
    });
    drop(exporter);
}

#[test]
fn a_bad_spec_exits_2_naming_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, "packs:\n  token_refresh:\n    params:\n      tokens_tabel: x\n").unwrap();
    let out = Command::new(exporter_bin()).args(["check", "--config"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:4:7: pack `token_refresh` has no parameter `tokens_tabel`", path.display())),
        "{stderr}"
    );

    std::fs::write(&path, "listen: [unclosed\n").unwrap();
    let (status, stderr) = Exporter::serve(&path, 0).exit();
    assert_eq!(status.code(), Some(2));
    assert!(stderr.starts_with(&format!("{}:", path.display())) && !stderr.contains("panicked"), "{stderr}");

    std::fs::write(&path, "logs:\n  app: {paths: [/tmp/x.log]}\nsignals:\n  - id: my.errors\n    title: Errors\n    metrics: [{name: my_errors_total, type: counter, help: Errors.}]\n    source:\n      log:\n        log: app\n        rules: [{match: 'ERROR (', metric: my_errors_total, action: inc}]\n").unwrap();
    let out = Command::new(exporter_bin()).args(["check", "--config"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(":10:") && stderr.contains("pattern"), "{stderr}");
}

#[test]
fn check_validates_the_web_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.yaml");
    std::fs::write(&spec, "web_config_file: web.yml\nlogs:\n  app: {paths: [/tmp/none.log]}\n").unwrap();
    std::fs::write(dir.path().join("web.yml"), "basic_auth_users:\n  alice: not-a-bcrypt-hash\n").unwrap();
    let out = Command::new(exporter_bin()).args(["check", "--config"]).arg(&spec).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("web.yml") && stderr.contains("alice"), "{stderr}");
}

#[tokio::test]
async fn check_database_names_missing_tables_and_columns() {
    let db = support::TestDb::new().await;
    db.execute(&pack_schema("token_refresh", &[])).await;
    db.execute("ALTER TABLE email_watchers RENAME COLUMN sync_status TO status").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spec.yaml");
    let check = |path: &std::path::Path| {
        Command::new(exporter_bin())
            .args(["check", "--database", "--config"])
            .arg(path)
            .env("TEST_DATABASE_URL", &db.url)
            .output()
            .unwrap()
    };
    std::fs::write(&path, "database: {url_env: TEST_DATABASE_URL}\npacks:\n  token_refresh: {}\n").unwrap();
    let out = check(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("column \"sync_status\" of relation \"email_watchers\" does not exist")
            && stderr.contains("token_refresh.degraded_watchers")
            && stderr.contains("parameter `watcher_sync_status` of pack `token_refresh`"),
        "{stderr}"
    );

    std::fs::write(
        &path,
        "database: {url_env: TEST_DATABASE_URL}\npacks:\n  token_refresh:\n    params: {watcher_sync_status: status}\n",
    )
    .unwrap();
    let out = check(&path);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
