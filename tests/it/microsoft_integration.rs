//! Fidelity of the Microsoft integration pack: the webhook gauges equal the runbook-style SQL on a
//! database the exporter has never seen (renamed, schema-qualified, through parameters); the log
//! counters equal the runbook's greps on the same file; the queue values equal `jq` on the same
//! answer of a real local HTTP server.

use crate::support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use integration_exporter::sources::http::HttpPoller;
use integration_exporter::spec::Source;
use support::alerting::{alerts, replay_log};
use support::fidelity::*;
use support::{HttpServer, Reply, TestDb, jq, pack_sql};

/// The pack with its two opt-in database signals on: the demo database has the tables they read.
fn spec(params: &str) -> String {
    format!(
        "database: {{url_env: UNUSED}}\npacks:\n  microsoft_integration:\n    signals:\n      microsoft_integration.webhook_subscriptions: {{enabled: true}}\n      microsoft_integration.sync_state: {{enabled: true}}\n    params:\n{params}"
    )
}

async fn assert_webhook_numbers(db: &TestDb, exported: &Exported, t: &str, expires: &str, resource: &str) {
    // "Webhook expiring (< 24 hours)", on the database's clock.
    let expiring = db
        .scalar(&format!(
            "SELECT count(*) FROM {t} WHERE {expires} > now() AND {expires} < now() + interval '24 hours'"
        ))
        .await;
    let expired = db.scalar(&format!("SELECT count(*) FROM {t} WHERE {expires} <= now()")).await;
    let sum = |metric: &str| exported[metric].values().sum::<f64>();
    assert_eq!(sum("integration_microsoft_webhook_subscriptions_expiring"), expiring);
    assert_eq!(sum("integration_microsoft_webhook_subscriptions_expired"), expired);
    assert_eq!((expiring, expired), (10.0, 4.0), "seed sanity");

    // By resource type, with the plainest filters that tell the seed's resources apart.
    for (class, filter) in [
        ("teams", format!("({resource} LIKE 'chats/%' OR {resource} LIKE 'teams/%')")),
        ("calendar", format!("{resource} LIKE '%/events'")),
        (
            "mail",
            format!("{resource} LIKE '%/messages' AND {resource} NOT LIKE 'chats/%' AND {resource} NOT LIKE 'teams/%'"),
        ),
        ("other", format!("{resource} LIKE 'communications/%'")),
    ] {
        let l = [("resource_type", class)];
        let expiring = db
            .scalar(&format!("SELECT count(*) FROM {t} WHERE {filter} AND {expires} > now() AND {expires} < now() + interval '24 hours'"))
            .await;
        let expired = db.scalar(&format!("SELECT count(*) FROM {t} WHERE {filter} AND {expires} <= now()")).await;
        assert_eq!(value(exported, "integration_microsoft_webhook_subscriptions_expiring", &l), expiring, "{class}");
        assert_eq!(value(exported, "integration_microsoft_webhook_subscriptions_expired", &l), expired, "{class}");
    }
}

#[tokio::test]
async fn webhook_gauges_equal_the_runbook_query_under_default_names() {
    let db = TestDb::new().await;
    db.execute(&pack_sql("microsoft_integration", &[])).await;
    let exported = export_sql(&db.url, &model(&spec("      {}\n"))).await;
    assert_webhook_numbers(&db, &exported, "graph_subscriptions", "expiration_date_time", "resource").await;
    assert_sync_numbers(&db, &exported, "microsoft_sync_state", "resource_type", "last_sync_at").await;
}

