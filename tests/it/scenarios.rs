//! The runbooks' incidents, replayed. Every pack runs at its defaults on a database holding only
//! the runbooks' tables (`tests/fixtures/runbook_tables.sql`), with log files and stand-ins for
//! the HTTP APIs, in the healthy state of `tests/scenarios/healthy.yaml`. Each scenario of
//! `tests/scenarios/<runbook>.yaml` then puts the system into the state a runbook section
//! describes, and afterwards applies the section's resolution.
//!
//! The exporter really runs on each state; what it serves is sampled twice, one minute of log
//! traffic apart, and held as a steady state in a promtool test: gauges keep their value, counters
//! grow by what one minute added, a `*_timestamp_seconds` gauge that moved keeps its age and one
//! that did not grows old. Every generated rule is evaluated by promtool, minute by minute, over
//! two healthy hours, the incident held for nine hours (the longest window plus `for` fits), and
//! two hours after the resolution. Nothing may fire while healthy or at the end; during the
//! incident exactly the scenario's alerts fire, each first at the minute it names, with the
//! severity, receiver and runbook link it names. Then each expected alert's threshold is moved a
//! step toward not firing, its `for` a minute longer, its window doubled, one at a time: each move
//! must change when (or whether) it fires, or when it stops after the resolution, so a scenario
//! pins its alerts' numbers down and the library fails when one of them moves. An alert that a
//! worse state holds far past its threshold (the warning of an expired token's pair) names the
//! scenario that pins it.
//!
//! A scenario is played (the exporter on each state) and then judged (promtool and amtool on what
//! it served); one thread judges each played scenario in turn while the next one plays.
//!
//! Writing one: `SCENARIO=<name> cargo nextest run --test it scenarios::<runbook>` plays just it;
//! what promtool evaluated is kept under the target directory. Values sit just past thresholds
//! (21 tokens for `> 20`). Ages computed by a query (`now() - x`) are sampled, not aged: write the
//! age the section means. Ages from log lines and API answers grow when their source stops.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use integration_exporter::spec::{Alert, Condition, Model, Op, SourceText, ValueUnit};
use serde::Deserialize;
use support::exporter::Exporter;
use support::http::{StandIn, get};
use support::process::program;
use support::wait::{self, Worker};
use support::{TestDb, free_port};

const HEALTHY_MINUTES: u64 = 120;
const INCIDENT_MINUTES: u64 = 540;
const RESOLVED_MINUTES: u64 = 120;
const JOB: &str = "integration-exporter";

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The healthy system: the spec enabling every pack, rows, log traffic and API answers.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Healthy {
    /// `{dir}` is the scenario's directory (log files), `{http}` the stand-in's host:port.
    spec: String,
    sql: String,
    /// By file name under `{dir}`.
    pub(crate) logs: BTreeMap<String, Log>,
    /// By request path and query.
    http: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Log {
    /// How `{ts}` is written: `asctime` (Python logging, UTC) or `rfc3339`.
    ts: TsFormat,
    /// What one minute writes.
    pub(crate) per_minute: Vec<String>,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum TsFormat {
    Asctime,
    Rfc3339,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunbookScenarios {
    runbook: String,
    /// Every heading of the runbook that describes an incident, a symptom or the alerts to set up
    /// (each heading whose text says "Symptoms", each `Issue:` and each list of alert thresholds
    /// must be here); each needs a scenario.
    sections: Vec<String>,
    pub(crate) scenarios: Vec<Scenario>,
}

/// The five runbooks, by file stem.
const RUNBOOKS: [&str; 5] =
    ["token-refresh", "calendar-sync", "etl-token-monitoring", "microsoft-integration", "salesforce-incidents"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Scenario {
    /// Short and unique; the test's name for it.
    pub(crate) name: String,
    /// The runbook heading it plays.
    section: String,
    /// What happens, in one sentence.
    what: String,
    pub(crate) incident: Change,
    pub(crate) fires: Vec<Fires>,
    /// The runbook's resolution step.
    resolve: Change,
    /// How long the resolved system is watched before nothing may fire (`2h` unless given): an
    /// SLO ticket resolves one short window (6h) after the errors stop, not sooner.
    #[serde(default)]
    resolved_for: Option<String>,
}

/// What a phase changes on top of the one before.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Change {
    #[serde(default)]
    pub(crate) sql: String,
    /// Replaces a log's per-minute lines.
    #[serde(default)]
    logs: BTreeMap<String, Vec<String>>,
    /// Lines written once, when the phase starts.
    #[serde(default)]
    log_once: BTreeMap<String, Vec<String>>,
    /// Replaces an API's answer: a body (status 200), or `STATUS BODY` for another status.
    #[serde(default)]
    pub(crate) http: BTreeMap<String, String>,
    /// `down` stops the database server, `up` starts it again.
    #[serde(default)]
    database: Option<DatabaseState>,
}

#[derive(Clone, Copy, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
enum DatabaseState {
    Down,
    Up,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Fires {
    pub(crate) alert: String,
    pub(crate) severity: String,
    /// For alerts that exist once per signal (source health).
    #[serde(default)]
    signal: Option<String>,
    /// When it first fires, counted from the incident's start (`9m`, `1h5m`).
    after: String,
    /// The Alertmanager receiver the generated routing gives it.
    receiver: String,
    /// Its runbook link, `<runbook file>#<anchor>`, when it is not the scenario's section.
    #[serde(default)]
    link: Option<String>,
    /// The scenario of this runbook that pins this alert's numbers down, when this one cannot: a
    /// worse state holds its value far past its threshold (an expired token is past the 14-day
    /// warning of its pair, a used-up limit past the 80% warning). That scenario must expect the
    /// alert and pin it itself.
    #[serde(default)]
    pinned_in: Option<String>,
}

/// An alert as the test tells alerts apart.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Firing {
    alert: String,
    severity: String,
    signal: Option<String>,
}

impl std::fmt::Display for Firing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.alert, self.severity)?;
        if let Some(s) = &self.signal {
            write!(f, " on {s}")?;
        }
        Ok(())
    }
}

