//! Several databases: one throwaway cluster holding two databases, the token-refresh pack enabled
//! once per database with different table names, read by the real exporter; a database that
//! refuses connections beside a healthy one; the rules generated for such a spec run through
//! promtool; `check --database` asks each database.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use integration_exporter::spec::{Model, SourceText};
use sqlx::Connection;
use sqlx::postgres::PgConnection;
use support::exporter::Exporter;
use support::http::Metrics;
use support::{Cluster, exporter_bin, free_port, pack_sql};

/// The second database's tables: another schema, other names.
const US_NAMES: &[(&str, &str)] =
    &[("schema", "mail"), ("tokens", "ms_tokens"), ("watchers", "watchers"), ("locks", "locks")];

/// `eu` with the demo's tables, `us` with [`US_NAMES`], both in one cluster.
async fn two_databases(cluster: &Cluster) -> (String, String) {
    let mut admin = PgConnection::connect(&cluster.url("postgres")).await.expect("connect");
    for db in ["eu", "us"] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}"))).execute(&mut admin).await.unwrap();
    }
    let (eu, us) = (cluster.url("eu"), cluster.url("us"));
    for (url, names) in [(&eu, &[][..]), (&us, US_NAMES)] {
        let mut conn = PgConnection::connect(url).await.expect("connect");
        sqlx::raw_sql(sqlx::AssertSqlSafe(pack_sql("token_refresh", names))).execute(&mut conn).await.unwrap();
    }
    (eu, us)
}

fn write(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("spec.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn per_database_spec(port: u16, us_tokens: &str) -> String {
    format!(
        "listen: 127.0.0.1:{port}
databases:
  eu: {{url_env: EU_URL}}
  us: {{url_env: US_URL}}
poll_defaults: {{interval: 1s, timeout: 2s}}
packs:
  token_refresh:
    - database: eu
    - database: us
      params: {{tokens_table: {us_tokens}, watchers_table: mail.watchers, locks_table: mail.locks}}
"
    )
}

/// The value of `metric`'s one series carrying `label="value"`.
fn value_of(m: &Metrics, metric: &str, label: &str, value: &str) -> Option<f64> {
    let want = format!("{label}=\"{value}\"");
    m.series.iter().find(|(k, _)| k.split('{').next() == Some(metric) && k.contains(&want)).map(|(_, v)| *v)
}

async fn count(url: &str, sql: &str) -> f64 {
    let mut conn = PgConnection::connect(url).await.expect("connect");
    let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_string())).fetch_one(&mut conn).await.unwrap();
    n as f64
}

/// One pack, two databases with their own table names: each database's numbers come back under
/// its own name, and its health too.
#[tokio::test]
async fn a_pack_enabled_per_database_reads_each_under_its_own_label() {
    let cluster = Cluster::start();
    let (eu, us) = two_databases(&cluster).await;
    // The two databases must not agree, or a mix-up would pass.
    PgConnection::connect(&us)
        .await
        .unwrap()
        .execute_raw("UPDATE mail.ms_tokens SET is_revoked = true WHERE id IN (SELECT id FROM mail.ms_tokens LIMIT 5)")
        .await;
    let eu_revoked = count(&eu, "SELECT count(*) FROM auth_microsoft_tokens WHERE is_revoked").await;
    let us_revoked = count(&us, "SELECT count(*) FROM mail.ms_tokens WHERE is_revoked").await;
    assert_ne!(eu_revoked, us_revoked, "seed sanity");

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let spec = write(dir.path(), &per_database_spec(port, "mail.ms_tokens"));
    let exporter = Exporter::serve(&spec, port).env("EU_URL", &eu).env("US_URL", &us).start();
    let revoked = "integration_token_refresh_tokens_revoked";
    let m = exporter.wait_for("both databases' revoked tokens", |m| {
        value_of(m, revoked, "database", "eu").is_some() && value_of(m, revoked, "database", "us").is_some()
    });
    assert_eq!(value_of(&m, revoked, "database", "eu"), Some(eu_revoked));
    assert_eq!(value_of(&m, revoked, "database", "us"), Some(us_revoked));
    for db in ["eu", "us"] {
        assert_eq!(value_of(&m, "integration_exporter_database_up", "database", db), Some(1.0), "{}", m.text);
    }
    // No series of a query without its database: a signal read on two databases is never one
    // series (the pack's log signals read no database and carry none).
    let model = load(&per_database_spec(port, "mail.ms_tokens"));
    let sql: Vec<String> = model
        .enabled_signals()
        .filter(|s| !s.databases.is_empty())
        .flat_map(|s| s.signal.metrics.iter().map(|m| m.name.clone()))
        .chain(["integration_exporter_query_success".to_string()])
        .collect();
    let unlabelled: Vec<&String> = m
        .series
        .keys()
        .filter(|k| sql.iter().any(|name| k.split('{').next() == Some(name.as_str())))
        .filter(|k| !k.contains("database=\""))
        .collect();
    assert!(value_of(&m, "integration_exporter_query_success", "database", "us").is_some());
    assert!(unlabelled.is_empty(), "series without a database label: {unlabelled:?}");
    // And the exposition is one Prometheus accepts (no duplicate series, help once).
    let problems = support::promtool_check_metrics(&m.text);
    assert!(problems.is_empty(), "{problems}");
}

