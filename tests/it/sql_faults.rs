//! The database fails under a running exporter while a query runs on it: stopped (`pg_ctl stop -m
//! immediate`), or black-holed (a proxy stops carrying bytes without closing anything); then it
//! comes back. Each
//! time: how long until the SQL signals show failed (goal: timeout + interval), how long until
//! they recover once it is back (goal: one interval), and that nothing else stalls meanwhile (an
//! HTTP signal keeps succeeding, `/metrics` keeps answering fast).
//!
//! Interval 1s, timeout 500ms, connect timeout 500ms. The bounds asserted are generous (a shared
//! CI machine); the figures are printed (`scripts/fault-database` runs this and shows them;
//! `FAULT_ROUNDS=n` repeats each fault n times).

use crate::support;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::exporter::Exporter;
use support::http::{Metrics, get};
use support::proxy::Proxy;
use support::wait::{self, Worker};
use support::{Cluster, HttpServer, Reply, free_port};

const SIGNALS: [&str; 2] = ["t.fast", "t.slow"];

fn spec(dir: &std::path::Path, port: u16, http: &str) -> std::path::PathBuf {
    let text = format!(
        "listen: 127.0.0.1:{port}
database: {{url_env: IE_TEST_DSN, connect_timeout: 500ms, max_connections: 2}}
poll_defaults: {{interval: 1s, timeout: 500ms}}
signals:
  - id: t.fast
    title: Fast
    runbook_section: https://example.com/runbook#fast
    metrics:
      - {{name: t_fast, type: gauge, help: Fast.}}
    source:
      sql:
        query: SELECT 1 AS value
  - id: t.slow
    title: Slow
    runbook_section: https://example.com/runbook#slow
    metrics:
      - {{name: t_slow, type: gauge, help: Slow.}}
    source:
      sql:
        query: SELECT 1 AS value FROM pg_sleep(0.3)
  - id: t.http
    title: Http
    runbook_section: https://example.com/runbook#http
    metrics:
      - {{name: t_http_up, type: gauge, help: Up.}}
    source:
      http:
        url: {http}
        interval: 1s
        timeout: 500ms
        values: [{{metric: t_http_up, path: up}}]
"
    );
    let path = dir.join("spec.yaml");
    std::fs::write(&path, text).expect("spec");
    path
}

/// One scrape: when, how long it took, each SQL signal's success, the HTTP signal's last success.
#[derive(Clone, Debug)]
struct Scrape {
    at: Instant,
    took: Duration,
    sql_ok: [Option<f64>; 2],
    http_last_success: Option<f64>,
}

/// Scrapes `/metrics` every 50 ms in the background.
struct Sampler {
    scrapes: Arc<Mutex<Vec<Scrape>>>,
    _worker: Worker<()>,
}

