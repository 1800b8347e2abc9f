//! The file a user writes: where the database and logs are, which packs are on, what they change.

#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration::PromDuration;
use super::model::{LogFiles, Severity, Signal};

/// The top level of `integration-exporter.yaml`.
#[derive(Clone, Debug, Deserialize, JsonSchema, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server listens on (default `127.0.0.1:29187`; use `0.0.0.0:29187` in a
    /// container). `serve --web.listen-address` overrides it.
    #[serde(default = "default_listen", deserialize_with = "super::listen::deserialize")]
    #[schemars(with = "super::schema::ListenAddress")]
    pub listen: String,
    /// The application's PostgreSQL database. Needed only when a signal reads SQL. The
    /// one-database shorthand of `databases:` (its database is named `default`); give one or
    /// the other, not both.
    #[serde(default)]
    pub database: Option<DatabaseConfig>,
    /// Several PostgreSQL databases, by name (`{eu: {url_env: EU_DATABASE_URL}, us: ...}`): each
    /// has its own pool, health series and schedule, so one that is down never delays another.
    /// SQL signals and packs say which they read (`database: NAME`; omitted, the only one). With
    /// more than one, every series read from a database carries its name in `database_label`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub databases: BTreeMap<String, DatabaseConfig>,
    /// With more than one database: the label naming the database on every series read from one
    /// (and on the queries' health series), kept by the generated alerts and offered as a
    /// dashboard variable. Unused with one database, whose series carry no such label.
    #[serde(default = "default_database_label")]
    #[schemars(with = "super::schema::LabelName")]
    pub database_label: String,
    /// Several replicas of the exporter against one database: they elect a leader per database,
    /// which alone runs the SQL queries. Off by default.
    #[serde(default, skip_serializing_if = "HaConfig::is_default")]
    pub ha: HaConfig,
    /// Directory where log offsets and the counters they produced are saved together, so a
    /// restart neither skips nor recounts a line. Omitted, counters restart from zero. Created
    /// 0700 if missing; checkpoints are written 0600. Locked while the exporter runs: a second
    /// exporter given the same directory exits with an error naming the first one's PID.
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// TLS and basic auth for the HTTP endpoint: a `web-config.yml` in Prometheus exporter-toolkit's
    /// format (the file node_exporter's `--web.config.file` reads: `tls_server_config`,
    /// `http_server_config.headers`, `basic_auth_users` with bcrypt hashes). A relative path is
    /// relative to the spec's directory; paths inside the file are relative to the file's own
    /// directory. Checked at start (a bad file stops the exporter); `basic_auth_users` and headers
    /// are re-read when the file changes, certificates when it or they change. A change that would
    /// turn basic auth, TLS or the client certificate check off is refused unless the file says
    /// `allow_downgrade: true`. Omitted, plain HTTP without authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_config_file: Option<PathBuf>,
    /// Where runbooks are published; alerts link `<runbook_base_url>/<runbook file>#<section>`.
    #[serde(default = "default_runbook_base_url")]
    pub runbook_base_url: String,
    /// Schedule of polled signals (SQL queries, HTTP endpoints) that do not set their own.
    /// `sql_defaults`, its old name, is still read (deprecated: it always applied to HTTP too).
    #[serde(default, alias = "sql_defaults")]
    pub poll_defaults: PollDefaults,
    /// Settings for generated rules and dashboards.
    #[serde(default)]
    pub generate: GenerateSettings,
    /// Built-in packs to enable, by name, with their parameters and overrides. With several
    /// databases, a list enables the pack once per database, each with its own parameters:
    /// `token_refresh: [{database: eu, params: ...}, {database: us, params: ...}]`.
    #[serde(default)]
    pub packs: BTreeMap<String, PackEnabling>,
    /// Log sources of your own signals.
    #[serde(default)]
    pub logs: BTreeMap<String, LogFiles>,
    /// Signals of your own, in the same format as the built-in packs.
    #[serde(default)]
    pub signals: Vec<Signal>,
}

/// The exporter's own port. 9187 is postgres_exporter's, which our users run next to us. The
/// Prometheus wiki's "Default port allocations" page has 9100-9999 fully given out (and new
/// allocations continue above 10000), and the "Writing exporters" guide asks exporters of one
/// organisation's applications to stay outside that allocated range: 29187 is outside it, below
/// Linux's ephemeral ports (32768 and up), and not in the IANA services list Debian ships.
pub const DEFAULT_PORT: u16 = 29187;

