//! `check --database --explain` on a real PostgreSQL: a query that filters a large table on a
//! column no index leads is warned about with the `CREATE INDEX` that would help; once that index
//! exists (and the statistics know it), the same query plans an index scan and the warning goes.
//! `--analyze` runs the queries and says how long they took; nothing is ever written.

use crate::support;

use std::path::Path;
use std::process::Command;

use support::TestDb;

/// `check --database --explain` (and `extra`) on `spec`: exit code and stdout, stderr.
fn explain(spec: &Path, url: &str, extra: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(support::exporter_bin())
        .args(["check", "--database", "--explain", "--config"])
        .arg(spec)
        .args(extra)
        .env("EXPLAIN_DATABASE_URL", url)
        .output()
        .expect("run check");
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// What `out` says about `signal`: its line and the warnings under it.
fn block<'a>(out: &'a str, signal: &str) -> &'a str {
    let start = out.find(&format!("signal `{signal}`:")).unwrap_or_else(|| panic!("no {signal}:\n{out}"));
    let rest = &out[start..];
    // Up to and with the newline that ends the block's last line.
    let end =
        rest[1..].find("\nsignal `").map(|e| e + 1).or_else(|| rest.find("\n3 queries")).map_or(rest.len(), |e| e + 1);
    &rest[..end]
}

const ADVICE: &str = "CREATE INDEX ON public.audit_events (kind);";

#[tokio::test]
async fn a_sequential_scan_of_a_large_table_is_warned_about_until_the_index_exists() {
    let db = TestDb::new().await;
    // 50k rows, 1% errors: selective enough that an index on `kind` wins once it exists.
    db.execute(
        "CREATE TABLE audit_events (id bigint, kind text NOT NULL, at timestamptz NOT NULL);
         INSERT INTO audit_events SELECT i, CASE WHEN i % 100 = 0 THEN 'error' ELSE 'ok' END, now()
           FROM generate_series(1, 50000) i;
         CREATE TABLE small (id int); INSERT INTO small SELECT generate_series(1, 100);
         ANALYZE;",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.yaml");
    std::fs::write(
        &spec,
        "database: {url_env: EXPLAIN_DATABASE_URL}
signals:
  - id: my.errors
    title: Errors
    metrics: [{name: my_errors, type: gauge, help: Errors.}]
    source: {sql: {query: \"SELECT count(*) AS value FROM audit_events WHERE kind = 'error'\"}}
  - id: my.ok
    title: Fine
    metrics: [{name: my_ok, type: gauge, help: Fine.}]
    source: {sql: {query: \"SELECT count(*) AS value FROM audit_events WHERE kind = 'ok'\"}}
  - id: my.small
    title: Small
    metrics: [{name: my_small, type: gauge, help: Small.}]
    source: {sql: {query: \"SELECT count(*) AS value FROM small WHERE id > 3\"}}
",
    )
    .unwrap();

    let (code, out, err) = explain(&spec, &db.url, &[]);
    assert_eq!(code, Some(0), "{out}{err}");
    let warning = "  warning: sequential scan of public.audit_events (50000 rows), filtering or sorting on kind\n";
    assert!(
        block(&out, "my.errors").contains(&format!("{warning}    an index may help (advice only): {ADVICE}\n")),
        "{out}"
    );
    // A filter that keeps nearly every row gains nothing from an index: none is advised.
    let ok = block(&out, "my.ok");
    assert!(
        ok.contains("the filter keeps about 49")
            && ok.contains("an index would not help")
            && !ok.contains("CREATE INDEX"),
        "{out}"
    );
    // A table below the threshold is read whole without a word; never executed without --analyze.
    assert!(out.contains("signal `my.small`: cost ") && !out.contains("public.small"), "{out}");
    assert!(!out.contains(" ms"), "{out}");
    assert!(out.contains("3 queries, total cost ") && out.contains(", 2 sequential scans of large tables\n"), "{out}");

    db.execute(&format!("{ADVICE} ANALYZE audit_events;")).await;
    let (code, out, err) = explain(&spec, &db.url, &["--analyze"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(!block(&out, "my.errors").contains("warning"), "{out}");
    assert!(out.contains(", 1 sequential scans of large tables\n"), "{out}");
    assert!(out.contains("signal `my.errors`: cost ") && out.contains(" ms executing"), "{out}");
}

#[test]
fn explain_needs_database_and_analyze_needs_explain() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.yaml");
    std::fs::write(&spec, "signals: []\n").unwrap();
    for args in [&["--explain"][..], &["--database", "--analyze"]] {
        let out =
            Command::new(support::exporter_bin()).args(["check", "--config"]).arg(&spec).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        // A command line clap refuses: its usage status, and the flag that is missing.
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("the following required arguments were not provided"), "{args:?}: {err}");
    }
}

#[tokio::test]
async fn a_shared_scan_is_planned_once_and_names_its_readers() {
    let db = TestDb::new().await;
    db.execute(&support::pack_schema("calendar_sync", &[])).await;
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.yaml");
    std::fs::write(
        &spec,
        "database: {url_env: EXPLAIN_DATABASE_URL}\npacks:\n  calendar_sync:\n    params: {app_log: /nonexistent/a.log}\n    \
         signals: {calendar_sync.backoff: {enabled: false}}\n",
    )
    .unwrap();
    let (code, out, err) = explain(&spec, &db.url, &["--analyze"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let readers = "`calendar_sync.stuck_syncs`, `calendar_sync.connection_errors`, `calendar_sync.expired_tokens`, \
                   `calendar_sync.auth_failures`, `calendar_sync.freshness`, `calendar_sync.error_count_trend`";
    assert!(out.contains(&format!("scan `calendar_sync.connections` (read by {readers}): cost ")), "{out}");
    assert_eq!(out.matches("scan `calendar_sync.connections`").count(), 1, "{out}");
    assert!(!out.contains("signal `calendar_sync.stuck_syncs`"), "{out}");
    // The scan and the events query: the cycle's count of queries is what a collection runs.
    assert!(out.contains("\n2 queries, total cost "), "{out}");
}