#[tokio::test]
async fn webhook_table_and_columns_are_set_through_params() {
    let db = TestDb::new().await;
    db.execute(&pack_sql(
        "microsoft_integration",
        &[
            ("schema", "graph"),
            ("subscriptions", "ms_webhook_subs"),
            ("expires", "expires_on"),
            ("resource", "graph_resource"),
        ],
    ))
    .await;
    db.execute(
        "CREATE TABLE graph.ms_user_sync (usr text, kind text, synced_on timestamptz);
         INSERT INTO graph.ms_user_sync SELECT user_id, resource_type, last_sync_at FROM graph.microsoft_sync_state;",
    )
    .await;
    let params = "      subscriptions_table: graph.ms_webhook_subs\n      subscription_expires_at: expires_on\n      subscription_resource: graph_resource\n      sync_state_table: graph.ms_user_sync\n      sync_state_resource_type: kind\n      sync_state_synced_at: synced_on\n";
    let model = model(&spec(params));
    for s in model.enabled_signals() {
        if let Source::Sql(sql) = &s.signal.source {
            assert!(!sql.query.contains("client_state"), "never reads secrets");
        }
    }
    let exported = export_sql(&db.url, &model).await;
    assert_webhook_numbers(&db, &exported, "graph.ms_webhook_subs", "expires_on", "graph_resource").await;
    assert_sync_numbers(&db, &exported, "graph.ms_user_sync", "kind", "synced_on").await;
}

/// Per resource type, what an operator reads off the sync state table: the newest sync
/// (`SELECT max(last_sync_at) ... WHERE resource_type = ...`) and the states an hour old or never
/// synced.
async fn assert_sync_numbers(db: &TestDb, exported: &Exported, t: &str, kind: &str, at: &str) {
    for (label, filter) in [
        ("messages", format!("{kind} = 'messages'")),
        ("events", format!("{kind} = 'events'")),
        ("chats", format!("{kind} = 'Chats'")),
        ("contacts", format!("{kind} = 'contacts'")),
        ("other", format!("{kind} = 'mailFolders'")),
    ] {
        let l = [("resource_type", label)];
        let stale = db
            .scalar(&format!(
                "SELECT count(*) FROM {t} WHERE {filter} AND ({at} IS NULL OR {at} < now() - interval '1 hour')"
            ))
            .await;
        assert_eq!(value(exported, "integration_microsoft_sync_stale_states", &l), stale, "{label}");
        let newest =
            db.scalar(&format!("SELECT coalesce(extract(epoch FROM max({at})), -1) FROM {t} WHERE {filter}")).await;
        let last = exported["integration_microsoft_sync_last_timestamp_seconds"]
            .get(&vec![("resource_type".to_string(), label.to_string())]);
        if newest < 0.0 {
            // Never synced: no time is made up (an age alert on 1970 would be a lie).
            assert_eq!(last, None, "{label}");
        } else {
            assert!((last.copied().unwrap() - newest).abs() < 1e-3, "{label}: {last:?} vs {newest}");
        }
    }
    let all_stale =
        db.scalar(&format!("SELECT count(*) FROM {t} WHERE {at} IS NULL OR {at} < now() - interval '1 hour'")).await;
    assert_eq!(exported["integration_microsoft_sync_stale_states"].values().sum::<f64>(), all_stale);
    assert!(all_stale > 0.0 && all_stale < db.scalar(&format!("SELECT count(*) FROM {t}")).await, "seed sanity");
}

/// API lines as the fleet API logs them: the Graph call's status is the last field.
fn api_line(i: u64) -> String {
    let ts = format!("2026-02-06T{:02}:{:02}:{:02}.{:03}Z", 12 + i / 3600, (i / 60) % 60, i % 60, (i * 7) % 1000);
    let statuses = [200, 200, 201, 204, 200, 304, 401, 404, 429, 500, 503, 200, 202, 403];
    let n = statuses.len();
    match i % 9 {
        0..=3 => format!("{ts} info: Graph API GET /v1.0/users/u{i}/messages {}", statuses[(i as usize / 9) % n]),
        4 => format!("{ts} warn: Graph API POST /v1.0/subscriptions {}", statuses[(i as usize / 3) % n]),
        5 => format!("{ts} info: Webhook notification received subscription=s{i} changeType=created"),
        6 => format!("{ts} info: Webhook validation token answered for /api/webhooks/teams"),
        7 => format!("{ts} warn: Graph throttled: 429 Too Many Requests, Retry-After: 30 request-id=r{i}"),
        _ => format!("{ts} debug: sync worker tick user=u{i} delta=ok took={}ms", 400 + i % 50),
    }
}

