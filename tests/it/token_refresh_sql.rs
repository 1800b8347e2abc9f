//! Fidelity of every token-refresh database signal: the exported value equals the runbook's own
//! SQL on the same data, on a database the exporter has never seen (extra columns, an enum
//! status, uuid keys), both under the runbook's table names and under renamed, schema-qualified
//! ones set through the pack's parameters.

use crate::support;

use std::time::Duration;

use integration_exporter::sources::sql::{pool, run_query};
use integration_exporter::spec::{Model, Source};
use support::alerting::{Timeline, alerts};
use support::fidelity::{Exported, export_sql, value};
use support::{TestDb, pack_schema, pack_seed};

fn model(extra: &str) -> Model {
    support::fidelity::model(&format!("database: {{url_env: UNUSED}}\npacks:\n  token_refresh:\n{extra}"))
}

/// Every database signal on, the opt-in one too (the demo tables have a failure-time column), and
/// every error class's share exported however few tokens hold it, to compare each with SQL.
const EVERY_SIGNAL: &str = "    signals: {token_refresh.short_backoff: {enabled: true}}\n";

/// Checks each exported value against the runbook's query, rewritten only for table names.
async fn assert_runbook_numbers(db: &TestDb, exported: &Exported, t: &str, w: &str, l: &str) {
    // Database health check, "Tokens expiring soon (should be < 10 if heartbeat working)".
    let expiring = db
        .scalar(&format!(
            "SELECT count(*) FROM {t} WHERE expires_at < now() + interval '10 minutes' AND is_revoked = false"
        ))
        .await;
    assert_eq!(value(exported, "integration_token_refresh_tokens_expiring", &[]), expiring);
    assert_eq!(expiring, 11.0, "seed sanity: 7 expiring + 4 expired, revoked ones excluded");

    // "Count tokens in backoff" (all) and "Find tokens in backoff" (not revoked).
    let backoff_all = db.scalar(&format!("SELECT count(*) FROM {t} WHERE next_retry_at > now()")).await;
    let backoff_live =
        db.scalar(&format!("SELECT count(*) FROM {t} WHERE next_retry_at > now() AND is_revoked = false")).await;
    let live = value(exported, "integration_token_refresh_tokens_in_backoff", &[("revoked", "false")]);
    let revoked = value(exported, "integration_token_refresh_tokens_in_backoff", &[("revoked", "true")]);
    assert_eq!(live, backoff_live);
    assert_eq!(live + revoked, backoff_all);

    // "Degraded watchers (should be < 2 at steady state)".
    let degraded = db.scalar(&format!("SELECT count(*) FROM {w} WHERE sync_status = 'degraded'")).await;
    assert_eq!(value(exported, "integration_token_refresh_degraded_watchers", &[]), degraded);

    // Revoked tokens, and "If > 10 failures (auto-revoked)".
    assert_eq!(
        value(exported, "integration_token_refresh_tokens_revoked", &[]),
        db.scalar(&format!("SELECT count(*) FROM {t} WHERE is_revoked = true")).await
    );
    assert_eq!(
        value(exported, "integration_token_refresh_tokens_over_failure_limit", &[]),
        db.scalar(&format!("SELECT count(*) FROM {t} WHERE consecutive_failures > 10")).await
    );

    // "Identify error patterns": the runbook groups raw error text; the exporter exports its class.
    for (class, pattern) in [
        ("invalid_grant", "%invalid_grant%"),
        ("consent_required", "%consent_required%"),
        ("429", "%429%"),
        ("5xx", "%503%"),
        ("other", "connection reset%"),
    ] {
        let expected = db
            .scalar(&format!("SELECT coalesce(sum(count), 0) FROM (SELECT last_refresh_error, count(*) FROM {t} WHERE last_refresh_error IS NOT NULL GROUP BY last_refresh_error ORDER BY count DESC) g WHERE last_refresh_error LIKE '{pattern}'"))
            .await;
        assert_eq!(
            value(exported, "integration_token_refresh_token_errors", &[("error_class", class)]),
            expected,
            "{class}"
        );
    }
    let total_errors: f64 = exported["integration_token_refresh_token_errors"].values().sum();
    assert_eq!(
        total_errors,
        db.scalar(&format!("SELECT count(*) FROM {t} WHERE last_refresh_error IS NOT NULL")).await
    );

    // "Verify backoff is working: tokens should wait 60s+ before retry", for every failing token
    // not revoked: the wait its last failure set, in the runbook's own `EXTRACT(EPOCH ...)` form.
    let short = db
        .scalar(&format!(
            "SELECT count(*) FROM {t} WHERE consecutive_failures > 0 AND is_revoked = false AND coalesce(EXTRACT(EPOCH FROM (next_retry_at - updated_at)), 0) < 60"
        ))
        .await;
    assert_eq!(value(exported, "integration_token_refresh_tokens_short_backoff", &[]), short);
    assert_eq!(short, 4.0, "seed sanity: three 503 tokens retried after 20s, one 429 token without next_retry_at");

    // "All tokens failing with same error": "Identify error patterns" on the failing tokens, each
    // class's share of all tokens not revoked. invalid_grant and consent_required ("This is
    // expected - users need to reconnect") have none.
    let failing =
        format!("{t} WHERE last_refresh_error IS NOT NULL AND consecutive_failures > 0 AND is_revoked = false");
    let fleet = db.scalar(&format!("SELECT count(*) FROM {t} WHERE is_revoked = false")).await;
    assert_eq!((db.scalar(&format!("SELECT count(*) FROM {failing}")).await, fleet), (16.0, 68.0), "seed sanity");
    let share = "integration_token_refresh_error_share";
    for (class, pattern) in [("429", "%429%"), ("5xx", "%503%")] {
        let n = db
            .scalar(&format!("SELECT coalesce(sum(count), 0) FROM (SELECT last_refresh_error, count(*) FROM {failing} GROUP BY last_refresh_error ORDER BY count DESC) g WHERE last_refresh_error LIKE '{pattern}'"))
            .await;
        assert_eq!(value(exported, share, &[("error_class", class)]), n / fleet, "{class}");
    }
    // The one token with an `other` error has no failures left: it is not failing.
    assert_eq!(value(exported, share, &[("error_class", "other")]), 0.0);
    assert!(!exported[share].keys().flatten().any(|(_, v)| v == "invalid_grant" || v == "consent_required"));

    // "Persistent 429 errors despite backoff working correctly": failures of 429 tokens the worker
    // backed off ("Find tokens in backoff" sets next_retry_at).
    let rate_limited = db
        .scalar(&format!(
            "SELECT coalesce(sum(consecutive_failures), 0) FROM {t} WHERE last_refresh_error LIKE '%429%' AND is_revoked = false AND next_retry_at IS NOT NULL"
        ))
        .await;
    assert_eq!(value(exported, "integration_token_refresh_rate_limited_failures", &[]), rate_limited);
    assert_eq!(rate_limited, 10.0, "seed sanity: six tokens at one failure and one at four");

    // "Check distributed lock status" with seconds_since_expire.
    let since = db
        .scalar(&format!(
            "SELECT EXTRACT(EPOCH FROM (now() - lease_expires_at)) FROM {l} WHERE lock_name = 'token_refresh_heartbeat'"
        ))
        .await;
    let exported_since =
        value(exported, "integration_token_refresh_lock_expired_seconds", &[("lock_name", "token_refresh_heartbeat")]);
    assert!((exported_since - since).abs() < 5.0, "{exported_since} vs {since}");
    assert_eq!(
        value(exported, "integration_token_refresh_lock_held", &[("lock_name", "token_refresh_heartbeat")]),
        0.0
    );
    assert_eq!(value(exported, "integration_token_refresh_lock_held", &[("lock_name", "mailbox_sync")]), 1.0);
    assert_eq!(
        value(exported, "integration_token_refresh_lock_expired_seconds", &[("lock_name", "mailbox_sync")]),
        0.0
    );
}