fn load<T: for<'de> Deserialize<'de>>(rel: &str) -> T {
    let text = std::fs::read_to_string(repo(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// `9m`, `1h5m`, `30s` in seconds.
fn seconds(text: &str) -> u64 {
    let mut total = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u64 = number.parse().unwrap_or_else(|_| panic!("duration {text:?}"));
        number.clear();
        total += n * match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => panic!("duration {text:?}"),
        };
    }
    assert!(number.is_empty(), "duration {text:?} lacks a unit");
    total
}

/// Fills `{ts}`, `{ts -10m}`, `{ago 10m}` (that long before now) and `{at -3h}` (before `start`).
fn render(text: &str, ts: TsFormat, start: f64) -> String {
    let placeholder = regex::Regex::new(r"\{(ts|ago|at)(?: (-?)([0-9a-z]+))?\}").unwrap();
    placeholder
        .replace_all(text, |c: &regex::Captures| {
            let offset = c.get(3).map_or(0.0, |d| seconds(d.as_str()) as f64);
            let at = match &c[1] {
                "ts" if c.get(2).is_some_and(|m| m.as_str() == "-") => unix_now() - offset,
                "ts" => unix_now() + offset,
                "ago" => unix_now() - offset,
                _ => start - offset,
            };
            format_time(at, if &c[1] == "ts" { ts } else { TsFormat::Rfc3339 })
        })
        .into_owned()
}

fn format_time(at: f64, format: TsFormat) -> String {
    let secs = at.floor() as i64;
    let millis = ((at - at.floor()) * 1000.0) as u32;
    let time = chrono::DateTime::from_timestamp(secs, millis * 1_000_000).expect("time");
    match format {
        TsFormat::Asctime => time.format("%Y-%m-%d %H:%M:%S,%3f").to_string(),
        TsFormat::Rfc3339 => time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
    }
}

/// One series as served: value, and whether it is a counter (or part of a histogram).
type Exposition = BTreeMap<String, (f64, bool)>;

fn parse_exposition(text: &str) -> Exposition {
    let mut counters = BTreeSet::new();
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            if let (Some(name), Some(kind)) = (parts.next(), parts.next())
                && matches!(kind, "counter" | "histogram" | "summary")
            {
                counters.insert(name.to_string());
            }
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        let Ok(value) = value.parse::<f64>() else { continue };
        let name = series.split('{').next().unwrap_or(series);
        let family = ["_bucket", "_sum", "_count", "_total"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| counters.contains(*f)))
            .unwrap_or(name);
        out.insert(series.to_string(), (value, counters.contains(family) || counters.contains(name)));
    }
    out
}

/// One phase as the exporter served it: two scrapes a minute of traffic apart, and when the
/// second was taken.
struct Sampled {
    first: Exposition,
    second: Exposition,
    at: f64,
}

/// The system under test: database, log files, stand-in APIs, the exporter and its rules.
pub(crate) struct World {
    pub(crate) db: TestDb,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) exporter: Exporter,
    answers: Arc<Mutex<BTreeMap<String, String>>>,
    _stand_in: StandIn,
    logs: BTreeMap<String, (TsFormat, Vec<String>)>,
    start: f64,
    /// The database server is stopped.
    database_down: bool,
}

impl World {
    pub(crate) async fn start(healthy: &Healthy) -> World {
        let db = TestDb::new().await;
        db.execute(&std::fs::read_to_string(repo("tests/fixtures/runbook_tables.sql")).unwrap()).await;
        db.execute(&healthy.sql).await;
        let dir = tempfile::tempdir().unwrap();
        let start = unix_now();
        let answers: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
        let served = answers.clone();
        let stand_in = StandIn::start(move |request| {
            let body = served.lock().unwrap().get(&request.path).cloned();
            match body {
                Some(body) => answer(&render(&body, TsFormat::Rfc3339, start)),
                None => (404, "{}".into()),
            }
        });
        let port = free_port();
        let http = stand_in.addr.to_string();
        let text = healthy
            .spec
            .replace("{dir}", &dir.path().display().to_string())
            .replace("{http}", &http)
            .replace("{port}", &port.to_string());
        let spec = dir.path().join("spec.yaml");
        std::fs::write(&spec, fast_polls(&text)).unwrap();
        let generated = dir.path().join("generated");
        let out = std::process::Command::new(support::exporter_bin())
            .args(["generate", "--config"])
            .arg(&spec)
            .arg("--out")
            .arg(&generated)
            .output()
            .unwrap();
        assert!(out.status.success(), "generate: {}", String::from_utf8_lossy(&out.stderr));
        let logs = healthy.logs.iter().map(|(file, log)| (file.clone(), (log.ts, log.per_minute.clone()))).collect();
        let exporter = Exporter::serve(&spec, port)
            .env("SCENARIO_DATABASE_URL", &db.url)
            .env("SCENARIO_TOKEN", "scenario-token")
            .start();
        let world = World { db, dir, exporter, answers, _stand_in: stand_in, logs, start, database_down: false };
        for (path, body) in &healthy.http {
            world.answers.lock().unwrap().insert(path.clone(), render_fixed(body, start));
        }
        world
    }

    /// Stops the exporter, the stand-in and the database; keeps the directory.
    fn into_dir(self) -> tempfile::TempDir {
        let World { dir, .. } = self;
        dir
    }

