//! Fidelity of the calendar-sync pack: every database value equals the runbook's own SQL on the
//! same data (in a schema the exporter has never seen, set through parameters), and the log
//! counter equals a grep of the runbook's filter on the same JSON log.

use crate::support;

use std::io::Write;

use support::TestDb;
use support::alerting::{Timeline, alerts};
use support::fidelity::*;

/// The pack on the demo tables in schema `cal`, with the opt-in `sync_needed` signal on (the demo
/// table has the flag and a time it was written).
const SPEC: &str = "database: {url_env: UNUSED}\npacks:\n  calendar_sync:\n    signals: {calendar_sync.sync_needed: {enabled: true}}\n    params:\n      connections_table: cal.external_calendar_connections\n      events_table: cal.external_calendar_events\n";

#[tokio::test]
async fn database_values_equal_the_runbook_queries() {
    let db = TestDb::new().await;
    db.execute(&support::pack_sql("calendar_sync", &[("schema", "cal")])).await;
    let exported = export_sql(&db.url, &model(SPEC)).await;
    let t = "cal.external_calendar_connections";
    for provider in ["google", "microsoft"] {
        let p = [("provider", provider)];
        let runbook = |filter: &str| format!("SELECT count(*) FROM {t} WHERE provider = '{provider}' AND ({filter})");
        // "Find connections that haven't synced recently".
        let stuck = db
            .scalar(&runbook("sync_enabled = true AND (last_synced_at IS NULL OR last_synced_at < NOW() - INTERVAL '1 hour') AND (backoff_until IS NULL OR backoff_until < NOW())"))
            .await;
        assert_eq!(value(&exported, "integration_calendar_sync_stuck_connections", &p), stuck, "{provider}");
        // "Check for connections in permanent backoff".
        let backoff = db.scalar(&runbook("backoff_until > NOW()")).await;
        assert_eq!(value(&exported, "integration_calendar_sync_connections_in_backoff", &p), backoff);
        // "View recent errors".
        let with_errors = db.scalar(&runbook("error_count > 0")).await;
        assert_eq!(value(&exported, "integration_calendar_sync_connections_with_errors", &p), with_errors);
        let error_sum = db
            .scalar(&format!(
                "SELECT coalesce(sum(error_count), 0) FROM {t} WHERE provider = '{provider}' AND error_count > 0"
            ))
            .await;
        assert_eq!(value(&exported, "integration_calendar_sync_connection_errors", &p), error_sum);
        // "Check token expiry", for the connections that sync: a disabled one keeps its old
        // token for ever and must not alert.
        let expired = db.scalar(&runbook("token_expiry < NOW() AND sync_enabled = true")).await;
        assert_eq!(value(&exported, "integration_calendar_sync_expired_tokens", &p), expired);
        // The symptom: "`last_error` contains "token expired" or "invalid_token"", on connections
        // that sync and are failing now.
        let auth = db
            .scalar(&runbook("sync_enabled = true AND error_count > 0 AND (last_error ILIKE '%token expired%' OR last_error ILIKE '%invalid_token%')"))
            .await;
        assert_eq!(value(&exported, "integration_calendar_sync_auth_failing_connections", &p), auth);
        // Freshness: the most recent sync among enabled connections.
        let age = db
            .scalar(&format!("SELECT EXTRACT(EPOCH FROM now() - max(last_synced_at)) FROM {t} WHERE provider = '{provider}' AND sync_enabled = true"))
            .await;
        let exported_age = value(&exported, "integration_calendar_sync_last_sync_age_seconds", &p);
        assert!((exported_age - age).abs() < 5.0, "{exported_age} vs {age}");
        // "Check `error_count` is not increasing", over the connections that sync.
        let enabled_errors = db
            .scalar(&format!(
                "SELECT coalesce(sum(error_count), 0) FROM {t} WHERE provider = '{provider}' AND sync_enabled = true"
            ))
            .await;
        assert_eq!(value(&exported, "integration_calendar_sync_enabled_connection_errors", &p), enabled_errors);
        // "Verify `sync_needed` flag is being cleared": flagged for over the hour, judged from the
        // row's last write (the table records no flag time).
        let flagged = db
            .scalar(&runbook("sync_enabled = true AND sync_needed = true AND updated_at < NOW() - INTERVAL '1 hour'"))
            .await;
        assert_eq!(value(&exported, "integration_calendar_sync_sync_needed_stale_connections", &p), flagged);
    }
    assert_eq!(
        value(&exported, "integration_calendar_sync_stuck_connections", &[("provider", "google")]),
        7.0,
        "seed sanity"
    );
    let google = [("provider", "google")];
    // The disabled google connection's 7 errors and old flag count for neither.
    assert_eq!(value(&exported, "integration_calendar_sync_enabled_connection_errors", &google), 8.0);
    assert_eq!(value(&exported, "integration_calendar_sync_connection_errors", &google), 15.0);
    assert_eq!(value(&exported, "integration_calendar_sync_sync_needed_stale_connections", &google), 2.0);
    let microsoft = [("provider", "microsoft")];
    assert_eq!(value(&exported, "integration_calendar_sync_sync_needed_stale_connections", &microsoft), 0.0);
    // The seed's five disabled google connections hold expired tokens too; only the two enabled ones count.
    assert_eq!(value(&exported, "integration_calendar_sync_expired_tokens", &[("provider", "google")]), 2.0);
    assert_eq!(value(&exported, "integration_calendar_sync_auth_failing_connections", &google), 2.0);
    // "Clear failed events" selects sync_status = 'FAILED'.
    let failed = db.scalar("SELECT count(*) FROM cal.external_calendar_events WHERE sync_status = 'FAILED'").await;
    assert_eq!(value(&exported, "integration_calendar_sync_failed_events", &[]), failed);
}