#[tokio::test]
async fn exported_values_equal_the_runbook_queries_under_the_runbook_names() {
    let db = TestDb::new().await;
    db.execute(&pack_schema("token_refresh", &[])).await;
    db.execute(&pack_seed("token_refresh", &[])).await;
    let exported =
        export_sql(&db.url, &model(&format!("{EVERY_SIGNAL}    params: {{dominant_error_min_tokens: 1}}\n"))).await;
    assert_runbook_numbers(&db, &exported, "auth_microsoft_tokens", "email_watchers", "worker_locks").await;
}

#[tokio::test]
async fn renamed_schema_qualified_tables_are_set_in_a_few_lines() {
    let db = TestDb::new().await;
    db.execute(&pack_schema(
        "token_refresh",
        &[("schema", "mail"), ("tokens", "ms_tokens"), ("watchers", "watchers"), ("locks", "locks")],
    ))
    .await;
    db.execute(&pack_seed(
        "token_refresh",
        &[("schema", "mail"), ("tokens", "ms_tokens"), ("watchers", "watchers"), ("locks", "locks")],
    ))
    .await;
    let spec = "    params:\n      tokens_table: mail.ms_tokens\n      watchers_table: mail.watchers\n      locks_table: mail.locks\n      dominant_error_min_tokens: 1\n";
    let exported = export_sql(&db.url, &model(&format!("{EVERY_SIGNAL}{spec}"))).await;
    assert_runbook_numbers(&db, &exported, "mail.ms_tokens", "mail.watchers", "mail.locks").await;
}