    pub(crate) fn log_path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    pub(crate) fn write_lines(&self, file: &str, lines: &[String]) {
        let (ts, _) = self.logs.get(file).unwrap_or_else(|| panic!("no log file {file} in healthy.yaml"));
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path(file)).unwrap();
        for line in lines {
            writeln!(f, "{}", render(line, *ts, self.start)).unwrap();
        }
    }

    pub(crate) async fn apply(&mut self, change: &Change) {
        match change.database {
            Some(DatabaseState::Down) => self.db.cluster().stop(),
            Some(DatabaseState::Up) => self.db.cluster().restart(),
            None => {}
        }
        // A query waits out the pool's connect retries before it fails, longer than a sample
        // takes: the phase starts once the exporter says what the database now is.
        if let Some(state) = change.database {
            self.database_down = state == DatabaseState::Down;
            let want = if state == DatabaseState::Down { " 0" } else { " 1" };
            let port = self.exporter.port;
            wait::until(
                "the exporter to see the database's new state",
                Duration::from_secs(90),
                || scrape(port),
                |t| {
                    t.lines()
                        .any(|l| l.starts_with("integration_exporter_database_up{") && l.ends_with(want))
                        .then_some(())
                },
            );
        }
        if !change.sql.trim().is_empty() {
            self.db.execute(&change.sql).await;
        }
        for (file, lines) in &change.logs {
            let entry = self.logs.get_mut(file).unwrap_or_else(|| panic!("no log file {file} in healthy.yaml"));
            entry.1 = lines.clone();
        }
        for (file, lines) in &change.log_once {
            self.write_lines(file, lines);
        }
        for (path, body) in &change.http {
            self.answers.lock().unwrap().insert(path.clone(), render_fixed(body, self.start));
        }
    }

    /// Writes one minute of every log's traffic and waits until the exporter has read it all.
    pub(crate) fn minute(&self) {
        for (file, (_, lines)) in &self.logs {
            self.write_lines(file, lines);
        }
        let sizes: Vec<(String, f64)> = self
            .logs
            .keys()
            .map(|f| {
                let path = self.log_path(f);
                (format!("path=\"{}\"", path.display()), std::fs::metadata(&path).map_or(0.0, |m| m.len() as f64))
            })
            .collect();
        let read_all = |text: &str| {
            sizes.iter().all(|(path, size)| {
                *size == 0.0
                    || text.lines().any(|l| {
                        l.starts_with("integration_exporter_log_file_offset_bytes{")
                            && l.contains(path.as_str())
                            && l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()) == Some(*size)
                    })
            })
        };
        let port = self.exporter.port;
        wait::until(
            "the exporter to read every log line written",
            Duration::from_secs(30),
            || scrape(port),
            |t| read_all(t).then_some(()),
        );
    }

    /// The state as the exporter serves it once the polled sources have read it.
    fn sample(&self) -> Sampled {
        // Every polled signal polls each second: three seconds see the change.
        std::thread::sleep(Duration::from_secs(3));
        self.minute();
        let first = self.exposition();
        self.minute();
        std::thread::sleep(Duration::from_millis(1500));
        // A timestamp read from an API answer moves only when its signal polls again: every HTTP
        // signal must have polled since the first sample (its last success or its errors moved),
        // or a loaded machine that delays a poll makes a fresh run look stopped.
        let polled = |e: &Exposition| -> BTreeMap<String, f64> {
            e.iter()
                .filter(|(k, _)| {
                    k.starts_with("integration_exporter_http_last_success_timestamp_seconds{")
                        || k.starts_with("integration_exporter_http_errors_total{")
                })
                .filter_map(|(k, (v, _))| Some((k.split("signal=\"").nth(1)?.split('"').next()?.to_string(), *v)))
                .fold(BTreeMap::new(), |mut sum, (signal, v)| {
                    *sum.entry(signal).or_insert(0.0) += v;
                    sum
                })
        };
        let before = polled(&first);
        // With the database stopped, most runs find the pool busy with connection attempts and
        // learn nothing; the phase is sampled once a run has counted its failure to connect.
        let unreachable = |e: &Exposition| -> f64 {
            e.iter()
                .filter(|(k, _)| k.starts_with("integration_exporter_database_errors_total{"))
                .map(|(_, v)| v.0)
                .sum()
        };
        let failed = unreachable(&first);
        let second = wait::poll(
            Duration::from_secs(20),
            wait::POLL,
            || self.exposition(),
            |e| {
                let now = polled(e);
                let db_seen = !self.database_down || unreachable(e) > failed;
                (db_seen && before.iter().all(|(signal, v)| now.get(signal).is_some_and(|n| n != v))).then(|| e.clone())
            },
        )
        .unwrap_or_else(|last| last);
        Sampled { first, second, at: unix_now() }
    }

    fn exposition(&self) -> Exposition {
        parse_exposition(&scrape(self.exporter.port))
    }
}

/// `/metrics` as text; empty when it does not answer 200.
fn scrape(port: u16) -> String {
    get(port, "/metrics").filter(|r| r.status == 200).map(|r| r.text()).unwrap_or_default()
}

/// `STATUS BODY` or a body answered with 200.
fn answer(text: &str) -> (u16, String) {
    match text.split_once(' ') {
        Some((status, body)) if status.len() == 3 && status.parse::<u16>().is_ok() => {
            (status.parse().unwrap(), body.to_string())
        }
        _ => (200, text.to_string()),
    }
}

/// `{at ...}` is fixed when the answer is set; `{ago ...}` stays for each request.
fn render_fixed(body: &str, start: f64) -> String {
    let at = regex::Regex::new(r"\{at (-?)([0-9a-z]+)\}").unwrap();
    at.replace_all(body, |c: &regex::Captures| format_time(start - seconds(&c[2]) as f64, TsFormat::Rfc3339))
        .into_owned()
}

