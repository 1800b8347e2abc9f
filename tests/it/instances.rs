//! Two exporters of one deployment scraped by the real Prometheus, evaluating the rules
//! `generate` wrote for a job and extra matchers of the user's choosing: the token refresh
//! worker runs on host A while host B is a standby that once ran it (its log's last "Cycle
//! complete" is old) and now only fails to take the lock. The fleet-wide alerts (heartbeat lag,
//! success rate) stay quiet while A works and the heartbeat pages once both are silent.
//! A third target of another cluster, with a stale heartbeat of its own, must not count.

use crate::support;

use std::io::Write;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::exporter::Exporter;
use support::http::api;
use support::process::prometheus;
use support::wait::{self, Worker};
use support::{exporter_bin, free_port, program};

/// The value of an instant query returning one sample.
fn query(port: u16, expr: &str) -> Option<f64> {
    let encoded: String = expr
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    let answer = api(port, &format!("/api/v1/query?query={encoded}"));
    answer["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

/// Active alerts of these names: (alertname, state, labels).
fn alerts(port: u16, names: &[&str]) -> Vec<(String, String, Value)> {
    api(port, "/api/v1/alerts")["data"]["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|a| {
            let name = a["labels"]["alertname"].as_str()?.to_string();
            names
                .contains(&name.as_str())
                .then(|| (name, a["state"].as_str().unwrap_or("").to_string(), a["labels"].clone()))
        })
        .collect()
}

/// `2026-02-06 12:00:01,234` (Python logging's default, UTC) of `ago` before now.
fn python_time(ago: Duration) -> String {
    let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap() - ago;
    let out = program("date").args(["-u", "-d", &format!("@{}", at.as_secs()), "+%Y-%m-%d %H:%M:%S,000"]).output();
    String::from_utf8_lossy(&out.unwrap().stdout).trim().to_string()
}

fn append(path: &Path, lines: &[String]) {
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    for line in lines {
        writeln!(file, "{line}").unwrap();
    }
}

/// The active worker: a refresh, the lock and a completed cycle every second while `run`.
fn active_worker(path: PathBuf, run: Arc<AtomicBool>) -> Worker<()> {
    Worker::spawn("active worker", move |stop| {
        while !stop.load(Ordering::Relaxed) {
            if run.load(Ordering::Relaxed) {
                let now = python_time(Duration::ZERO);
                append(
                    &path,
                    &[
                        format!("{now} INFO [graph_client] Acquired lock token_refresh_heartbeat lease=120s"),
                        format!("{now} INFO [graph_client] ProactiveRefresh ✓ user=u refreshed token"),
                        format!("{now} INFO [email_watcher_worker] ProactiveRefresh Cycle complete: refreshed=1"),
                    ],
                );
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    })
}

/// The standby: fails to take the lock every other second, and never completes a cycle.
fn standby_worker(path: PathBuf) -> Worker<()> {
    Worker::spawn("standby worker", move |stop| {
        while !stop.load(Ordering::Relaxed) {
            let now = python_time(Duration::ZERO);
            append(
                &path,
                &[format!("{now} WARNING [graph_client] Failed to acquire lock token_refresh_heartbeat: held by a")],
            );
            std::thread::sleep(Duration::from_secs(2));
        }
    })
}

/// The token refresh pack with its log signals only (no database), heartbeat and lock windows
/// shortened through the spec.
fn spec(dir: &Path, host: &str, port: u16) -> PathBuf {
    let d = dir.display();
    let text = format!(
        r#"listen: 127.0.0.1:{port}
state_dir: {d}/state-{host}
generate:
  job: workers
  matchers: {{cluster: prod}}
packs:
  token_refresh:
    params: {{worker_log: {d}/worker-{host}.log}}
    signals:
      token_refresh.expiring_tokens: {{enabled: false}}
      token_refresh.due_tokens: {{enabled: false}}
      token_refresh.degraded_watchers: {{enabled: false}}
      token_refresh.tokens_in_backoff: {{enabled: false}}
      token_refresh.revoked_tokens: {{enabled: false}}
      token_refresh.error_classes: {{enabled: false}}
      token_refresh.heartbeat_lock: {{enabled: false}}
      token_refresh.short_backoff: {{enabled: false}}
      token_refresh.dominant_error: {{enabled: false}}
      token_refresh.rate_limited_failures: {{enabled: false}}
    alerts:
      IntegrationTokenRefreshSuccessRateLow: {{window: 20s, min_events: 5, for: 3s}}
      IntegrationTokenRefreshHeartbeatLag: {{threshold: 6, for: 2s}}
      IntegrationTokenRefreshHeartbeatMissing: {{for: 3s}}
"#
    );
    let path = dir.join(format!("spec-{host}.yaml"));
    std::fs::write(&path, text).unwrap();
    path
}

const FLEET: &[&str] = &[
    "IntegrationTokenRefreshHeartbeatLag",
    "IntegrationTokenRefreshHeartbeatMissing",
    "IntegrationTokenRefreshSuccessRateLow",
];

#[test]
fn a_standby_worker_host_does_not_page_while_another_works() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ports = [free_port(), free_port(), free_port()];
    let specs: Vec<PathBuf> = ["a", "b", "other"].iter().zip(ports).map(|(h, p)| spec(d, h, p)).collect();
    let out = Command::new(exporter_bin()).args(["generate", "--config"]).arg(&specs[0]).arg("--out").arg(d).output();
    let out = out.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for host in ["a", "b", "other"] {
        std::fs::write(d.join(format!("worker-{host}.log")), "").unwrap();
    }

    let _exporters: Vec<Exporter> =
        specs.iter().zip(ports).map(|(spec, port)| Exporter::serve(spec, port).start()).collect();
    let prom_port = free_port();
    // Host `other` belongs to another cluster under the same job: the rules must not see it.
    let config = format!(
        "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nrule_files: ['{d}/alerts/*.rules.yml']\nscrape_configs:\n  - job_name: workers\n    static_configs:\n      - {{targets: ['127.0.0.1:{a}', '127.0.0.1:{b}'], labels: {{cluster: prod}}}}\n      - {{targets: ['127.0.0.1:{o}'], labels: {{cluster: staging}}}}\n",
        d = d.display(),
        a = ports[0],
        b = ports[1],
        o = ports[2],
    );
    std::fs::write(d.join("prometheus.yml"), config).unwrap();
    let _prometheus = prometheus(d, prom_port);
    let targets = || api(prom_port, "/api/v1/targets");
    wait::until("three targets up", Duration::from_secs(60), targets, |answer| {
        let targets = answer["data"]["activeTargets"].as_array()?;
        (targets.len() == 3 && targets.iter().all(|t| t["health"] == "up")).then_some(())
    });

    // The standby and the other cluster's host last completed a cycle a minute ago.
    let old = format!(
        "{} INFO [email_watcher_worker] ProactiveRefresh Cycle complete: refreshed=1",
        python_time(Duration::from_secs(60))
    );
    append(&d.join("worker-b.log"), std::slice::from_ref(&old));
    append(&d.join("worker-other.log"), &[old]);
    let run = Arc::new(AtomicBool::new(true));
    let writers = [active_worker(d.join("worker-a.log"), run.clone()), standby_worker(d.join("worker-b.log"))];
    let heartbeat = "integration_token_refresh_last_cycle_timestamp_seconds";
    let stale_and_fresh = || {
        let stale = query(prom_port, &format!("count(time() - {heartbeat} > 30)"));
        (stale, query(prom_port, &format!("count(time() - {heartbeat} < 10)")))
    };
    wait::until("a fresh and two stale heartbeats in Prometheus", Duration::from_secs(30), stale_and_fresh, |h| {
        (*h == (Some(2.0), Some(1.0))).then_some(())
    });

    // `absent` may still pend from before the first cycle line: wait for the rules to catch up.
    let fleet = || alerts(prom_port, FLEET);
    wait::until("no fleet alerts while host A works", Duration::from_secs(15), fleet, |a| a.is_empty().then_some(()));
    // Every window and `for` passes with A working: nothing of the fleet pends or fires,
    // though B alone would page (its heartbeat is a minute old).
    let quiet_until = Instant::now() + Duration::from_secs(25);
    while Instant::now() < quiet_until {
        let active = alerts(prom_port, FLEET);
        assert!(active.is_empty(), "fleet alerts while host A works: {active:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
    let failed = query(prom_port, "sum(increase(integration_token_refresh_lock_contention_lines_total[20s]))");
    assert!(failed.unwrap_or(0.0) >= 4.0, "the standby's failed lock attempts reached Prometheus: {failed:?}");

    // Both workers silent: the heartbeat pages, once for the fleet (no `instance`), for prod only.
    run.store(false, Ordering::Relaxed);
    let lag = || alerts(prom_port, &["IntegrationTokenRefreshHeartbeatLag"]);
    let firing = wait::until("the fleet heartbeat alert", Duration::from_secs(40), lag, |active| {
        active.iter().any(|(_, state, _)| state == "firing").then(|| active.clone())
    });
    assert_eq!(firing.len(), 1, "{firing:?}");
    let labels = &firing[0].2;
    assert_eq!(labels["job"], "workers", "{labels}");
    assert_eq!(labels["cluster"], "prod", "{labels}");
    assert!(labels.get("instance").is_none(), "{labels}");
    Worker::join_all(writers.into(), Duration::from_secs(30));
}