/// The escalation signals move with the table: one error class taking over, 429s that keep
/// coming on tokens that wait, and a retry that skips the backoff.
#[tokio::test]
async fn escalation_signals_follow_the_tokens() {
    let db = TestDb::new().await;
    db.execute(&pack_schema("token_refresh", &[])).await;
    db.execute(&pack_seed("token_refresh", &[])).await;
    let model = model(EVERY_SIGNAL);
    let share = "integration_token_refresh_error_share";
    let rate_limited = "integration_token_refresh_rate_limited_failures";
    let short = "integration_token_refresh_tokens_short_backoff";
    let before = export_sql(&db.url, &model).await;

    // Each 429 token fails again after a 2-minute wait: the sum rises by one for each of the seven
    // counted, and the token that had no next_retry_at joins them with its 3 + 1 failures.
    db.execute("UPDATE auth_microsoft_tokens SET consecutive_failures = consecutive_failures + 1, updated_at = now(), next_retry_at = now() + interval '2 minutes' WHERE last_refresh_error LIKE '%429%'").await;
    let after = export_sql(&db.url, &model).await;
    assert_eq!(value(&after, rate_limited, &[]), value(&before, rate_limited, &[]) + 7.0 + 4.0);
    assert_eq!(value(&after, short, &[]), value(&before, short, &[]) - 1.0);

    // A 429 token retried after 10 seconds is still backed off (next_retry_at is set), so its
    // failures still count; that the wait is too short is the opt-in short-backoff count.
    db.execute("UPDATE auth_microsoft_tokens SET next_retry_at = updated_at + interval '10 seconds' WHERE id = (SELECT id FROM auth_microsoft_tokens WHERE last_refresh_error = 'Error 429: throttled')").await;
    let skipped = export_sql(&db.url, &model).await;
    assert_eq!(value(&skipped, rate_limited, &[]), value(&after, rate_limited, &[]));
    assert_eq!(value(&skipped, short, &[]), value(&after, short, &[]) + 1.0);

    // Every failing token with the same error no user causes: its share of all 68 tokens.
    db.execute("UPDATE auth_microsoft_tokens SET last_refresh_error = 'AADSTS7000215: invalid_client_secret' WHERE last_refresh_error IS NOT NULL AND consecutive_failures > 0 AND is_revoked = false").await;
    let same = export_sql(&db.url, &model).await;
    assert_eq!(value(&same, share, &[("error_class", "other")]), 16.0 / 68.0);
    assert_eq!(same[share].values().sum::<f64>(), 16.0 / 68.0);

    // Under the minimum count of tokens failing with it no share is exported at all.
    db.execute("UPDATE auth_microsoft_tokens SET consecutive_failures = 0 WHERE id IN (SELECT id FROM auth_microsoft_tokens WHERE consecutive_failures > 0 AND is_revoked = false LIMIT 7)").await;
    let few = export_sql(&db.url, &model).await;
    assert!(few.get(share).is_none_or(|series| series.values().all(|v| *v == 0.0)), "{few:#?}");
}

