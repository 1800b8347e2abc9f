//! The database password never reaches any output of the real binary: `serve`'s and
//! `check --database`'s stdout and stderr (logging at debug level, so the driver's own events
//! show too), the landing page, `/metrics` and `/ready`. Whether the login works, is refused,
//! finds no server or the connection string does not parse, and however the password is written:
//! raw in the URL with `/ @ ? #` in it, percent-encoded, as `?password=`, in a libpq string.

use crate::support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sqlx::Connection;
use support::exporter::Exporter;
use support::http::{self, Metrics};
use support::wait::{self, Worker};
use support::{Cluster, exporter_bin, free_port};

/// Each has the characters that end a URL part, quotes, escapes or non-ASCII, and no 3-character
/// piece that the exporter would print anyway (no digit runs: timestamps have every one).
const PASSWORDS: &[&str] = &["Zq8/x+Kk", "Qw@9#Xv?Lp/", "Hr8 Uu=Vv'Ww\\", "Jk%4aYw:Tt@", "ÄöÜ€ßЖq"];

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

fn assert_no_piece(password: &str, output: &str, context: &str) {
    let chars: Vec<char> = password.chars().collect();
    for window in chars.windows(3) {
        let piece: String = window.iter().collect();
        assert!(!output.contains(&piece), "{context}: `{piece}` of the password is in the output:\n{output}");
    }
}

fn spec(dir: &Path, port: u16) -> std::path::PathBuf {
    let path = dir.join("spec.yaml");
    let text = format!(
        "listen: 127.0.0.1:{port}
database: {{url_env: IE_TEST_DSN, connect_timeout: 10s}}
poll_defaults: {{interval: 1s, timeout: 500ms}}
signals:
  - id: t.one
    title: One
    runbook_section: https://example.com/runbook#one
    metrics:
      - {{name: t_one, type: gauge, help: One.}}
    source:
      sql:
        query: SELECT 1 AS value
"
    );
    std::fs::write(&path, text).expect("spec");
    path
}

/// `check --database` with the connection string; its whole output.
fn check(spec: &Path, dsn: &str) -> String {
    let out = Command::new(exporter_bin())
        .args(["check", "--database", "--config"])
        .arg(spec)
        .env("IE_TEST_DSN", dsn)
        .env("RUST_LOG", "debug")
        .output()
        .expect("run check");
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// `serve` with the connection string until its first query ran (or it exited): everything it
/// printed and served, and whether the query succeeded.
fn serve(spec: &Path, port: u16, dsn: &str) -> (String, Option<f64>) {
    let mut running = Exporter::serve(spec, port).env("IE_TEST_DSN", dsn).env("RUST_LOG", "debug").spawn();
    let mut served = String::new();
    let mut success = None;
    let up = || (running.exited(), http::listening(port));
    let listening = wait::until("the exporter to listen or exit", Duration::from_secs(20), up, |&(exited, up)| {
        (exited.is_some() || up).then_some(up)
    });
    if listening {
        // A debug build logging in with SCRAM on a loaded machine can take seconds; a refused
        // login never gets ready.
        let ready = || http::get(port, "/ready").map(|r| r.status);
        let _ =
            wait::poll(Duration::from_secs(20), Duration::from_millis(20), ready, |s| (*s == Some(200)).then_some(()));
        for path in ["/", "/metrics", "/ready", "/healthz"] {
            let body = http::get(port, path).map(|r| r.text()).unwrap_or_default();
            if path == "/metrics" {
                success = Metrics::parse(&body).get("integration_exporter_query_success{signal=\"t.one\"}");
            }
            served.push_str(&body);
        }
    }
    (format!("{}{served}", running.stop()), success)
}

/// Every connection string form for one password (login role `user`), checked with both commands.
fn try_every_form(password: &str, user: &str, db: u16) {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let spec = spec(dir.path(), port);
    let dead = free_port();
    let encoded = percent_encode(password);
    let quoted = password.replace('\\', "\\\\").replace('\'', "\\'");
    // (connection string, whether the login must work)
    let cases = [
        // Raw: `%4a` is read as an escape, as libpq would, so that one is refused.
        (format!("postgres://{user}:{password}@127.0.0.1:{db}/postgres"), !password.contains('%')),
        (format!("postgresql://{user}:{encoded}@127.0.0.1:{db}/postgres?sslmode=disable"), true),
        (format!("postgres://{user}@127.0.0.1:{db}/postgres?password={encoded}"), true),
        (format!("host=127.0.0.1 port={db} user={user} password='{quoted}' dbname=postgres"), true),
        (format!("postgres://{user}:{encoded}Nope@127.0.0.1:{db}/postgres"), false),
        (format!("postgres://{user}:{password}@127.0.0.1:{dead}/postgres"), false),
        (format!("postgres://{user}:{password}@127.0.0.1:{db}/postgres?sslmode=sometimes"), false),
        (format!("postgres://{user}:{password}@not a host/postgres"), false),
    ];
    for (dsn, logs_in) in &cases {
        let context = format!("{password:?} in {dsn:?}");
        assert_no_piece(password, &check(&spec, dsn), &format!("check --database, {context}"));
        let (output, success) = serve(&spec, port, dsn);
        assert_no_piece(password, &output, &format!("serve, {context}"));
        if *logs_in {
            assert_eq!(success, Some(1.0), "{context}: the login must work\n{output}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_output_shows_any_piece_of_the_password() {
    let cluster = Cluster::start();
    cluster.require_passwords();
    let mut admin = sqlx::PgConnection::connect(&cluster.url("postgres")).await.expect("connect");
    for (i, password) in PASSWORDS.iter().enumerate() {
        let sql = format!("CREATE ROLE app{i} LOGIN PASSWORD '{}'", password.replace('\'', "''"));
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut admin).await.expect("role");
    }
    // One thread per password: the cases mostly wait on processes and sockets.
    let db = cluster.port;
    let threads: Vec<_> = PASSWORDS
        .iter()
        .enumerate()
        .map(|(i, password)| {
            Worker::spawn(&format!("app{i}"), move |_| try_every_form(password, &format!("app{i}"), db))
        })
        .collect();
    // Every wait of a case is bounded: this catches a thread stuck elsewhere.
    Worker::join_all(threads, Duration::from_secs(900));
}