/// The spec with every polled signal polling each second: the scenario's states are read within
/// a few seconds, while the rules stay what the packs say.
fn fast_polls(spec: &str) -> String {
    let model = Model::from_text(&SourceText { name: "spec.yaml".into(), text: spec.to_string() })
        .unwrap_or_else(|e| panic!("the scenario spec does not load: {e}"));
    let mut doc: serde_json::Value = serde_saphyr::from_str(spec).unwrap();
    for signal in model.enabled_signals().filter(|s| s.schedule().is_some()) {
        let Some(pack) = &signal.pack else { continue };
        let signals = &mut doc["packs"][pack.as_str()]["signals"];
        if signals.is_null() {
            *signals = serde_json::json!({});
        }
        signals[signal.signal.id.as_str()]["interval"] = "1s".into();
        signals[signal.signal.id.as_str()]["timeout"] = "1s".into();
    }
    serde_json::to_string_pretty(&doc).unwrap()
}

/// How a series moves through one phase, one sample a minute.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Motion {
    /// A gauge: the same value.
    Level(f64),
    /// A counter: this much more each minute.
    Growth(f64),
    /// A `*_timestamp_seconds` gauge that keeps moving: it stays this many seconds old.
    Fresh(f64),
    /// One that stopped: the raw value it stopped at, this many seconds old when sampled.
    Stopped { raw: f64, age: f64 },
}

fn motion(series: &str, phase: &Sampled) -> Option<Motion> {
    let &(value, counter) = phase.second.get(series)?;
    let before = phase.first.get(series).map(|v| v.0);
    let name = series.split('{').next().unwrap_or(series);
    Some(if counter {
        Motion::Growth((value - before.unwrap_or(0.0)).max(0.0))
    } else if name.ends_with("_timestamp_seconds") {
        let age = (phase.at - value).max(0.0);
        if before.is_some_and(|b| b != value) { Motion::Fresh(age) } else { Motion::Stopped { raw: value, age } }
    } else {
        Motion::Level(value)
    })
}

/// The promtool notation of one series over the phases, `minutes[p]` samples each: values on
/// promtool's clock, which starts at 0, so a timestamp's age is what it was when sampled.
fn values(series: &str, phases: &[&Sampled], minutes: &[u64]) -> String {
    let mut out = Vec::new();
    let (mut start, mut counter) = (0u64, None::<f64>);
    let mut stopped: Option<(f64, f64)> = None; // raw value, and its value on promtool's clock
    for (phase, &n) in phases.iter().zip(minutes) {
        let t0 = (start * 60) as f64;
        out.push(match motion(series, phase) {
            None => format!("_x{n}"),
            Some(Motion::Level(v)) => format!("{v}+0x{}", n - 1),
            Some(Motion::Growth(d)) => {
                let from = counter.unwrap_or_else(|| phase.first.get(series).map_or(0.0, |v| v.0));
                counter = Some(from + d * n as f64);
                format!("{from}+{d}x{}", n - 1)
            }
            Some(Motion::Fresh(age)) => {
                stopped = None;
                format!("{}+60x{}", t0 - age, n - 1)
            }
            Some(Motion::Stopped { raw, age }) => {
                // Stopped in an earlier phase at the same value: it goes on growing old from there.
                let at = match stopped {
                    Some((r, at)) if r == raw => at,
                    _ => t0 - age,
                };
                stopped = Some((raw, at));
                format!("{at}+0x{}", n - 1)
            }
        });
        start += n;
    }
    out.join(" ")
}

/// Adds the labels Prometheus' scrape adds.
fn scraped(series: &str) -> String {
    let target = format!("job=\"{JOB}\",instance=\"scenario:29187\"");
    match series.split_once('{') {
        Some((name, rest)) if rest.starts_with('}') => format!("{name}{{{target}}}"),
        Some((name, rest)) => format!("{name}{{{target},{rest}"),
        None => format!("{series}{{{target}}}"),
    }
}