/// "All tokens failing with same error (potential Azure app config issue)" pages, through the
/// generated rule on what the exporter reads from a real database. Users waiting to reconnect
/// ("If error is `invalid_grant` or `consent_required` ... No action needed") never page, however
/// many, and neither do a dozen tokens failing together in a fleet of a hundred.
#[tokio::test]
async fn one_error_pages_only_when_it_holds_most_tokens_and_is_not_expected() {
    let db = TestDb::new().await;
    db.execute(&pack_schema("token_refresh", &[])).await;
    db.execute("INSERT INTO auth_microsoft_tokens (expires_at) SELECT now() + interval '50 minutes' FROM generate_series(1, 100)").await;
    let model = model("    {}\n");
    let page = [("IntegrationTokenRefreshOneErrorDominates", "critical")];
    for (failing, error, expected) in [
        (10, "AADSTS50173: invalid_grant: The provided grant has expired", &[][..]),
        (80, "AADSTS65001: consent_required", &[]),
        (12, "503 Service Unavailable", &[]),
        (45, "AADSTS7000215: Invalid client secret provided", &[]),
        (60, "AADSTS7000215: Invalid client secret provided", &page),
        (60, "HTTP 429 Too Many Requests", &page),
    ] {
        db.execute("UPDATE auth_microsoft_tokens SET consecutive_failures = 0, next_retry_at = NULL, last_refresh_error = NULL").await;
        db.execute(&format!("UPDATE auth_microsoft_tokens SET consecutive_failures = 3, next_retry_at = now() + interval '4 minutes', last_refresh_error = '{error}' WHERE id IN (SELECT id FROM auth_microsoft_tokens ORDER BY id LIMIT {failing})")).await;
        let mut timeline = Timeline::of_database();
        timeline.hold(&export_sql(&db.url, &model).await, 30);
        let firing = timeline.firing(&model, "token_refresh", &[25]);
        assert_eq!(firing[0], alerts(expected), "{failing} of 100 tokens failing with {error}");
    }
}

#[tokio::test]
async fn queries_never_read_a_token_column() {
    let model = model("    {}\n");
    for signal in model.enabled_signals() {
        if let Source::Sql(sql) = &signal.signal.source {
            for secret in ["access_token", "refresh_token"] {
                assert!(!sql.query.contains(secret), "{} reads {secret}", signal.signal.id);
            }
        }
    }
}

#[tokio::test]
async fn queries_run_read_only_and_time_out_on_the_server() {
    let db = TestDb::new().await;
    let pool = pool(db.url.parse().expect("url"), 1, Duration::from_secs(5));
    let write =
        run_query(&pool, "CREATE TABLE sneaky (id int)", Duration::from_secs(5)).await.expect_err("must not write");
    assert!(write.message.contains("read-only"), "{}", write.message);
    let slow = run_query(&pool, "SELECT pg_sleep(5)", Duration::from_millis(200)).await.expect_err("must time out");
    assert_eq!(slow.kind, integration_exporter::sources::sql::QueryErrorKind::Timeout);
}
