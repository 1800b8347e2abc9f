//! Fidelity of the ETL pack: token expiry, sync failures and sync activity equal the runbook's
//! dashboard queries on the same data (schema-qualified tables in a schema set through
//! parameters), and the log counters equal grep counts of the runbook's messages.

use crate::support;

use std::io::Write;

use support::TestDb;
use support::fidelity::*;

const SPEC: &str = "database: {url_env: UNUSED}\npacks:\n  etl_token_monitoring:\n    params:\n      tokens_table: mkt.platform_tokens\n      sync_log_table: mkt.etl_sync_log\n";

#[tokio::test]
async fn database_values_equal_the_runbook_queries() {
    let db = TestDb::new().await;
    db.execute(&support::pack_sql("etl_token_monitoring", &[("schema", "mkt")])).await;
    // One token in each tier of the runbook's status query (the seed has no EXPIRING_SOON one).
    db.execute("INSERT INTO mkt.platform_tokens (platform, expires_at) VALUES ('linkedin', now() + interval '3 days')")
        .await;
    let exported = export_sql(&db.url, &model(SPEC)).await;

    // "Check Current Token Status", the runbook's own SQL: each platform's status is the one
    // series of `integration_etl_token_status` it has, with value 1.
    let status_sql = runbook_status_query().replace("marketing.platform_tokens", "mkt.platform_tokens");
    let rows = db.rows(&format!("SELECT platform, status, 1::float8 FROM ({status_sql}) AS runbook")).await;
    assert_eq!(rows.len(), 4);
    let tiers: std::collections::BTreeSet<&str> = rows.iter().map(|(_, s, _)| s.as_str()).collect();
    assert_eq!(tiers.len(), 4, "every tier is covered: {rows:?}");
    assert_eq!(exported["integration_etl_token_status"].len(), rows.len(), "one series per platform");
    for (platform, status, _) in &rows {
        assert_eq!(
            value(&exported, "integration_etl_token_status", &[("platform", platform), ("status", status)]),
            1.0
        );
    }

    // "Check Current Token Status": days_until_expiry and the status buckets.
    for platform in ["meta", "tiktok", "google", "linkedin"] {
        let seconds = value(&exported, "integration_etl_token_expires_in_seconds", &[("platform", platform)]);
        let days = db
            .scalar(&format!(
                "SELECT EXTRACT(DAY FROM (expires_at - NOW())) FROM mkt.platform_tokens WHERE platform = '{platform}'"
            ))
            .await;
        assert_eq!((seconds / 86_400.0).trunc(), days, "{platform}");
        let status = db
            .scalar(&format!(
                "SELECT CASE WHEN expires_at < NOW() THEN 0 WHEN expires_at < NOW() + INTERVAL '7 days' THEN 1 \
                 WHEN expires_at < NOW() + INTERVAL '14 days' THEN 2 ELSE 3 END FROM mkt.platform_tokens WHERE platform = '{platform}'"
            ))
            .await;
        let ours = if seconds < 0.0 {
            0.0
        } else if seconds < 7.0 * 86_400.0 {
            1.0
        } else if seconds < 14.0 * 86_400.0 {
            2.0
        } else {
            3.0
        };
        assert_eq!(ours, status, "{platform}");
    }

    // "Check Sync Failures": failure_count by platform and entity type over 7 days.
    let rows = db
        .rows("SELECT platform, entity_type, COUNT(*)::float8 FROM mkt.etl_sync_log WHERE status = 'failed' AND start_time >= NOW() - INTERVAL '7 days' GROUP BY platform, entity_type")
        .await;
    assert!(!rows.is_empty());
    let exported_failures = &exported["integration_etl_sync_failures"];
    assert_eq!(exported_failures.len(), rows.len());
    for (platform, entity, count) in rows {
        assert_eq!(
            value(&exported, "integration_etl_sync_failures", &[("platform", &platform), ("entity_type", &entity)]),
            count
        );
    }

    // "Check Recent Sync Activity": runs of the last 24 hours by platform and status.
    let rows = db
        .rows("SELECT platform, status, COUNT(*)::float8 FROM mkt.etl_sync_log WHERE start_time >= NOW() - INTERVAL '24 hours' GROUP BY 1, 2")
        .await;
    assert_eq!(exported["integration_etl_sync_runs"].len(), rows.len());
    for (platform, status, count) in rows {
        assert_eq!(
            value(&exported, "integration_etl_sync_runs", &[("platform", &platform), ("status", &status)]),
            count
        );
    }

    // Delays: since the last run of each platform, whatever its status.
    for platform in ["meta", "google", "tiktok"] {
        let since_run = db
            .scalar(&format!(
                "SELECT EXTRACT(EPOCH FROM NOW() - max(start_time)) FROM mkt.etl_sync_log WHERE platform = '{platform}'"
            ))
            .await;
        let p = [("platform", platform)];
        assert!((value(&exported, "integration_etl_sync_last_run_age_seconds", &p) - since_run).abs() < 5.0);
    }
}