/// What fires, minute by minute, when promtool evaluates every rule in `rules` over the phases.
fn timeline(rules: &Path, phases: &[&Sampled], minutes: &[u64]) -> Vec<BTreeSet<Firing>> {
    let total: u64 = minutes.iter().sum();
    let names: BTreeSet<&String> = phases.iter().flat_map(|p| p.second.keys()).collect();
    let mut series: Vec<serde_json::Value> =
        names.iter().map(|s| serde_json::json!({"series": scraped(s), "values": values(s, phases, minutes)})).collect();
    series.push(serde_json::json!({"series": scraped("up"), "values": format!("1+0x{}", total - 1)}));
    let firing = "group by (alertname, severity, signal) (ALERTS{alertstate=\"firing\"})";
    let checks: Vec<serde_json::Value> = (0..total)
        .map(|m| serde_json::json!({"expr": firing, "eval_time": format!("{m}m"), "exp_samples": []}))
        .collect();
    let rule_files: Vec<String> = std::fs::read_dir(rules)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".rules.yml"))
        .map(|p| p.display().to_string())
        .collect();
    let test = serde_json::json!({
        "rule_files": rule_files,
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": checks}],
    });
    let file = rules.join("scenario.test.json");
    std::fs::write(&file, test.to_string()).unwrap();
    let out = program("promtool").args(["test", "rules"]).arg(&file).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let mut at: Vec<BTreeSet<Firing>> = vec![BTreeSet::new(); total as usize];
    let failure =
        regex::Regex::new(r#"(?s)time: ([0-9hms]+),\s*exp: [^\n]*\n\s*got: (.*?)(?:\n\s*\n|\n\s*expr:|$)"#).unwrap();
    let labels = regex::Regex::new(r"\{([^}]*)\}").unwrap();
    let pair = regex::Regex::new(r#"(\w+)="([^"]*)""#).unwrap();
    for c in failure.captures_iter(&text) {
        let minute = (seconds(&c[1]) / 60) as usize;
        for set in labels.captures_iter(&c[2]) {
            let l: BTreeMap<&str, &str> = pair
                .captures_iter(set.get(1).unwrap().as_str())
                .map(|p| (p.get(1).unwrap().as_str(), p.get(2).unwrap().as_str()))
                .collect();
            at[minute].insert(Firing {
                alert: l.get("alertname").unwrap_or(&"?").to_string(),
                severity: l.get("severity").unwrap_or(&"").to_string(),
                signal: l.get("signal").map(|s| s.to_string()),
            });
        }
    }
    let found: usize = at.iter().map(BTreeSet::len).sum();
    assert!(
        out.status.success() == (found == 0),
        "promtool said what this test cannot read (exit {}):\n{}",
        out.status,
        text.chars().take(4000).collect::<String>()
    );
    at
}

/// GitHub's anchor for a heading.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == ' ' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The generated rule of an alert: its `runbook_url`.
fn runbook_url(rules: &Path, firing: &Firing) -> Option<String> {
    for entry in std::fs::read_dir(rules).unwrap() {
        let path = entry.unwrap().path();
        if !path.to_string_lossy().ends_with(".rules.yml") {
            continue;
        }
        let doc: serde_json::Value = serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for rule in doc["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        {
            let signal = rule["labels"]["signal"].as_str().map(str::to_string);
            if rule["alert"] == firing.alert.as_str()
                && rule["labels"]["severity"] == firing.severity.as_str()
                && (firing.signal.is_none() || signal == firing.signal)
            {
                return rule["annotations"]["runbook_url"].as_str().map(str::to_string);
            }
        }
    }
    None
}

/// The receiver the generated Alertmanager configuration routes an alert to (amtool).
fn receiver(alertmanager: &Path, firing: &Firing) -> String {
    let mut labels = vec![format!("alertname={}", firing.alert), format!("severity={}", firing.severity)];
    labels.extend(firing.signal.iter().map(|s| format!("signal={s}")));
    let out = program("amtool")
        .args(["config", "routes", "test", "--config.file"])
        .arg(alertmanager)
        .args(&labels)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The alert of a pack the scenario expects, as the spec resolved it: pack name and definition.
fn pack_alert(model: &Model, fires: &Fires) -> Option<(String, Alert)> {
    model.enabled_signals().find_map(|s| {
        let pack = s.pack.clone()?;
        if fires.signal.as_ref().is_some_and(|id| *id != s.signal.id) {
            return None;
        }
        let alert = s
            .signal
            .alerts
            .iter()
            .find(|a| a.enabled && a.name == fires.alert && a.severity.as_str() == fires.severity)?;
        Some((pack, alert.clone()))
    })
}

/// Overrides that move an alert's numbers a step toward firing later or not at all: a scenario
/// that pins the alert down notices each. (A moved severity shows in the expected set.)
fn moves(model: &Model, alert: &Alert) -> Vec<(&'static str, serde_json::Value)> {
    let mut out = Vec::new();
    if let Condition::Quantile(q) = &alert.condition {
        // A quantile's threshold is a bucket bound: the next bound is the next step.
        let buckets =
            model.metrics().find(|(_, m)| m.name == q.metric).map(|(_, m)| m.buckets.clone()).unwrap_or_default();
        let next = match alert.op {
            Op::Gt | Op::Ge => buckets.iter().copied().find(|b| *b > alert.threshold),
            Op::Lt | Op::Le => buckets.iter().copied().rev().find(|b| *b < alert.threshold),
        };
        out.extend(next.map(|b| ("threshold", serde_json::json!(b))));
    } else if !matches!(alert.condition, Condition::Absent(_)) {
        let step = match alert.unit {
            ValueUnit::Count => 1.0,
            ValueUnit::Percent => 0.01,
            ValueUnit::Duration => 60.0,
            ValueUnit::Number => (alert.threshold.abs() / 10.0).max(1.0),
        };
        let harder = match alert.op {
            Op::Gt | Op::Ge => alert.threshold + step,
            Op::Lt | Op::Le => alert.threshold - step,
        };
        out.push(("threshold", serde_json::json!(harder)));
    }
    out.push(("for", serde_json::json!(format!("{}s", alert.for_.0.as_secs() + 60))));
    if let Some(window) = alert.condition.window() {
        out.push(("window", serde_json::json!(format!("{}s", window.0.as_secs() * 2))));
    }
    out
}

/// The generated rules of one alert alone, from `spec` with `overrides` for it.
fn rules_of(spec: &str, pack: &str, key: &str, change: (&str, serde_json::Value), fires: &Fires, dir: &Path) {
    let mut doc: serde_json::Value = serde_saphyr::from_str(spec).unwrap();
    doc["packs"][pack]["alerts"][key][change.0] = change.1;
    std::fs::create_dir_all(dir).unwrap();
    let file = dir.join("spec.yaml");
    std::fs::write(&file, doc.to_string()).unwrap();
    let out = std::process::Command::new(support::exporter_bin())
        .args(["generate", "--config"])
        .arg(&file)
        .arg("--out")
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "generate: {}", String::from_utf8_lossy(&out.stderr));
    let mut kept = Vec::new();
    for entry in std::fs::read_dir(dir.join("alerts")).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().ends_with(".rules.yml") {
            let doc: serde_json::Value = serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let rules = doc["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default());
            kept.extend(rules.filter(|r| {
                r["alert"] == fires.alert.as_str()
                    && r["labels"]["severity"] == fires.severity.as_str()
                    && fires.signal.as_ref().is_none_or(|s| r["labels"]["signal"] == s.as_str())
            }));
            std::fs::remove_file(path).unwrap();
        }
    }
    let one = serde_json::json!({"groups": [{"name": "moved", "rules": kept}]});
    std::fs::write(dir.join("alerts/moved.rules.yml"), one.to_string()).unwrap();
}

/// Runs one scenario (or, without one, the healthy system alone) and returns what went wrong.
async fn run(healthy: &Healthy, runbook: &str, scenario: Option<&Scenario>) -> Vec<String> {
    let played = play(healthy, scenario).await;
    judge(played, runbook, scenario)
}

/// A scenario as the exporter served it, all judging needs once its World is gone: the three
/// phases, and the directory with `spec.yaml` and what it generated.
struct Played {
    dir: tempfile::TempDir,
    calm: Sampled,
    incident: Sampled,
    resolved: Sampled,
}

/// Plays one scenario (or, without one, the healthy system alone) on a World of its own, which is
/// stopped before this returns.
async fn play(healthy: &Healthy, scenario: Option<&Scenario>) -> Played {
    let mut world = World::start(healthy).await;
    let calm = world.sample();
    let (incident, resolved) = match scenario {
        Some(s) => {
            world.apply(&s.incident).await;
            let incident = world.sample();
            world.apply(&s.resolve).await;
            (incident, world.sample())
        }
        None => (world.sample(), world.sample()),
    };
    Played { dir: world.into_dir(), calm, incident, resolved }
}

/// What went wrong in a played scenario, as promtool and amtool see its generated rules and
/// routing: blocking, and touching nothing of the World that played it.
fn judge(played: Played, runbook: &str, scenario: Option<&Scenario>) -> Vec<String> {
    let Played { dir, calm, incident, resolved } = played;
    let generated = dir.path().join("generated");
    let resolved_minutes =
        scenario.and_then(|s| s.resolved_for.as_deref()).map_or(RESOLVED_MINUTES, |d| seconds(d) / 60);
    let minutes = [HEALTHY_MINUTES, INCIDENT_MINUTES, resolved_minutes];
    let at = timeline(&generated.join("alerts"), &[&calm, &incident, &resolved], &minutes);
    let mut problems = Vec::new();
    let name = scenario.map_or("healthy", |s| s.name.as_str());
    // What promtool evaluated, kept for a look when something is wrong.
    let kept = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("scenario-{name}.test.json"));
    std::fs::copy(generated.join("alerts/scenario.test.json"), &kept).unwrap();
    let describe = |m: usize| -> String { at[m].iter().map(|f| f.to_string()).collect::<Vec<_>>().join(", ") };
    // Each alert that fires in the minutes `range`, with the first minute it does.
    let fired = |range: std::ops::Range<usize>| -> Vec<String> {
        let mut first: BTreeMap<&Firing, usize> = BTreeMap::new();
        for m in range {
            for f in &at[m] {
                first.entry(f).or_insert(m);
            }
        }
        first.into_iter().map(|(f, m)| format!("{f} from minute {m}")).collect()
    };
    let (h, d) = (HEALTHY_MINUTES as usize, INCIDENT_MINUTES as usize);
    let total = at.len();
    let quiet = fired(0..h);
    if !quiet.is_empty() {
        problems.push(format!("{name}: while healthy: {}", quiet.join(", ")));
    }
    if !at[total - 1].is_empty() {
        problems.push(format!("{name}: after the resolution, still firing: {}", describe(total - 1)));
    }
    let Some(scenario) = scenario else {
        let later: Vec<String> = fired(h..total)
            .into_iter()
            .filter(|l| !quiet.iter().any(|c| l.starts_with(c.split(" from ").next().unwrap_or(""))))
            .collect();
        if !later.is_empty() {
            problems.push(format!("{name}: later: {}", later.join(", ")));
        }
        return problems;
    };
    let expected: BTreeSet<Firing> = scenario
        .fires
        .iter()
        .map(|f| Firing { alert: f.alert.clone(), severity: f.severity.clone(), signal: f.signal.clone() })
        .collect();
    // Alerts named without their signal match any signal of theirs.
    let matches = |e: &Firing, g: &Firing| {
        e.alert == g.alert && e.severity == g.severity && (e.signal.is_none() || e.signal == g.signal)
    };
    let end = &at[h + d - 1];
    let missing: Vec<String> =
        expected.iter().filter(|e| !end.iter().any(|g| matches(e, g))).map(|e| e.to_string()).collect();
    let extra: Vec<String> =
        end.iter().filter(|g| !expected.iter().any(|e| matches(e, g))).map(|g| g.to_string()).collect();
    if !missing.is_empty() || !extra.is_empty() {
        problems.push(format!(
            "{name}: at the end of the incident, missing [{}], not expected [{}]",
            missing.join(", "),
            extra.join(", ")
        ));
    }
    for fires in &scenario.fires {
        let e = &Firing { alert: fires.alert.clone(), severity: fires.severity.clone(), signal: fires.signal.clone() };
        let first = (h..h + d).find(|&m| at[m].iter().any(|g| matches(e, g))).map(|m| m - h);
        let want = (seconds(&fires.after) / 60) as usize;
        if first != Some(want) {
            let first = first.map_or("never".to_string(), |m| format!("after {m}m"));
            problems.push(format!("{name}: {e} fires {first}, the scenario says after {}", fires.after));
        }
        let got = receiver(&generated.join("alertmanager/alertmanager.yml"), e);
        if got != fires.receiver {
            problems.push(format!("{name}: {e} goes to receiver {got:?}, the scenario says {:?}", fires.receiver));
        }
        // Each of its numbers, moved a step, must change when it fires or when it stops after the
        // resolution (a window shows there: an increase over a longer window clears later).
        let last = |at: &[BTreeSet<Firing>]| (h + d..total).rev().find(|&m| at[m].iter().any(|g| matches(e, g)));
        let resolved_at = last(&at);
        let spec = std::fs::read_to_string(dir.path().join("spec.yaml")).unwrap();
        let model = Model::from_text(&SourceText { name: "spec.yaml".into(), text: spec.clone() }).unwrap();
        if let Some((pack, alert)) = pack_alert(&model, fires).filter(|_| fires.pinned_in.is_none()) {
            let pair =
                model.enabled_signals().flat_map(|s| &s.signal.alerts).filter(|a| a.name == alert.name).count() > 1;
            let key = if pair { format!("{}:{}", alert.name, fires.severity) } else { alert.name.clone() };
            for (what, value) in moves(&model, &alert) {
                let moved_dir = dir.path().join(format!("moved-{}-{what}", alert.name));
                rules_of(&spec, &pack, &key, (what, value.clone()), fires, &moved_dir);
                let moved = timeline(&moved_dir.join("alerts"), &[&calm, &incident, &resolved], &minutes);
                let first = (h..h + d).find(|&m| moved[m].iter().any(|g| matches(e, g))).map(|m| m - h);
                if first == Some((seconds(&fires.after) / 60) as usize) && last(&moved) == resolved_at {
                    problems.push(format!(
                        "{name}: {e} still fires after {} and stops when it did with its {what} moved to {value}: \
                         the scenario does not pin its {what} down",
                        fires.after
                    ));
                }
            }
        }
        let link = fires.link.clone().unwrap_or_else(|| format!("{runbook}#{}", anchor(&scenario.section)));
        match runbook_url(&generated.join("alerts"), e) {
            Some(url) if url.ends_with(&format!("/{link}")) => {}
            other => problems.push(format!("{name}: {e} links {other:?}, the scenario says {link}")),
        }
    }
    problems
}