fn default_database_label() -> String {
    "database".into()
}

/// The name `database:` gives its one database.
pub const DEFAULT_DATABASE: &str = "default";

impl Config {
    /// Every database by name: `databases:`, or `database:` named [`DEFAULT_DATABASE`].
    pub fn databases(&self) -> Vec<(&str, &DatabaseConfig)> {
        match &self.database {
            Some(db) => vec![(DEFAULT_DATABASE, db)],
            None => self.databases.iter().map(|(name, db)| (name.as_str(), db)).collect(),
        }
    }

    /// Whether series read from a database carry its name: only with more than one, so a spec
    /// with one database exports exactly what it did before `databases:` existed.
    pub fn labels_databases(&self) -> bool {
        self.databases().len() > 1
    }
}

fn default_listen() -> String {
    format!("127.0.0.1:{DEFAULT_PORT}")
}
fn default_runbook_base_url() -> String {
    "https://runbooks.example.com".into()
}

/// How to reach PostgreSQL. Give exactly one of `url_env` or `url_file`; the URL (and so its
/// password) is never printed or exported. Accepted: `postgres://user:password@host:port/db?...`
/// (a password may hold `@ / ? #` as they are, or percent-encoded) and libpq's
/// `host=... port=... user=... password='...' dbname=...`; parameters are libpq's (`sslmode`,
/// `sslrootcert`, `application_name`, `options`, ...), and an unknown one is an error.
#[derive(Clone, Debug, Deserialize, JsonSchema, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
#[schemars(extend("oneOf" = [{"required": ["url_env"]}, {"required": ["url_file"]}]))]
pub struct DatabaseConfig {
    /// Environment variable holding the connection URL (`postgres://user:pass@host/db`) or libpq
    /// `key=value` string. TLS is set there with libpq's names: `sslmode` (`verify-full` checks
    /// the CA and the host name), `sslrootcert`, and `sslcert`/`sslkey` for a client certificate; a
    /// relative certificate path is relative to the spec's directory.
    #[serde(default)]
    pub url_env: Option<String>,
    /// File holding the connection URL (a mounted secret); trailing whitespace is ignored. A
    /// relative `sslrootcert`, `sslcert` or `sslkey` in it is relative to this file's directory.
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    /// Most connections the exporter opens (queries beyond it wait their turn).
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// Give up connecting after this long; the query counts a `connect` error and retries on its
    /// next interval. From 100ms to 10m.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: PromDuration,
}

fn default_max_connections() -> u32 {
    2
}
fn default_connect_timeout() -> PromDuration {
    PromDuration::from_secs(5)
}

/// High availability: replicas elect, per database, one leader through a PostgreSQL session
/// advisory lock taken on that database; only the leader runs the SQL queries, the others stand
/// by (`integration_exporter_leader 0`, no SQL series) and take over when the leader's session
/// ends. Log and HTTP sources run on every replica. Needs a direct connection or session pooling:
/// a pooler in transaction mode (PgBouncer `pool_mode = transaction`) is detected and refused.
#[derive(Clone, Debug, Deserialize, JsonSchema, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HaConfig {
    /// Elect a leader (default `false`: every replica runs every query).
    #[serde(default)]
    pub enabled: bool,
    /// The advisory lock's key (a 64-bit integer). Default: the first 8 bytes of the SHA-256 of
    /// `integration-exporter leader <database>`, `<database>` being the database's name on the
    /// server (`current_database()`), so every replica derives the same key whatever address it
    /// connects through. Set it only if the application uses that key for its own locks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_key: Option<i64>,
    /// How often a standby tries to take the lock, and the leader checks that its lock session is
    /// alive (default `5s`; 100ms to 10m). A standby takes over within `retry` plus one query
    /// interval of the leader's session ending.
    #[serde(default = "default_ha_retry")]
    pub retry: PromDuration,
    /// This replica's name (default: the host name, a pod's name on Kubernetes). With several
    /// databases, leaderships spread over the live replicas: each leads at most `ceil(D/R)` of
    /// the `D` databases once `R` replicas run, and the name orders which of its leaderships a
    /// replica gives up first when another joins, so the same databases move. Each replica
    /// holds two more advisory locks per database, shared ones: a "candidate" lock that counts
    /// the live replicas in `pg_locks`, and a "want" lock while it leads fewer than `floor(D/R)`
    /// (with `lock_key` set, their keys are `lock_key + 1` and `lock_key + 2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<String>,
}

