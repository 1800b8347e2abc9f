//! Outages of what the exporter reads, replayed under the real Prometheus and Alertmanager with
//! the generated rules and routing (as in `e2e.rs`, whose webhook receiver and Prometheus set-up
//! this reuses): the right page, and only that page.
//!
//! 1. One value goes missing from an endpoint's answer while another is still read, and one
//!    query breaks (its table renamed) while the database answers the others: each is its own
//!    alert, and the alert of the value still read fires and is not held back.
//! 2. The database stops: exactly one notification reaches the pager, and it is the database's
//!    (which one, which error kind, the blinded signals listed), not one per query; nothing opens a
//!    ticket. It resolves once the database is back.
//! 3. The exporter stops while an alert about the whole fleet fires: no "resolved" goes out for
//!    an alert nobody can see; back, the exporter's data resolve it.
//!
//! Every `for` and window is shortened through the spec, the knobs a user has. Figures are
//! printed (`FIGURE ...`) before the assertions, so a failing run still says what went out;
//! `OUTAGE_PHASES=2,3` replays only those (to measure one against an older build).

use crate::e2e::{prometheus_alerts, seed_healthy, shipped_prometheus_config, worker_writer};
use crate::support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::exporter::Exporter;
use support::http::{StandIn, api};
use support::process::{Proc, prometheus};
use support::wait;
use support::{Cluster, HttpServer, Reply, TestDb, exporter_bin, free_port, program};

/// What Alertmanager delivered to the webhook stand-in of the pager and the ticket system:
/// (receiver path, JSON payload).
fn deliveries(hook: &StandIn) -> Vec<(String, Value)> {
    hook.requests().into_iter().filter_map(|r| Some((r.path, serde_json::from_str(&r.body).ok()?))).collect()
}

/// Polls `probe` until it gives a value; fails after `within`, naming `what`.
fn wait_until<T>(what: &str, within: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    wait::until(what, within, || (), |_| probe())
}

/// What reached one receiver after the first `from` deliveries: notifications, and the alerts in
/// them as (alertname, status).
fn delivered(hook: &StandIn, receiver: &str, from: usize) -> (usize, Vec<(String, String)>) {
    let got = deliveries(hook);
    let notes: Vec<&Value> = got.iter().skip(from).filter(|(path, _)| path == receiver).map(|(_, body)| body).collect();
    let alerts = notes
        .iter()
        .flat_map(|body| body["alerts"].as_array().cloned().unwrap_or_default())
        .map(|a| {
            let name = a["labels"]["alertname"].as_str().unwrap_or_default().to_string();
            (name, a["status"].as_str().unwrap_or_default().to_string())
        })
        .collect();
    (notes.len(), alerts)
}

/// The (alertname, severity) pairs firing in Prometheus.
fn firing(prometheus: u16) -> BTreeSet<(String, String)> {
    prometheus_alerts(prometheus).into_iter().filter(|(_, (state, _, _))| state == "firing").map(|(k, _)| k).collect()
}

/// How many alerts fire in Prometheus, one per label set.
fn firing_count(prometheus: u16) -> usize {
    let alerts = api(prometheus, "/api/v1/alerts")["data"]["alerts"].as_array().cloned().unwrap_or_default();
    alerts.iter().filter(|a| a["state"] == "firing").count()
}

fn wait_quiet(prometheus: u16, what: &str) {
    let alerts = || prometheus_alerts(prometheus);
    wait::until(&format!("no alerts ({what})"), Duration::from_secs(60), alerts, |a| a.is_empty().then_some(()));
}

/// Alertmanager's state of its alerts named `alertname`: `active` or `suppressed`, by signal.
fn am_states(am: u16, alertname: &str) -> Vec<(String, String)> {
    api(am, "/api/v2/alerts")
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|a| a["labels"]["alertname"] == alertname)
        .map(|a| {
            let signal = a["labels"]["signal"].as_str().unwrap_or_default().to_string();
            (signal, a["status"]["state"].as_str().unwrap_or_default().to_string())
        })
        .collect()
}

