//! Fitting a pack to one's schema, as a new user does it with the real binary: `params` lists what
//! can be set; `check --database` on a real PostgreSQL holding the runbooks' tables reports a
//! misspelt table and a renamed column once each, with the signals that read them, the pack
//! parameter that wrote the name, the database's closest name and the line that fixes it (and
//! that line is the fix); a database that refuses or never answers is one line, at once.

use crate::support;

use std::path::Path;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use integration_exporter::spec::{Model, Source};
use support::TestDb;
use support::process::Proc;

const RUNBOOK_TABLES: &str = include_str!("../fixtures/runbook_tables.sql");

/// Far below the 45 s that nine "pool timed out" waits took, far above a connection refused.
const FAST: Duration = Duration::from_secs(10);

/// `check --database` on `spec`: how it ended, everything it printed, and how long it took.
fn check(spec: &Path, url: &str) -> (ExitStatus, String, Duration) {
    let dir = spec.parent().unwrap();
    let started = Instant::now();
    let mut proc = Proc::start(
        "check --database",
        &dir.join(format!("check-{}.out", run_number())),
        Command::new(support::exporter_bin())
            .args(["check", "--database", "--config"])
            .arg(spec)
            .env("FITTING_DATABASE_URL", url),
    );
    let status = proc.wait_exit(Duration::from_secs(60));
    (status, proc.output(), started.elapsed())
}

/// Each run its own output file.
fn run_number() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// The token refresh pack on `url`, its log in `dir`, with `params` added.
fn token_refresh_spec(dir: &Path, params: &str) -> std::path::PathBuf {
    let path = dir.join("spec.yaml");
    let text = format!(
        "database: {{url_env: FITTING_DATABASE_URL}}\npacks:\n  token_refresh:\n    params: {{worker_log: {}/w.log{params}}}\n",
        dir.display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// The enabled SQL signals whose query names `needle`, in the model's order.
fn reading(spec: &Path, needle: &str) -> Vec<String> {
    let model = Model::load(spec).unwrap_or_else(|e| panic!("{e}"));
    model
        .enabled_signals()
        .filter(|s| matches!(&s.signal.source, Source::Sql(sql) if sql.query.contains(needle)))
        .map(|s| s.signal.id.clone())
        .collect()
}

fn read_by(signals: &[String]) -> String {
    match signals {
        [one] => format!("read by signal {one}"),
        many => format!("read by {} signals: {}", many.len(), many.join(", ")),
    }
}

#[tokio::test]
async fn a_misspelt_table_is_reported_once_with_its_parameter_and_the_closest_name() {
    let db = TestDb::new().await;
    db.execute(RUNBOOK_TABLES).await;
    let dir = tempfile::tempdir().unwrap();
    let spec = token_refresh_spec(dir.path(), ", tokens_table: auth_microsft_tokens");
    let readers = reading(&spec, "\"auth_microsft_tokens\"");
    assert!(readers.len() > 3, "the pack reads its token table in many signals: {readers:?}");

    let (status, said, _) = check(&spec, &db.url);
    assert_eq!(status.code(), Some(2), "{said}");
    let expected = format!(
        "{}: relation \"auth_microsft_tokens\" does not exist, {}\n\
         \x20 the name comes from parameter `tokens_table` of pack `token_refresh`\n\
         \x20 closest tables of the database (edit distance): auth_microsoft_tokens (1)\n\
         \x20 fix: packs: {{token_refresh: {{params: {{tokens_table: auth_microsoft_tokens}}}}}}\n",
        spec.display(),
        read_by(&readers)
    );
    assert_eq!(said, expected);
    assert_eq!(said.matches("does not exist").count(), 1, "once, not once per signal:\n{said}");

    // The line printed is the fix.
    let spec = token_refresh_spec(dir.path(), ", tokens_table: auth_microsoft_tokens");
    let (status, said, _) = check(&spec, &db.url);
    assert!(status.success(), "{said}");
}

#[tokio::test]
async fn a_renamed_column_is_reported_once_with_its_table_parameter_and_the_closest_name() {
    let db = TestDb::new().await;
    db.execute(RUNBOOK_TABLES).await;
    db.execute("ALTER TABLE auth_microsoft_tokens RENAME COLUMN expires_at TO expires").await;
    let dir = tempfile::tempdir().unwrap();
    let block = |spec: &Path, missing: &str, closest: &str, distance: usize, readers: &[String]| {
        format!(
            "{}: column \"{missing}\" of relation \"auth_microsoft_tokens\" does not exist, {}\n\
             \x20 the name comes from parameter `token_expires_at` of pack `token_refresh`\n\
             \x20 closest columns of auth_microsoft_tokens (edit distance): {closest} ({distance})\n\
             \x20 fix: packs: {{token_refresh: {{params: {{token_expires_at: {closest}}}}}}}\n",
            spec.display(),
            read_by(readers)
        )
    };

    // The database renamed the column the pack reads by default.
    let spec = token_refresh_spec(dir.path(), "");
    let readers = reading(&spec, "\"expires_at\"");
    assert!(!readers.is_empty());
    let (status, said, _) = check(&spec, &db.url);
    assert_eq!(status.code(), Some(2), "{said}");
    assert_eq!(said, block(&spec, "expires_at", "expires", 3, &readers));
    assert_eq!(said.matches("does not exist").count(), 1, "once, not once per signal:\n{said}");
    let spec = token_refresh_spec(dir.path(), ", token_expires_at: expires");
    let (status, said, _) = check(&spec, &db.url);
    assert!(status.success(), "the line printed is the fix:\n{said}");

    // The other way round: the spec names a column the database calls otherwise.
    db.execute("ALTER TABLE auth_microsoft_tokens RENAME COLUMN expires TO expires_at").await;
    let (status, said, _) = check(&spec, &db.url);
    assert_eq!(status.code(), Some(2), "{said}");
    assert_eq!(said, block(&spec, "expires", "expires_at", 3, &reading(&spec, "\"expires\"")));
}

/// The user's own query, joining two tables under aliases: the column is looked for in the
/// table its alias names, and the position in the query is given (the query is theirs).
#[tokio::test]
async fn a_column_of_an_own_query_is_found_in_the_table_its_alias_names() {
    let db = TestDb::new().await;
    db.execute(RUNBOOK_TABLES).await;
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.yaml");
    std::fs::write(
        &spec,
        "database: {url_env: FITTING_DATABASE_URL}
signals:
  - id: my.stale
    title: Stale
    metrics: [{name: my_stale, type: gauge, help: Stale.}]
    source:
      sql:
        query: |
          SELECT count(*) AS value
          FROM auth_microsoft_tokens AS t JOIN email_watchers w ON w.user_id = t.user_id
          WHERE w.sync_statsu = 'degraded'
",
    )
    .unwrap();
    let (status, said, _) = check(&spec, &db.url);
    assert_eq!(status.code(), Some(2), "{said}");
    assert_eq!(
        said,
        format!(
            "{}: column \"sync_statsu\" of relation \"email_watchers\" does not exist, read by signal my.stale \
             (query line 3, column 7)\n\
             \x20 the name is written in the signal's own query\n\
             \x20 closest columns of email_watchers (edit distance): sync_status (1)\n",
            spec.display()
        )
    );
}

#[test]
fn a_refused_database_is_one_line_naming_where_and_why_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let spec = token_refresh_spec(dir.path(), "");
    let port = support::free_port();
    let (status, said, took) = check(&spec, &format!("postgres://app@127.0.0.1:{port}/app"));
    assert_eq!(status.code(), Some(1), "{said}");
    assert_eq!(
        said,
        format!("{}: cannot connect to the database at 127.0.0.1:{port}: connection refused\n", spec.display())
    );
    assert!(took < FAST, "took {took:?}");
}

/// A server that accepts the connection and never answers: one line, after the spec's
/// `connect_timeout`, not once per query.
#[test]
fn a_database_that_never_answers_is_one_line_after_the_connect_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.yaml");
    std::fs::write(
        &spec,
        format!(
            "database: {{url_env: FITTING_DATABASE_URL, connect_timeout: 1s}}\npacks:\n  token_refresh:\n    params: {{worker_log: {}/w.log}}\n",
            dir.path().display()
        ),
    )
    .unwrap();
    // The kernel completes the handshake; nothing ever reads or writes.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let (status, said, took) = check(&spec, &format!("postgres://app@127.0.0.1:{port}/app?sslmode=disable"));
    assert_eq!(status.code(), Some(1), "{said}");
    assert_eq!(
        said,
        format!(
            "{}: cannot connect to the database at 127.0.0.1:{port}: no answer within 1s (database.connect_timeout)\n",
            spec.display()
        )
    );
    assert!(took < FAST, "took {took:?}");
}