pub(crate) fn healthy() -> Healthy {
    load("tests/scenarios/healthy.yaml")
}

/// The runbook's headings, and those that must each have a scenario: a heading whose text (up to
/// the next heading) says "Symptoms" (a heading that is only "Symptoms" speaks for the heading
/// above it), an incident heading (`Issue: ...`), and an alert list: a heading that says "Alert",
/// or one under it, whose own text lists a threshold (`> 1000 jobs`, `Alert if > 20`, `2+ hours`).
fn headings(runbook: &str) -> (Vec<String>, BTreeSet<String>) {
    let (mut all, mut forced) = (Vec::new(), BTreeSet::new());
    let threshold = regex::Regex::new(r"^\s*(?:[-*]|\d+\.)\s.*(?:[<>]|\d\+)").unwrap();
    // The open headings, by level.
    let mut open: Vec<(usize, String)> = Vec::new();
    let mut fenced = false;
    for line in runbook.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            let level = line.chars().take_while(|c| *c == '#').count();
            let text = line.trim_start_matches('#').trim().to_string();
            open.retain(|(l, _)| *l < level);
            if text == "Symptoms" {
                forced.extend(open.last().map(|(_, h)| h.clone()));
            }
            if text.starts_with("Issue:") {
                forced.insert(text.clone());
            }
            open.push((level, text.clone()));
            all.push(text);
        } else if fenced {
            continue;
        } else if line.contains("Symptoms")
            && let Some((_, h)) = open.last()
        {
            forced.insert(h.clone());
        } else if threshold.is_match(line)
            && open.iter().any(|(_, h)| h.contains("Alert"))
            && let Some((_, h)) = open.last()
        {
            forced.insert(h.clone());
        }
    }
    (all, forced)
}