fn spec(d: &Path, exporter_port: u16, hook: u16, queue: SocketAddr, limits: SocketAddr, health: SocketAddr) -> String {
    let short = "{for: 3s}";
    format!(
        r#"{head}  etl_token_monitoring:
    params: {{etl_log: {d}/etl.log}}
    # The GitHub variant's signals need a GitHub; the database's are what these outages are about.
    signals:
      etl_token_monitoring.github_workflows: {{enabled: false}}
      etl_token_monitoring.token_refresh_workflow: {{enabled: false}}
      etl_token_monitoring.token_refresh_failures: {{enabled: false}}
      etl_token_monitoring.incremental_sync_workflow: {{enabled: false}}
      etl_token_monitoring.full_sync_workflow: {{enabled: false}}
      etl_token_monitoring.keep_alive_workflow: {{enabled: false}}
      etl_token_monitoring.repository_activity: {{enabled: false}}
    alerts:
      IntegrationEtlTokenExpiry: {short}
      IntegrationEtlSyncDelayed: {short}
      IntegrationEtlSyncFailing: {short}
  calendar_sync:
    params: {{app_log: {d}/app.log}}
    alerts:
      IntegrationCalendarSyncStuck: {short}
      IntegrationCalendarSyncTokenExpired: {short}
      IntegrationCalendarSyncFailedEvents: {short}
      IntegrationCalendarSyncProviderStale: {short}
      IntegrationCalendarSyncErrors: {{window: 20s, for: 3s}}
  microsoft_integration:
    params: {{api_log: {d}/graph.log}}
    # The queue is read by the user signal below, as one signal with both values.
    signals:
      microsoft_integration.job_queue: {{enabled: false}}
      microsoft_integration.dead_letter_queue: {{enabled: false}}
    alerts:
      IntegrationMicrosoftGraphErrorRate: {{window: 20s, for: 3s}}
      IntegrationMicrosoftRateLimited: {{window: 20s, for: 3s}}
  salesforce_incidents:
    params: {{server_log: {d}/salesforce.log, instance_url: "http://{limits}", health_url: "http://{health}/health", authorization: "Bearer env:OUTAGE_SF_TOKEN"}}
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
{queue_signal}"#,
        head = support::fast_alerting_spec_head(d, exporter_port, hook, "OUTAGE_DATABASE_URL"),
        d = d.display(),
        queue_signal = include_str!("../fixtures/queue_values.yaml")
            .replace("QUEUE_URL", &format!("http://{queue}/api/metrics/queue")),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_outage_pages_once_for_its_cause_and_holds_back_only_what_is_blind() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cluster = Cluster::start();
    let db = TestDb { url: cluster.url("postgres"), _cluster: None };
    seed_healthy(&db).await;
    let queue = HttpServer::start(Reply::json(r#"{"pending": 12, "active": 3, "failed": 2}"#));
    let limits = HttpServer::start(Reply::json(r#"{"DailyApiRequests": {"Max": 15000, "Remaining": 14000}}"#));
    let health = HttpServer::start(Reply::json(r#"{"status": "ok"}"#));
    for log in ["app.log", "graph.log", "salesforce.log", "etl.log"] {
        std::fs::write(d.join(log), "").unwrap();
    }

    let webhook = StandIn::start(|_| (200, String::new()));
    let exporter_port = free_port();
    let spec_path = d.join("spec.yaml");
    let text = spec(d, exporter_port, webhook.addr.port(), queue.addr, limits.addr, health.addr);
    std::fs::write(&spec_path, text).unwrap();
    let out = Command::new(exporter_bin()).args(["generate", "--config"]).arg(&spec_path).arg("--out").arg(d).output();
    let out = out.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let worker_mode = Arc::new(Mutex::new("healthy"));
    let writer = worker_writer(d.join("worker.log"), worker_mode.clone());
    let mut exporter = Exporter::serve(&spec_path, exporter_port)
        .env("OUTAGE_DATABASE_URL", &db.url)
        .env("OUTAGE_SF_TOKEN", "sf-test-token")
        .start();
    let am = free_port();
    let _alertmanager = Proc::start(
        "alertmanager",
        &d.join("alertmanager.log"),
        program("prometheus-alertmanager")
            .arg(format!("--config.file={}", d.join("alertmanager/alertmanager.yml").display()))
            .arg(format!("--storage.path={}", d.join("am-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{am}"))
            .arg("--cluster.listen-address="),
    );
    let prom = free_port();
    let _prometheus = prometheus(&shipped_prometheus_config(d, am, exporter_port), prom);
    wait_until("target up", Duration::from_secs(60), || {
        let targets = api(prom, "/api/v1/targets");
        let active = targets["data"]["activeTargets"].as_array()?.clone();
        (active.len() == 1 && active[0]["health"] == "up").then_some(())
    });
    wait_until("the rules loaded", Duration::from_secs(60), || {
        let groups = api(prom, "/api/v1/rules")["data"]["groups"].as_array()?.clone();
        (groups.len() >= 6).then_some(())
    });
    wait_until("the alertmanager to be ready", Duration::from_secs(30), || {
        support::http::get(am, "/-/ready").map(|_| ())
    });
    std::thread::sleep(Duration::from_secs(8));
    wait_quiet(prom, "healthy");
    assert!(deliveries(&webhook).is_empty(), "nothing is delivered while healthy");
    let phases = std::env::var("OUTAGE_PHASES").unwrap_or_else(|_| "1,2,3".into());
    let phase = |n: &str| phases.split(',').any(|p| p.trim() == n);

    // The value and query phase comes first: a query's alert names each error kind seen in its
    // 5m error window, so right after the database phase it would also name that outage's
    // `connect` errors beside this phase's `schema` ones.
    if phase("1") {
        // 1. The queue endpoint's answer loses `.failed` (the dead-letter count) while `.pending` is
        //    past its threshold, and one query's table is renamed while the database answers the
        //    others: the value's and the query's own alerts fire, each naming what is blind, and the
        //    backlog alert, whose value is still read, fires and is not held back.
        let from = deliveries(&webhook).len();
        queue.set(Reply::json(r#"{"pending": 1500, "active": 3}"#));
        db.execute("ALTER TABLE external_calendar_events RENAME TO external_calendar_events_moved").await;
        let want: BTreeSet<(String, String)> = [
            ("IntegrationOpsQueueBacklog", "warning"),
            ("IntegrationSourceHttpFailing", "warning"),
            ("IntegrationSourceQueryFailing", "warning"),
        ]
        .into_iter()
        .map(|(a, s)| (a.to_string(), s.to_string()))
        .collect();
        let alerts = wait_until("the value's, the query's and the backlog's alerts", Duration::from_secs(150), || {
            let alerts = prometheus_alerts(prom);
            let now: BTreeSet<(String, String)> =
                alerts.iter().filter(|(_, (s, _, _))| s == "firing").map(|(k, _)| k.clone()).collect();
            (now == want && alerts.len() == want.len() && firing_count(prom) == want.len()).then_some(alerts)
        });
        wait_until("Alertmanager's view of both alerts", Duration::from_secs(30), || {
            let health_failing = am_states(am, "IntegrationSourceHttpFailing");
            let backlog = am_states(am, "IntegrationOpsQueueBacklog");
            (!health_failing.is_empty() && !backlog.is_empty()).then_some(())
        });
        std::thread::sleep(Duration::from_secs(3));
        let backlog = am_states(am, "IntegrationOpsQueueBacklog");
        let (_, labels, annotations) = &alerts[&("IntegrationSourceHttpFailing".into(), "warning".into())];
        println!(
            "FIGURE `.failed` missing, `.pending` 1500: the endpoint's alert has labels {labels}; the backlog alert in Alertmanager: {backlog:?}"
        );
        assert_eq!(
            backlog,
            [("ops.queue".to_string(), "active".to_string())],
            "the backlog alert reads `.pending`, which is still there: it must not be held back"
        );
        assert_eq!(labels["metric"], "ops_queue_dead_letter_jobs");
        assert_eq!(labels["kind"], "path");
        assert!(annotations["description"].as_str().unwrap_or_default().contains("(`.failed`)"), "{annotations}");
        let (_, labels, _) = &alerts[&("IntegrationSourceQueryFailing".into(), "warning".into())];
        assert_eq!(labels["signal"], "calendar_sync.failed_events");
        assert_eq!(labels["kind"], "schema");
        wait_until("the tickets of all three", Duration::from_secs(30), || {
            let (_, got) = delivered(&webhook, "/ticket", from);
            want.iter().all(|(name, _)| got.contains(&(name.clone(), "firing".into()))).then_some(())
        });
        assert_eq!(delivered(&webhook, "/page", from).0, 0, "none of these pages");
        queue.set(Reply::json(r#"{"pending": 12, "active": 3, "failed": 2}"#));
        db.execute("ALTER TABLE external_calendar_events_moved RENAME TO external_calendar_events").await;
        wait_quiet(prom, "the value and the query read again");
        // Their "resolved" tickets go out after Prometheus is quiet: wait for them here, or under
        // load they arrive during the next phase and count as something it sent.
        wait_until("the resolved tickets of all three", Duration::from_secs(120), || {
            let (_, got) = delivered(&webhook, "/ticket", from);
            want.iter().all(|(name, _)| got.contains(&(name.clone(), "resolved".into()))).then_some(())
        });
    }

    if phase("2") {
        // 2. The database stops. Watch what goes out until 20 s after the first page, well past
        //    every per-query alert's `for` (1m): one page, the database's; no ticket.
        let sql_signals: Vec<String> = integration_exporter::spec::Model::load(&spec_path)
            .unwrap()
            .enabled_signals()
            .filter(|s| s.signal.source.settings().needs_database())
            .map(|s| s.signal.id.clone())
            .collect();
        let from = deliveries(&webhook).len();
        let stopped = Instant::now();
        cluster.stop();
        let first_page = wait_until("a page after the database stopped", Duration::from_secs(180), || {
            (delivered(&webhook, "/page", from).0 > 0).then(Instant::now)
        });
        let watch_until = (first_page + Duration::from_secs(20)).max(stopped + Duration::from_secs(90));
        std::thread::sleep(watch_until.saturating_duration_since(Instant::now()));
        let (pages, paged) = delivered(&webhook, "/page", from);
        let (tickets, ticketed) = delivered(&webhook, "/ticket", from);
        let in_prometheus = firing(prom);
        println!(
            "FIGURE database stopped, {:.0} s watched: {pages} notifications to /page carrying {} alerts {:?}; {tickets} to /ticket carrying {} alerts; {} alerts firing in Prometheus {:?}",
            (watch_until - stopped).as_secs_f64(),
            paged.len(),
            paged.iter().map(|(n, _)| n.as_str()).collect::<BTreeSet<_>>(),
            ticketed.len(),
            firing_count(prom),
            in_prometheus,
        );
        assert_eq!(pages, 1, "one page for one cause: {paged:?}");
        assert_eq!(paged, [("IntegrationDatabaseUnreachable".to_string(), "firing".to_string())]);
        assert_eq!(tickets, 0, "nothing else goes out: {ticketed:?}");
        let page = deliveries(&webhook).into_iter().skip(from).find(|(p, _)| p == "/page").unwrap().1;
        let alert = &page["alerts"][0];
        assert_eq!(alert["labels"]["database"], format!("127.0.0.1:{}/postgres", cluster.port));
        assert_eq!(alert["labels"]["kind"], "connect");
        let description = alert["annotations"]["description"].as_str().unwrap_or_default();
        for id in &sql_signals {
            assert!(description.contains(id.as_str()), "{id} not listed as blinded: {description}");
        }
        assert!(
            alert["annotations"]["runbook_url"]
                .as_str()
                .is_some_and(|u| u.ends_with("/integration-exporter.md#integrationdatabaseunreachable")),
            "{alert}"
        );
        assert!(
            !in_prometheus.iter().any(|(name, _)| name == "IntegrationSourceQueryFailing"),
            "the per-query alerts stay quiet behind the database's: {in_prometheus:?}"
        );
        cluster.restart();
        wait_quiet(prom, "the database is back");
        wait_until("the database's page resolved", Duration::from_secs(30), || {
            delivered(&webhook, "/page", from)
                .1
                .contains(&("IntegrationDatabaseUnreachable".into(), "resolved".into()))
                .then_some(())
        });
    }

    if phase("3") {
        // 3. The heartbeat stops: the fleet-wide lag alert pages. Then the exporter stops: the alert
        //    nobody can see any more keeps firing and no "resolved" goes out; back, with the worker
        //    healthy again, the exporter's data resolve it.
        *worker_mode.lock().unwrap() = "stalled";
        let lag = ("IntegrationTokenRefreshHeartbeatLag".to_string(), "critical".to_string());
        wait_until("the heartbeat lag to page", Duration::from_secs(60), || {
            delivered(&webhook, "/page", 0).1.contains(&(lag.0.clone(), "firing".into())).then_some(())
        });
        let from = deliveries(&webhook).len();
        exporter.kill();
        let down = Instant::now();
        wait_until("Prometheus to see the exporter down", Duration::from_secs(30), || {
            let targets = api(prom, "/api/v1/targets");
            (targets["data"]["activeTargets"][0]["health"] == "down").then_some(())
        });
        std::thread::sleep(Duration::from_secs(15));
        let (_, while_down) = delivered(&webhook, "/page", from);
        let still = firing(prom);
        println!(
            "FIGURE exporter stopped, {:.0} s watched: to /page {while_down:?}; firing in Prometheus: {still:?}",
            down.elapsed().as_secs_f64()
        );
        assert!(!while_down.contains(&(lag.0.clone(), "resolved".into())), "a false resolved went out: {while_down:?}");
        assert!(still.contains(&lag), "the lag alert is held firing while nobody can see: {still:?}");
        *worker_mode.lock().unwrap() = "healthy";
        exporter.restart();
        wait_quiet(prom, "the exporter back, the heartbeat running");
        wait_until("the lag alert resolved once seen healthy", Duration::from_secs(30), || {
            delivered(&webhook, "/page", from).1.contains(&(lag.0.clone(), "resolved".into())).then_some(())
        });
        let (_, after) = delivered(&webhook, "/page", from);
        assert!(
            !after.iter().any(|(name, status)| name == "IntegrationExporterDown" && status == "firing"),
            "the exporter was back within its `for`: {after:?}"
        );
    }

    writer.join();
    drop(exporter);
    drop(cluster);
}
