//! Leaderships spread over replicas (`ha` with several databases): four databases on one
//! cluster; replica A alone leads all four; B joins and within a bound each leads two; `kill -9`
//! of A hands its two to B within retry + interval; A back, two each again. Both replicas'
//! `integration_exporter_leader{database}` are sampled all along: no database has two leaders
//! for longer than one check. A third replica joining two is given a leadership (2, 1, 1).

use crate::support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::exporter::{Exporter, Launch};
use support::{Cluster, free_port, sql};

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

/// Samples the replicas until `done` holds of their leaderships, failing past `within` or when a
/// database has had two leaders for longer than one check. How long it took.
struct Watch {
    /// Since when each database has had two leaders.
    doubled: BTreeMap<String, Instant>,
}

impl Watch {
    fn until(
        &mut self,
        what: &str,
        within: Duration,
        replicas: &[&Exporter],
        done: impl Fn(&[Vec<String>]) -> bool,
    ) -> Duration {
        let started = Instant::now();
        loop {
            let led: Vec<Vec<String>> = replicas.iter().map(|r| leads(r)).collect();
            for db in DATABASES {
                if led.iter().filter(|l| l.iter().any(|d| d == db)).count() < 2 {
                    self.doubled.remove(db);
                    continue;
                }
                let since = *self.doubled.entry(db.to_string()).or_insert_with(Instant::now);
                // One check, plus the time between two scrapes on a busy machine.
                let bound = Duration::from_millis(RETRY_MS + 500);
                assert!(since.elapsed() <= bound, "{db} has had two leaders for {:?}: {led:?}", since.elapsed());
            }
            if done(&led) {
                return started.elapsed();
            }
            if started.elapsed() >= within {
                let outputs: Vec<String> = replicas.iter().map(|r| r.output()).collect();
                panic!("{what}: not within {within:?}; leaderships {led:?}\n{}", outputs.join("\n----\n"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// How many databases each replica leads.
/// A cluster holding every database of [`DATABASES`].
fn cluster_with_databases() -> Cluster {
    let cluster = Cluster::start();
    for db in DATABASES {
        sql(&cluster.url("postgres"), &format!("CREATE DATABASE {db}"));
    }
    cluster
}

/// Replica `name` on its own port, reading every database of `cluster`.
fn replica(cluster: &Cluster, dir: &Path, name: &str) -> Launch {
    let port = free_port();
    let mut launch = Exporter::serve(&spec(dir, port, name), port);
    for db in DATABASES {
        launch = launch.env(format!("URL_{db}"), cluster.url(db));
    }
    launch
}

fn counts(led: &[Vec<String>]) -> Vec<usize> {
    led.iter().map(Vec::len).collect()
}

#[test]
fn leaderships_spread_over_two_replicas_and_come_back_after_a_kill() {
    let cluster = cluster_with_databases();
    let dir = tempfile::tempdir().expect("tempdir");
    let launch = |name: &str| replica(&cluster, dir.path(), name).env("RUST_LOG", "info");
    let mut watch = Watch { doubled: BTreeMap::new() };
    let settle = Duration::from_secs(15);

    let mut a = launch("a").start();
    a.wait_for("A alone to lead all four", |_| leads(&a).len() == 4);

    let b = launch("b").start();
    let took = watch.until("two each", settle, &[&a, &b], |led| counts(led) == [2, 2]);
    println!("FIGURE ha spread: B joined A (4 databases); two leaderships each after {} ms", took.as_millis());
    // Each replica gives up at most one leadership per round: two rounds, then B's next try.
    assert!(took <= Duration::from_millis(4 * RETRY_MS + 3000), "{took:?}");

    a.kill();
    let took = watch.until("B leads all four", settle, &[&a, &b], |led| counts(led) == [0, 4]);
    let bound = Duration::from_millis(RETRY_MS + INTERVAL_MS);
    println!(
        "FIGURE ha spread failover: after kill -9 of A, B led all four in {} ms (bound {} ms)",
        took.as_millis(),
        bound.as_millis()
    );
    assert!(took <= bound + Duration::from_millis(1500), "{took:?}");

    a.restart();
    let took = watch.until("two each again", settle, &[&a, &b], |led| counts(led) == [2, 2]);
    println!("FIGURE ha spread: A back; two leaderships each after {} ms", took.as_millis());
    // Settled: it stays so (no ping-pong).
    let steady = Instant::now();
    watch.until("a steady spread", settle, &[&a, &b], |led| {
        assert_eq!(counts(led), [2, 2], "the spread moved: {led:?}");
        steady.elapsed() > Duration::from_millis(4 * RETRY_MS)
    });
}

/// Three replicas, four databases: a share of `ceil(4/3) = 2` lets A and B keep two each, so C
/// leading none asks (the want lock) and one of them gives it one: 2, 1, 1 in some order.
#[test]
fn a_third_replica_under_its_floor_is_given_a_leadership() {
    let cluster = cluster_with_databases();
    let dir = tempfile::tempdir().expect("tempdir");
    let launch = |name: &str| replica(&cluster, dir.path(), name).start();
    let mut watch = Watch { doubled: BTreeMap::new() };
    let settle = Duration::from_secs(15);
    let (a, b) = (launch("a"), launch("b"));
    watch.until("two each", settle, &[&a, &b], |led| counts(led) == [2, 2]);
    let c = launch("c");
    let took = watch.until("2, 1, 1", settle, &[&a, &b, &c], |led| {
        let mut n = counts(led);
        n.sort();
        n == [1, 1, 2]
    });
    println!("FIGURE ha spread: a third replica joined two (4 databases); 2, 1, 1 after {} ms", took.as_millis());
    let steady = Instant::now();
    watch.until("a steady spread", settle, &[&a, &b, &c], |led| {
        let mut n = counts(led);
        n.sort();
        assert_eq!(n, [1, 1, 2], "the spread moved: {led:?}");
        steady.elapsed() > Duration::from_millis(4 * RETRY_MS)
    });
}
