//! The whole chain with the real programs: PostgreSQL, a log writer, the exporter, Prometheus
//! (Debian's `prometheus`) evaluating the generated rules, and Alertmanager (Debian's
//! `prometheus-alertmanager`) with the generated configuration, delivering to a webhook receiver
//! run by this test. Windows and `for` durations are shortened through the spec, the same knobs
//! a user has. When the test fails, it prints what Prometheus, Alertmanager and the exporter said.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use support::exporter::Exporter;
use support::http::{StandIn, api};
use support::process::{Proc, prometheus};
use support::wait::{self, Worker};
use support::{Cluster, HttpServer, Reply, TestDb, exporter_bin, free_port, program};

/// Active alerts in Prometheus: (alertname, severity) -> (state, labels, annotations).
pub(super) fn prometheus_alerts(port: u16) -> BTreeMap<(String, String), (String, Value, Value)> {
    let mut out = BTreeMap::new();
    for alert in api(port, "/api/v1/alerts")["data"]["alerts"].as_array().cloned().unwrap_or_default() {
        let name = alert["labels"]["alertname"].as_str().unwrap_or_default().to_string();
        let severity = alert["labels"]["severity"].as_str().unwrap_or_default().to_string();
        let state = alert["state"].as_str().unwrap_or_default().to_string();
        out.insert((name, severity), (state, alert["labels"].clone(), alert["annotations"].clone()));
    }
    out
}

/// Healthy worker lines, written until stopped; `mode` switches what the worker logs.
pub(super) fn worker_writer(path: PathBuf, mode: Arc<Mutex<&'static str>>) -> Worker<()> {
    Worker::spawn("worker log writer", move |stop| {
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path).unwrap();
        let mut i = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let now = python_log_timestamp_now();
            let m = *mode.lock().unwrap();
            let mark =
                if m == "failing" { "✗ user=u failed error=invalid_grant" } else { "✓ user=u refreshed token" };
            writeln!(file, "{now} INFO [graph_client] ProactiveRefresh {mark}").unwrap();
            if i.is_multiple_of(4) {
                writeln!(file, "{now} INFO [graph_client] Acquired lock token_refresh_heartbeat lease=120s").unwrap();
                writeln!(
                    file,
                    "{now} INFO [graph_client] M6:RateLimit rate_limit_budget total_attempts=12 max_requests=100"
                )
                .unwrap();
                if m != "stalled" {
                    writeln!(
                        file,
                        "{now} INFO [email_watcher_worker] ProactiveRefresh Cycle complete: refreshed=4 failed=0"
                    )
                    .unwrap();
                }
            }
            i += 1;
            std::thread::sleep(Duration::from_millis(250));
        }
    })
}

/// Now as Python logging's default timestamp writes it, in UTC: `2026-02-06 12:00:01,234`.
fn python_log_timestamp_now() -> String {
    chrono::Utc::now().format("%Y-%m-%d %H:%M:%S,%3f").to_string()
}

const GITHUB_WORKFLOWS: &str = include_str!("../fixtures/http/github_workflows.json");
const GITHUB_RUNS: &str = include_str!("../fixtures/http/github_runs.json");
const GITHUB_REPO: &str = include_str!("../fixtures/http/github_repo.json");
const GITHUB_TOKEN: &str = "ghp_e2eTOKEN0123456789";

/// What the test changes in the GitHub stand-in: workflows disabled (by name), and whether the
/// token refresh runs fail.
#[derive(Default)]
struct GitHubState {
    disabled: BTreeSet<String>,
    refresh_failing: bool,
}

