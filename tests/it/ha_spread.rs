//! Leaderships spread over replicas (`ha` with several databases): four databases on one
//! cluster; replica A alone leads all four; B joins and within a bound each leads two; `kill -9`
//! of A hands its two to B within retry + interval; A back, two each again. Both replicas'
//! `integration_exporter_leader{database}` are sampled all along: no database has two leaders
//! for longer than one check.

use crate::support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::postgres::PgConnection;
use support::exporter::Exporter;
use support::{Cluster, free_port};

const RETRY_MS: u64 = 500;
const INTERVAL_MS: u64 = 500;
const DATABASES: [&str; 4] = ["d0", "d1", "d2", "d3"];

fn spec(dir: &Path, port: u16, replica: &str) -> PathBuf {
    let databases: String =
        DATABASES.iter().map(|db| format!("  {db}: {{url_env: URL_{db}, connect_timeout: 1s}}\n")).collect();
    let signals: String = DATABASES
        .iter()
        .map(|db| {
            format!(
                "  - {{id: t.probe_{db}, title: Probe, database: {db}, metrics: [{{name: t_probe_{db}, type: gauge, help: Probe.}}], source: {{sql: {{query: SELECT 1 AS value}}}}}}\n"
            )
        })
        .collect();
    let text = format!(
        "listen: 127.0.0.1:{port}
databases:
{databases}ha: {{enabled: true, retry: {RETRY_MS}ms, replica: {replica}}}
poll_defaults: {{interval: {INTERVAL_MS}ms, timeout: 1s}}
signals:
{signals}"
    );
    let path = dir.join(format!("{replica}.yaml"));
    std::fs::write(&path, text).expect("spec");
    path
}

/// The databases a replica says it leads; none when it does not answer.
fn leads(replica: &Exporter) -> Vec<String> {
    let Some(m) = replica.scrape() else { return Vec::new() };
    DATABASES
        .iter()
        .filter(|db| m.get(&format!("integration_exporter_leader{{database=\"{db}\"}}")) == Some(1.0))
        .map(|db| db.to_string())
        .collect()
}

/// Samples both replicas until `done` holds of (A's, B's) leaderships, failing past `within` or
/// when a database has had two leaders for longer than one check. How long it took.
struct Watch {
    /// Since when each database has had two leaders.
    doubled: BTreeMap<String, Instant>,
}

impl Watch {
    fn until(
        &mut self,
        what: &str,
        within: Duration,
        a: &Exporter,
        b: &Exporter,
        done: impl Fn(&[String], &[String]) -> bool,
    ) -> Duration {
        let started = Instant::now();
        loop {
            let (la, lb) = (leads(a), leads(b));
            for db in DATABASES {
                let both = la.iter().any(|d| d == db) && lb.iter().any(|d| d == db);
                if !both {
                    self.doubled.remove(db);
                    continue;
                }
                let since = *self.doubled.entry(db.to_string()).or_insert_with(Instant::now);
                // One check, plus the time between two scrapes on a busy machine.
                let bound = Duration::from_millis(RETRY_MS + 500);
                assert!(
                    since.elapsed() <= bound,
                    "{db} has had two leaders for {:?}: A {la:?}, B {lb:?}",
                    since.elapsed()
                );
            }
            if done(&la, &lb) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < within,
                "{what}: not within {within:?}; A leads {la:?}, B leads {lb:?}\nA:\n{}\nB:\n{}",
                a.output(),
                b.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn sql(url: &str, query: &str) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let mut conn = PgConnection::connect(url).await.expect("connect");
        sqlx::raw_sql(sqlx::AssertSqlSafe(query.to_string())).execute(&mut conn).await.expect(query);
    });
}

#[test]
fn leaderships_spread_over_two_replicas_and_come_back_after_a_kill() {
    let cluster = Cluster::start();
    for db in DATABASES {
        sql(&cluster.url("postgres"), &format!("CREATE DATABASE {db}"));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let launch = |replica: &str| {
        let port = free_port();
        let mut launch = Exporter::serve(&spec(dir.path(), port, replica), port).env("RUST_LOG", "info");
        for db in DATABASES {
            launch = launch.env(format!("URL_{db}"), cluster.url(db));
        }
        launch
    };
    let mut watch = Watch { doubled: BTreeMap::new() };
    let settle = Duration::from_secs(15);

    let mut a = launch("a").start();
    a.wait_for("A alone to lead all four", |_| leads(&a).len() == 4);

    let b = launch("b").start();
    let took = watch.until("two each", settle, &a, &b, |la, lb| la.len() == 2 && lb.len() == 2);
    println!("FIGURE ha spread: B joined A (4 databases); two leaderships each after {} ms", took.as_millis());
    // Each replica gives up at most one leadership per round: two rounds, then B's next try.
    assert!(took <= Duration::from_millis(4 * RETRY_MS + 3000), "{took:?}");

    a.kill();
    let took = watch.until("B leads all four", settle, &a, &b, |_, lb| lb.len() == 4);
    let bound = Duration::from_millis(RETRY_MS + INTERVAL_MS);
    println!(
        "FIGURE ha spread failover: after kill -9 of A, B led all four in {} ms (bound {} ms)",
        took.as_millis(),
        bound.as_millis()
    );
    assert!(took <= bound + Duration::from_millis(1500), "{took:?}");

    a.restart();
    let took = watch.until("two each again", settle, &a, &b, |la, lb| la.len() == 2 && lb.len() == 2);
    println!("FIGURE ha spread: A back; two leaderships each after {} ms", took.as_millis());
    // Settled: it stays so (no ping-pong).
    let steady = Instant::now();
    watch.until("a steady spread", settle, &a, &b, |la, lb| {
        assert!(la.len() == 2 && lb.len() == 2, "the spread moved: A {la:?}, B {lb:?}");
        steady.elapsed() > Duration::from_millis(4 * RETRY_MS)
    });
}
