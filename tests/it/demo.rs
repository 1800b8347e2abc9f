//! `scripts/demo` as a user runs it, on a short cycle: its throwaway PostgreSQL, log writer,
//! exporter, Prometheus (Debian's `prometheus`) on the rules generated from the demo's spec,
//! Alertmanager (`prometheus-alertmanager`) and the webhook receiver. Over one cycle, each alert the
//! demo's trouble means to show goes pending, fires, reaches the receiver and resolves, and no other
//! alert is ever pending or firing; `diagnose` and `/status.json` report the trouble during the
//! trouble quarter and all ok while healthy. SIGTERM to the script, or Ctrl-C (SIGINT to its process
//! group), stops every process it started and frees every port.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use support::http::api;
use support::{exporter_bin, free_port};

/// Seconds of one demo cycle: trouble from 60 s to 90 s, alert windows of 15 s and `for` of 7 s.
const CYCLE: f64 = 120.0;

/// Every alert the demo's trouble means to show (those `demo/spec.yaml` gives demo windows and
/// `for`s): each must go pending, fire and resolve within the cycle, and no other may be active.
const TROUBLE: [&str; 23] = [
    "IntegrationCalendarSyncErrors",
    "IntegrationCalendarSyncProviderStale",
    "IntegrationCalendarSyncStuck",
    "IntegrationCalendarSyncTokenExpired",
    "IntegrationEtlTokenExpiry",
    "IntegrationEtlTokenRefreshRunFailed",
    "IntegrationEtlWorkflowDisabled",
    "IntegrationMicrosoftGraphAuthFailing",
    "IntegrationMicrosoftGraphErrorRate",
    "IntegrationMicrosoftQueueBacklog",
    "IntegrationMicrosoftRateLimited",
    "IntegrationMicrosoftSyncStalled",
    "IntegrationMicrosoftWebhookExpiring",
    "IntegrationSalesforceApiUsageHigh",
    "IntegrationSalesforceModelErrorRate",
    "IntegrationSalesforceModelLatencyHigh",
    "IntegrationSalesforceOAuthRefreshFailing",
    "IntegrationSalesforceRequestLimitHit",
    "IntegrationTokenRefreshBackoffNotWorking",
    "IntegrationTokenRefreshDegradedWatchers",
    "IntegrationTokenRefreshLockStuck",
    "IntegrationTokenRefreshRateLimitHigh",
    "IntegrationTokenRefreshSuccessRateLow",
];

/// The script's ports, chosen free by the test.
struct Ports {
    exporter: u16,
    prometheus: u16,
    alertmanager: u16,
    receiver: u16,
}

/// The demo script, stopped (SIGTERM, then SIGKILL of what it started) if the test ends early.
struct Demo {
    child: Child,
    dir: PathBuf,
    ports: Ports,
    started: Instant,
}

