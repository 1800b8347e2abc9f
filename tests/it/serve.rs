//! The exporter binary end to end: a real PostgreSQL, a real log file, HTTP scrapes.

use crate::support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::exporter::sample;
use support::{Cluster, exporter_bin, free_port, pack_schema, pack_seed};

struct Exporter {
    child: Child,
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_exporter(spec: &std::path::Path, port: u16, db_url: &str) -> Exporter {
    let child = Command::new(exporter_bin())
        .args(["serve", "--config"])
        .arg(spec)
        .env("TEST_DATABASE_URL", db_url)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start exporter");
    let exporter = Exporter { child };
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "exporter did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    exporter
}

/// A raw HTTP/1.1 GET: the status line, headers and body bytes.
fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("headers");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head, raw[split + 4..].to_vec())
}

fn metrics(port: u16) -> String {
    String::from_utf8(get(port, "/metrics", &[]).2).unwrap()
}

fn wait_for(port: u16, what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = metrics(port);
        if check(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}:\n{text}");
        std::thread::sleep(Duration::from_millis(200));
    }
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
    let exporter = start_exporter(&spec(dir.path(), port, &log), port, &url);

    let text =
        wait_for(port, "first query run", |t| sample(t, "integration_token_refresh_degraded_watchers").is_some());
    assert_eq!(sample(&text, "integration_token_refresh_degraded_watchers"), Some(4.0));
    assert_eq!(sample(&text, "integration_token_refresh_tokens_expiring"), Some(11.0));
    assert_eq!(
        sample(&text, "integration_exporter_query_success{signal=\"token_refresh.expiring_tokens\"}"),
        Some(1.0)
    );
    assert!(!text.contains("secret-access-token") && !text.contains("secret-refresh-token"));

    // A new line shows up within a poll.
    writeln!(
        file,
        "2026-02-06 12:00:02,000 WARNING [graph_client] ProactiveRefresh ✗ user=b failed error=invalid_grant"
    )
    .unwrap();
    wait_for(port, "the failure line", |t| {
        sample(t, "integration_token_refresh_proactive_refreshes_total{result=\"failure\"}") == Some(1.0)
    });

    // promtool finds nothing to complain about in the live exposition.
    let complaints = support::promtool_check_metrics(&metrics(port));
    assert!(complaints.is_empty(), "promtool check metrics:\n{complaints}");

    // Every self-metric served (SQL, logs with a checkpoint, the process) is in the catalog.
    let served = support::exporter::catalogued_self_metrics(&metrics(port));
    for family in
        ["query_success", "log_lines_total", "checkpoint_save_failures_total", "build_info", "start_time_seconds"]
    {
        assert!(served.contains(&format!("integration_exporter_{family}")), "{family} not served: {served:?}");
    }

    // OpenMetrics when asked, gzip when asked, and the small endpoints.
    let (status, head, body) = get(port, "/metrics", &[("Accept", "application/openmetrics-text; version=1.0.0")]);
    assert_eq!(status, 200);
    assert!(head.contains("application/openmetrics-text"));
    assert!(String::from_utf8_lossy(&body).ends_with("# EOF\n"));
    let (_, head, body) = get(port, "/metrics", &[("Accept-Encoding", "gzip")]);
    assert!(head.to_lowercase().contains("content-encoding: gzip"));
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(&body[..]).read_to_string(&mut unzipped).unwrap();
    assert!(unzipped.contains("integration_token_refresh_degraded_watchers"));
    assert_eq!(get(port, "/healthz", &[]).0, 200);
    // Ready once every query has run once (their first runs are spread a little apart).
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(port, "/ready", &[]).0 != 200 {
        assert!(Instant::now() < deadline, "never ready: {}", String::from_utf8_lossy(&get(port, "/ready", &[]).2));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(String::from_utf8_lossy(&get(port, "/", &[]).2).contains("/metrics"));

    // The database goes away: the exporter keeps serving, reports the failure, then recovers.
    cluster.stop();
    let down = wait_for(port, "query failure", |t| {
        sample(t, "integration_exporter_query_success{signal=\"token_refresh.expiring_tokens\"}") == Some(0.0)
    });
    assert!(
        sample(
            &down,
            "integration_exporter_query_errors_total{signal=\"token_refresh.expiring_tokens\",kind=\"connect\"}"
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{down}"
    );
    let (status, _, _) = get(port, "/metrics", &[]);
    assert_eq!(status, 200);
    // The log side is untouched by the outage.
    assert_eq!(sample(&down, "integration_token_refresh_proactive_refreshes_total{result=\"failure\"}"), Some(1.0));
    cluster.restart();
    wait_for(port, "recovery", |t| {
        sample(t, "integration_exporter_query_success{signal=\"token_refresh.expiring_tokens\"}") == Some(1.0)
            && sample(t, "integration_token_refresh_degraded_watchers") == Some(4.0)
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
    let out = Command::new(exporter_bin()).args(["serve", "--config"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
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
        stderr.contains("token_refresh.degraded_watchers")
            && stderr.contains("sync_status")
            && stderr.contains("query line 3"),
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