impl Sampler {
    fn start(port: u16) -> Sampler {
        let scrapes: Arc<Mutex<Vec<Scrape>>> = Arc::default();
        let s = scrapes.clone();
        let worker = Worker::spawn("sampler", move |stop| {
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let m = get(port, "/metrics").map(|r| Metrics::parse(&r.text())).unwrap_or_default();
                let took = started.elapsed();
                let ok = |id: &str| m.get(&format!("integration_exporter_query_success{{signal=\"{id}\"}}"));
                let http = m.get("integration_exporter_http_last_success_timestamp_seconds{signal=\"t.http\"}");
                s.lock().unwrap().push(Scrape {
                    at: started,
                    took,
                    sql_ok: [ok(SIGNALS[0]), ok(SIGNALS[1])],
                    http_last_success: http,
                });
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Sampler { scrapes, _worker: worker }
    }

    /// Waits until every SQL signal shows `value` in a scrape taken after `since`; the time
    /// from `since` to that scrape.
    fn wait_all(&self, since: Instant, value: f64, within: Duration) -> Option<Duration> {
        let within = (since + within).saturating_duration_since(Instant::now());
        // Each signal's first scrape after `since` showing the value; the later of the two.
        let latest = |scrapes: &Vec<Scrape>| {
            let first = |i: usize| scrapes.iter().find(|s| s.at >= since && s.sql_ok[i] == Some(value)).map(|s| s.at);
            (0..SIGNALS.len()).map(first).collect::<Option<Vec<Instant>>>()?.into_iter().max()
        };
        let at = wait::poll(within, Duration::from_millis(20), || self.scrapes(), latest).ok()?;
        Some(at - since)
    }

    fn scrapes(&self) -> Vec<Scrape> {
        self.scrapes.lock().unwrap().clone()
    }
}

/// Waits (up to five seconds) until the slow signal's query is running, read straight from the
/// server, not through the proxy.
fn sleeping_query_runs(admin_url: &str) -> bool {
    use sqlx::Connection;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let mut admin = runtime.block_on(sqlx::PgConnection::connect(admin_url)).expect("admin connection");
    let sql = "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%FROM pg_sleep(0.3)%' \
               AND pid <> pg_backend_pid()";
    let running =
        || -> i64 { runtime.block_on(sqlx::query_scalar(sql).fetch_one(&mut admin)).expect("pg_stat_activity") };
    wait::poll(Duration::from_secs(5), Duration::from_millis(5), running, |&n| (n > 0).then_some(())).is_ok()
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

#[test]
fn database_stopped_black_holed_and_back() {
    let rounds: usize = std::env::var("FAULT_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(1);
    let cluster = Cluster::start();
    let proxy = Proxy::start(cluster.port);
    let http = HttpServer::start(Reply::json("{}"));
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let spec = spec(dir.path(), port, &http.url("/q"));
    let dsn = format!("postgres://postgres@127.0.0.1:{}/postgres", proxy.port);
    let exporter = Exporter::serve(&spec, port).env("IE_TEST_DSN", &dsn).env("RUST_LOG", "info").start();
    let sampler = Sampler::start(port);
    let started = Instant::now();
    let warm = sampler.wait_all(started, 1.0, Duration::from_secs(20));
    assert!(warm.is_some(), "the SQL signals never succeeded: {}", exporter.output());

    let admin = cluster.url("postgres");
    let mut figures = Vec::new();
    for round in 1..=rounds {
        for fault in ["stopped", "black-holed"] {
            std::thread::sleep(Duration::from_millis(500));
            // Mid-query: the slow signal's query is running on the server when the fault hits.
            assert!(sleeping_query_runs(&admin), "the slow query never showed in pg_stat_activity");
            let at = Instant::now();
            match fault {
                "stopped" => cluster.stop(),
                _ => proxy.black_hole(),
            }
            let failed = sampler.wait_all(at, 0.0, Duration::from_secs(15));
            std::thread::sleep(Duration::from_millis(1000));
            match fault {
                "stopped" => cluster.restart(),
                _ => proxy.restore(),
            }
            // Measured from when the database answers again (`pg_ctl start -w` has returned).
            let back = Instant::now();
            let recovered = sampler.wait_all(back, 1.0, Duration::from_secs(15));
            let show = |d: Option<Duration>| d.map_or("never".to_string(), |d| format!("{} ms", ms(d)));
            println!(
                "FIGURE round {round} database {fault}: failed after {} (goal <= 1500 ms), recovered after {} (goal <= 1000 ms)",
                show(failed),
                show(recovered)
            );
            figures.push((fault, failed, recovered));
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let scrapes = sampler.scrapes();
    drop(sampler);
    let output = exporter.stop();

    // Nothing else stalled: /metrics answered fast, and the HTTP signal kept succeeding.
    let slowest = scrapes.iter().map(|s| s.took).max().unwrap_or_default();
    let p99 = {
        let mut took: Vec<Duration> = scrapes.iter().map(|s| s.took).collect();
        took.sort();
        took.get(took.len() * 99 / 100).copied().unwrap_or_default()
    };
    let now_unix = |s: &Scrape| {
        let elapsed = Instant::now() - s.at;
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
            - elapsed.as_secs_f64()
    };
    let oldest_http = scrapes
        .iter()
        .filter(|s| s.at > started + Duration::from_secs(3))
        .filter_map(|s| s.http_last_success.map(|ts| now_unix(s) - ts))
        .fold(0.0f64, f64::max);
    println!(
        "FIGURE /metrics over {} scrapes: p99 {} ms, slowest {} ms; HTTP signal's last success at most {:.1} s old (interval 1 s)",
        scrapes.len(),
        ms(p99),
        ms(slowest),
        oldest_http
    );

    for (fault, failed, recovered) in &figures {
        let failed = failed.unwrap_or_else(|| panic!("database {fault}: the signals never showed failed\n{output}"));
        let recovered = recovered.unwrap_or_else(|| panic!("database {fault}: the signals never recovered\n{output}"));
        assert!(failed <= Duration::from_secs(5), "database {fault}: failed only after {failed:?}");
        assert!(recovered <= Duration::from_secs(5), "database {fault}: recovered only after {recovered:?}");
    }
    assert!(slowest < Duration::from_secs(2), "a scrape took {slowest:?}");
    assert!(oldest_http < 4.0, "the HTTP signal stalled: last success {oldest_http:.1} s old");
}

/// The database's own health is one series for the whole pool, apart from any one query: a query
/// that fails while the database answers (a table gone) leaves it up; the database stopped or
/// black-holed takes it down, by kind; back, it is up again. Its `database` label says where
/// (`host:port/db`), never who: no user, no password.
#[test]
fn the_database_is_one_series_apart_from_its_queries() {
    let cluster = Cluster::start();
    let proxy = Proxy::start(cluster.port);
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let text = format!(
        "listen: 127.0.0.1:{port}
database: {{url_env: IE_TEST_DSN, connect_timeout: 500ms, max_connections: 2}}
poll_defaults: {{interval: 500ms, timeout: 300ms}}
signals:
  - id: t.fine
    title: Fine
    runbook_section: https://example.com/runbook#fine
    metrics: [{{name: t_fine, type: gauge, help: Fine.}}]
    source: {{sql: {{query: SELECT 1 AS value}}}}
  - id: t.broken
    title: Broken
    runbook_section: https://example.com/runbook#broken
    metrics: [{{name: t_broken, type: gauge, help: Broken.}}]
    source: {{sql: {{query: SELECT count(*) AS value FROM no_such_table}}}}
"
    );
    let spec = dir.path().join("spec.yaml");
    std::fs::write(&spec, text).expect("spec");
    // Trust authentication ignores the password, which must still appear nowhere.
    let dsn = format!("postgres://postgres:Db5ecretPW@127.0.0.1:{}/postgres", proxy.port);
    let exporter = Exporter::serve(&spec, port).env("IE_TEST_DSN", &dsn).start();
    let database = format!("database=\"127.0.0.1:{}/postgres\"", proxy.port);
    let up = format!("integration_exporter_database_up{{{database}}}");
    let errors = |kind: &str| format!("integration_exporter_database_errors_total{{{database},kind=\"{kind}\"}}");

    let m = exporter.wait_for("the database up while one query fails", |m| {
        m.get(&up) == Some(1.0)
            && m.get("integration_exporter_query_errors_total{signal=\"t.broken\",kind=\"schema\"}")
                .is_some_and(|n| n >= 2.0)
    });
    assert_eq!(m.get(&errors("connect")), Some(0.0), "{m:?}");
    assert!(m.get(&format!("integration_exporter_database_last_success_timestamp_seconds{{{database}}}")).is_some());
    assert!(!m.text.contains("Db5ecretPW") && !m.text.contains("postgres@"), "credentials in the exposition:\n{m:?}");

    cluster.stop();
    exporter.wait_for("the database down, as connect errors", |m| {
        m.get(&up) == Some(0.0) && m.get(&errors("connect")).is_some_and(|n| n > 0.0)
    });
    cluster.restart();
    let m = exporter.wait_for("the database up again", |m| m.get(&up) == Some(1.0));
    let connect_before = m.get(&errors("connect")).unwrap_or_default();

    proxy.black_hole();
    exporter.wait_for("the database down while nothing answers", |m| {
        m.get(&up) == Some(0.0)
            && (m.get(&errors("timeout")).is_some_and(|n| n > 0.0)
                || m.get(&errors("connect")).is_some_and(|n| n > connect_before))
    });
    proxy.restore();
    exporter.wait_for("the database up once it answers", |m| m.get(&up) == Some(1.0));
    let output = exporter.stop();
    assert!(!output.contains("Db5ecretPW"), "the password in the log:\n{output}");
}
