//! Defaults rest on what the runbooks show: with the packs below at their defaults, on a database
//! holding exactly the runbooks' tables and columns (`tests/fixtures/runbook_tables.sql`),
//! `check --database` passes and every query of `serve` succeeds, so no "source failing" alert
//! can fire. Where a schema differs, `check --database` names the parameter that fixes a query,
//! or how to switch its signal off.

use crate::support;

use std::path::Path;
use std::process::Command;

use support::TestDb;
use support::exporter::Exporter;
use support::http::StandIn;

/// The packs held to the runbook-only tables here.
const PACKS: [&str; 2] = ["etl_token_monitoring", "salesforce_incidents"];

fn runbook_tables() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/runbook_tables.sql")).unwrap()
}

/// The packs at their defaults; `extra` goes under the ETL pack (its `params:` or `signals:`).
fn spec(extra: &str) -> String {
    let mut text = String::from("database: {url_env: RUNBOOK_TABLES_DB}\npacks:\n");
    for pack in PACKS {
        text.push_str(&format!("  {pack}: {{}}\n"));
    }
    if !extra.is_empty() {
        text = text.replace("  etl_token_monitoring: {}\n", &format!("  etl_token_monitoring:\n{extra}"));
    }
    text
}

/// `check --database` on `spec`: whether it passed, and what it printed.
fn check(db: &TestDb, spec: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spec.yaml");
    std::fs::write(&path, spec).unwrap();
    let out = Command::new(support::exporter_bin())
        .args(["check", "--database", "--config"])
        .arg(&path)
        .env("RUNBOOK_TABLES_DB", &db.url)
        .output()
        .unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), said)
}

#[tokio::test]
async fn packs_at_their_defaults_read_only_the_runbooks_tables() {
    let db = TestDb::new().await;
    db.execute(&runbook_tables()).await;
    db.execute(
        "INSERT INTO marketing.platform_tokens VALUES ('meta', 'secret', now() + interval '45 days', now());
         INSERT INTO marketing.etl_sync_log VALUES ('meta', 'campaigns', 'incremental', 'success', now(), 120, NULL),
           ('meta', 'campaigns', 'full', 'failed', now() - interval '1 hour', 0, 'Request timed out');",
    )
    .await;
    let (ok, said) = check(&db, &spec(""));
    assert!(ok, "check --database on the runbook's tables:\n{said}");

    // Served, every query runs and succeeds. Only the addresses of the APIs are set (to a
    // stand-in answering nothing useful): this is about the database.
    let api = StandIn::start(|_| (404, "{}".into()));
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let url = api.url("");
    let text = format!(
        "listen: 127.0.0.1:{port}\npoll_defaults: {{interval: 1s, timeout: 2s}}\n{}",
        spec(&format!("    params: {{github_api_url: \"{url}\"}}\n"))
            .replace("  salesforce_incidents: {}\n", &format!(
                "  salesforce_incidents:\n    params: {{instance_url: \"{url}\", health_url: \"{url}/health\", server_log: {}}}\n",
                dir.path().join("server.log").display()
            ))
    );
    let path = dir.path().join("spec.yaml");
    std::fs::write(&path, &text).unwrap();
    let exporter = Exporter::serve(&path, port).env("RUNBOOK_TABLES_DB", &db.url).start();
    let model = integration_exporter::spec::Model::from_text(&integration_exporter::spec::SourceText {
        name: "spec.yaml".into(),
        text,
    })
    .unwrap();
    let sql: Vec<String> = model
        .enabled_signals()
        .filter(|s| s.signal.source.spec().needs_database())
        .map(|s| s.signal.id.clone())
        .collect();
    assert!(sql.len() >= 5, "{sql:?}");
    // Each query's success is 0 until its first run ends; an error stops the wait at once.
    let failed = |m: &support::http::Metrics| {
        m.series.iter().any(|(k, v)| k.starts_with("integration_exporter_query_errors_total{") && *v > 0.0)
    };
    let m = exporter.wait_for("every query to have run", |m| {
        failed(m)
            || sql
                .iter()
                .all(|id| m.get(&format!("integration_exporter_query_success{{signal=\"{id}\"}}")) == Some(1.0))
    });
    for id in &sql {
        assert_eq!(
            m[&format!("integration_exporter_query_success{{signal=\"{id}\"}}")],
            1.0,
            "{id}: {m:?}\n{}",
            exporter.output()
        );
        for (series, value) in &m.series {
            if series.starts_with("integration_exporter_query_errors_total{") && series.contains(&format!("\"{id}\"")) {
                assert_eq!(*value, 0.0, "{series}");
            }
        }
    }
    // The daily full sync failing behind a successful incremental one is read from the
    // runbook's own columns.
    assert!(
        m.get("integration_etl_sync_failing_seconds{platform=\"meta\",entity_type=\"campaigns\",sync_type=\"full\"}")
            .is_some_and(|v| v > 3000.0),
        "{m:?}"
    );
}

/// A schema that names a column otherwise, or lacks a table: `check --database` names the
/// parameter that fixes the query, or how to switch the signal off, and the parameter works.
#[tokio::test]
async fn check_names_the_parameter_or_the_switch_that_fixes_a_query() {
    let db = TestDb::new().await;
    db.execute(&runbook_tables()).await;
    db.execute("ALTER TABLE marketing.etl_sync_log RENAME COLUMN sync_type TO kind").await;
    let (ok, said) = check(&db, &spec(""));
    assert!(!ok, "{said}");
    let line =
        said.lines().find(|l| l.contains("etl_token_monitoring.sync_failing")).unwrap_or_else(|| panic!("{said}"));
    assert!(line.contains("column \"sync_type\" does not exist"), "{line}");
    assert!(line.contains("set parameter `sync_type` (now `sync_type`)"), "{line}");
    assert!(
        line.contains(
            "`packs: {etl_token_monitoring: {signals: {etl_token_monitoring.sync_failing: {enabled: false}}}}`"
        ),
        "{line}"
    );
    let (ok, said) = check(&db, &spec("    params: {sync_type: kind}\n"));
    assert!(ok, "the parameter named is the fix:\n{said}");

    // No such table at all: its parameter, or off.
    db.execute("DROP TABLE marketing.platform_tokens").await;
    let (ok, said) = check(&db, &spec("    params: {sync_type: kind}\n"));
    assert!(!ok, "{said}");
    let line =
        said.lines().find(|l| l.contains("etl_token_monitoring.token_expiry")).unwrap_or_else(|| panic!("{said}"));
    assert!(line.contains("set parameter `tokens_table` (now `marketing.platform_tokens`)"), "{line}");
    let (ok, said) = check(
        &db,
        &spec(
            "    params: {sync_type: kind}\n    signals:\n      etl_token_monitoring.token_expiry: {enabled: false}\n",
        ),
    );
    assert!(ok, "switched off as told:\n{said}");
}