/// A stand-in of the GitHub REST API for repository `acme/etl`, answering the recorded shapes
/// (`tests/fixtures/http/`): the runbook's workflows active unless the test disables one, the
/// others as recorded (CI active, a deleted one, one switched off on purpose); each workflow's
/// latest run a few seconds old; the repository pushed to a few seconds ago.
fn github_stand_in(state: Arc<Mutex<GitHubState>>) -> StandIn {
    StandIn::start(move |req| {
        if req.headers.get("authorization") == Some(&format!("Bearer {GITHUB_TOKEN}")) {
            github_answer(&req.path, &state.lock().unwrap())
        } else {
            (401, r#"{"message":"Bad credentials"}"#.to_string())
        }
    })
}

fn github_answer(path: &str, state: &GitHubState) -> (u16, String) {
    const WATCHED: [&str; 5] = [
        "token-refresh.yml",
        "etl-incremental-sync-v2.yml",
        "etl-daily-full-sync-v2.yml",
        "keep-alive.yml",
        "workflow-health-check.yml",
    ];
    let just_now =
        (chrono::Utc::now() - chrono::Duration::seconds(5)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    if path == "/repos/acme/etl" {
        let mut repo: Value = serde_json::from_str(GITHUB_REPO).unwrap();
        repo["pushed_at"] = Value::from(just_now);
        return (200, repo.to_string());
    }
    if path == "/repos/acme/etl/actions/workflows?per_page=100" {
        let mut workflows: Value = serde_json::from_str(GITHUB_WORKFLOWS).unwrap();
        for w in workflows["workflows"].as_array_mut().unwrap() {
            let file = w["path"].as_str().unwrap_or_default().rsplit('/').next().unwrap_or_default().to_string();
            if WATCHED.contains(&file.as_str()) {
                let off = w["name"].as_str().is_some_and(|n| state.disabled.contains(n));
                w["state"] = Value::from(if off { "disabled_manually" } else { "active" });
            }
        }
        return (200, workflows.to_string());
    }
    let Some((file, query)) =
        path.strip_prefix("/repos/acme/etl/actions/workflows/").and_then(|p| p.split_once("/runs?"))
    else {
        return (404, r#"{"message":"Not Found"}"#.into());
    };
    let runs: Value = serde_json::from_str(GITHUB_RUNS).unwrap();
    let Some(mut run) = runs["workflow_runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"].as_str().is_some_and(|p| p.ends_with(&format!("/{file}"))) && r["conclusion"] == "success")
        .cloned()
    else {
        return (200, r#"{"total_count": 0, "workflow_runs": []}"#.into());
    };
    for key in ["created_at", "updated_at", "run_started_at"] {
        run[key] = Value::from(just_now.clone());
    }
    // Failing token refresh runs are its latest runs, completed or any; a successful one is older.
    if file == "token-refresh.yml" && state.refresh_failing && !query.contains("status=success") {
        run["conclusion"] = Value::from("failure");
    }
    (200, serde_json::json!({"total_count": 1, "workflow_runs": [run]}).to_string())
}

/// The shipped configuration where it ships, `deploy/prometheus` beside the `generate` output in
/// `d` (the repository's layout), with only the test's ports and a faster clock: its relative
/// `rule_files` must find the rules as it does for a user. Returns its directory.
pub(super) fn shipped_prometheus_config(d: &Path, am_port: u16, exporter_port: u16) -> PathBuf {
    let example =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/prometheus.yml"))
            .expect("deploy/prometheus/prometheus.yml");
    let mut prom_config = example;
    for (from, to) in [
        ("scrape_interval: 30s".to_string(), "scrape_interval: 1s".to_string()),
        ("evaluation_interval: 30s".to_string(), "evaluation_interval: 1s".to_string()),
        ("localhost:9093".to_string(), format!("127.0.0.1:{am_port}")),
        (
            format!("localhost:{}", integration_exporter::spec::config::DEFAULT_PORT),
            format!("127.0.0.1:{exporter_port}"),
        ),
    ] {
        assert!(prom_config.contains(&from), "the example prometheus.yml no longer has `{from}`");
        prom_config = prom_config.replace(&from, &to);
    }
    let prom_dir = d.join("deploy/prometheus");
    std::fs::create_dir_all(&prom_dir).unwrap();
    std::fs::write(prom_dir.join("prometheus.yml"), prom_config).unwrap();
    prom_dir
}

struct Stack {
    db: TestDb,
    prometheus: u16,
    hook: StandIn,
    worker_mode: Arc<Mutex<&'static str>>,
}

impl Stack {
    /// What Alertmanager delivered to the webhook stand-in of the pager and the ticket system:
    /// (receiver path, JSON payload).
    fn deliveries(&self) -> Vec<(String, Value)> {
        self.hook.requests().into_iter().filter_map(|r| Some((r.path, serde_json::from_str(&r.body).ok()?))).collect()
    }

    /// Waits until exactly `expected` (alertname, severity) pairs are active, all firing, and
    /// returns them.
    fn expect_firing(&self, expected: &[(&str, &str)]) -> BTreeMap<(String, String), (String, Value, Value)> {
        self.expect_firing_within(expected, Duration::from_secs(60))
    }

    fn expect_firing_within(
        &self,
        expected: &[(&str, &str)],
        timeout: Duration,
    ) -> BTreeMap<(String, String), (String, Value, Value)> {
        let want: BTreeSet<(String, String)> = expected.iter().map(|(a, s)| (a.to_string(), s.to_string())).collect();
        let mut saw_pending = BTreeSet::new();
        let active = || prometheus_alerts(self.prometheus);
        let alerts = wait::until(&format!("{want:?} to fire"), timeout, active, |alerts| {
            for (key, (state, _, _)) in alerts {
                if state == "pending" {
                    saw_pending.insert(key.clone());
                }
            }
            let firing: BTreeSet<(String, String)> =
                alerts.iter().filter(|(_, (s, _, _))| s == "firing").map(|(k, _)| k.clone()).collect();
            (firing == want && alerts.len() == want.len()).then(|| alerts.clone())
        });
        assert_eq!(saw_pending, want, "each alert is seen pending before it fires");
        alerts
    }

    /// One alert fires, says `description` and links `runbook`, and reaches `receiver`; its labels.
    fn expect_alert(&self, alert: (&str, &str), description: &str, runbook: &str, receiver: &str) -> Value {
        let (name, severity) = alert;
        let alerts = self.expect_firing(&[alert]);
        let (_, labels, annotations) = &alerts[&(name.into(), severity.into())];
        assert_annotations(annotations, description, runbook);
        self.expect_delivery(receiver, name, "firing");
        labels.clone()
    }

    fn expect_quiet(&self, what: &str) {
        let alerts = || prometheus_alerts(self.prometheus);
        wait::until(&format!("no alerts ({what})"), Duration::from_secs(60), alerts, |a| a.is_empty().then_some(()));
    }

    /// Waits for Alertmanager to deliver `alertname` with `status` to `receiver` (`/page`, `/ticket`).
    fn expect_delivery(&self, receiver: &str, alertname: &str, status: &str) -> Value {
        let what = format!("{alertname} {status} at {receiver}");
        wait::until(
            &what,
            Duration::from_secs(30),
            || self.deliveries(),
            |deliveries| {
                deliveries.iter().find_map(|(path, body)| {
                    let alerts = body["alerts"].as_array()?;
                    let alert =
                        alerts.iter().find(|a| a["labels"]["alertname"] == alertname && a["status"] == status)?;
                    (path == receiver).then(|| alert.clone())
                })
            },
        )
    }

    fn delivered(&self, receiver: &str, alertname: &str) -> bool {
        self.deliveries().iter().any(|(path, body)| {
            path == receiver
                && body["alerts"].as_array().is_some_and(|a| a.iter().any(|x| x["labels"]["alertname"] == alertname))
        })
    }
}

fn assert_annotations(annotations: &Value, description: &str, runbook: &str) {
    let got = annotations["description"].as_str().unwrap_or_default();
    assert!(got.contains(description), "description {got:?} lacks {description:?}");
    assert!(!got.contains("{{"), "unrendered template in {got:?}");
    assert_eq!(annotations["runbook_url"].as_str().unwrap_or_default(), runbook);
    assert!(annotations["summary"].as_str().is_some_and(|s| s.ends_with('.')));
}

/// Every pack's tables with rows of a healthy system: nothing expiring, failing or stale.
pub(super) async fn seed_healthy(db: &TestDb) {
    db.execute(&support::pack_schema("token_refresh", &[])).await;
    db.execute(&support::pack_seed("token_refresh", &[])).await;
    db.execute(HEALTHY_TOKENS).await;
    db.execute(&support::pack_sql("etl_token_monitoring", &[])).await;
    db.execute("UPDATE marketing.platform_tokens SET expires_at = now() + interval '60 days'; INSERT INTO marketing.etl_sync_log (platform, entity_type, sync_type, status, start_time) SELECT DISTINCT platform, entity_type, sync_type, 'success', now() FROM marketing.etl_sync_log;").await;
    db.execute(&support::pack_sql("calendar_sync", &[])).await;
    db.execute("UPDATE external_calendar_connections SET last_synced_at = now(), backoff_until = NULL, token_expiry = now() + interval '30 days', error_count = 0, sync_needed = false; DELETE FROM external_calendar_events WHERE sync_status = 'FAILED';").await;
    db.execute(&support::pack_sql("microsoft_integration", &[])).await;
    db.execute("UPDATE graph_subscriptions SET expiration_date_time = now() + interval '3 days'").await;
}

const HEALTHY_TOKENS: &str = "
UPDATE auth_microsoft_tokens SET expires_at = now() + interval '50 minutes', next_retry_at = NULL, is_revoked = false, consecutive_failures = 0, last_refresh_error = NULL;
UPDATE email_watchers SET sync_status = 'active', degraded_at = NULL;
DELETE FROM worker_locks; INSERT INTO worker_locks VALUES ('token_refresh_heartbeat', 'worker-1', now(), now() + interval '1 hour');";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_rules_page_and_ticket_through_real_prometheus_and_alertmanager() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cluster = Cluster::start();
    let db = TestDb { url: cluster.url("postgres"), _cluster: None };
    seed_healthy(&db).await;
    // The application's own endpoints: the queue metrics, Salesforce's limits, the MCP health check.
    let queue = HttpServer::start(Reply::json(r#"{"pending": 12, "active": 3, "failed": 2}"#));
    let limits = HttpServer::start(Reply::json(r#"{"DailyApiRequests": {"Max": 15000, "Remaining": 14000}}"#));
    let health = HttpServer::start(Reply::json(r#"{"status": "ok"}"#));
    // The GitHub Actions workflows of the ETL (token refresh and syncs run there).
    let github_state: Arc<Mutex<GitHubState>> = Arc::default();
    let github = github_stand_in(github_state.clone());
    for log in ["app.log", "graph.log", "salesforce.log"] {
        std::fs::write(d.join(log), "").unwrap();
    }

    let webhook = StandIn::start(|_| (200, String::new()));
    let hook = webhook.addr.port();
    let exporter_port = free_port();
    let short = "{for: 3s}";
    let spec = format!(
        r#"{head}  etl_token_monitoring:
    params: {{github_api_url: "http://127.0.0.1:{github}", github_repo: acme/etl, github_token: "env:E2E_GITHUB_TOKEN"}}
    signals:
      etl_token_monitoring.github_workflows: {{interval: 1s, timeout: 1s}}
      etl_token_monitoring.token_refresh_workflow: {{interval: 1s, timeout: 1s}}
      etl_token_monitoring.token_refresh_failures: {{interval: 1s, timeout: 1s}}
      etl_token_monitoring.incremental_sync_workflow: {{interval: 1s, timeout: 1s}}
      etl_token_monitoring.full_sync_workflow: {{interval: 1s, timeout: 1s}}
      etl_token_monitoring.keep_alive_workflow: {{interval: 1s, timeout: 1s}}
      etl_token_monitoring.repository_activity: {{interval: 1s, timeout: 1s}}
    alerts:
      IntegrationEtlTokenExpiry: {short}
      IntegrationEtlSyncDelayed: {short}
      IntegrationEtlSyncFailing: {short}
      IntegrationEtlWorkflowDisabled: {short}
      IntegrationEtlTokenRefreshNotRun: {{threshold: 30, for: 3s}}
      IntegrationEtlTokenRefreshRunFailed: {short}
      IntegrationEtlIncrementalSyncFailing: {{threshold: 30, for: 3s}}
      IntegrationEtlFullSyncFailing: {{threshold: 30, for: 3s}}
      IntegrationEtlKeepAliveNotRun: {{threshold: 30, for: 3s}}
      IntegrationEtlRepositoryInactive: {{threshold: 30, for: 3s}}
  calendar_sync:
    params: {{app_log: {d}/app.log}}
    alerts:
      IntegrationCalendarSyncStuck: {short}
      IntegrationCalendarSyncTokenExpired: {short}
      IntegrationCalendarSyncFailedEvents: {short}
      IntegrationCalendarSyncProviderStale: {short}
      IntegrationCalendarSyncErrors: {{window: 20s, for: 3s}}
  microsoft_integration:
    params: {{api_log: {d}/graph.log, queue_metrics_url: "http://{queue}/api/metrics/queue"}}
    signals:
      microsoft_integration.job_queue: {{interval: 1s, timeout: 1s}}
      microsoft_integration.dead_letter_queue: {{interval: 1s, timeout: 1s}}
      # Off by default (no runbook shows the table); the demo schema has it.
      microsoft_integration.webhook_subscriptions: {{enabled: true}}
    alerts:
      IntegrationMicrosoftWebhooksNotArriving: {{threshold: 8, for: 2s}}
      IntegrationMicrosoftWebhookExpiring: {short}
      IntegrationMicrosoftQueueBacklog: {short}
      IntegrationMicrosoftDeadLetterJobs: {short}
      IntegrationMicrosoftGraphErrorRate: {{window: 20s, for: 3s}}
      IntegrationMicrosoftRateLimited: {{window: 20s, for: 3s}}
  salesforce_incidents:
    params: {{server_log: {d}/salesforce.log, instance_url: "http://{limits}", health_url: "http://{health}/health", authorization: "Bearer env:E2E_SF_TOKEN"}}
    signals:
      salesforce_incidents.api_usage: {{interval: 1s, timeout: 1s}}
      salesforce_incidents.server_health: {{interval: 1s, timeout: 1s}}
    alerts:
      IntegrationSalesforceApiUsageHigh: {short}
      IntegrationSalesforceOAuthRefreshFailing: {{window: 20s, for: 3s}}
      IntegrationSalesforceMcpServerDown: {short}
      IntegrationSalesforceMcpServerAbsent: {short}
      IntegrationSalesforceModelLatencyHigh: {{window: 20s, for: 3s}}
      IntegrationSalesforceModelErrorRate: {{window: 20s, for: 3s}}
"#,
        head = support::fast_alerting_spec_head(d, exporter_port, hook, "E2E_DATABASE_URL"),
        d = d.display(),
        queue = queue.addr,
        limits = limits.addr,
        health = health.addr,
        github = github.addr.port(),
    );
    let spec_path = d.join("spec.yaml");
    std::fs::write(&spec_path, &spec).unwrap();
    let out = Command::new(exporter_bin())
        .args(["generate", "--config"])
        .arg(&spec_path)
        .arg("--out")
        .arg(d)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let worker_mode = Arc::new(Mutex::new("healthy"));
    let writers = [worker_writer(d.join("worker.log"), worker_mode.clone())];

    let exporter = Exporter::serve(&spec_path, exporter_port)
        .env("E2E_DATABASE_URL", &db.url)
        .env("E2E_SF_TOKEN", "sf-test-token")
        .env("E2E_GITHUB_TOKEN", GITHUB_TOKEN)
        .start();
    let am_port = free_port();
    let _alertmanager = Proc::start(
        "alertmanager",
        &d.join("alertmanager.log"),
        program("prometheus-alertmanager")
            .arg(format!("--config.file={}", d.join("alertmanager/alertmanager.yml").display()))
            .arg(format!("--storage.path={}", d.join("am-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
            .arg("--cluster.listen-address="),
    );
    let prom_port = free_port();
    let prom_dir = shipped_prometheus_config(d, am_port, exporter_port);
    let _prometheus = prometheus(&prom_dir, prom_port);
    let stack = Stack { db, prometheus: prom_port, hook: webhook, worker_mode };

    // 1. Everything loads and is healthy: target up, every generated rule loaded with health ok.
    let targets = || api(prom_port, "/api/v1/targets");
    wait::until("target up", Duration::from_secs(60), targets, |targets| {
        let active = targets["data"]["activeTargets"].as_array()?;
        (active.len() == 1 && active[0]["health"] == "up").then_some(())
    });
    let generated_rules: usize = std::fs::read_dir(d.join("alerts"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".rules.yml"))
        .map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            text.matches("- alert:").count() + text.matches("- record:").count()
        })
        .sum();
    let rules = || api(prom_port, "/api/v1/rules");
    wait::until("every rule loaded and healthy", Duration::from_secs(60), rules, |answer| {
        let groups = answer["data"]["groups"].as_array()?;
        let rules: Vec<Value> =
            groups.iter().flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default()).collect();
        (rules.len() == generated_rules && rules.iter().all(|r| r["health"] == "ok")).then_some(())
    });
    let ready = || support::http::get(am_port, "/-/ready");
    wait::until("the alertmanager to be ready", Duration::from_secs(30), ready, |r| r.as_ref().map(|_| ()));
    // Give every `for` and window time to see healthy data; nothing may fire or even pend.
    std::thread::sleep(Duration::from_secs(8));
    stack.expect_quiet("healthy");
    assert!(stack.deliveries().is_empty(), "nothing is delivered while healthy");

    // 2. Degraded watchers past the limit: a warning, to the ticket receiver.
    stack.db.execute("UPDATE email_watchers SET sync_status = 'degraded', degraded_at = now() WHERE id <= 12").await;
    let labels = stack.expect_alert(
        ("IntegrationTokenRefreshDegradedWatchers", "warning"),
        "12 email watchers are degraded (alert above 10)",
        "https://runbooks.example.com/token-refresh.md#1-high-rate-of-token-refresh-failures",
        "/ticket",
    );
    assert_eq!(labels["signal"], "token_refresh.degraded_watchers");
    assert!(!stack.delivered("/page", "IntegrationTokenRefreshDegradedWatchers"));
    stack.db.execute("UPDATE email_watchers SET sync_status = 'active', degraded_at = NULL").await;
    stack.expect_quiet("watchers healed");
    stack.expect_delivery("/ticket", "IntegrationTokenRefreshDegradedWatchers", "resolved");

    // 3. Tokens expiring without refresh: critical, to the pager.
    stack.db.execute("UPDATE auth_microsoft_tokens SET expires_at = now() + interval '5 minutes' WHERE id IN (SELECT id FROM auth_microsoft_tokens WHERE NOT is_revoked LIMIT 25)").await;
    stack.expect_alert(
        ("IntegrationTokenRefreshTokensExpiring", "critical"),
        "25 tokens expire within the refresh window (alert above 20)",
        "https://runbooks.example.com/token-refresh.md#2-token-refresh-heartbeat-not-running",
        "/page",
    );
    stack.db.execute(HEALTHY_TOKENS).await;
    stack.expect_quiet("tokens healed");

    // 4. The heartbeat stops: the lag alert pages; it resolves when cycles resume.
    *stack.worker_mode.lock().unwrap() = "stalled";
    stack.expect_alert(
        ("IntegrationTokenRefreshHeartbeatLag", "critical"),
        "(alert above 6s)",
        "https://runbooks.example.com/token-refresh.md#2-token-refresh-heartbeat-not-running",
        "/page",
    );
    *stack.worker_mode.lock().unwrap() = "healthy";
    stack.expect_quiet("heartbeat resumed");

    // 5. Refreshes fail: the success rate drops under the floor.
    *stack.worker_mode.lock().unwrap() = "failing";
    stack.expect_alert(
        ("IntegrationTokenRefreshSuccessRateLow", "warning"),
        "of proactive token refreshes succeeded over the last 20s (alert below 95%)",
        "https://runbooks.example.com/token-refresh.md#1-high-rate-of-token-refresh-failures",
        "/ticket",
    );
    *stack.worker_mode.lock().unwrap() = "healthy";
    stack.expect_quiet("refreshes recovered");

    // 6. Two platforms: meta's token has expired, google's expires within 14 days. Both
    //    warnings and meta's critical fire in Prometheus; the critical pages, Alertmanager
    //    inhibits meta's warning only, and google's warning still opens a ticket.
    stack
        .db
        .execute("UPDATE marketing.platform_tokens SET expires_at = CASE platform WHEN 'meta' THEN now() - interval '1 day' WHEN 'google' THEN now() + interval '7 days' ELSE expires_at END")
        .await;
    let alerts =
        stack.expect_firing(&[("IntegrationEtlTokenExpiry", "critical"), ("IntegrationEtlTokenExpiry", "warning")]);
    let (_, labels, annotations) = &alerts[&("IntegrationEtlTokenExpiry".into(), "critical".into())];
    assert_eq!(labels["platform"], "meta");
    assert_annotations(
        annotations,
        "The meta token expired (-1d",
        "https://runbooks.example.com/etl-token-monitoring.md#critical-immediate-action-required",
    );
    let alerts = || api(prom_port, "/api/v1/alerts");
    let firing_warnings = wait::until("both platforms' warnings firing", Duration::from_secs(30), alerts, |answer| {
        let alerts = answer["data"]["alerts"].as_array()?;
        let platforms: BTreeSet<String> = alerts
            .iter()
            .filter(|a| a["labels"]["alertname"] == "IntegrationEtlTokenExpiry" && a["labels"]["severity"] == "warning")
            .filter(|a| a["state"] == "firing")
            .filter_map(|a| a["labels"]["platform"].as_str().map(str::to_string))
            .collect();
        (platforms.len() == 2).then_some(platforms)
    });
    assert_eq!(firing_warnings, BTreeSet::from(["google".to_string(), "meta".to_string()]));
    stack.expect_delivery("/page", "IntegrationEtlTokenExpiry", "firing");
    let google = stack.expect_delivery("/ticket", "IntegrationEtlTokenExpiry", "firing");
    assert_eq!(google["labels"]["platform"], "google", "google's own warning is delivered");
    let am_alerts = || api(am_port, "/api/v2/alerts");
    let inhibited = wait::until("meta's warning twin to be inhibited", Duration::from_secs(30), am_alerts, |alerts| {
        alerts
            .as_array()?
            .iter()
            .find(|a| {
                a["labels"]["alertname"] == "IntegrationEtlTokenExpiry"
                    && a["labels"]["severity"] == "warning"
                    && a["status"]["inhibitedBy"].as_array().is_some_and(|i| !i.is_empty())
            })
            .cloned()
    });
    assert_eq!(inhibited["status"]["state"], "suppressed");
    assert_eq!(inhibited["labels"]["platform"], "meta");
    std::thread::sleep(Duration::from_secs(3));
    let meta_ticket = stack.deliveries().iter().any(|(path, body)| {
        path == "/ticket"
            && body["alerts"].as_array().is_some_and(|a| {
                a.iter().any(|x| {
                    x["labels"]["alertname"] == "IntegrationEtlTokenExpiry" && x["labels"]["platform"] == "meta"
                })
            })
    });
    assert!(!meta_ticket, "meta's inhibited warning must not open a ticket");
    stack.db.execute("UPDATE marketing.platform_tokens SET expires_at = now() + interval '60 days'").await;
    stack.expect_quiet("tokens renewed");
    stack.expect_delivery("/page", "IntegrationEtlTokenExpiry", "resolved");

    // 6b. GitHub disables the token refresh workflow (the incident's root cause): the pack reads
    //     it from the GitHub API by default and pages, naming the workflow; enabled again, quiet.
    //     The repository's deleted workflow and the one switched off on purpose never paged.
    github_state.lock().unwrap().disabled.insert("Token Health & Refresh".into());
    let labels = stack.expect_alert(
        ("IntegrationEtlWorkflowDisabled", "critical"),
        "The Token Health & Refresh workflow is disabled",
        "https://runbooks.example.com/etl-token-monitoring.md#critical-immediate-action-required",
        "/page",
    );
    assert_eq!(labels["workflow"], "Token Health & Refresh");
    github_state.lock().unwrap().disabled.clear();
    stack.expect_quiet("workflow enabled again");

    // 6c. The token refresh runs fail while the token is still valid: a ticket, not a page.
    github_state.lock().unwrap().refresh_failing = true;
    stack.expect_alert(
        ("IntegrationEtlTokenRefreshRunFailed", "warning"),
        "The token refresh workflow's latest completed run has not succeeded for 3s",
        "https://runbooks.example.com/etl-token-monitoring.md#warning-action-needed-soon",
        "/ticket",
    );
    assert!(!stack.delivered("/page", "IntegrationEtlTokenRefreshRunFailed"));
    github_state.lock().unwrap().refresh_failing = false;
    stack.expect_quiet("token refresh runs succeed again");
    let exposition = exporter.metrics().text;
    for series in [
        "integration_etl_token_refresh_workflow_last_run_timestamp_seconds",
        "integration_etl_token_refresh_workflow_last_run_succeeded 1",
        "integration_etl_incremental_sync_workflow_last_success_timestamp_seconds",
        "integration_etl_full_sync_workflow_last_success_timestamp_seconds",
        "integration_etl_keep_alive_last_success_timestamp_seconds",
        "integration_etl_repository_last_push_timestamp_seconds",
        "integration_etl_workflow_active{workflow=\"Token Health & Refresh\"} 1",
    ] {
        assert!(exposition.contains(series), "{series} not served:\n{exposition}");
    }
    for unwatched in ["ETL Sync (v1)", "Release", "CI"] {
        assert!(!exposition.contains(&format!("workflow=\"{unwatched}\"")), "{unwatched} is watched:\n{exposition}");
    }
    assert!(!exposition.contains("integration_exporter_log_files{log=\"etl_token_monitoring.etl\"}"));
    assert!(!exposition.contains(GITHUB_TOKEN), "the GitHub token never reaches /metrics");

    // 7. Calendar connections stop syncing.
    stack.db.execute("UPDATE external_calendar_connections SET last_synced_at = now() - interval '2 hours' WHERE id IN (SELECT id FROM external_calendar_connections WHERE provider = 'google' AND sync_enabled LIMIT 3)").await;
    let labels = stack.expect_alert(
        ("IntegrationCalendarSyncStuck", "warning"),
        "3 google calendar connections have not synced",
        "https://runbooks.example.com/calendar-sync.md#identify-stuck-syncs",
        "/ticket",
    );
    assert_eq!(labels["provider"], "google");
    stack.db.execute("UPDATE external_calendar_connections SET last_synced_at = now()").await;
    stack.expect_quiet("calendar synced");

    // 8. The job queue backs up (HTTP source), then drains; then jobs pile up in the dead-letter
    //    queue, whose alert links to where the runbook retries them.
    queue.set(Reply::json(r#"{"pending": 1500, "active": 3, "failed": 2}"#));
    stack.expect_alert(
        ("IntegrationMicrosoftQueueBacklog", "warning"),
        "1500 jobs are pending (alert above 1000)",
        "https://runbooks.example.com/microsoft-integration.md#key-metrics-to-track",
        "/ticket",
    );
    queue.set(Reply::json(r#"{"pending": 12, "active": 3, "failed": 2}"#));
    stack.expect_quiet("queue drained");
    queue.set(Reply::json(r#"{"pending": 12, "active": 3, "failed": 140}"#));
    stack.expect_alert(
        ("IntegrationMicrosoftDeadLetterJobs", "warning"),
        "140 failed jobs are in the dead-letter queue (alert above 100)",
        "https://runbooks.example.com/microsoft-integration.md#3-restart-failed-jobs",
        "/ticket",
    );
    queue.set(Reply::json(r#"{"pending": 12, "active": 3, "failed": 2}"#));
    stack.expect_quiet("dead letters retried");

    // 9. A webhook subscription expires: the critical half of the pair pages.
    stack.db.execute("UPDATE graph_subscriptions SET expiration_date_time = now() - interval '1 hour' WHERE id IN (SELECT id FROM graph_subscriptions LIMIT 1)").await;
    stack.expect_firing(&[("IntegrationMicrosoftWebhookExpiring", "critical")]);
    stack.expect_delivery("/page", "IntegrationMicrosoftWebhookExpiring", "firing");
    stack.db.execute("UPDATE graph_subscriptions SET expiration_date_time = now() + interval '3 days'").await;
    stack.expect_quiet("subscriptions renewed");

    // 10. The MCP server stops answering: paged; and Salesforce API usage crosses 80%: ticket.
    health.set(Reply { status: 503, body: "unavailable".into(), delay: Duration::ZERO });
    stack.expect_firing(&[("IntegrationSalesforceMcpServerDown", "critical")]);
    stack.expect_delivery("/page", "IntegrationSalesforceMcpServerDown", "firing");
    health.set(Reply::json(r#"{"status": "ok"}"#));
    stack.expect_quiet("MCP server back");
    limits.set(Reply::json(r#"{"DailyApiRequests": {"Max": 15000, "Remaining": 1500}}"#));
    stack.expect_alert(
        ("IntegrationSalesforceApiUsageHigh", "warning"),
        "90%",
        "https://runbooks.example.com/salesforce-incidents.md#runbook-1--api-rate-limit-exceeded",
        "/ticket",
    );
    limits.set(Reply::json(r#"{"DailyApiRequests": {"Max": 15000, "Remaining": 14000}}"#));
    stack.expect_quiet("API usage back to normal");
    assert!(
        limits.requests().iter().all(|r| r.head.contains("Bearer sf-test-token")),
        "the token from the environment is sent"
    );

    // 11. A query goes blind (its table is gone): its source-health alert names the signal and
    //     the error kind and opens a ticket (the signal guards a warning); nothing else fires.
    stack.db.execute("ALTER TABLE external_calendar_events RENAME TO external_calendar_events_moved").await;
    // Its `for` is one minute (three query intervals, at least a minute).
    let alerts = stack.expect_firing_within(&[("IntegrationSourceQueryFailing", "warning")], Duration::from_secs(120));
    let (_, labels, annotations) = &alerts[&("IntegrationSourceQueryFailing".into(), "warning".into())];
    assert_eq!(labels["signal"], "calendar_sync.failed_events");
    let kind = labels["kind"].as_str().unwrap_or_default().to_string();
    assert!(["schema", "sql"].contains(&kind.as_str()), "a missing table is a schema error: {kind}");
    let description = annotations["description"].as_str().unwrap_or_default();
    assert!(
        description.contains("calendar_sync.failed_events") && description.contains(&format!("with {kind} errors")),
        "{description}"
    );
    stack.expect_delivery("/ticket", "IntegrationSourceQueryFailing", "firing");
    stack.db.execute("ALTER TABLE external_calendar_events_moved RENAME TO external_calendar_events").await;
    stack.expect_quiet("query reads again");

    // 12. A Graph webhook notification arrives, then none follows: "Webhook notifications not
    //     arriving" opens a ticket (its threshold shortened to 8s here, two hours in the pack).
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut api_log = std::fs::OpenOptions::new().append(true).open(d.join("graph.log")).unwrap();
    writeln!(api_log, "{now} info: Webhook notification processed subscription=9f1c changeType=created").unwrap();
    stack.expect_alert(
        ("IntegrationMicrosoftWebhooksNotArriving", "warning"),
        "(alert above 8s)",
        "https://runbooks.example.com/microsoft-integration.md#issue-integration-is-down",
        "/ticket",
    );

    // The live exposition passes promtool's lint.
    let exposition = exporter.metrics().text;
    let lint = support::promtool_check_metrics(&exposition);
    assert!(lint.is_empty(), "promtool check metrics:\n{lint}");

    Worker::join_all(writers.into(), Duration::from_secs(30));
    drop(cluster);
}