/// A database that refuses connections beside a healthy one: the healthy one's queries keep
/// their interval, the other's fail and say which database.
#[test]
fn one_database_down_never_stalls_another() {
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let refused = free_port();
    let spec = write(
        dir.path(),
        &format!(
            "listen: 127.0.0.1:{port}
databases:
  up: {{url_env: UP_URL, connect_timeout: 2s}}
  down: {{url_env: DOWN_URL, connect_timeout: 2s}}
poll_defaults: {{interval: 1s, timeout: 1s}}
signals:
  - {{id: t.up, title: Up, database: up, metrics: [{{name: t_up, type: gauge, help: Up.}}], source: {{sql: {{query: SELECT 1 AS value}}}}}}
  - {{id: t.down, title: Down, database: down, metrics: [{{name: t_down, type: gauge, help: Down.}}], source: {{sql: {{query: SELECT 1 AS value}}}}}}
"
        ),
    );
    let exporter = Exporter::serve(&spec, port)
        .env("UP_URL", cluster.url("postgres"))
        .env("DOWN_URL", format!("postgres://postgres@127.0.0.1:{refused}/postgres"))
        .start();
    let last = "integration_exporter_query_last_success_timestamp_seconds";
    exporter.wait_for("the down database seen down", |m| {
        value_of(m, "integration_exporter_database_up", "database", "down") == Some(0.0)
            && value_of(m, last, "database", "up").is_some()
    });
    // Five seconds of the healthy database's series: never older than two intervals and a margin.
    let until = Instant::now() + Duration::from_secs(5);
    let mut worst: f64 = 0.0;
    while Instant::now() < until {
        let m = exporter.metrics();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        let age = now - value_of(&m, last, "database", "up").expect("the healthy database's last success");
        worst = worst.max(age);
        assert_eq!(m.get("t_up{database=\"up\"}"), Some(1.0), "{}", m.text);
        assert_eq!(value_of(&m, "integration_exporter_database_up", "database", "up"), Some(1.0));
        assert_eq!(value_of(&m, "integration_exporter_database_up", "database", "down"), Some(0.0));
        assert_eq!(m.get("t_down{database=\"down\"}"), None);
        std::thread::sleep(Duration::from_millis(250));
    }
    println!(
        "healthy database: oldest last success seen {worst:.2}s (interval 1s; the other database's connect timeout 2s)"
    );
    assert!(worst < 2.5, "the healthy database's series went stale: {worst:.2}s old");
}

/// The rules generated for a two-database spec pass promtool (their own tests included), and a
/// pack alert and a query-health alert evaluated by promtool on two databases' series keep each
/// database apart.
#[test]
fn rules_for_several_databases_pass_promtool_and_keep_the_label() {
    let model = load(&per_database_spec(29187, "mail.ms_tokens"));
    let dir = tempfile::tempdir().unwrap();
    integration_exporter::generate::write_all(&model, dir.path()).unwrap();
    let alerts = dir.path().join("alerts");
    let files = |ext: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&alerts)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(ext))
            .collect();
        v.sort();
        v
    };
    promtool(&alerts, "check", &files(".rules.yml"));
    promtool(&alerts, "test", &files(".tests.yml"));

    // Both databases' series into each alert's expression: the result keeps both apart.
    let rules: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(alerts.join("token-refresh.rules.yml")).unwrap()).unwrap();
    let expr = |name: &str, signal: &str| -> String {
        rules["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_array().unwrap())
            .find(|r| r["alert"] == name && r["labels"]["signal"] == signal)
            .and_then(|r| r["expr"].as_str())
            .unwrap_or_else(|| panic!("no alert {name}"))
            .to_string()
    };
    let revoked = expr("IntegrationTokenRefreshTokensExpiring", "token_refresh.expiring_tokens");
    let failing = expr("IntegrationSourceQueryFailing", "token_refresh.expiring_tokens");
    let target = "job=\"integration-exporter\", instance=\"exporter:29187\"";
    let signal = "signal=\"token_refresh.expiring_tokens\"";
    let test = format!(
        "evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - {{series: 'integration_token_refresh_tokens_expiring{{{target}, database=\"eu\"}}', values: '50x10'}}
      - {{series: 'integration_token_refresh_tokens_expiring{{{target}, database=\"us\"}}', values: '50x10'}}
      - {{series: 'integration_exporter_query_errors_total{{{target}, {signal}, kind=\"schema\", database=\"eu\"}}', values: '0+1x10'}}
      - {{series: 'integration_exporter_query_errors_total{{{target}, {signal}, kind=\"schema\", database=\"us\"}}', values: '0+1x10'}}
      - {{series: 'integration_exporter_query_success{{{target}, {signal}, database=\"eu\"}}', values: '0x10'}}
      - {{series: 'integration_exporter_query_success{{{target}, {signal}, database=\"us\"}}', values: '0x10'}}
      - {{series: 'integration_exporter_database_up{{{target}, database=\"eu\"}}', values: '1x10'}}
      - {{series: 'integration_exporter_database_up{{{target}, database=\"us\"}}', values: '0x10'}}
    promql_expr_test:
      - expr: 'count by (database) ({})'
        eval_time: 8m
        exp_samples:
          - {{labels: '{{database=\"eu\"}}', value: 1}}
          - {{labels: '{{database=\"us\"}}', value: 1}}
      - expr: 'count by (database) ({})'
        eval_time: 8m
        exp_samples:
          - {{labels: '{{database=\"eu\"}}', value: 1}}
",
        revoked.replace('\'', "''"),
        failing.replace('\'', "''")
    );
    std::fs::write(alerts.join("labels.test.yml"), test).unwrap();
    promtool(&alerts, "test", &["labels.test.yml".to_string()]);
}