/// "Sync failures for 6+ hours", per platform, entity and sync type: how long the runs have
/// failed since the last one that did not, computed here from the rows themselves. The daily
/// full sync failing behind successful incremental syncs of the same platform is its own series.
#[tokio::test]
async fn failing_syncs_are_timed_per_sync_type() {
    let db = TestDb::new().await;
    db.execute(&support::pack_sql("etl_token_monitoring", &[("schema", "mkt")])).await;
    // google's incremental syncs succeed (the seed); its daily full sync succeeded yesterday and
    // failed this morning and at a rerun. meta's full sync never succeeded in the window.
    db.execute(
        "INSERT INTO mkt.etl_sync_log (platform, entity_type, sync_type, status, start_time, error_message) VALUES
           ('google', 'campaigns', 'full', 'success', now() - interval '30 hours', NULL),
           ('google', 'campaigns', 'full', 'failed', now() - interval '6 hours 30 minutes', 'Request timed out'),
           ('google', 'campaigns', 'full', 'failed', now() - interval '2 hours', 'Request timed out'),
           ('meta', 'ads', 'full', 'failed', now() - interval '20 hours', 'Meta refresh token not found'),
           ('meta', 'ads', 'full', 'failed', now() - interval '8 days', 'Meta refresh token not found')",
    )
    .await;
    let exported = export_sql(&db.url, &model(SPEC)).await;
    let now = db.scalar("SELECT EXTRACT(EPOCH FROM now())").await;
    let rows = db
        .rows(
            "SELECT platform || '/' || entity_type || '/' || sync_type, status, EXTRACT(EPOCH FROM start_time)::float8
             FROM mkt.etl_sync_log WHERE start_time >= now() - interval '7 days' ORDER BY start_time",
        )
        .await;
    let mut groups: std::collections::BTreeMap<String, Vec<(String, f64)>> = Default::default();
    for (group, status, at) in rows {
        groups.entry(group).or_default().push((status, at));
    }
    let failing = "integration_etl_sync_failing_seconds";
    assert_eq!(exported[failing].len(), groups.len(), "one series per platform, entity and sync type");
    for (group, runs) in &groups {
        let last_ok = runs.iter().filter(|(s, _)| s != "failed").map(|(_, at)| *at).fold(f64::MIN, f64::max);
        let first_failed = runs.iter().filter(|(s, at)| s == "failed" && *at > last_ok).map(|(_, at)| *at).next();
        let expected = first_failed.map_or(0.0, |at| now - at);
        let parts: Vec<&str> = group.split('/').collect();
        let labels = [("platform", parts[0]), ("entity_type", parts[1]), ("sync_type", parts[2])];
        assert!((value(&exported, failing, &labels) - expected).abs() < 5.0, "{group}: {runs:?}");
    }
    let google = |sync_type| {
        value(&exported, failing, &[("platform", "google"), ("entity_type", "campaigns"), ("sync_type", sync_type)])
    };
    assert_eq!(google("incremental"), 0.0, "google's incremental syncs succeed");
    assert!(google("full") > 6.0 * 3600.0, "its full sync has failed for 6.5 hours: {}", google("full"));
    // Failing for longer than the window shows the window's worth.
    let meta_full = value(&exported, failing, &[("platform", "meta"), ("entity_type", "ads"), ("sync_type", "full")]);
    assert!((meta_full - 20.0 * 3600.0).abs() < 5.0, "{meta_full}");
}

