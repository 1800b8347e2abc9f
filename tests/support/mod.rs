//! Shared test harness: a throwaway PostgreSQL cluster started from the machine's PostgreSQL
//! binaries (or the server named by `DATABASE_URL`), fresh databases per test, and the built
//! exporter binary.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// A PostgreSQL server the test owns; stopped (and its files removed) on drop.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub port: u16,
    bindir: PathBuf,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

fn pg_bindir() -> PathBuf {
    let out = Command::new("pg_config").arg("--bindir").output().expect("pg_config (PostgreSQL server binaries) is needed");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

/// Runs a PostgreSQL tool, as the `postgres` user when we are root (initdb refuses root).
fn pg_command(bindir: &Path, tool: &str) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bindir.join(tool));
        c
    } else {
        Command::new(bindir.join(tool))
    }
}

impl Cluster {
    pub fn start() -> Cluster {
        let bindir = pg_bindir();
        let dir = tempfile::Builder::new().prefix("ie-pg-").tempdir().expect("tempdir");
        if is_root() {
            let _ = std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777));
            Command::new("chown").args(["-R", "postgres"]).arg(dir.path()).status().expect("chown");
        }
        let data = dir.path().join("data");
        let status = pg_command(&bindir, "initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "-D"])
            .arg(&data)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("initdb");
        assert!(status.success(), "initdb failed");
        let port = free_port();
        let cluster = Cluster { dir, port, bindir };
        cluster.pg_ctl_start();
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn pg_ctl_start(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            self.port,
            self.dir.path().display()
        );
        let status = pg_command(&self.bindir, "pg_ctl")
            .args(["-D"])
            .arg(self.data())
            .args(["-o", &opts, "-w", "-l"])
            .arg(self.dir.path().join("server.log"))
            .arg("start")
            .stdout(std::process::Stdio::null())
            .status()
            .expect("pg_ctl start");
        assert!(status.success(), "pg_ctl start failed");
    }

    pub fn stop(&self) {
        let _ = pg_command(&self.bindir, "pg_ctl")
            .args(["-D"])
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(std::process::Stdio::null())
            .status();
    }

    pub fn restart(&self) {
        self.pg_ctl_start();
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A fresh database for one test: on `DATABASE_URL`'s server when set, else on a cluster of its own.
pub struct TestDb {
    pub url: String,
    pub _cluster: Option<Cluster>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestDb {
    pub async fn new() -> TestDb {
        let (admin_url, cluster) = match std::env::var("DATABASE_URL") {
            Ok(url) => (url, None),
            Err(_) => {
                let c = Cluster::start();
                (c.url("postgres"), Some(c))
            }
        };
        let name = format!("ie_test_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        let mut admin = PgConnection::connect(&admin_url).await.expect("connect to test server");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.expect("create database");
        let url = replace_database(&admin_url, &name);
        TestDb { url, _cluster: cluster }
    }

    pub async fn execute(&self, sql: &str) {
        let mut conn = PgConnection::connect(&self.url).await.expect("connect");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string())).execute(&mut conn).await.unwrap_or_else(|e| panic!("{e}\n{sql}"));
    }

    /// A single number from a query (the runbook's own SQL, in fidelity tests).
    pub async fn scalar(&self, sql: &str) -> f64 {
        let mut conn = PgConnection::connect(&self.url).await.expect("connect");
        let row: (f64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT ({sql})::float8")))
            .fetch_one(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{sql}"));
        row.0
    }
}

fn replace_database(url: &str, db: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..].find('/').map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{db}", &base[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// The exporter binary cargo built for these tests.
pub fn exporter_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_integration-exporter"))
}

/// The token-refresh runbook's tables with the runbook's columns plus unrelated ones, an enum
/// status, uuid keys, in `schema` (or public), under the given table names.
pub fn token_refresh_schema(schema: &str, tokens: &str, watchers: &str, locks: &str) -> String {
    format!(
        r#"
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE EXTENSION IF NOT EXISTS pgcrypto;
DO $$ BEGIN CREATE TYPE {schema}.watcher_status AS ENUM ('active', 'degraded', 'paused'); EXCEPTION WHEN duplicate_object THEN NULL; END $$;
CREATE TABLE {schema}.{tokens} (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL DEFAULT gen_random_uuid(),
  yacht_id uuid,
  token_purpose text NOT NULL DEFAULT 'read',
  access_token text NOT NULL DEFAULT 'secret-access-token',
  refresh_token text NOT NULL DEFAULT 'secret-refresh-token',
  expires_at timestamptz NOT NULL,
  consecutive_failures integer NOT NULL DEFAULT 0,
  next_retry_at timestamptz,
  last_refresh_error text,
  is_revoked boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now(),
  scopes text[] DEFAULT ARRAY['Mail.Read']
);
CREATE TABLE {schema}.{watchers} (
  id bigserial PRIMARY KEY,
  user_id uuid NOT NULL DEFAULT gen_random_uuid(),
  yacht_id uuid DEFAULT gen_random_uuid(),
  sync_status {schema}.watcher_status NOT NULL DEFAULT 'active',
  last_sync_error text,
  degraded_at timestamptz,
  updated_at timestamptz DEFAULT now(),
  delta_link text
);
CREATE TABLE {schema}.{locks} (
  lock_name text PRIMARY KEY,
  holder text,
  acquired_at timestamptz DEFAULT now(),
  lease_expires_at timestamptz NOT NULL
);
"#
    )
}

/// Runbook-shaped rows: a mix of healthy, expiring, expired, revoked, backed-off and failing
/// tokens with errors of every class, degraded watchers and two locks.
pub fn token_refresh_seed(schema: &str, tokens: &str, watchers: &str, locks: &str) -> String {
    format!(
        r#"
INSERT INTO {schema}.{tokens} (expires_at) SELECT now() + interval '50 minutes' FROM generate_series(1, 40);
INSERT INTO {schema}.{tokens} (expires_at) SELECT now() + interval '5 minutes' FROM generate_series(1, 7);
INSERT INTO {schema}.{tokens} (expires_at) SELECT now() - interval '1 hour' FROM generate_series(1, 4);
INSERT INTO {schema}.{tokens} (expires_at, is_revoked) SELECT now() + interval '3 minutes', true FROM generate_series(1, 3);
INSERT INTO {schema}.{tokens} (expires_at, next_retry_at, consecutive_failures, last_refresh_error)
  SELECT now() + interval '2 hours', now() + interval '90 seconds', 2, 'AADSTS50173: invalid_grant: The provided grant has expired' FROM generate_series(1, 5);
INSERT INTO {schema}.{tokens} (expires_at, next_retry_at, consecutive_failures, last_refresh_error)
  SELECT now() + interval '2 hours', now() + interval '60 seconds', 1, 'HTTP 429 Too Many Requests' FROM generate_series(1, 6);
INSERT INTO {schema}.{tokens} (expires_at, next_retry_at, consecutive_failures, last_refresh_error, is_revoked)
  SELECT now() + interval '2 hours', now() + interval '1 day', 12, 'consent_required: AADSTS65001', true FROM generate_series(1, 2);
INSERT INTO {schema}.{tokens} (expires_at, next_retry_at, consecutive_failures, last_refresh_error)
  SELECT now() + interval '2 hours', now() - interval '5 minutes', 11, '503 Service Unavailable' FROM generate_series(1, 3);
INSERT INTO {schema}.{tokens} (expires_at, last_refresh_error) VALUES (now() + interval '2 hours', 'connection reset by peer');
INSERT INTO {schema}.{watchers} (sync_status) SELECT 'active' FROM generate_series(1, 30);
INSERT INTO {schema}.{watchers} (sync_status, degraded_at, last_sync_error) SELECT 'degraded', now(), 'token refresh failed' FROM generate_series(1, 4);
INSERT INTO {schema}.{watchers} (sync_status) SELECT 'paused' FROM generate_series(1, 2);
INSERT INTO {schema}.{locks} VALUES ('token_refresh_heartbeat', 'worker-1', now() - interval '20 minutes', now() - interval '10 minutes');
INSERT INTO {schema}.{locks} VALUES ('mailbox_sync', 'worker-2', now(), now() + interval '2 minutes');
"#
    )
}