fn promtool(dir: &Path, what: &str, files: &[String]) {
    assert!(!files.is_empty());
    let out = support::program("promtool").args([what, "rules"]).args(files).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

fn load(text: &str) -> Model {
    Model::from_text(&SourceText { name: "spec.yaml".into(), text: text.into() }).unwrap_or_else(|e| panic!("{e}"))
}

fn load_err(text: &str) -> String {
    match Model::from_text(&SourceText { name: "spec.yaml".into(), text: text.into() }) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

/// What cannot be told apart is refused, at its place.
#[test]
fn ambiguous_database_specs_are_refused() {
    let two = "databases:\n  eu: {url_env: A}\n  us: {url_env: B}\n";
    let err = load_err(&format!("database: {{url_env: A}}\n{two}"));
    assert!(err.contains("not both"), "{err}");
    let err = load_err(&format!("{two}packs:\n  token_refresh: {{}}\n"));
    assert!(err.contains("say which database") && err.contains("eu, us"), "{err}");
    let err = load_err(&format!("{two}packs:\n  token_refresh: {{database: asia}}\n"));
    assert!(err.contains("no database `asia`"), "{err}");
    let err = load_err(&format!("{two}packs:\n  token_refresh: [{{database: eu}}, {{database: eu}}]\n"));
    assert!(err.contains("enabled twice on database `eu`"), "{err}");
    // The enablings may differ in what the queries read, not in their alerts.
    let err = load_err(&format!(
        "{two}packs:\n  token_refresh:\n    - {{database: eu}}\n    - database: us\n      alerts: {{IntegrationTokenRefreshTokensExpiring: {{threshold: 99}}}}\n"
    ));
    assert!(err.contains("differ in more than what the query reads"), "{err}");
    let err = load_err(&format!(
        "{two}signals:\n  - {{id: t.x, title: X, metrics: [{{name: t_x, type: gauge, help: X.}}], source: {{sql: {{query: SELECT 1 AS value}}}}}}\n"
    ));
    assert!(err.contains("signal `t.x` reads SQL: say which database"), "{err}");
    // Today's one-database spec is what it was: no label.
    let one = load("database: {url_env: A}\npacks:\n  token_refresh: {}\n");
    assert_eq!(one.database_label(), None);
    assert!(one.enabled_signals().filter(|s| !s.databases.is_empty()).all(|s| s.databases[0].database == "default"));
}

/// `check --database` asks every database: the one whose tables are missing is named, the
/// other passes.
#[tokio::test]
async fn check_database_checks_each_database() {
    let cluster = Cluster::start();
    let (eu, us) = two_databases(&cluster).await;
    let dir = tempfile::tempdir().unwrap();
    let run = |spec: &Path| {
        let out = Command::new(exporter_bin())
            .args(["check", "--database", "--config"])
            .arg(spec)
            .env("EU_URL", &eu)
            .env("US_URL", &us)
            .output()
            .expect("run check");
        (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    };
    let (code, out) = run(&write(dir.path(), &per_database_spec(29187, "mail.ms_tokens")));
    assert_eq!(code, Some(0), "{out}");
    // `us` names a table only `eu` has.
    let (code, out) = run(&write(dir.path(), &per_database_spec(29187, "auth_microsoft_tokens")));
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("(database `us`)") && out.contains("auth_microsoft_tokens"), "{out}");
    assert!(!out.contains("(database `eu`)"), "{out}");
}

trait ExecuteRaw {
    async fn execute_raw(self, sql: &str);
}

impl ExecuteRaw for PgConnection {
    async fn execute_raw(mut self, sql: &str) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string())).execute(&mut self).await.unwrap_or_else(|e| panic!("{e}"));
    }
}
