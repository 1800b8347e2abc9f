//! The packs at their defaults on a database holding exactly the tables and columns the five
//! runbooks show (`tests/fixtures/runbook_tables.sql`): `check --database` finds every table and
//! column the enabled queries read, and `serve` reads them all without a failing source. A signal
//! that needs more is off by default; switched on there, `check` names the parameter that fixes
//! it, or how to switch it off again.

use crate::support;

use std::path::Path;
use std::time::Duration;

use integration_exporter::spec::{Model, Source};
use support::TestDb;
use support::exporter::Exporter;

const RUNBOOK_TABLES: &str = include_str!("../fixtures/runbook_tables.sql");

/// Every pack at its defaults but for where it reads logs and endpoints: files in `dir` and a
/// port nothing listens on.
fn spec(dir: &Path, port: u16, extra: &str) -> String {
    let d = dir.display();
    let nowhere = format!("http://127.0.0.1:{}", support::free_port());
    format!(
        "listen: 127.0.0.1:{port}
state_dir: {d}/state
database: {{url_env: RUNBOOK_DATABASE_URL}}
poll_defaults: {{interval: 1s, timeout: 2s}}
packs:
  token_refresh:
    params: {{worker_log: {d}/email_watcher.log}}
  calendar_sync:
    params: {{app_log: {d}/app.log}}
  microsoft_integration:
    params: {{api_log: {d}/fleet-api.log, queue_metrics_url: '{nowhere}/api/metrics/queue'}}
  etl_token_monitoring:
    params: {{etl_log: {d}/etl.log, github_api_url: '{nowhere}', github_token: 'env:RUNBOOK_GITHUB_TOKEN'}}
  salesforce_incidents:
    params: {{server_log: {d}/salesforce.log, instance_url: '{nowhere}', health_url: '{nowhere}/health', authorization: 'Bearer env:RUNBOOK_SF_TOKEN'}}
{extra}"
    )
}