impl Default for HaConfig {
    fn default() -> Self {
        Self { enabled: false, lock_key: None, retry: default_ha_retry(), replica: None }
    }
}

impl HaConfig {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

fn default_ha_retry() -> PromDuration {
    PromDuration::from_secs(5)
}

/// Interval and timeout of every polled source (SQL queries, HTTP endpoints) that sets none.
#[derive(Clone, Debug, Deserialize, JsonSchema, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PollDefaults {
    /// How often each query runs or endpoint is polled. From 100ms to 1d.
    #[serde(default = "default_poll_interval")]
    pub interval: PromDuration,
    /// How long one poll may take, from 10ms to 1h. For SQL it is the server-side
    /// `statement_timeout`; the exporter itself gives up a quarter of it later (at least 100ms,
    /// at most 2s) and closes the connection, so a database that stops answering cannot hold a
    /// signal. May exceed the interval: a poll never overlaps the next one, it delays it.
    #[serde(default = "default_poll_timeout")]
    pub timeout: PromDuration,
}

impl Default for PollDefaults {
    fn default() -> Self {
        Self { interval: default_poll_interval(), timeout: default_poll_timeout() }
    }
}

fn default_poll_interval() -> PromDuration {
    PromDuration::from_secs(30)
}
fn default_poll_timeout() -> PromDuration {
    PromDuration::from_secs(5)
}

/// What `generate` writes: the scrape job and labels every output selects, links and tags.
#[derive(Clone, Debug, Deserialize, JsonSchema, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GenerateSettings {
    /// `job` label value of the exporter's scrape job. Every generated rule expression, promtool
    /// test and dashboard query selects it, so two Prometheus jobs never mix (default
    /// `integration-exporter`).
    #[serde(default = "default_job")]
    pub job: String,
    /// Further labels the exporter's series carry, as exact values (monitoring-mixin style), e.g.
    /// `{cluster: prod}`: every rule expression and dashboard query selects them besides `job`,
    /// so one Prometheus holding several deployments alerts on each with its own rules. Label
    /// names follow Prometheus' rules (not `job`, which has its own key, nor `__`-prefixed).
    #[serde(default, deserialize_with = "label_matchers")]
    #[schemars(with = "super::schema::LabelMatchers")]
    pub matchers: BTreeMap<String, String>,
    /// Tags put on every generated dashboard.
    #[serde(default = "default_tags")]
    pub dashboard_tags: Vec<String>,
    /// Grafana's base URL; alerts link the panel that shows their signal (`dashboard_url`).
    #[serde(default = "default_grafana_url")]
    pub grafana_url: String,
    /// The generated `alertmanager/alertmanager.yml`: where pages and tickets go, how alerts group.
    #[serde(default)]
    pub alertmanager: AlertmanagerSettings,
    /// The `PrometheusRule` objects written by `generate --format prometheus-operator`.
    #[serde(default)]
    pub prometheus_operator: PrometheusOperatorSettings,
}

impl Default for GenerateSettings {
    fn default() -> Self {
        Self {
            job: default_job(),
            matchers: BTreeMap::new(),
            dashboard_tags: default_tags(),
            grafana_url: default_grafana_url(),
            alertmanager: AlertmanagerSettings::default(),
            prometheus_operator: PrometheusOperatorSettings::default(),
        }
    }
}

/// Alertmanager routing: `critical` alerts page, `warning` alerts open a ticket, `info` alerts
/// only show (receiver `null`, which sends nothing). A firing critical inhibits the warning of
/// the same alert, signal and series.
#[derive(Clone, Debug, Deserialize, JsonSchema, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerSettings {
    /// Webhook the `page` receiver (severity `critical`) posts to: your paging tool's Alertmanager
    /// webhook. Default `http://127.0.0.1:9095/page`, a placeholder.
    #[serde(default = "default_page_webhook_url")]
    pub page_webhook_url: String,
    /// Webhook the `ticket` receiver (severity `warning`, and anything unmatched) posts to.
    /// Default `http://127.0.0.1:9095/ticket`, a placeholder.
    #[serde(default = "default_ticket_webhook_url")]
    pub ticket_webhook_url: String,
    /// Labels that put alerts into one notification (default `[alertname, signal]`).
    #[serde(default = "default_am_group_by")]
    pub group_by: Vec<String>,
    /// Labels appended to `group_by`, e.g. `[cluster, env]` when one Alertmanager receives the
    /// alerts of several deployments: their alerts then never share a notification (default none).
    #[serde(default)]
    pub group_by_extra: Vec<String>,
    /// How long a new group waits for more alerts before its first notification (default `30s`;
    /// 0 to 1d).
    #[serde(default = "default_am_group_wait")]
    pub group_wait: PromDuration,
    /// How long a group waits before notifying about alerts added to it (default `5m`; at least 1s).
    #[serde(default = "default_am_group_interval")]
    pub group_interval: PromDuration,
    /// How often a still-firing group is notified again (default `4h`; at least 1s).
    #[serde(default = "default_am_repeat_interval")]
    pub repeat_interval: PromDuration,
    /// Labels the scrape gives every series that tell one exporter from another (default
    /// `[job, instance]`; add e.g. `namespace` and `pod` when relabelling adds them). A critical
    /// inhibits only the warning of the same series, so these labels must match too.
    #[serde(default = "default_am_instance_labels")]
    pub instance_labels: Vec<String>,
}

