//! High availability (`ha.enabled`): two exporters against one database elect one leader through
//! a session advisory lock; only the leader queries (counted by `pg_stat_statements`), the
//! standby exports `integration_exporter_leader 0` and no SQL series while its HTTP signal keeps
//! running; a leader whose lock session is cut stands by; `kill -9` of the leader hands the
//! queries to the standby within retry + interval (printed as a FIGURE line). Through PgBouncer
//! in transaction mode the exporter refuses to start, naming the pooler and the fix; in session
//! mode it leads.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::postgres::PgConnection;
use support::exporter::Exporter;
use support::http::Metrics;
use support::process::{Proc, program};
use support::{Cluster, HttpServer, Reply, free_port, wait};

const RETRY_MS: u64 = 500;
const INTERVAL_MS: u64 = 500;
const PROBE: &str = "integration_exporter_query_success{signal=\"t.probe\"}";

fn spec(dir: &Path, port: u16, http: &str) -> PathBuf {
    spec_with(dir, port, http, "")
}

/// `ha_extra`: more keys of `ha`.
fn spec_with(dir: &Path, port: u16, http: &str, ha_extra: &str) -> PathBuf {
    let text = format!(
        "listen: 127.0.0.1:{port}
database: {{url_env: IE_TEST_DSN, connect_timeout: 1s}}
ha: {{enabled: true, retry: {RETRY_MS}ms{ha_extra}}}
poll_defaults: {{interval: {INTERVAL_MS}ms, timeout: 1s}}
signals:
  - id: t.probe
    title: Probe
    runbook_section: https://example.com/runbook#probe
    metrics:
      - {{name: t_probe_rows, type: gauge, help: Rows.}}
    source:
      sql:
        query: SELECT count(*) AS value FROM ha_probe
  - id: t.http
    title: Http
    runbook_section: https://example.com/runbook#http
    metrics:
      - {{name: t_http_up, type: gauge, help: Up.}}
    source:
      http:
        url: {http}
        interval: {INTERVAL_MS}ms
        timeout: 1s
        values: [{{metric: t_http_up, path: up}}]
"
    );
    let path = dir.join("spec.yaml");
    std::fs::write(&path, text).expect("spec");
    path
}

/// Runs SQL from a synchronous test.
fn sql(url: &str, query: &str) -> Vec<String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let mut conn = PgConnection::connect(url).await.expect("connect");
        let rows: Vec<(Option<String>,)> = sqlx::query_as(sqlx::AssertSqlSafe(query.to_string()))
            .fetch_all(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{query}"));
        rows.into_iter().map(|r| r.0.unwrap_or_default()).collect()
    })
}

fn leader_series(m: &Metrics) -> Option<f64> {
    m.series.iter().find(|(k, _)| k.starts_with("integration_exporter_leader{")).map(|(_, v)| *v)
}

/// Which of the replicas leads once they agree: exactly one says 1, the others 0.
fn one_leader(replicas: &[&Exporter]) -> Option<(usize, Vec<Metrics>)> {
    let scrapes: Vec<Metrics> = replicas.iter().map(|r| r.scrape()).collect::<Option<_>>()?;
    let leaders: Vec<usize> = (0..scrapes.len()).filter(|&i| leader_series(&scrapes[i]) == Some(1.0)).collect();
    let standbys = scrapes.iter().filter(|m| leader_series(m) == Some(0.0)).count();
    match leaders.as_slice() {
        [one] if standbys == replicas.len() - 1 && scrapes[*one].get(PROBE) == Some(1.0) => Some((*one, scrapes)),
        _ => None,
    }
}

fn probe_calls(admin: &str) -> f64 {
    sql(
        admin,
        "SELECT coalesce(sum(calls), 0)::text FROM pg_stat_statements WHERE query LIKE '%FROM ha_probe%' \
         AND query NOT LIKE '%pg_stat_statements%'",
    )[0]
    .parse()
    .expect("a count")
}

fn now_unix() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}