impl Demo {
    /// Starts `scripts/demo` on the test's cycle, leading its own process group as a shell's job does.
    fn start(dir: &Path) -> Demo {
        // As root the demo runs PostgreSQL as `postgres`, which must reach the demo's directory.
        let mode = std::os::unix::fs::PermissionsExt::from_mode(0o755);
        std::fs::set_permissions(dir, mode).unwrap();
        let ports =
            Ports { exporter: free_port(), prometheus: free_port(), alertmanager: free_port(), receiver: free_port() };
        let out = std::fs::File::create(dir.join("out.txt")).unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let child = Command::new(root.join("scripts/demo"))
            .env("DEMO_CYCLE", CYCLE.to_string())
            .env("DEMO_DIR", dir.join("d"))
            .env("DEMO_BIN", exporter_bin())
            .env("DEMO_EXPORTER_PORT", ports.exporter.to_string())
            .env("DEMO_PROMETHEUS_PORT", ports.prometheus.to_string())
            .env("DEMO_ALERTMANAGER_PORT", ports.alertmanager.to_string())
            .env("DEMO_RECEIVER_PORT", ports.receiver.to_string())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .process_group(0)
            .spawn()
            .expect("scripts/demo");
        Demo { child, dir: dir.to_path_buf(), ports, started: Instant::now() }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(self.dir.join("out.txt")).unwrap_or_default()
    }

    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join("d").join(name)).unwrap_or_default()
    }

    /// The process groups the script started (one per program), as it records them.
    fn groups(&self) -> Vec<i32> {
        self.file("pids").lines().filter_map(|l| l.trim().parse().ok()).collect()
    }

    fn signal(&self, signal: &str, target: String) {
        let _ = support::program("kill").args([signal, "--", &target]).stderr(Stdio::null()).status();
    }

    /// Waits until the script says it runs (everything started, Prometheus has the rules).
    fn wait_running(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !self.output().contains("Ctrl-C stops everything.") {
            assert!(self.child.try_wait().unwrap().is_none(), "the demo stopped:\n{}", self.output());
            assert!(Instant::now() < deadline, "the demo did not start within 2 minutes:\n{}", self.output());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Every port the demo listens on: its four, PostgreSQL's and the stand-in APIs'.
    fn all_ports(&self) -> Vec<u16> {
        let after = |text: &str, key: &str| -> Option<u16> {
            let rest = &text[text.find(key)? + key.len()..];
            rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
        };
        let p = &self.ports;
        let mut ports = vec![p.exporter, p.prometheus, p.alertmanager, p.receiver];
        ports.extend(after(&self.file("env"), "@127.0.0.1:"));
        ports.extend(after(&self.file("spec.yaml"), "instance_url: http://127.0.0.1:"));
        assert_eq!(ports.len(), 6, "the demo's PostgreSQL and stand-in ports are found: {ports:?}");
        ports
    }

    /// Sends `signal` to `target` (the script, or its process group), and checks that the script
    /// exits and leaves no process it started and no port taken.
    fn stop_with(&mut self, signal: &str, target: String) -> ExitStatus {
        let groups = self.groups();
        assert!(groups.len() >= 5, "the demo records the groups it started: {groups:?}");
        let dir_text = self.dir.display().to_string();
        let ours = |procs: BTreeMap<i32, (i32, String)>| -> Vec<(i32, String)> {
            procs
                .into_iter()
                .filter(|(_, (pgrp, cmd))| groups.contains(pgrp) || cmd.contains(&dir_text))
                .map(|(pid, (_, cmd))| (pid, cmd))
                .collect()
        };
        let before = ours(processes());
        for program in ["postgres", "prometheus ", "prometheus-alertmanager", "log_writer.py", "receiver.py", " serve "]
        {
            assert!(before.iter().any(|(_, cmd)| cmd.contains(program)), "{program} runs: {before:?}");
        }
        let ports = self.all_ports();
        for port in &ports {
            assert!(support::http::listening(*port), "the demo listens on {port} before the stop");
        }
        self.signal(signal, target);
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "the script did not stop on {signal}:\n{}", self.output());
            std::thread::sleep(Duration::from_millis(100));
        };
        let left = ours(processes());
        assert!(left.is_empty(), "left running after {signal} ({status}): {left:?}\nwere running: {before:?}");
        let taken: Vec<u16> =
            ports.iter().copied().filter(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_err()).collect();
        assert!(taken.is_empty(), "ports still taken after {signal}: {taken:?} (of {ports:?})");
        status
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.signal("-TERM", self.child.id().to_string());
            let deadline = Instant::now() + Duration::from_secs(20);
            while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        for group in self.groups() {
            self.signal("-KILL", format!("-{group}"));
        }
        let _ = std::fs::remove_dir_all(self.dir.join("d"));
    }
}

