//! Shared test harness: a throwaway PostgreSQL cluster started from the machine's PostgreSQL
//! binaries (or the server named by `DATABASE_URL`), fresh databases per test, the built exporter
//! binary and the programs beside it (`exporter`, `process`), HTTP (`http`) and waiting (`wait`).

pub mod alerting;
pub mod exporter;
pub mod fidelity;
pub mod http;
pub mod lines;
pub mod pg_tls;
pub mod process;
pub mod proxy;
pub mod wait;

pub use process::program;

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
    let out = program("pg_config").arg("--bindir").output().expect("pg_config");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn is_root() -> bool {
    program("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

/// Runs a PostgreSQL tool, as the `postgres` user when we are root (initdb refuses root).
fn pg_command(bindir: &Path, tool: &str) -> Command {
    let path = bindir.join(tool);
    if !process::is_executable(&path) {
        process::missing(&path.display().to_string());
    }
    if is_root() {
        let mut c = program("runuser");
        c.args(["-u", "postgres", "--"]).arg(path);
        c
    } else {
        let mut c = Command::new(path);
        c.stdin(std::process::Stdio::null());
        c
    }
}

impl Cluster {
    pub fn start() -> Cluster {
        let cluster = Cluster::init();
        cluster.pg_ctl_start();
        cluster
    }

    /// A cluster created but not started, for a test that configures it first.
    fn init() -> Cluster {
        let bindir = pg_bindir();
        let dir = tempfile::Builder::new().prefix("ie-pg-").tempdir().expect("tempdir");
        if is_root() {
            let _ = std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777));
            program("chown").args(["-R", "postgres"]).arg(dir.path()).status().expect("chown");
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
        Cluster { dir, port, bindir }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn pg_ctl_start(&self) {
        // fsync off is safe (the machine does not crash), but commits stay synchronous: tests stop
        // the server with `-m immediate` to play an outage, and a committed row must survive it.
        let opts =
            format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.dir.path().display());
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

    /// Logins over TCP need a password (SCRAM), except the `postgres` superuser the harness uses.
    pub fn require_passwords(&self) {
        let hba =
            "local all all trust\nhost all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n";
        std::fs::write(self.data().join("pg_hba.conf"), hba).expect("write pg_hba.conf");
        let status = pg_command(&self.bindir, "pg_ctl")
            .args(["-D"])
            .arg(self.data())
            .arg("reload")
            .stdout(std::process::Stdio::null())
            .status()
            .expect("pg_ctl reload");
        assert!(status.success(), "pg_ctl reload failed");
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
    /// The cluster this database lives on, for tests that stop and start the server; such tests
    /// need the harness's own cluster, not `DATABASE_URL`'s server.
    pub fn cluster(&self) -> &Cluster {
        self._cluster.as_ref().expect("this test stops the database server: run it without DATABASE_URL")
    }
}

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
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create database");
        let url = replace_database(&admin_url, &name);
        TestDb { url, _cluster: cluster }
    }

    pub async fn execute(&self, sql: &str) {
        let mut conn = PgConnection::connect(&self.url).await.expect("connect");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{sql}"));
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
/// Runs SQL statements (one or several, separated by `;`) from a synchronous test.
pub fn sql(url: &str, query: &str) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let mut conn = PgConnection::connect(url).await.expect("connect");
        sqlx::raw_sql(sqlx::AssertSqlSafe(query.to_string())).execute(&mut conn).await.expect(query);
    });
}

pub fn exporter_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_integration-exporter"))
}

/// What the test HTTP server answers.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    /// Wait this long before answering (a slow or hung endpoint).
    pub delay: std::time::Duration,
}

impl Reply {
    pub fn json(body: &str) -> Reply {
        Reply { status: 200, body: body.to_string(), delay: std::time::Duration::ZERO }
    }
}

/// A stand-in answering every request with the current [`Reply`].
pub struct HttpServer {
    pub addr: std::net::SocketAddr,
    server: http::StandIn,
    reply: std::sync::Arc<std::sync::Mutex<Reply>>,
}

impl HttpServer {
    pub fn start(reply: Reply) -> HttpServer {
        let reply = std::sync::Arc::new(std::sync::Mutex::new(reply));
        let current = reply.clone();
        let server = http::StandIn::start(move |_| {
            let reply = current.lock().unwrap().clone();
            std::thread::sleep(reply.delay);
            (reply.status, reply.body)
        });
        HttpServer { addr: server.addr, server, reply }
    }

    pub fn set(&self, reply: Reply) {
        *self.reply.lock().unwrap() = reply;
    }

    pub fn requests(&self) -> Vec<http::Request> {
        self.server.requests()
    }

    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }
}

/// `jq PATH` on a JSON text, for the simple `.a.b` paths the runbooks use.
pub fn jq(body: &str, path: &str) -> f64 {
    let doc: serde_json::Value = serde_json::from_str(body).expect("json");
    let pointer = path.replace('.', "/");
    doc.pointer(&pointer).and_then(serde_json::Value::as_f64).unwrap_or_else(|| panic!("jq {path}: no number"))
}