/// `integration-exporter check --database` on `spec`: whether it passed, and what it said.
fn check(spec: &Path, url: &str) -> (bool, String) {
    let out = std::process::Command::new(support::exporter_bin())
        .args(["check", "--database", "--config"])
        .arg(spec)
        .env("RUNBOOK_DATABASE_URL", url)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run integration-exporter check");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// The report of `check` (a line, and the indented lines under it) whose first line has `needle`.
fn block_of(said: &str, needle: &str) -> String {
    let mut blocks: Vec<String> = Vec::new();
    for line in said.lines() {
        match blocks.last_mut() {
            Some(block) if line.starts_with("  ") => {
                block.push('\n');
                block.push_str(line);
            }
            _ => blocks.push(line.to_string()),
        }
    }
    let found: Vec<&String> = blocks.iter().filter(|b| b.lines().next().is_some_and(|l| l.contains(needle))).collect();
    match found.as_slice() {
        [one] => format!("{one}\n"),
        _ => panic!("one report about `{needle}` expected:\n{said}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pack_at_its_defaults_reads_only_what_the_runbooks_show() {
    let db = TestDb::new().await;
    db.execute(RUNBOOK_TABLES).await;
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let path = dir.path().join("spec.yaml");
    std::fs::write(&path, spec(dir.path(), port, "")).unwrap();
    let (ok, said) = check(&path, &db.url);
    assert!(ok, "check --database on the runbooks' tables:\n{said}");

    // Served, every query reads: no source-failing alert can come of the defaults.
    let model = Model::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let queries: Vec<String> = model
        .enabled_signals()
        .filter(|s| matches!(s.signal.source, Source::Sql(_)))
        .map(|s| s.signal.id.clone())
        .collect();
    assert!(queries.len() > 10, "{queries:?}");
    let exporter = Exporter::serve(&path, port).env("RUNBOOK_DATABASE_URL", &db.url).start();
    exporter.wait_for("every query read once", |metrics| {
        queries
            .iter()
            .all(|id| metrics.get(&format!("integration_exporter_query_success{{signal=\"{id}\"}}")) == Some(1.0))
    });
    std::thread::sleep(Duration::from_secs(2));
    let metrics = exporter.metrics();
    for id in &queries {
        let series = format!("integration_exporter_query_success{{signal=\"{id}\"}}");
        assert_eq!(metrics.get(&series), Some(1.0), "{id} fails on the runbooks' tables");
    }
}

/// The signals that need a table or column no runbook shows, switched on there: `check` fails
/// naming the parameter that holds the missing name, and how to switch the signal off.
#[tokio::test]
async fn an_opt_in_signal_on_the_runbook_tables_names_its_fix() {
    let db = TestDb::new().await;
    db.execute(RUNBOOK_TABLES).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spec.yaml");
    let on = "      signals: {SIGNAL: {enabled: true}}\n";
    let mut text = spec(dir.path(), support::free_port(), "");
    for (pack, signal) in [
        ("token_refresh", "token_refresh.short_backoff"),
        ("calendar_sync", "calendar_sync.sync_needed"),
        ("microsoft_integration", "microsoft_integration.webhook_subscriptions"),
        ("microsoft_integration", "microsoft_integration.sync_state"),
    ] {
        let at = text.find(&format!("  {pack}:\n")).unwrap() + pack.len() + 4;
        text.insert_str(at, &on.replace("SIGNAL", signal).replace("      ", "    "));
        std::fs::write(&path, &text).unwrap();
        let (ok, said) = check(&path, &db.url);
        assert!(!ok, "{signal} on the runbooks' tables:\n{said}");
        let block = block_of(&said, &format!("read by signal {signal}"));
        let param = match signal {
            "token_refresh.short_backoff" => "token_failed_at",
            "calendar_sync.sync_needed" => "sync_needed",
            "microsoft_integration.webhook_subscriptions" => "subscriptions_table",
            _ => "sync_state_resource_type",
        };
        assert!(block.contains(&format!("\n  the name comes from parameter `{param}` of pack `{pack}`\n")), "{block}");
        assert!(
            block.contains(&format!(
                "switch the signal off: packs: {{{pack}: {{signals: {{{signal}: {{enabled: false}}}}}}}}"
            )),
            "{block}"
        );
        // Off again, the next one is checked alone.
        text = text.replace(&on.replace("SIGNAL", signal).replace("      ", "    "), "");
    }
}

/// The ETL pack on a schema that names a runbook column otherwise, or lacks a runbook table:
/// `check --database` names the parameter that holds the name, the parameter set is the fix,
/// and so is switching the signal off.
#[tokio::test]
async fn etl_columns_named_otherwise_name_their_parameter() {
    let db = TestDb::new().await;
    db.execute(RUNBOOK_TABLES).await;
    db.execute("ALTER TABLE marketing.etl_sync_log RENAME COLUMN sync_type TO kind").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spec.yaml");
    let etl = |extra: &str| {
        std::fs::write(
            &path,
            format!("database: {{url_env: RUNBOOK_DATABASE_URL}}\npacks:\n  etl_token_monitoring:\n{extra}"),
        )
        .unwrap();
        check(&path, &db.url)
    };
    let (ok, said) = etl("    params: {}\n");
    assert!(!ok, "{said}");
    let block = block_of(&said, "etl_token_monitoring.sync_failing");
    assert!(block.contains("column \"sync_type\" of relation \"marketing.etl_sync_log\" does not exist"), "{block}");
    assert!(block.contains("set `sync_type` of pack `etl_token_monitoring` to the name this database uses"), "{block}");
    assert!(
        block.contains(
            "packs: {etl_token_monitoring: {signals: {etl_token_monitoring.sync_failing: {enabled: false}}}}"
        ),
        "{block}"
    );
    let (ok, said) = etl("    params: {sync_type: kind}\n");
    assert!(ok, "the parameter named is the fix:\n{said}");

    // No such table at all: its parameter, or the signal off.
    db.execute("DROP TABLE marketing.platform_tokens").await;
    let (ok, said) = etl("    params: {sync_type: kind}\n");
    assert!(!ok, "{said}");
    let block = block_of(&said, "etl_token_monitoring.token_expiry");
    assert!(
        block.contains("set `tokens_table` of pack `etl_token_monitoring` to the name this database uses"),
        "{block}"
    );
    let (ok, said) =
        etl("    params: {sync_type: kind}\n    signals:\n      etl_token_monitoring.token_expiry: {enabled: false}\n");
    assert!(ok, "switched off as told:\n{said}");
}