pub(crate) fn scenarios_of(file: &str) -> RunbookScenarios {
    let scenarios: RunbookScenarios = load(&format!("tests/scenarios/{file}.yaml"));
    assert_eq!(scenarios.runbook, format!("{file}.md"));
    let text = std::fs::read_to_string(repo(&format!("tests/fixtures/runbooks/{file}.md"))).unwrap();
    let (all, forced) = headings(&text);
    for section in scenarios.sections.iter().chain(scenarios.scenarios.iter().map(|s| &s.section)) {
        assert!(all.contains(section), "tests/scenarios/{file}.yaml: no heading {section:?} in {file}.md");
    }
    for section in &forced {
        assert!(
            scenarios.sections.contains(section),
            "{file}.md: {section:?} names symptoms, an incident or alert thresholds but is not in `sections`"
        );
    }
    for section in &scenarios.sections {
        assert!(scenarios.scenarios.iter().any(|s| &s.section == section), "{file}.md: no scenario plays {section:?}");
    }
    // An alert pinned elsewhere is pinned there: that scenario expects it and moves its numbers.
    for (scenario, fires) in scenarios.scenarios.iter().flat_map(|s| s.fires.iter().map(move |f| (s, f))) {
        let Some(other) = &fires.pinned_in else { continue };
        let pins = scenarios.scenarios.iter().find(|s| &s.name == other).is_some_and(|s| {
            s.fires.iter().any(|f| {
                f.alert == fires.alert
                    && f.severity == fires.severity
                    && f.signal == fires.signal
                    && f.pinned_in.is_none()
            })
        });
        assert!(
            pins,
            "{file}: {}: {} ({}) is pinned in {other:?}, which does not pin it",
            scenario.name, fires.alert, fires.severity
        );
    }
    scenarios
}