/// Every process on the machine: pid -> (process group, command line).
fn processes() -> BTreeMap<i32, (i32, String)> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // `pid (comm) state ppid pgrp ...`; comm may hold spaces and parentheses.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { continue };
        let Some(pgrp) = rest.split_whitespace().nth(2).and_then(|p| p.parse().ok()) else { continue };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        out.insert(pid, (pgrp, cmdline));
    }
    out
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// Active alerts in Prometheus: (alertname, state) pairs.
fn active(port: u16) -> BTreeSet<(String, String)> {
    api(port, "/api/v1/alerts")["data"]["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|a| {
            (
                a["labels"]["alertname"].as_str().unwrap_or_default().to_string(),
                a["state"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// How bad a verdict is, to keep the worst of several checks of one alert.
fn rank(verdict: &str) -> u8 {
    match verdict {
        "critical" => 3,
        "warning" => 2,
        "unknown" => 1,
        _ => 0,
    }
}

/// Worst warning or critical verdict per alert among `rows` (diagnose's checks, the status rows).
fn bad_verdicts<'a>(rows: impl Iterator<Item = &'a Value>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::<String, String>::new();
    for row in rows {
        let (Some(alert), Some(verdict)) = (row["alert"].as_str(), row["verdict"].as_str()) else { continue };
        if rank(verdict) >= 2 && out.get(alert).is_none_or(|v| rank(v) < rank(verdict)) {
            out.insert(alert.to_string(), verdict.to_string());
        }
    }
    out
}

/// One reading of `diagnose` and of `/status.json`, at a second of the demo's cycle.
struct Reading {
    phase: f64,
    /// When both readings were done: a reading counts for a phase only if it lies wholly in it.
    end: f64,
    diagnose_status: i32,
    diagnose_bad: BTreeMap<String, String>,
    /// The alerts diagnose cannot judge from one reading (`blind`), e.g. a rise over an hour.
    diagnose_blind: BTreeSet<String>,
    page_verdict: String,
    page_bad: BTreeMap<String, String>,
}

impl std::fmt::Debug for Reading {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>5.1}-{:.1}s diagnose {} {:?} | status.json {} {:?}",
            self.phase, self.end, self.diagnose_status, self.diagnose_bad, self.page_verdict, self.page_bad
        )
    }
}

/// Runs `diagnose --config <demo spec>` as the demo's hint says, and reads `/status.json`.
fn read_verdicts(demo_dir: &Path, exporter: u16, cycle_start: f64) -> Reading {
    let mut command = Command::new(exporter_bin());
    command.args(["diagnose", "--format", "json", "--config"]).arg(demo_dir.join("spec.yaml"));
    let env = std::fs::read_to_string(demo_dir.join("env")).unwrap();
    for line in env.lines() {
        if let Some((key, value)) = line.trim_start_matches("export ").split_once('=') {
            command.env(key, value);
        }
    }
    let phase = unix_now() - cycle_start;
    let output = command.stderr(Stdio::null()).output().expect("diagnose");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    let code = output.status.code().unwrap_or(-1);
    assert_eq!(report["status"].as_i64(), Some(code as i64), "diagnose's JSON status is its exit status");
    let checks = report["checks"].as_array().cloned().unwrap_or_default();
    let page = api(exporter, "/status.json");
    let rows: Vec<Value> = page["packs"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["rows"].as_array().cloned().unwrap_or_default())
        .collect();
    Reading {
        phase,
        end: unix_now() - cycle_start,
        diagnose_status: code,
        diagnose_bad: bad_verdicts(checks.iter()),
        diagnose_blind: checks
            .iter()
            // A source that cannot be read is no excuse: only a check that needs history is.
            .filter(|c| !c["blind"].is_null() && c["blind"]["cause"] != "source")
            .filter_map(|c| c["alert"].as_str().map(str::to_string))
            .collect(),
        page_verdict: page["verdict"].as_str().unwrap_or("none").to_string(),
        page_bad: bad_verdicts(rows.iter()),
    }
}