impl Default for AlertmanagerSettings {
    fn default() -> Self {
        Self {
            page_webhook_url: default_page_webhook_url(),
            ticket_webhook_url: default_ticket_webhook_url(),
            group_by: default_am_group_by(),
            group_by_extra: Vec::new(),
            group_wait: default_am_group_wait(),
            group_interval: default_am_group_interval(),
            repeat_interval: default_am_repeat_interval(),
            instance_labels: default_am_instance_labels(),
        }
    }
}

fn default_page_webhook_url() -> String {
    "http://127.0.0.1:9095/page".into()
}
fn default_ticket_webhook_url() -> String {
    "http://127.0.0.1:9095/ticket".into()
}
fn default_am_group_by() -> Vec<String> {
    vec!["alertname".into(), "signal".into()]
}
fn default_am_instance_labels() -> Vec<String> {
    vec!["job".into(), "instance".into()]
}
fn default_am_group_wait() -> PromDuration {
    PromDuration::from_secs(30)
}
fn default_am_group_interval() -> PromDuration {
    PromDuration::from_secs(5 * 60)
}
fn default_am_repeat_interval() -> PromDuration {
    PromDuration::from_secs(4 * 3600)
}

/// Metadata of the generated `PrometheusRule` objects (one per pack, named
/// `integration-exporter-<pack>`).
#[derive(Clone, Debug, Deserialize, JsonSchema, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PrometheusOperatorSettings {
    /// `metadata.namespace`; omitted (the default), the namespace `kubectl apply -n` chooses.
    #[serde(default)]
    pub namespace: Option<String>,
    /// `metadata.labels`, which the Prometheus resource's `ruleSelector` must match. Default
    /// `{release: prometheus}`, what kube-prometheus-stack installed as release `prometheus`
    /// selects; setting `labels` replaces the default.
    #[serde(default = "default_operator_labels")]
    #[schemars(with = "BTreeMap<String, super::schema::Scalar>")]
    pub labels: BTreeMap<String, String>,
}

impl Default for PrometheusOperatorSettings {
    fn default() -> Self {
        Self { namespace: None, labels: default_operator_labels() }
    }
}

fn default_operator_labels() -> BTreeMap<String, String> {
    BTreeMap::from([("release".to_string(), "prometheus".to_string())])
}

fn default_grafana_url() -> String {
    "https://grafana.example.com".into()
}

/// `generate.matchers`, rejecting what could not be a matcher of the scrape's own labels.
fn label_matchers<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let matchers = BTreeMap::<String, String>::deserialize(d)?;
    for name in matchers.keys() {
        let mut chars = name.chars();
        let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with("__");
        if !valid {
            return Err(serde::de::Error::custom(format!("generate.matchers: `{name}` is not a valid label name")));
        }
        if name == "job" {
            return Err(serde::de::Error::custom("generate.matchers: set the job with `generate.job`"));
        }
    }
    Ok(matchers)
}

fn default_job() -> String {
    "integration-exporter".into()
}
fn default_tags() -> Vec<String> {
    vec!["integration-exporter".into()]
}

/// A pack turned on once (settings), or once per database (a list of settings, each naming its
/// `database`).
#[derive(Clone, Debug, JsonSchema, Serialize, PartialEq)]
#[serde(untagged)]
pub enum PackEnabling {
    /// The pack once, on the only database (or the one its `database` names).
    Once(PackSettings),
    /// The pack once per database: each entry names a different `database`, and the entries may
    /// differ only in what the pack's queries read (table and column parameters); its
    /// alerts, panels and log sources are one for all, the series told apart by the database
    /// label.
    PerDatabase(Vec<PackSettings>),
}