/// Every scenario of one runbook file; all their problems at once. `SCENARIO=name` plays only
/// that one (and skips the coverage check), for writing a scenario.
async fn replay(file: &str) {
    let healthy = healthy();
    let only = std::env::var("SCENARIO").ok();
    let scenarios = match only {
        Some(_) => load::<RunbookScenarios>(&format!("tests/scenarios/{file}.yaml")),
        None => scenarios_of(file),
    };
    // One judge, in the order played, while the next scenario plays: promtool's CPU beside the
    // player's waits.
    let runbook = scenarios.runbook.clone();
    let (to_judge, queue) = std::sync::mpsc::channel::<(Scenario, Played)>();
    let judging = Worker::spawn("judge", move |_| {
        queue.iter().flat_map(|(scenario, played)| judge(played, &runbook, Some(&scenario))).collect::<Vec<_>>()
    });
    for scenario in scenarios.scenarios.into_iter().filter(|s| only.as_ref().is_none_or(|o| *o == s.name)) {
        let played = play(&healthy, Some(&scenario)).await;
        // Only a judge that panicked hangs up; joining it reports that.
        if to_judge.send((scenario, played)).is_err() {
            break;
        }
    }
    drop(to_judge);
    // The scenarios played last may all still be waiting: within the test's own time limit.
    let problems = Worker::join_all(vec![judging], Duration::from_secs(600)).pop().expect("one judge");
    assert!(
        problems.is_empty(),
        "{}\n(what promtool evaluated: {}/scenario-*.test.json)",
        problems.join("\n"),
        env!("CARGO_TARGET_TMPDIR")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_healthy_system_pages_nobody() {
    let problems = run(&healthy(), "", None).await;
    assert!(
        problems.is_empty(),
        "{}\n(what promtool evaluated: {}/scenario-healthy.test.json)",
        problems.join("\n"),
        env!("CARGO_TARGET_TMPDIR")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn token_refresh_incidents() {
    replay("token-refresh").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn calendar_sync_incidents() {
    replay("calendar-sync").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn etl_token_monitoring_incidents() {
    replay("etl-token-monitoring").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn microsoft_integration_incidents() {
    replay("microsoft-integration").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn salesforce_incidents_incidents() {
    replay("salesforce-incidents").await;
}

/// docs/alerting.md's table: runbook section, scenario, what pages or opens a ticket.
fn table() -> String {
    let mut out =
        String::from("| Runbook section | Scenario | Alerts (severity → receiver, first after) |\n|---|---|---|\n");
    for file in RUNBOOKS {
        let scenarios = scenarios_of(file);
        for s in &scenarios.scenarios {
            let alerts: Vec<String> = s
                .fires
                .iter()
                .map(|f| format!("`{}` ({} → {}, {})", f.alert, f.severity, f.receiver, f.after))
                .collect();
            out.push_str(&format!(
                "| {file}.md: {} | `{}`: {} | {} |\n",
                s.section,
                s.name,
                s.what,
                if alerts.is_empty() { "none (expected, no action)".to_string() } else { alerts.join("<br>") }
            ));
        }
    }
    out
}

#[test]
fn alerting_doc_scenario_table_is_the_scenarios() {
    let doc = std::fs::read_to_string(repo("docs/alerting.md")).unwrap();
    let expected = format!("<!-- scenarios:start -->\n{}<!-- scenarios:end -->", table());
    assert!(doc.contains(&expected), "docs/alerting.md's scenario table is stale; it should read:\n{expected}");
}

/// Why an alert on a table count's rise is not replayed.
const RISE: &str = "fires on how much a table's count rose within its 1h window: the player holds the tables at one \
                    state through a phase, so the rise leaves the window an hour into the incident and the alert stops \
                    before the incident's end, where each scenario's set is asserted";

/// Pack alerts (at their defaults) that no scenario can expect, each with the reason.
const NOT_REPLAYED: &[(&str, &str)] = &[
    ("IntegrationCalendarSyncErrorCountRising", RISE),
    ("IntegrationCalendarSyncFailedEvents", RISE),
    ("IntegrationTokenRefreshPersistent429", RISE),
    (
        "IntegrationSalesforceMcpServerAbsent",
        "fires only while the exporter serves no health probe result at all (the pack's health_url unset or not polled): a \
         configuration, not a runbook state; a failing probe is served as 0 and pages as IntegrationSalesforceMcpServerDown",
    ),
    (
        "IntegrationTokenRefreshHeartbeatMissing",
        "fires only while the exporter has read no \"Cycle complete\" line since it started (the pack pointed at the wrong \
         file): every scenario starts from the healthy system, whose worker has logged cycles; a worker that stops is \
         IntegrationTokenRefreshHeartbeatLag (worker-crashed)",
    ),
];

/// Every alert of every pack at its defaults is expected by some scenario (an SLO's alert by any
/// of its tiers), so moving its threshold, window or `for` fails the library; or it is in
/// `NOT_REPLAYED` with the reason.
#[test]
fn every_pack_alert_is_expected_by_a_scenario() {
    let model = Model::builtin_defaults();
    let expected: BTreeSet<(String, String)> = RUNBOOKS
        .iter()
        .flat_map(|file| scenarios_of(file).scenarios)
        .flat_map(|s| s.fires)
        .map(|f| (f.alert, f.severity))
        .collect();
    let mut wanted: BTreeSet<(String, Option<String>)> = model
        .enabled_signals()
        .filter(|s| s.pack.is_some())
        .flat_map(|s| s.signal.alerts.iter().filter(|a| a.enabled))
        .map(|a| (a.name.clone(), Some(a.severity.as_str().to_string())))
        .collect();
    wanted.extend(model.slos().filter(|(s, _)| s.pack.is_some()).map(|(_, slo)| (slo.alert.clone(), None)));
    let mut problems = Vec::new();
    for (alert, severity) in &wanted {
        let played = expected.iter().any(|(a, s)| a == alert && severity.as_ref().is_none_or(|want| want == s));
        let excused = NOT_REPLAYED.iter().any(|(a, why)| a == alert && !why.trim().is_empty());
        match (played, excused) {
            (false, false) => problems
                .push(format!("{alert} ({}): no scenario expects it", severity.as_deref().unwrap_or("any tier"))),
            (true, true) => problems.push(format!("{alert}: a scenario expects it, yet NOT_REPLAYED lists it")),
            _ => {}
        }
    }
    for (alert, _) in NOT_REPLAYED {
        if !wanted.iter().any(|(a, _)| a == alert) {
            problems.push(format!("NOT_REPLAYED names {alert}, no alert of a pack at its defaults"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
