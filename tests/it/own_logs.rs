//! What the exporter says about itself: one startup line with its version and build, as
//! Prometheus' own exporters print it; every failure line naming its cause; the database driver's
//! own chatter only at debug.

use crate::support;

use std::path::{Path, PathBuf};

use support::exporter::Exporter;
use support::{Cluster, free_port};

fn spec(dir: &Path, port: u16, http_port: u16) -> PathBuf {
    let text = format!(
        "listen: 127.0.0.1:{port}
database: {{url_env: IE_TEST_DSN, connect_timeout: 500ms}}
poll_defaults: {{interval: 1s, timeout: 500ms}}
signals:
  - id: t.rows
    title: Rows
    runbook_section: https://example.com/runbook#rows
    metrics:
      - {{name: t_rows, type: gauge, help: Rows.}}
    source:
      sql:
        query: SELECT 1 AS value
  - id: t.queue
    title: Queue
    runbook_section: https://example.com/runbook#queue
    metrics:
      - {{name: t_pending, type: gauge, help: Pending.}}
    source:
      http:
        url: http://127.0.0.1:{http_port}/queue
        values: [{{metric: t_pending, path: .pending}}]
"
    );
    let path = dir.join("spec.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The lines of `output` whose `msg` is `msg`.
fn lines<'a>(output: &'a str, msg: &str) -> Vec<&'a str> {
    output.lines().filter(|l| l.contains(&format!("msg=\"{msg}\""))).collect()
}

#[test]
fn startup_line_and_every_failure_names_its_cause() {
    let dir = tempfile::tempdir().unwrap();
    let (port, closed) = (free_port(), free_port());
    let dsn = format!("postgres://reader:s3cret-pw@127.0.0.1:{closed}/app");
    let exporter = Exporter::serve(&spec(dir.path(), port, closed), port).env("IE_TEST_DSN", &dsn).start();
    let output = exporter.wait_output("a failed query and a failed HTTP poll", |out| {
        out.contains("msg=\"query failed\"") && out.contains("msg=\"HTTP poll failed\"")
    });

    let started = lines(&output, "starting integration-exporter");
    assert_eq!(started.len(), 1, "{output}");
    let version = format!("version=\"(version={}, branch=", env!("CARGO_PKG_VERSION"));
    assert!(started[0].contains(&version) && started[0].contains(", revision="), "{}", started[0]);
    assert!(started[0].contains("build_context=\"(rustc=rustc ") && started[0].contains("platform="), "{}", started[0]);

    let http = lines(&output, "HTTP poll failed");
    assert!(http[0].contains("kind=connect") && http[0].contains("Connection refused"), "{}", http[0]);
    assert!(!http[0].contains("reason=\"\""), "{}", http[0]);

    // Not "pool timed out": where, and what the server (or the OS) said.
    let sql = lines(&output, "query failed");
    assert!(sql[0].contains(&format!("no connection to 127.0.0.1:{closed}")), "{}", sql[0]);
    assert!(sql[0].contains("Connection refused"), "{}", sql[0]);
    assert!(!output.contains("s3cret-pw"), "{output}");
}

/// A database that goes away under open connections: at the default level only the exporter's
/// own lines (one per failing query), at debug the driver's events as well.
#[test]
fn database_driver_events_are_debug_only() {
    let ping = "ping on idle connection";
    let run = |level: Option<&str>| {
        let cluster = Cluster::start();
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut launch =
            Exporter::serve(&spec(dir.path(), port, free_port()), port).env("IE_TEST_DSN", cluster.url("postgres"));
        if let Some(level) = level {
            launch = launch.arg(format!("--log.level={level}"));
        }
        let exporter = launch.start();
        exporter.wait_for("the query to succeed", |m| m.get("t_rows") == Some(1.0));
        // Connections stay open in the pool; the next poll pings one of them first.
        cluster.stop();
        exporter.wait_output("a failed query", |out| out.contains("msg=\"query failed\""));
        std::thread::sleep(std::time::Duration::from_secs(2));
        exporter.stop()
    };
    let debug = run(Some("debug"));
    assert!(debug.contains(ping), "the driver's event never happened, so this test proves nothing:\n{debug}");
    let info = run(None);
    assert!(!info.contains(ping), "{info}");
    assert!(info.contains("msg=\"query failed\""), "{info}");
}