impl PackEnabling {
    /// Each enabling of the pack, in the order written.
    pub fn instances(&self) -> &[PackSettings] {
        match self {
            PackEnabling::Once(settings) => std::slice::from_ref(settings),
            PackEnabling::PerDatabase(list) => list,
        }
    }
}

impl From<PackSettings> for PackEnabling {
    fn from(settings: PackSettings) -> Self {
        PackEnabling::Once(settings)
    }
}

/// A map is one enabling, a list several; chosen by the YAML's shape rather than by trying each
/// (as `untagged` would), so a typo inside still gets its own message and place.
impl<'de> Deserialize<'de> for PackEnabling {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Shape;
        impl<'de> serde::de::Visitor<'de> for Shape {
            type Value = PackEnabling;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a pack's settings, or a list of them (one per database)")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                PackSettings::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(PackEnabling::Once)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                Vec::deserialize(serde::de::value::SeqAccessDeserializer::new(seq)).map(PackEnabling::PerDatabase)
            }
        }
        d.deserialize_any(Shape)
    }
}

/// Turning on a built-in pack and fitting it to your schema.
#[derive(Clone, Debug, Deserialize, JsonSchema, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PackSettings {
    /// Set `false` to keep the pack off without deleting its settings.
    #[serde(default = "super::model::yes")]
    pub enabled: bool,
    /// The database (a name under `databases:`) the pack's queries read; omitted, the only one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// Pack parameters: table and column names, windows, log paths (`integration-exporter params`
    /// lists them with their defaults).
    #[serde(default)]
    pub params: BTreeMap<String, ParamValue>,
    /// Changes to alerts, by alert name (or `Name:severity` for one half of a warning/critical pair).
    #[serde(default)]
    pub alerts: BTreeMap<String, AlertOverride>,
    /// Changes to signals, by signal id.
    #[serde(default)]
    pub signals: BTreeMap<String, SignalOverride>,
}

impl Default for PackSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            database: None,
            params: BTreeMap::new(),
            alerts: BTreeMap::new(),
            signals: BTreeMap::new(),
        }
    }
}

/// A parameter value as written in YAML.
#[derive(Clone, Debug, Deserialize, JsonSchema, Serialize, PartialEq)]
#[serde(untagged)]
pub enum ParamValue {
    /// `true` or `false`.
    Bool(bool),
    /// A number.
    Number(f64),
    /// Anything else: a name, a duration, a path.
    Text(String),
}

impl std::fmt::Display for ParamValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParamValue::Bool(b) => write!(f, "{b}"),
            ParamValue::Number(n) => write!(f, "{n}"),
            ParamValue::Text(t) => f.write_str(t),
        }
    }
}

/// Changes to one alert of a pack, by alert name.
#[derive(Clone, Debug, Deserialize, JsonSchema, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct AlertOverride {
    /// New threshold, in the metric's base unit.
    #[serde(default)]
    pub threshold: Option<f64>,
    /// New `for` duration.
    #[serde(default, rename = "for")]
    pub for_: Option<PromDuration>,
    /// New window, for alerts over a window (at least 1s).
    #[serde(default)]
    pub window: Option<PromDuration>,
    /// New smallest number of events, for ratio alerts.
    #[serde(default)]
    pub min_events: Option<f64>,
    /// New severity.
    #[serde(default)]
    pub severity: Option<Severity>,
    /// Set `false` to drop the alert.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// `true` aggregates the alert over every exporter instance of the fleet (the runbook's
    /// number is about all worker hosts together, so an idle standby host cannot keep it
    /// firing); `false` alerts per instance, for an alert the pack aggregates when each host
    /// runs its own independent worker.
    #[serde(default)]
    pub across_instances: Option<bool>,
}

/// Changes to one signal of a pack, by signal id.
#[derive(Clone, Debug, Deserialize, JsonSchema, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct SignalOverride {
    /// Set `false` to switch the signal off.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// New query interval (SQL and HTTP signals), from 100ms to 1d.
    #[serde(default)]
    pub interval: Option<PromDuration>,
    /// New query timeout (SQL and HTTP signals), from 10ms to 1h.
    #[serde(default)]
    pub timeout: Option<PromDuration>,
}
