//! Shared scans export exactly what the per-signal queries they replaced did: the token refresh
//! and calendar sync packs' old queries (tests/fixtures/per_signal_queries.yaml) and the packs'
//! scans run on the same random rows, in one transaction (one `now()`, rows seeded at exactly
//! the boundaries the queries compare with), and every exported series must be equal. Then the
//! runtime side: one scan run feeds every reader, and a failing scan fails each reader, named.

use crate::support;

use std::time::Duration;

use integration_exporter::sources::sql::{dsn, pool, rows_to_families, scan, scan_of};
use integration_exporter::spec::{Model, ResolvedSignal, Source};
use sqlx::postgres::PgRow;
use sqlx::{Connection, PgConnection};
use support::TestDb;
use support::fidelity::{Exported, collect, model};

/// The runbook's tables without their NOT NULLs: a user's schema may allow NULL anywhere, and
/// NULL is where a rewritten query most easily differs.
const TABLES: &str = "
CREATE TABLE auth_microsoft_tokens (
  id uuid, user_id uuid, token_purpose text, expires_at timestamptz, consecutive_failures integer,
  next_retry_at timestamptz, last_refresh_error text, is_revoked boolean);
CREATE TABLE external_calendar_connections (
  id uuid, provider_id uuid, provider text, sync_enabled boolean, last_synced_at timestamptz,
  error_count integer, last_error text, backoff_until timestamptz, token_expiry timestamptz, sync_cursor text);
";

/// Random rows, `setseed` making each seed's the same on every run. Times sit on and around the
/// queries' boundaries (now, the 10-minute expiring window, the hour-long stuck window), error
/// texts cover every class and the near misses of its patterns, and the row counts go from none
/// to a few hundred, under and over the 10 tokens an error class needs to export its share.
fn seed_rows(seed: u32) -> String {
    let tokens = [0, 3, 40, 250, 120, 15, 400, 9][seed as usize % 8];
    let connections = [0, 5, 60, 200, 30, 90, 1, 150][seed as usize % 8];
    let pick = |items: &str| format!("(ARRAY[{items}])[1 + floor(random() * cardinality(ARRAY[{items}]))::int]");
    let seconds = pick("-3601, -3600, -3599, -601, -600, -599, -60, -1, 0, 1, 60, 599, 600, 601, 3600, 7200");
    let errors = pick(
        "'invalid_grant: token expired', 'AADSTS65001 consent_required', 'interaction_required', 'HTTP 429', \
         'Too Many Requests', '4290 retries', '503 Service Unavailable', 'upstream 5000', 'timeout', '', \
         'x429y', 'status 502'",
    );
    let failures = pick("0, 0, 0, 1, 2, 5, 10, 11, 12");
    let providers = pick("'google', 'microsoft', 'caldav'");
    let connection_errors =
        pick("'token expired', 'Invalid_Token for user', '429 rate limited', 'TOKEN EXPIRED at 3', 'conflict'");
    format!(
        "DELETE FROM auth_microsoft_tokens; DELETE FROM external_calendar_connections;
         SELECT setseed({seed} / 100.0);
         INSERT INTO auth_microsoft_tokens
         SELECT gen_random_uuid(), gen_random_uuid(), 'mail',
                CASE WHEN random() < 0.05 THEN NULL ELSE now() + {seconds} * interval '1 second' END,
                CASE WHEN random() < 0.05 THEN NULL ELSE {failures} END,
                CASE WHEN random() < 0.4 THEN NULL ELSE now() + {seconds} * interval '1 second' END,
                CASE WHEN random() < 0.3 THEN NULL ELSE {errors} END,
                CASE WHEN random() < 0.05 THEN NULL ELSE random() < 0.15 END
         FROM generate_series(1, {tokens});
         INSERT INTO external_calendar_connections
         SELECT gen_random_uuid(), gen_random_uuid(),
                CASE WHEN random() < 0.05 THEN NULL ELSE {providers} END,
                CASE WHEN random() < 0.05 THEN NULL ELSE random() < 0.8 END,
                CASE WHEN random() < 0.1 THEN NULL ELSE now() + {seconds} * interval '1 second' END,
                CASE WHEN random() < 0.05 THEN NULL ELSE {failures} END,
                CASE WHEN random() < 0.3 THEN NULL ELSE {connection_errors} END,
                CASE WHEN random() < 0.4 THEN NULL ELSE now() + {seconds} * interval '1 second' END,
                CASE WHEN random() < 0.1 THEN NULL ELSE now() + {seconds} * interval '1 second' END,
                'c'
         FROM generate_series(1, {connections});"
    )
}

