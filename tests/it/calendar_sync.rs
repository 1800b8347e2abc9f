//! Fidelity of the calendar-sync pack: every database value equals the runbook's own SQL on the
//! same data (in a schema the exporter has never seen, set through parameters), and the log
//! counter equals a grep of the runbook's filter on the same JSON log.

use crate::support;

use std::io::Write;

use support::TestDb;
use support::fidelity::*;

const SPEC: &str = "database: {url_env: UNUSED}\npacks:\n  calendar_sync:\n    params:\n      connections_table: cal.external_calendar_connections\n      events_table: cal.external_calendar_events\n";

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
        // Freshness: the most recent sync among enabled connections.
        let age = db
            .scalar(&format!("SELECT EXTRACT(EPOCH FROM now() - max(last_synced_at)) FROM {t} WHERE provider = '{provider}' AND sync_enabled = true"))
            .await;
        let exported_age = value(&exported, "integration_calendar_sync_last_sync_age_seconds", &p);
        assert!((exported_age - age).abs() < 5.0, "{exported_age} vs {age}");
    }
    assert_eq!(
        value(&exported, "integration_calendar_sync_stuck_connections", &[("provider", "google")]),
        5.0,
        "seed sanity"
    );
    // The seed's five disabled google connections hold expired tokens too; only the two enabled ones count.
    assert_eq!(value(&exported, "integration_calendar_sync_expired_tokens", &[("provider", "google")]), 2.0);
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
    let labels = [("log", "calendar_sync.app"), ("path", path.to_str().unwrap())];
    assert_eq!(value(&exported, "integration_exporter_log_lines_unparsable_total", &labels), 1.0);
}