#[test]
fn params_lists_every_parameter_of_every_pack_with_kind_default_and_doc() {
    let run = |args: &[&str]| {
        let out = Command::new(support::exporter_bin()).arg("params").args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, text, _) = run(&[]);
    assert_eq!(code, Some(0));
    let (code, json, _) = run(&["--format", "json"]);
    assert_eq!(code, Some(0));
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let packs = json.as_array().unwrap();
    assert_eq!(packs.len(), integration_exporter::spec::pack::BUILTIN.len());
    for (name, _) in integration_exporter::spec::pack::BUILTIN {
        let def = integration_exporter::spec::builtin_pack(name).unwrap().unwrap();
        let listed = packs.iter().find(|p| p["pack"] == *name).unwrap_or_else(|| panic!("{name} missing"));
        let params = listed["params"].as_array().unwrap();
        assert_eq!(params.len(), def.params.len(), "{name}");
        let section = text.split(&format!("\n{name} (")).nth(1).unwrap_or_else(|| panic!("{name} in text"));
        let section = section.split("\n\n").next().unwrap();
        for (param, p) in &def.params {
            let entry = params.iter().find(|e| e["name"] == *param).unwrap_or_else(|| panic!("{name}.{param}"));
            assert_eq!(entry["kind"], serde_json::to_value(p.kind).unwrap());
            assert_eq!(entry["default"], serde_json::to_value(&p.default).unwrap());
            assert_eq!(entry["doc"], p.doc.as_str());
            // Text: name, kind and default on one line, the doc on the next.
            let kind = serde_json::to_value(p.kind).unwrap();
            let line = section
                .lines()
                .position(|l| l.trim_start().starts_with(&format!("{param} ")))
                .unwrap_or_else(|| panic!("{name}.{param} in text:\n{section}"));
            let lines: Vec<&str> = section.lines().collect();
            assert!(
                lines[line].trim_end().ends_with(&format!("{}, default {}", kind.as_str().unwrap(), p.default)),
                "{}",
                lines[line]
            );
            assert_eq!(lines[line + 1].trim(), p.doc);
        }
    }
    let (code, only, _) = run(&["token_refresh"]);
    assert_eq!(code, Some(0));
    assert!(only.contains("\ntoken_refresh (") && !only.contains("\ncalendar_sync ("), "{only}");
    let (code, _, err) = run(&["token_refres"]);
    assert_eq!(code, Some(2));
    assert!(err.starts_with("unknown pack `token_refres` (built-in packs: token_refresh,"), "{err}");
}