fn packs() -> Model {
    model(
        "database: {url_env: UNUSED}\npacks:\n  token_refresh: {params: {worker_log: /nonexistent/w.log}}\n  \
         calendar_sync: {params: {app_log: /nonexistent/a.log}}\n",
    )
}

fn per_signal() -> Model {
    model(include_str!("../fixtures/per_signal_queries.yaml"))
}

fn sql_of(signal: &ResolvedSignal) -> &str {
    match &signal.signal.source {
        Source::Sql(sql) => &sql.query,
        _ => unreachable!("only SQL signals are read here"),
    }
}

async fn rows(conn: &mut PgConnection, query: &str) -> Vec<PgRow> {
    sqlx::query(sqlx::AssertSqlSafe(query.to_string())).fetch_all(conn).await.unwrap_or_else(|e| panic!("{e}\n{query}"))
}

#[tokio::test]
async fn scans_export_exactly_what_the_per_signal_queries_did() {
    let db = TestDb::new().await;
    db.execute(TABLES).await;
    let (old, new) = (per_signal(), packs());
    let readers: Vec<&ResolvedSignal> = new.enabled_signals().filter(|s| scan_of(s).is_some()).collect();
    let mut ids: Vec<&str> = readers.iter().map(|s| s.signal.id.as_str()).collect();
    let mut old_ids: Vec<&str> = old.enabled_signals().map(|s| s.signal.id.as_str()).collect();
    ids.sort();
    old_ids.sort();
    assert_eq!(ids, old_ids, "every signal that had its own query reads a scan now");
    let mut conn = PgConnection::connect(&db.url).await.expect("connect");
    let mut seen_shares = 0;
    for seed in 0..16 {
        // One transaction: the seed's `now()` is the queries', so rows sit exactly on boundaries.
        let mut tx = conn.begin().await.expect("begin");
        sqlx::raw_sql(sqlx::AssertSqlSafe(seed_rows(seed))).execute(&mut *tx).await.expect("seed");
        let mut before = Exported::new();
        for signal in old.enabled_signals() {
            let rows = rows(&mut tx, sql_of(signal)).await;
            collect(&mut before, rows_to_families(signal, &rows).expect("families"));
        }
        let mut after = Exported::new();
        for (scan, ids) in scan::readers_by_scan(new.enabled_signals()) {
            let first = new.enabled_signals().find(|s| s.signal.id == ids[0]).expect("reader");
            let rows = rows(&mut tx, sql_of(first)).await;
            for id in &ids {
                let reader = new.enabled_signals().find(|s| &s.signal.id == id).expect("reader");
                let families = rows_to_families(reader, &rows).unwrap_or_else(|e| panic!("{scan} for {id}: {e:?}"));
                collect(&mut after, families);
            }
        }
        tx.rollback().await.expect("rollback");
        assert_eq!(before, after, "seed {seed}");
        seen_shares += before["integration_token_refresh_error_share"].values().filter(|v| **v > 0.0).count();
    }
    assert!(seen_shares > 0, "some seed must have an error class over the minimum, or the shares went untested");
}