impl TestDb {
    /// Rows of (text, text, float8), for runbook queries that group by two columns.
    pub async fn rows(&self, sql: &str) -> Vec<(String, String, f64)> {
        let mut conn = PgConnection::connect(&self.url).await.expect("connect");
        sqlx::query_as(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_all(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{sql}"))
    }
}

/// One pack's demo SQL (`demo/<pack>/schema.sql` and `seed.sql`): templates whose `{name}`
/// placeholders take a schema and table or column names, and the demo's own values for them.
struct PackSql {
    pack: &'static str,
    schema: &'static str,
    seed: &'static str,
    defaults: &'static [(&'static str, &'static str)],
}

/// Every pack with demo tables; tests fill them under other names to prove the params work.
const PACK_SQL: &[PackSql] = &[
    PackSql {
        pack: "token_refresh",
        schema: include_str!("../../../demo/token_refresh/schema.sql"),
        seed: include_str!("../../../demo/token_refresh/seed.sql"),
        defaults: &[
            ("schema", "public"),
            ("tokens", "auth_microsoft_tokens"),
            ("watchers", "email_watchers"),
            ("locks", "worker_locks"),
        ],
    },
    PackSql {
        pack: "calendar_sync",
        schema: include_str!("../../../demo/calendar_sync/schema.sql"),
        seed: include_str!("../../../demo/calendar_sync/seed.sql"),
        defaults: &[("schema", "public")],
    },
    PackSql {
        pack: "etl_token_monitoring",
        schema: include_str!("../../../demo/etl_token_monitoring/schema.sql"),
        seed: include_str!("../../../demo/etl_token_monitoring/seed.sql"),
        defaults: &[("schema", "marketing")],
    },
    PackSql {
        pack: "microsoft_integration",
        schema: include_str!("../../../demo/microsoft_integration/schema.sql"),
        seed: include_str!("../../../demo/microsoft_integration/seed.sql"),
        defaults: &[
            ("schema", "public"),
            ("subscriptions", "graph_subscriptions"),
            ("expires", "expiration_date_time"),
            ("resource", "resource"),
        ],
    },
];

fn pack(name: &str) -> &'static PackSql {
    PACK_SQL.iter().find(|p| p.pack == name).unwrap_or_else(|| panic!("no demo SQL for pack {name}"))
}

/// Fills a template with `names`, then the pack's defaults. A name the pack has no placeholder
/// for is a mistake in the test, not something to ignore.
fn fill(sql: &PackSql, template: &str, names: &[(&str, &str)]) -> String {
    for (key, _) in names {
        assert!(sql.defaults.iter().any(|(k, _)| k == key), "pack {} has no placeholder {{{key}}}", sql.pack);
    }
    let mut out = template.to_string();
    for (key, value) in names.iter().chain(sql.defaults) {
        out = out.replace(&format!("{{{key}}}"), value);
    }
    out
}

/// A pack's demo tables, under the demo's names except those given (`("schema", "mail")` ...).
pub fn pack_schema(pack_name: &str, names: &[(&str, &str)]) -> String {
    let sql = pack(pack_name);
    fill(sql, sql.schema, names)
}

/// A pack's runbook-shaped demo rows, under the names [`pack_schema`] gave the tables.
pub fn pack_seed(pack_name: &str, names: &[(&str, &str)]) -> String {
    let sql = pack(pack_name);
    fill(sql, sql.seed, names)
}

/// A pack's demo tables and rows.
pub fn pack_sql(pack_name: &str, names: &[(&str, &str)]) -> String {
    format!("{}\n{}", pack_schema(pack_name, names), pack_seed(pack_name, names))
}

/// What `promtool check metrics` says about an exposition: empty when it finds nothing.
pub fn promtool_check_metrics(exposition: &str) -> String {
    use std::io::Write;
    use std::process::Stdio;
    let mut promtool = program("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    promtool.stdin.take().expect("stdin").write_all(exposition.as_bytes()).expect("write");
    let out = promtool.wait_with_output().expect("promtool");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() { said.trim().to_string() } else { format!("exit {}: {said}", out.status) }
}

/// A spec body with one log signal of its own: lines containing `tick` count in `app_ticks_total`.
/// It needs no database; tests prepend `listen:` and whatever else they need.
pub fn ticks_spec(paths: &str) -> String {
    format!(
        "logs:
  app:
    paths: [{paths}]
signals:
  - id: app.ticks
    title: Ticks
    runbook_section: https://example.com/runbook#ticks
    metrics:
      - {{name: app_ticks_total, type: counter, help: Tick lines.}}
    source:
      log:
        log: app
        rules:
          - {{match: tick, metric: app_ticks_total, action: inc}}
"
    )
}

/// The head of a spec for the tests that run the real Prometheus and Alertmanager: the exporter
/// on `exporter_port` with its database from env `database_env`, polling every second,
/// Alertmanager notifying the webhook on `hook` at once, and the token refresh pack with its
/// windows and `for` cut to seconds. The test adds the other packs.
pub fn fast_alerting_spec_head(d: &std::path::Path, exporter_port: u16, hook: u16, database_env: &str) -> String {
    let short = "{for: 3s}";
    format!(
        r#"listen: 127.0.0.1:{exporter_port}
state_dir: {d}/state
runbook_base_url: https://runbooks.example.com
database: {{url_env: {database_env}}}
poll_defaults: {{interval: 1s, timeout: 2s}}
generate:
  alertmanager:
    page_webhook_url: http://127.0.0.1:{hook}/page
    ticket_webhook_url: http://127.0.0.1:{hook}/ticket
    group_wait: 1s
    group_interval: 1s
    repeat_interval: 1h
packs:
  token_refresh:
    params: {{worker_log: {d}/worker.log}}
    alerts:
      IntegrationTokenRefreshSuccessRateLow: {{window: 20s, min_events: 5, for: 3s}}
      IntegrationTokenRefreshTokensExpiring: {short}
      IntegrationTokenRefreshRateLimitHigh: {short}
      IntegrationTokenRefreshDegradedWatchers: {short}
      IntegrationTokenRefreshHeartbeatLag: {{threshold: 6, for: 2s}}
      IntegrationTokenRefreshHeartbeatMissing: {short}
      IntegrationTokenRefreshLockStuck: {short}
"#,
        d = d.display(),
    )
}