/// `grep "Graph API" FILE | awk '{print $NF}' | sort | uniq -c`, as status -> count.
fn graph_status_counts(file: &Path) -> BTreeMap<String, f64> {
    let script = format!("grep 'Graph API' '{}' | awk '{{print $NF}}' | sort | uniq -c", file.display());
    let out = support::program("sh").arg("-c").arg(script).output().expect("sh");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().collect::<Vec<_>>().try_into().ok())
        .map(|[n, status]: [&str; 2]| (status.to_string(), n.parse::<f64>().unwrap_or(0.0)))
        .collect()
}

#[test]
fn log_counters_equal_the_runbook_greps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("api.log");
    let mut file = std::fs::File::create(&path).unwrap();
    for i in 0..4000 {
        writeln!(file, "{}", api_line(i)).unwrap();
    }
    file.flush().unwrap();
    let model = model(&spec(&format!("      api_log: {}\n", dir.path().join("*.log").display())));
    let mut runner = log_runner(&model, "microsoft_integration.api");
    drain(&mut runner);
    let exported = exported_logs(&runner);
    let files = [path.as_path()];

    let statuses = graph_status_counts(&path);
    let class = |first: char| statuses.iter().filter(|(s, _)| s.starts_with(first)).map(|(_, n)| n).sum::<f64>();
    let requests = "integration_microsoft_graph_requests_total";
    assert_eq!(value(&exported, requests, &[("result", "success")]), class('2') + class('3'));
    assert_eq!(value(&exported, requests, &[("result", "error")]), class('4') + class('5'));
    assert_eq!(statuses.values().sum::<f64>(), grep_count("Graph API", &files));
    assert!(class('4') > 0.0 && class('2') > 0.0, "both classes are exercised: {statuses:?}");

    // Token acquisition as `verify:integration` sees it: Graph calls answered 401 or 403.
    let auth = "integration_microsoft_graph_auth_failures_total";
    for status in ["401", "403"] {
        assert_eq!(value(&exported, auth, &[("status", status)]), statuses[status], "{status}");
    }

    // `grep "429" | wc -l`, counting 429 only as a word (a timestamp's `.429Z` is no rate limit).
    let out = support::program("grep").args(["-cw", "429"]).arg(&path).output().expect("grep");
    let word_429: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert_eq!(value(&exported, "integration_microsoft_rate_limit_hits_total", &[]), word_429);
    assert!(grep_count("429", &files) > word_429, "the raw grep also counts timestamps");

    // `grep "Webhook"`, and `tail -1` of it: when the newest came.
    assert_eq!(value(&exported, "integration_microsoft_webhook_log_lines_total", &[]), grep_count("Webhook", &files));
    let last_webhook = (0..4000u64).rev().find(|i| [5, 6].contains(&(i % 9))).unwrap();
    let newest = value(&exported, "integration_microsoft_webhook_last_timestamp_seconds", &[]);
    assert_eq!(newest, 1_770_379_200.0 + last_webhook as f64 + ((last_webhook * 7) % 1000) as f64 / 1000.0);

    // "Wait for rate limit reset (check Retry-After header)": the last 429's, while it is recent.
    let last_429 = (0..4000u64).rev().find(|i| i % 9 == 7).unwrap();
    let mut recent = Exported::new();
    collect(&mut recent, runner.families_at(1_770_379_200.0 + last_429 as f64 + 60.0));
    assert_eq!(value(&recent, "integration_microsoft_rate_limit_retry_after_seconds", &[]), 30.0);
    let mut later = Exported::new();
    collect(&mut later, runner.families_at(1_770_379_200.0 + last_429 as f64 + 600.0));
    assert!(later.get("integration_microsoft_rate_limit_retry_after_seconds").is_none_or(|s| s.is_empty()));
}