#[tokio::test]
async fn one_scan_run_feeds_every_reader_and_a_failure_names_the_scan() {
    let db = TestDb::new().await;
    db.execute(TABLES).await;
    db.execute(&seed_rows(3)).await;
    let model = packs();
    let pool = pool(dsn::parse(&db.url).expect("url"), 2, Duration::from_secs(5));
    let readers: Vec<&ResolvedSignal> =
        model.enabled_signals().filter(|s| scan_of(s) == Some("calendar_sync.connections")).collect();
    assert_eq!(readers.len(), 7);
    let query = sql_of(readers[0]).to_string();
    let (_, runs) = scan::run(&pool, "calendar_sync.connections", &readers, &query, Duration::from_secs(5)).await;
    for (reader, run) in readers.iter().zip(&runs) {
        let run = run.as_ref().unwrap_or_else(|e| panic!("{}: {e:?}", reader.signal.id));
        let names: Vec<&str> = run.families.iter().map(|f| f.name.as_str()).collect();
        let declared: Vec<&str> = reader.signal.metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, declared, "{}", reader.signal.id);
    }

    db.execute("ALTER TABLE external_calendar_connections RENAME COLUMN error_count TO errors").await;
    let (_, runs) = scan::run(&pool, "calendar_sync.connections", &readers, &query, Duration::from_secs(5)).await;
    for (reader, run) in readers.iter().zip(runs) {
        let e = run.err().unwrap_or_else(|| panic!("{} read a scan that failed", reader.signal.id));
        assert!(e.message.starts_with("scan `calendar_sync.connections`: "), "{}", e.message);
        assert!(e.message.contains("error_count"), "{}", e.message);
    }
}

#[test]
fn every_scan_of_a_built_in_pack_has_a_reader_and_only_packs_have_scans() {
    use integration_exporter::spec::{SourceText, builtin_pack, pack::BUILTIN};
    for (name, _) in BUILTIN {
        let pack = builtin_pack(name).expect("built in").expect("parses");
        for scan in pack.scans.keys() {
            let read =
                pack.signals.iter().any(|s| matches!(&s.source, Source::Sql(sql) if sql.scan.as_ref() == Some(scan)));
            assert!(read, "pack `{name}`: scan `{scan}` is read by no signal");
        }
    }
    let spec = "database: {url_env: UNUSED}\nsignals:\n  - id: mine\n    title: Mine\n    metrics:\n      - {name: integration_mine, type: gauge, help: Mine.}\n    source:\n      sql: {scan: tokens}\n";
    let e = Model::from_text(&SourceText { name: "spec.yaml".into(), text: spec.into() }).unwrap_err().to_string();
    assert!(e.contains("`scan: tokens` names a pack's shared scan"), "{e}");
}

#[test]
fn a_reader_on_its_own_schedule_runs_the_scan_alone_and_disabled_readers_not_at_all() {
    let model = model(
        "database: {url_env: UNUSED}\npacks:\n  token_refresh:\n    params: {worker_log: /nonexistent/w.log}\n    \
         signals:\n      token_refresh.due_tokens: {interval: 5m}\n      token_refresh.error_classes: {enabled: false}\n",
    );
    let sql = model.enabled_signals().filter_map(|s| match (&s.signal.source, s.schedule()) {
        (Source::Sql(sql), Some(schedule)) => Some((s, sql, schedule)),
        _ => None,
    });
    let runs: Vec<(Option<String>, Vec<&str>)> = scan::groups(sql)
        .into_iter()
        .filter(|g| g.scan.is_some())
        .map(|g| (g.scan, g.readers.iter().map(|s| s.signal.id.as_str()).collect()))
        .collect();
    let tokens = Some("token_refresh.tokens".to_string());
    assert_eq!(
        runs,
        [
            (
                tokens.clone(),
                vec![
                    "token_refresh.expiring_tokens",
                    "token_refresh.tokens_in_backoff",
                    "token_refresh.revoked_tokens",
                    "token_refresh.dominant_error",
                    "token_refresh.rate_limited_failures",
                ]
            ),
            (tokens, vec!["token_refresh.due_tokens"]),
        ]
    );
}