#[test]
fn error_log_counts_equal_the_runbook_filter() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let mut file = std::fs::File::create(&path).unwrap();
    let codes = ["token_expired", "rate_limited", "adapter_error", "database_error", "weird_new_code"];
    for i in 0..3000usize {
        let (level, category) = match i % 5 {
            0 | 1 => ("error", "calendar_sync"),
            2 => ("info", "calendar_sync"),
            3 => ("error", "billing"),
            _ => ("warn", "calendar_sync"),
        };
        let code = codes[i % codes.len()];
        writeln!(
            file,
            r#"{{"timestamp":"2026-02-06T12:00:{:02}.000Z","level":"{level}","category":"{category}","message":"sync step {i}","error_code":"{code}","metadata":{{"attempt":{}}}}}"#,
            i % 60,
            i % 4
        )
        .unwrap();
    }
    writeln!(file, "not json at all").unwrap();
    let text = format!("{SPEC}      app_log: {}\n", path.display());
    let model = model(&text);
    let mut runner = log_runner(&model, "calendar_sync.app");
    support::fidelity::drain(&mut runner);
    let exported = exported_logs(&runner);
    let metric = "integration_calendar_sync_log_errors_total";
    let filter = |code: &str| format!(r#""level":"error","category":"calendar_sync".*"error_code":"{code}""#);
    for code in ["token_expired", "rate_limited", "adapter_error", "database_error"] {
        assert_eq!(value(&exported, metric, &[("error_code", code)]), grep_count(&filter(code), &[&path]), "{code}");
    }
    assert_eq!(value(&exported, metric, &[("error_code", "other")]), grep_count(&filter("weird_new_code"), &[&path]));
    assert_eq!(value(&exported, metric, &[("error_code", "invalid_token")]), 0.0);
    // Every calendar_sync entry by level, what the error share is taken of.
    let entries = "integration_calendar_sync_log_entries_total";
    let errors = grep_count(r#""level":"error","category":"calendar_sync""#, &[&path]);
    assert_eq!(value(&exported, entries, &[("level", "error")]), errors);
    assert_eq!(
        value(&exported, entries, &[("level", "other")]),
        grep_count(r#""category":"calendar_sync""#, &[&path]) - errors
    );
    let labels = [("log", "calendar_sync.app"), ("path", path.to_str().unwrap())];
    assert_eq!(value(&exported, "integration_exporter_log_lines_unparsable_total", &labels), 1.0);
}

#[tokio::test]
async fn error_count_and_sync_needed_follow_the_table() {
    let db = TestDb::new().await;
    db.execute(&support::pack_sql("calendar_sync", &[("schema", "cal")])).await;
    let spec = model(SPEC);
    let errors = "integration_calendar_sync_enabled_connection_errors";
    let flagged = "integration_calendar_sync_sync_needed_stale_connections";
    let before = export_sql(&db.url, &spec).await;
    let m = [("provider", "microsoft")];
    // Four microsoft connections in backoff fail once more: the sum rises by four.
    db.execute(
        "UPDATE cal.external_calendar_connections SET error_count = error_count + 1 WHERE backoff_until > now()",
    )
    .await;
    let after = export_sql(&db.url, &spec).await;
    assert_eq!(value(&after, errors, &m), value(&before, errors, &m) + 4.0);
    // The job runner syncs the flagged google connections and clears the flag.
    db.execute("UPDATE cal.external_calendar_connections SET sync_needed = false, last_synced_at = now(), updated_at = now() WHERE sync_enabled AND sync_needed")
        .await;
    let cleared = export_sql(&db.url, &spec).await;
    assert_eq!(value(&cleared, flagged, &[("provider", "google")]), 0.0);
    // A flag time column of its own, set through the parameter.
    db.execute("ALTER TABLE cal.external_calendar_connections ADD COLUMN sync_needed_at timestamptz; UPDATE cal.external_calendar_connections SET sync_needed = true, sync_needed_at = now() - interval '2 hours' WHERE provider = 'microsoft' AND sync_enabled").await;
    let own = model(&format!("{SPEC}      sync_needed_since: sync_needed_at\n"));
    let exported = export_sql(&db.url, &own).await;
    let expected = db
        .scalar("SELECT count(*) FROM cal.external_calendar_connections WHERE provider = 'microsoft' AND sync_enabled AND sync_needed AND sync_needed_at < now() - interval '1 hour'")
        .await;
    assert_eq!(value(&exported, flagged, &m), expected);
    assert_eq!(expected, 18.0, "every enabled microsoft connection");
}

/// Secrets in calendar_sync lines, in any field, and how the runbook's check would find them:
/// each kind's pattern run by `grep -P` over the same file, on the calendar_sync lines only.
const SECRETS: [(&str, &str, &str); 5] = [
    ("bearer", r#""metadata":{"headers":{"Authorization":"Bearer "#, "ya29.a0AfB_leakedAccessToken0001"),
    ("jwt", r#""message":"id token "#, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJsZWFrZWQifQ.c2lnbmF0dXJl"),
    ("access_token", r#""metadata":{"access_token":""#, "ya29.a0AfB_leakedAccessToken0002"),
    ("refresh_token", r#""message":"stored refresh_token="#, "1//0gLeakedRefreshToken-0003"),
    ("client_secret", r#""metadata":{"body":"client_id=app&client_secret="#, "GOCSPX-leakedClientSecret0004"),
];

/// The rules' patterns, as PCRE for `grep -P`.
const GREP: [(&str, &str); 5] = [
    ("bearer", r"(?i)\bbearer\s+[A-Za-z0-9._~+/-]{16,}"),
    ("jwt", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\."),
    ("access_token", r"(?i)access_token\W{1,4}[A-Za-z0-9._~+/-]{16,}"),
    ("refresh_token", r"(?i)refresh_token\W{1,4}[A-Za-z0-9._~+/-]{16,}"),
    ("client_secret", r"(?i)client_secret\W{1,4}[A-Za-z0-9._~+/-]{16,}"),
];

fn write_secret_log(path: &std::path::Path) {
    let mut file = std::fs::File::create(path).unwrap();
    for i in 0..400usize {
        let (kind, prefix, secret) = SECRETS[i % SECRETS.len()];
        let category = if i % 3 == 0 { "billing" } else { "calendar_sync" };
        // Every fourth calendar line was redacted properly: the placeholder must not count.
        let shown = if i % 4 == 1 { "[REDACTED]".to_string() } else { format!("{secret}{i}") };
        let close = if prefix.contains("\"metadata\"") { if kind == "bearer" { "\"}}" } else { "\"}" } } else { "\"" };
        let tail = if prefix.contains("\"metadata\"") { r#","message":"sync step""# } else { "" };
        writeln!(
            file,
            r#"{{"timestamp":"2026-02-06T12:00:{:02}.000Z","level":"info","category":"{category}",{prefix}{shown}{close}{tail}}}"#,
            i % 60
        )
        .unwrap();
    }
    writeln!(file, r#"{{"timestamp":"2026-02-06T12:01:00.000Z","level":"info","category":"calendar_sync","message":"token_type Bearer, refresh_token rotated, access_token=***"}}"#).unwrap();
    // A line that is not JSON at all: unparsable, and its secret must not surface in a log either.
    writeln!(file, "traceback: Authorization: Bearer {BROKEN_LINE_SECRET}").unwrap();
}

const BROKEN_LINE_SECRET: &str = "ya29.a0AfB_brokenLineToken0005";

fn grep_p(pattern: &str, path: &std::path::Path) -> f64 {
    let pcre = format!(r#"^(?=.*"category":"calendar_sync")(?=.*{pattern})"#);
    let out = support::program("grep").arg("-cP").arg(&pcre).arg(path).output().expect("grep");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or_else(|_| panic!("grep -cP {pcre}"))
}

#[test]
fn secret_lines_are_counted_by_kind_as_grep_finds_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    write_secret_log(&path);
    let model = model(&format!("{SPEC}      app_log: {}\n", path.display()));
    let mut runner = log_runner(&model, "calendar_sync.app");
    support::fidelity::drain(&mut runner);
    let exported = exported_logs(&runner);
    let metric = "integration_calendar_sync_log_secret_lines_total";
    for (kind, pattern) in GREP {
        let found = grep_p(pattern, &path);
        assert!(found > 0.0, "{kind}: the log must hold some");
        assert_eq!(value(&exported, metric, &[("kind", kind)]), found, "{kind}");
    }
    // Nothing the exporter holds carries a secret: only the kind is a label.
    let held = format!("{exported:?}");
    for secret in SECRETS.iter().map(|(_, _, s)| *s).chain([BROKEN_LINE_SECRET]) {
        assert!(!held.contains(secret), "{secret} in {held}");
    }
}

/// The real exporter reading a log full of secrets: the counter moves, and neither /metrics nor
/// the exporter's own output ever shows one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_exporter_counts_leaks_without_repeating_them() {
    let db = TestDb::new().await;
    db.execute(&support::pack_sql("calendar_sync", &[("schema", "cal")])).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    write_secret_log(&path);
    let port = support::free_port();
    let spec = dir.path().join("spec.yaml");
    std::fs::write(
        &spec,
        format!(
            "listen: 127.0.0.1:{port}\nstate_dir: {}\ndatabase: {{url_env: TEST_DATABASE_URL}}\npoll_defaults: {{interval: 1s}}\npacks:\n  calendar_sync:\n    params:\n      connections_table: cal.external_calendar_connections\n      events_table: cal.external_calendar_events\n      app_log: {}\n",
            dir.path().join("state").display(),
            path.display()
        ),
    )
    .unwrap();
    let exporter = support::exporter::Exporter::serve(&spec, port)
        .env("TEST_DATABASE_URL", &db.url)
        .env("RUST_LOG", "debug")
        .start();
    let series = r#"integration_calendar_sync_log_secret_lines_total{kind="bearer"}"#;
    let expected = grep_p(GREP[0].1, &path);
    let body = exporter.wait_for(&format!("{series} {expected}"), |m| m.get(series) == Some(expected)).text;
    let output = exporter.stop();
    for secret in SECRETS.iter().map(|(_, _, s)| *s).chain([BROKEN_LINE_SECRET]) {
        assert!(!body.contains(secret), "{secret} served");
        assert!(!output.contains(secret), "{secret} logged:\n{output}");
    }
}

mod leaks {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        // A few seconds by default; PROPTEST_CASES raises it.
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(16)
        ))]

        /// Any secret of token characters, after any of the names, in the message or deep in
        /// another field, with any words around it: counted once under its kind, never held.
        #[test]
        fn a_secret_anywhere_in_a_calendar_line_is_counted_and_never_held(
            secret in "[A-Za-z0-9._~+/-]{16,48}",
            kind in 0..4usize,
            nested in any::<bool>(),
            before in "[a-z ]{0,12}",
            after in "[a-z ]{0,12}",
        ) {
            let (label, name) = [("bearer", "Bearer "), ("access_token", "access_token="), ("refresh_token", "refresh_token: "), ("client_secret", "client_secret=")][kind];
            let text = format!("{before} {name}{secret} {after}");
            let body = if nested {
                format!(r#""message":"sync step","metadata":{{"request":{{"detail":"{text}"}}}}"#)
            } else {
                format!(r#""message":"{text}""#)
            };
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("app.log");
            std::fs::write(&path, format!("{{\"timestamp\":\"2026-02-06T12:00:00.000Z\",\"level\":\"info\",\"category\":\"calendar_sync\",{body}}}\n")).unwrap();
            let model = model(&format!("{SPEC}      app_log: {}\n", path.display()));
            let mut runner = log_runner(&model, "calendar_sync.app");
            support::fidelity::drain(&mut runner);
            let exported = exported_logs(&runner);
            prop_assert_eq!(value(&exported, "integration_calendar_sync_log_secret_lines_total", &[("kind", label)]), 1.0);
            let held = format!("{:?}", exported);
            prop_assert!(!held.contains(&secret), "{} held", secret);
        }
    }
}

/// The demo tables, every connection healthy and synced just now, no failed event.
const HEALTHY: &str = "UPDATE cal.external_calendar_connections SET last_synced_at = now(), backoff_until = NULL, token_expiry = now() + interval '30 days', error_count = 0, last_error = NULL, sync_needed = false; DELETE FROM cal.external_calendar_events WHERE sync_status = 'FAILED';";

/// "OAuth Token Expired": the runbook's query of expired tokens is how to diagnose, its symptom is
/// syncs failing with authentication errors. Access tokens lapse between syncs by design and
/// are renewed on use: no page. Syncs failing with "invalid_token": a ticket.
#[tokio::test]
async fn an_expired_access_token_is_no_page_a_sync_failing_with_it_is() {
    let db = TestDb::new().await;
    db.execute(&support::pack_sql("calendar_sync", &[("schema", "cal")])).await;
    db.execute(HEALTHY).await;
    let model = model(SPEC);
    let replay = |exported: Exported| {
        let mut timeline = Timeline::of_database();
        timeline.hold(&exported, 40);
        timeline.firing(&model, "calendar_sync", &[35]).remove(0)
    };
    db.execute("UPDATE cal.external_calendar_connections SET token_expiry = now() - interval '10 minutes' WHERE provider = 'google'").await;
    let lapsed = export_sql(&db.url, &model).await;
    assert!(value(&lapsed, "integration_calendar_sync_expired_tokens", &[("provider", "google")]) > 20.0);
    assert_eq!(replay(lapsed), alerts(&[]));

    db.execute("UPDATE cal.external_calendar_connections SET error_count = 3, last_error = 'Google Calendar API 401: invalid_token' WHERE id IN (SELECT id FROM cal.external_calendar_connections WHERE provider = 'google' AND sync_enabled LIMIT 2)").await;
    let failing = export_sql(&db.url, &model).await;
    assert_eq!(replay(failing), alerts(&[("IntegrationCalendarSyncTokenExpired", "warning")]));
}

/// calendar_sync error entries: a few percent of the entries fail and are retried in any busy
/// hour (rate limits, a provider's blip), which is no page however much work there is. A third of
/// them failing is.
#[test]
fn ordinary_error_entries_are_no_page_a_failing_share_is() {
    let epoch = 1_770_379_200;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let model = model(&format!("{SPEC}      app_log: {}\n", path.display()));
    let timeline = support::alerting::replay_log(
        &model,
        "calendar_sync.app",
        &path,
        epoch,
        70,
        &Exported::new(),
        |minute| {
            let errors = if minute < 40 { 6 } else { 60 };
            (0..200u64)
            .map(|i| {
                let ts = format!("2026-02-06T{:02}:{:02}:{:02}.{:03}Z", 12 + minute / 60, minute % 60, i * 3 / 10, i % 1000);
                let (level, code) = if i < errors { ("error", r#","error_code":"rate_limited""#) } else { ("info", "") };
                format!(r#"{{"timestamp":"{ts}","level":"{level}","category":"calendar_sync","message":"sync step","connection_id":"c-{i}"{code}}}"#)
            })
            .collect()
        },
    );
    let firing = timeline.firing(&model, "calendar_sync", &[38, 68]);
    assert_eq!(firing[0], alerts(&[]), "3% of 200 entries a minute");
    assert_eq!(firing[1], alerts(&[("IntegrationCalendarSyncErrors", "warning")]), "30%");
}