/// The runbook's "Check Current Token Status" query, as written there (without its `;`).
fn runbook_status_query() -> String {
    let runbook = include_str!("../fixtures/runbooks/etl-token-monitoring.md");
    let section = &runbook[runbook.find("### Check Current Token Status").expect("heading")..];
    let start = section.find("```sql\n").expect("sql block") + "```sql\n".len();
    let end = section[start..].find("```").expect("block end") + start;
    section[start..end].trim().trim_end_matches(';').to_string()
}

#[test]
fn log_counters_equal_grep_of_the_runbook_messages() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("etl.log");
    let mut file = std::fs::File::create(&path).unwrap();
    for i in 0..2000u32 {
        let (level, message) = match i % 7 {
            0 => ("info", "Token refresh run complete"),
            1 => ("warn", "Meta token refresh failed, but token still valid"),
            2 => ("error", "Meta token expired. Manual re-authentication required."),
            3 => ("info", "Token refreshed successfully"),
            // The token manager's own lines, quoted in "Expired Token Detection" and
            // "Enhanced Error Logging".
            4 if i % 2 == 0 => ("error", "🚨 CRITICAL: Meta token has EXPIRED"),
            5 if i % 2 == 0 => ("error", "🚨 CRITICAL: Meta token is invalid or expired"),
            _ => ("info", "Sync completed"),
        };
        let ts = format!("2026-01-04T{:02}:{:02}:{:02}.000Z", 10 + i / 3600, (i / 60) % 60, i % 60);
        writeln!(file, r#"{{"timestamp":"{ts}","level":"{level}","message":"{message}","platform":"meta"}}"#).unwrap();
    }
    // The log signals are off by default (GitHub is read instead): the log variant turns them on.
    let text = format!(
        "{SPEC}      etl_log: {}\n    signals:\n      etl_token_monitoring.token_refresh_runs: {{enabled: true}}\n      \
         etl_token_monitoring.refresh_failed_token_valid: {{enabled: true}}\n      \
         etl_token_monitoring.token_expired_log: {{enabled: true}}\n",
        path.display()
    );
    let model = model(&text);
    let mut runner = log_runner(&model, "etl_token_monitoring.etl");
    drain(&mut runner);
    let exported = exported_logs(&runner);
    // Every line the runbook quotes for a token only a person can fix, counted once per line.
    let reauth = grep_count(
        r"Meta token expired. Manual re-authentication required.\|Meta token has EXPIRED\|Meta token is invalid or expired",
        &[&path],
    );
    assert!(reauth > grep_count("Manual re-authentication required", &[&path]), "the CRITICAL lines are there");
    assert_eq!(value(&exported, "integration_etl_token_expired_errors_total", &[]), reauth);
    assert_eq!(
        value(&exported, "integration_etl_token_refresh_failures_total", &[]),
        grep_count("Meta token refresh failed, but token still valid", &[&path])
    );
    assert_eq!(
        value(&exported, "integration_etl_token_refresh_runs_total", &[]),
        grep_count(r"Token refresh run complete\|Token refreshed successfully", &[&path])
    );
    let last_run = (0..2000u32).rev().find(|i| i % 7 == 0 || i % 7 == 3).unwrap();
    let expected = 1_767_520_800.0 + last_run as f64;
    assert_eq!(value(&exported, "integration_etl_token_refresh_last_run_timestamp_seconds", &[]), expected);
}