/// "Webhook notifications not arriving", the first symptom of "Integration is Down": the API keeps
/// calling Graph, but no `Webhook` line comes any more. Quiet through a lull, a ticket once
/// none came for two hours.
#[test]
fn webhook_notifications_that_stop_arriving_are_seen() {
    let epoch = 1_770_379_200;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("api.log");
    let model = model(&spec(&format!("      api_log: {}\n", path.display())));
    let timeline = replay_log(&model, "microsoft_integration.api", &path, epoch, 170, &Exported::new(), |minute| {
        let ts = |second: u64| {
            let t = minute * 60 + second;
            format!("2026-02-06T{:02}:{:02}:{:02}.000Z", 12 + t / 3600, (t / 60) % 60, t % 60)
        };
        let mut lines: Vec<String> =
            (0..5).map(|i| format!("{} info: Graph API GET /v1.0/users/u{i}/messages 200", ts(i * 10))).collect();
        if minute < 30 && minute % 3 == 0 {
            lines.push(format!("{} info: Webhook notification processed subscription=s1 changeType=created", ts(55)));
        }
        lines
    });
    let firing = timeline.firing(&model, "microsoft_integration", &[25, 140, 165]);
    assert_eq!(firing[0], alerts(&[]));
    assert_eq!(firing[1], alerts(&[]), "under two hours without a notification");
    assert_eq!(firing[2], alerts(&[("IntegrationMicrosoftWebhooksNotArriving", "warning")]));
}

#[tokio::test]
async fn queue_values_equal_jq_on_the_same_answer() {
    let body = r#"{"pending": 1350, "active": 4, "completed": 981233, "failed": 12, "delayed": 3,
                   "deadLetter": {"count": 117, "oldest": "2026-02-06T11:02:00Z"}}"#;
    let server = HttpServer::start(Reply::json(body));
    let params = format!(
        "      queue_metrics_url: {}\n      dead_letter_path: .deadLetter.count\n",
        server.url("/api/metrics/queue")
    );
    let model = model(&spec(&params));
    let poller = |id: &str| {
        let signal = model.enabled_signals().find(|s| s.signal.id == id).unwrap();
        HttpPoller::new(signal).expect("an HTTP signal")
    };
    let (mut poller, mut dead_letter) =
        (poller("microsoft_integration.job_queue"), poller("microsoft_integration.dead_letter_queue"));
    let mut exported = Exported::new();
    collect(&mut exported, poller.poll().await);
    collect(&mut exported, dead_letter.poll().await);
    // `curl .../api/metrics/queue | jq '.pending'`
    assert_eq!(value(&exported, "integration_microsoft_queue_pending_jobs", &[]), jq(body, ".pending"));
    assert_eq!(value(&exported, "integration_microsoft_queue_dead_letter_jobs", &[]), jq(body, ".deadLetter.count"));
    assert_eq!(value(&exported, "integration_microsoft_queue_metrics_up", &[]), 1.0);
    assert!(server.requests()[0].head.starts_with("GET /api/metrics/queue HTTP/1.1"));

    // A down queue endpoint: `up` is 0 and can alert; the last numbers stay for a short blip.
    server.set(Reply { status: 502, body: "bad gateway".into(), delay: std::time::Duration::ZERO });
    let mut exported = Exported::new();
    collect(&mut exported, poller.poll().await);
    assert_eq!(value(&exported, "integration_microsoft_queue_metrics_up", &[]), 0.0);
    assert_eq!(value(&exported, "integration_microsoft_queue_pending_jobs", &[]), 1350.0);
}