/// `query` as a URL's query value.
fn encode(query: &str) -> String {
    query
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b == b'_' { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

#[test]
fn demo_fires_and_resolves_within_a_cycle_and_stops_everything_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut demo = Demo::start(dir.path());
    demo.wait_running();
    let (exporter, prometheus) = (demo.ports.exporter, demo.ports.prometheus);
    let hints = demo.output();
    for hint in [
        format!("http://127.0.0.1:{exporter}/ "),
        format!("http://127.0.0.1:{exporter}/metrics"),
        format!("http://127.0.0.1:{prometheus}/alerts"),
        format!("http://127.0.0.1:{}/", demo.ports.alertmanager),
        "diagnose --config".to_string(),
    ] {
        assert!(hints.contains(&hint), "the demo's hints name {hint}:\n{hints}");
    }
    // Prometheus runs the generated rules (else "nothing fired" would prove nothing).
    let groups = api(prometheus, "/api/v1/rules")["data"]["groups"].as_array().map_or(0, Vec::len);
    assert!(groups >= 5, "Prometheus has the generated rule groups: {groups}");
    // The writer's phases run from its own start: trouble in [CYCLE/2, 3 CYCLE/4).
    let cycle_start: f64 = demo
        .file("log_writer.log")
        .lines()
        .find_map(|l| l.split_once("from Unix time ").and_then(|(_, t)| t.trim().parse().ok()))
        .expect("the log writer says when its cycle starts");
    let phase = || unix_now() - cycle_start;

    // diagnose and /status.json, read beside the alert polls (a diagnose takes a second or two).
    let readings = Arc::new(Mutex::new(Vec::<Reading>::new()));
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (readings, done, demo_dir) = (readings.clone(), done.clone(), dir.path().join("d"));
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let reading = read_verdicts(&demo_dir, exporter, cycle_start);
                readings.lock().unwrap().push(reading);
                std::thread::sleep(Duration::from_secs(2));
            }
        })
    };

    // Every alert state Prometheus shows, each second, until a healthy stretch after the cycle.
    let mut seen: BTreeMap<String, BTreeMap<String, (f64, f64)>> = BTreeMap::new();
    let mut log: Vec<String> = Vec::new();
    let end = CYCLE + 8.0;
    while phase() < end {
        let now = phase();
        let alerts = active(prometheus);
        for (name, state) in &alerts {
            let span = seen.entry(name.clone()).or_default().entry(state.clone()).or_insert((now, now));
            span.1 = now;
        }
        let line = format!("{alerts:?}");
        if log.last().and_then(|l| l.split_once(": ")).map(|(_, a)| a) != Some(line.as_str()) {
            log.push(format!("{now:>5.1}s: {line}"));
        }
        assert!(demo.child.try_wait().unwrap().is_none(), "the demo stopped:\n{}", demo.output());
        std::thread::sleep(Duration::from_secs(1));
    }
    done.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    let readings = std::mem::take(&mut *readings.lock().unwrap());
    let report = |what: &str| -> String {
        format!(
            "{what}\nalert states seen (second of the cycle: alerts):\n{}\ndiagnose and status.json:\n{}\nscript output:\n{}",
            log.join("\n"),
            readings.iter().map(|r| format!("{r:?}")).collect::<Vec<_>>().join("\n"),
            demo.output()
        )
    };

    // Nothing else: every alert ever pending or firing, by the polls and by Prometheus' own
    // ALERTS series over the whole run, is one the demo means to show.
    let range = demo.started.elapsed().as_secs() + 10;
    let series =
        api(prometheus, &format!("/api/v1/query?query={}", encode(&format!("count_over_time(ALERTS[{range}s])"))));
    let mut ever: BTreeSet<(String, String)> = series["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|s| {
            let m = &s["metric"];
            (m["alertname"].as_str().unwrap_or("").to_string(), m["alertstate"].as_str().unwrap_or("").to_string())
        })
        .collect();
    for (name, states) in &seen {
        ever.extend(states.keys().map(|s| (name.clone(), s.clone())));
    }
    let names: BTreeSet<&str> = ever.iter().map(|(n, _)| n.as_str()).collect();
    let trouble: BTreeSet<&str> = TROUBLE.into_iter().collect();
    assert_eq!(names, trouble, "{}", report("the alerts ever pending or firing are exactly the demo's trouble alerts"));

    // Each trouble alert: pending, then firing, from the trouble on, and resolved within the cycle.
    for name in TROUBLE {
        for state in ["pending", "firing"] {
            assert!(
                ever.contains(&(name.to_string(), state.to_string())),
                "{}",
                report(&format!("{name} never {state}"))
            );
        }
        let spans = seen.get(name).cloned().unwrap_or_default();
        let first = spans.values().map(|s| s.0).fold(f64::MAX, f64::min);
        let last = spans.values().map(|s| s.1).fold(f64::MIN, f64::max);
        assert!(first >= CYCLE / 2.0, "{}", report(&format!("{name} active at {first:.1}s, before the trouble")));
        assert!(last < CYCLE, "{}", report(&format!("{name} still active at {last:.1}s, past the cycle")));
    }
    let still = active(prometheus);
    assert!(still.is_empty(), "{}", report(&format!("active after the cycle: {still:?}")));

    // Alertmanager delivered each, firing then resolved, to the receiver, which printed it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let output = demo.output();
        let missing: Vec<String> = TROUBLE
            .iter()
            .flat_map(|name| [format!("firing {name} "), format!("resolved {name} ")])
            .filter(|line| !output.contains(line))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "{}", report(&format!("the receiver never printed {missing:?}")));
        std::thread::sleep(Duration::from_millis(500));
    }

    // diagnose and the status page: all ok while healthy (once every source was read, and once the
    // trouble left the windows and `for`s), the trouble while in it, and the same verdicts.
    let healthy = |p: f64| (25.0..CYCLE / 2.0 - 1.0).contains(&p) || p >= CYCLE * 3.0 / 4.0 + CYCLE / 8.0 + 8.0;
    let in_trouble = |p: f64| (CYCLE / 2.0 + CYCLE / 16.0 + 2.0..CYCLE * 3.0 / 4.0 - 1.0).contains(&p);
    let (mut healthy_readings, mut trouble_readings) = (0, 0);
    let (mut diagnosed, mut paged) = (BTreeMap::<String, String>::new(), BTreeMap::<String, String>::new());
    let mut blind = BTreeSet::new();
    for r in &readings {
        if healthy(r.phase) && healthy(r.end) {
            healthy_readings += 1;
            assert!(
                r.diagnose_status == 0 && r.diagnose_bad.is_empty(),
                "{}",
                report(&format!("diagnose not ok while healthy: {r:?}"))
            );
            assert!(
                r.page_verdict == "ok" && r.page_bad.is_empty(),
                "{}",
                report(&format!("status.json not ok while healthy: {r:?}"))
            );
        }
        if in_trouble(r.phase) && in_trouble(r.end) {
            trouble_readings += 1;
            assert_eq!(r.diagnose_status, 2, "{}", report(&format!("diagnose does not report the trouble: {r:?}")));
            assert_eq!(
                r.page_verdict,
                "critical",
                "{}",
                report(&format!("status.json does not report the trouble: {r:?}"))
            );
            for (bad, all) in [(&r.diagnose_bad, &mut diagnosed), (&r.page_bad, &mut paged)] {
                for (alert, verdict) in bad {
                    let worst = all.entry(alert.clone()).or_default();
                    if rank(verdict) > rank(worst) {
                        *worst = verdict.clone();
                    }
                }
            }
            blind.extend(r.diagnose_blind.iter().cloned());
        }
    }
    assert!(healthy_readings >= 5 && trouble_readings >= 3, "{}", report("too few diagnose readings"));
    // What diagnose judges from one reading, it reports, as the status page does, for every trouble
    // alert; and neither reports anything else.
    let judged: BTreeSet<&str> = trouble.iter().copied().filter(|a| !blind.contains(*a)).collect();
    let diagnosed_names: BTreeSet<&str> = diagnosed.keys().map(String::as_str).collect();
    assert_eq!(diagnosed_names, judged, "{}", report("diagnose reports exactly the trouble alerts it can judge"));
    let paged_judged: BTreeMap<String, String> =
        paged.iter().filter(|(a, _)| judged.contains(a.as_str())).map(|(a, v)| (a.clone(), v.clone())).collect();
    assert_eq!(paged_judged, diagnosed, "{}", report("status.json's verdicts are diagnose's"));
    let paged_names: BTreeSet<&str> = paged.keys().map(String::as_str).collect();
    assert!(paged_names.is_subset(&trouble), "{}", report("status.json reports only trouble alerts"));

    // SIGTERM to the script stops everything it started, PostgreSQL too, and frees every port.
    let pid = demo.child.id().to_string();
    demo.stop_with("-TERM", pid);
    println!("alert states seen:\n{}", log.join("\n"));
    println!("readings:\n{}", readings.iter().map(|r| format!("{r:?}")).collect::<Vec<_>>().join("\n"));
    println!("diagnose judges {} of the {} trouble alerts; blind to {blind:?}", judged.len(), TROUBLE.len());
}

/// Ctrl-C in the demo's terminal: SIGINT to the script's whole process group, as a terminal sends.
#[test]
fn demo_stops_everything_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let mut demo = Demo::start(dir.path());
    demo.wait_running();
    let group = format!("-{}", demo.child.id());
    let status = demo.stop_with("-INT", group);
    assert_eq!(status.code(), Some(130), "the script exits as interrupted: {status}\n{}", demo.output());
}