#[test]
fn two_replicas_one_leader_one_replicas_load_and_failover() {
    let cluster = Cluster::start();
    let admin = cluster.url("postgres");
    sql(&admin, "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'");
    cluster.stop();
    cluster.restart();
    sql(&admin, "CREATE EXTENSION pg_stat_statements");
    sql(&admin, "CREATE TABLE ha_probe (id int)");
    let http = HttpServer::start(Reply::json(r#"{"up": 1}"#));
    let dir = tempfile::tempdir().expect("tempdir");
    let (port_a, port_b) = (free_port(), free_port());
    let launch = |port: u16| {
        Exporter::serve(&spec(&dir.path().join(port.to_string()), port, &http.url("/q")), port)
            .env("IE_TEST_DSN", &admin)
            .env("RUST_LOG", "info")
    };
    std::fs::create_dir(dir.path().join(port_a.to_string())).unwrap();
    std::fs::create_dir(dir.path().join(port_b.to_string())).unwrap();
    let mut a = launch(port_a).start();
    let mut b = launch(port_b).start();

    // Exactly one leader; the standby shows no SQL series, its HTTP signal and database health.
    let (leader, scrapes) = wait::until(
        "one leader and one standby",
        Duration::from_secs(20),
        || (one_leader(&[&a, &b]), a.output(), b.output()),
        |(found, ..)| found.clone(),
    );
    let standby = &scrapes[1 - leader];
    assert!(!standby.text.contains("t_probe_rows") && !standby.text.contains("signal=\"t.probe\""), "{standby:?}");
    for m in &scrapes {
        assert_eq!(m.get("t_http_up"), Some(1.0), "HTTP runs on every replica: {m:?}");
        assert!(m.series.iter().any(|(k, v)| k.starts_with("integration_exporter_database_up{") && *v == 1.0), "{m:?}");
    }
    assert!(scrapes[leader].text.contains("t_probe_rows"), "{:?}", scrapes[leader]);

    // The database sees one replica's queries: one per interval.
    sql(&admin, "SELECT pg_stat_statements_reset()::text");
    let window = Duration::from_secs(10);
    std::thread::sleep(window);
    let calls = probe_calls(&admin);
    let one_replica = window.as_millis() as f64 / INTERVAL_MS as f64;
    println!(
        "FIGURE ha load: two replicas ran the probe query {calls} times in {} s (one replica at {INTERVAL_MS} ms: {one_replica})",
        window.as_secs()
    );
    assert!((calls - one_replica).abs() <= 3.0, "{calls} probe queries in {window:?}, one replica runs {one_replica}");

    // A leader whose lock session is cut stands by at once; one replica leads again.
    let lock_holder = "SELECT pid::text FROM pg_locks WHERE locktype = 'advisory' AND granted";
    let pid = sql(&admin, lock_holder);
    assert_eq!(pid.len(), 1, "one advisory lock: {pid:?}");
    sql(&admin, &format!("SELECT pg_terminate_backend({})::text", pid[0]));
    let replicas = [&a, &b];
    wait::until(
        "the cut leader to say it stands by",
        Duration::from_secs(10),
        || replicas[leader].output(),
        |o| o.contains("lost the lock session").then_some(()),
    );
    let (leader, _) = wait::until(
        "one leader again",
        Duration::from_secs(10),
        || (one_leader(&[&a, &b]), a.output(), b.output()),
        |(found, ..)| found.clone(),
    );

    // kill -9 of the leader: the standby serves the probe within retry + interval.
    let killed = Instant::now();
    let killed_unix = now_unix();
    let survivor = if leader == 0 {
        a.kill();
        &b
    } else {
        b.kill();
        &a
    };
    let took = wait::until(
        "the standby to serve the SQL signal",
        Duration::from_secs(15),
        || (survivor.scrape(), survivor.output()),
        |(m, _)| {
            let m = m.as_ref()?;
            let fresh = m.get("integration_exporter_query_last_success_timestamp_seconds{signal=\"t.probe\"}")?;
            (leader_series(m) == Some(1.0) && m.get("t_probe_rows").is_some() && fresh > killed_unix)
                .then(|| killed.elapsed())
        },
    );
    let bound = Duration::from_millis(RETRY_MS + INTERVAL_MS);
    println!(
        "FIGURE ha failover: after kill -9 of the leader the standby served the SQL signal in {} ms (retry {RETRY_MS} ms + interval {INTERVAL_MS} ms = {} ms)",
        took.as_millis(),
        bound.as_millis()
    );
    // The bound plus scheduling slack on a shared machine.
    assert!(took <= bound + Duration::from_millis(1500), "failover took {took:?}");
}

/// The database down: the leader's lock session is gone, so no replica leads (none queries), and
/// every replica, standby included, reports the database unreachable (`_database_up 0`, connect
/// errors counted: what the database-unreachable alert reads) without any query series; back up,
/// one replica leads again.
#[test]
fn with_the_database_down_every_replica_reports_it_and_none_leads() {
    let cluster = Cluster::start();
    let admin = cluster.url("postgres");
    sql(&admin, "CREATE TABLE ha_probe (id int)");
    let http = HttpServer::start(Reply::json(r#"{"up": 1}"#));
    let dir = tempfile::tempdir().expect("tempdir");
    let replicas: Vec<Exporter> = (0..2)
        .map(|n| {
            let port = free_port();
            let sub = dir.path().join(n.to_string());
            std::fs::create_dir(&sub).unwrap();
            // A negative key: its halves in `pg_locks` are oids above int4's range.
            let spec = spec_with(&sub, port, &http.url("/q"), ", lock_key: -42");
            Exporter::serve(&spec, port).env("IE_TEST_DSN", &admin).start()
        })
        .collect();
    let refs: Vec<&Exporter> = replicas.iter().collect();
    wait::until("one leader", Duration::from_secs(20), || one_leader(&refs).map(|(n, _)| n), Option::clone);

    cluster.stop();
    for replica in &replicas {
        replica.wait_for("the database reported down, no leadership, no query series", |m| {
            let down = m.series.iter().any(|(k, v)| k.starts_with("integration_exporter_database_up{") && *v == 0.0);
            let connect_errors = m.series.iter().any(|(k, v)| {
                k.starts_with("integration_exporter_database_errors_total{") && k.contains("connect") && *v > 0.0
            });
            down && connect_errors
                && leader_series(m) == Some(0.0)
                && m.get(PROBE).is_none()
                && m.get("t_http_up") == Some(1.0)
        });
    }
    cluster.restart();
    wait::until("one leader again", Duration::from_secs(20), || one_leader(&refs).map(|(n, _)| n), Option::clone);
}

/// PgBouncer in front of `cluster`, in `mode`; stopped on drop.
struct Bouncer {
    port: u16,
    _proc: Proc,
    _dir: tempfile::TempDir,
}

impl Bouncer {
    fn start(cluster: &Cluster, mode: &str) -> Bouncer {
        let dir = tempfile::Builder::new().prefix("ie-pgbouncer-").tempdir().expect("tempdir");
        let port = free_port();
        let d = dir.path();
        std::fs::write(d.join("users.txt"), "\"postgres\" \"\"\n").unwrap();
        let ini = format!(
            "[databases]\n* = host=127.0.0.1 port={}\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\n\
             unix_socket_dir =\nauth_type = trust\nauth_file = {}\npool_mode = {mode}\n\
             ignore_startup_parameters = extra_float_digits,options\nserver_login_retry = 1\n",
            cluster.port,
            d.join("users.txt").display()
        );
        std::fs::write(d.join("pgbouncer.ini"), ini).unwrap();
        let mut command = Command::new(bouncer_path());
        // PgBouncer refuses to run as root; the process itself, not a runuser parent, is started
        // so that killing it on drop frees its server connections.
        if is_root() {
            use std::os::unix::fs::PermissionsExt;
            use std::os::unix::process::CommandExt;
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o777)).unwrap();
            command.uid(id(&["-u", "postgres"])).gid(id(&["-g", "postgres"]));
        }
        command.arg(d.join("pgbouncer.ini"));
        let proc = Proc::start("pgbouncer", &d.join("output"), &mut command);
        wait::until(
            "pgbouncer to listen",
            Duration::from_secs(10),
            || support::http::listening(port),
            |up| up.then_some(()),
        );
        Bouncer { port, _proc: proc, _dir: dir }
    }
}

fn is_root() -> bool {
    id(&["-u"]) == 0
}

fn id(args: &[&str]) -> u32 {
    let out = program("id").args(args).output().expect("id");
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("a numeric id")
}

/// Debian installs it in /usr/sbin, which a user's PATH may lack.
fn bouncer_path() -> PathBuf {
    let sbin = PathBuf::from("/usr/sbin/pgbouncer");
    if support::process::is_executable(&sbin) {
        return sbin;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("pgbouncer"))
        .find(|p| support::process::is_executable(p))
        .unwrap_or_else(|| support::process::missing("pgbouncer"))
}

#[test]
fn a_transaction_pooler_is_refused_and_a_session_pooler_is_not() {
    let cluster = Cluster::start();
    sql(&cluster.url("postgres"), "CREATE TABLE ha_probe (id int)");
    let http = HttpServer::start(Reply::json(r#"{"up": 1}"#));
    let dir = tempfile::tempdir().expect("tempdir");

    let transaction = Bouncer::start(&cluster, "transaction");
    let port = free_port();
    let dsn = format!("postgres://postgres@127.0.0.1:{}/postgres", transaction.port);
    let (status, output) =
        Exporter::serve(&spec(dir.path(), port, &http.url("/q")), port).env("IE_TEST_DSN", &dsn).exit();
    assert!(!status.success(), "{output}");
    for needle in ["pooler that does not keep a session", "pool_mode = transaction", "pool_mode = session"] {
        assert!(output.contains(needle), "no `{needle}` in:\n{output}");
    }

    // The lock the refused exporter took stays with a server connection of the transaction pooler
    // after the exporter is gone (what makes such a pooler unfit): only stopping it frees the lock.
    drop(transaction);
    let session = Bouncer::start(&cluster, "session");
    let dsn = format!("postgres://postgres@127.0.0.1:{}/postgres", session.port);
    let exporter = Exporter::serve(&spec(dir.path(), port, &http.url("/q")), port).env("IE_TEST_DSN", &dsn).start();
    exporter.wait_for("the replica to lead through a session pooler", |m| {
        leader_series(m) == Some(1.0) && m.get(PROBE) == Some(1.0)
    });
}

/// A database down at start cannot be checked then: the check runs when the lock is first taken,
/// and a transaction pooler found then leaves that replica standing by for good, saying why.
#[test]
fn a_transaction_pooler_found_after_start_never_leads() {
    let cluster = Cluster::start();
    sql(&cluster.url("postgres"), "CREATE TABLE ha_probe (id int)");
    let http = HttpServer::start(Reply::json(r#"{"up": 1}"#));
    let dir = tempfile::tempdir().expect("tempdir");
    let bouncer = Bouncer::start(&cluster, "transaction");
    cluster.stop();
    let port = free_port();
    let dsn = format!("postgres://postgres@127.0.0.1:{}/postgres", bouncer.port);
    let exporter = Exporter::serve(&spec(dir.path(), port, &http.url("/q")), port).env("IE_TEST_DSN", &dsn).start();
    exporter.wait_output("the start check put off", |o| o.contains("cannot check for a transaction pooler at start"));
    cluster.restart();
    exporter.wait_output("the pooler refused", |o| o.contains("pooler that does not keep a session"));
    std::thread::sleep(Duration::from_millis(3 * RETRY_MS));
    let m = exporter.metrics();
    assert_eq!(leader_series(&m), Some(0.0), "{m:?}");
    assert!(m.get(PROBE).is_none() && !m.text.contains("t_probe_rows"), "{m:?}");
}
