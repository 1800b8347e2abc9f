//! `scripts/demo` as a user runs it, on a short cycle: its throwaway PostgreSQL, log writer,
//! exporter, Prometheus (Debian's `prometheus`) on the rules generated from the demo's spec,
//! Alertmanager (`prometheus-alertmanager`) and the webhook receiver. The seeded rows fire nothing
//! while the demo is healthy, a trouble alert fires and resolves within one cycle and reaches the
//! receiver, and SIGTERM to the script stops every process it started.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::http::api;
use support::{exporter_bin, free_port};

/// Seconds of one demo cycle: trouble from 60 s to 90 s, alert windows of 15 s and `for` of 7 s.
const CYCLE: u64 = 120;

/// Alerts the demo's trouble fires (each a different source: an HTTP endpoint, a database table,
/// the GitHub stand-in); one of them firing then resolving shows the loop.
const TROUBLE: [&str; 3] =
    ["IntegrationMicrosoftQueueBacklog", "IntegrationTokenRefreshDegradedWatchers", "IntegrationEtlWorkflowDisabled"];

/// Alerts the seeded rows fired for ever before the demo healed them while healthy.
const SEEDED: [&str; 9] = [
    "IntegrationCalendarSyncStuck",
    "IntegrationCalendarSyncTokenExpired",
    "IntegrationCalendarSyncNeededNotCleared",
    "IntegrationEtlSyncDelayed",
    "IntegrationEtlSyncFailing",
    "IntegrationEtlTokenExpiry",
    "IntegrationMicrosoftWebhookExpiring",
    "IntegrationTokenRefreshBackoffNotWorking",
    "IntegrationTokenRefreshLockStuck",
];

/// The demo script, stopped (SIGTERM, then SIGKILL of what it started) if the test ends early.
struct Demo {
    child: Child,
    dir: PathBuf,
}

impl Demo {
    fn output(&self) -> String {
        std::fs::read_to_string(self.dir.join("out.txt")).unwrap_or_default()
    }

    /// The process groups the script started (one per program), as it records them.
    fn groups(&self) -> Vec<i32> {
        std::fs::read_to_string(self.dir.join("d/pids"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    fn terminate(&mut self) {
        let _ = support::program("kill").args(["-TERM", &self.child.id().to_string()]).status();
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.terminate();
            let deadline = Instant::now() + Duration::from_secs(20);
            while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        for group in self.groups() {
            let _ = support::program("kill").args(["-KILL", "--", &format!("-{group}")]).status();
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

fn firing(alerts: &BTreeSet<(String, String)>, name: &str) -> bool {
    alerts.contains(&(name.to_string(), "firing".to_string()))
}

#[test]
fn demo_fires_and_resolves_within_a_cycle_and_stops_everything_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    // As root the demo runs PostgreSQL as `postgres`, which must reach the demo's directory.
    let mode = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(dir.path(), mode).unwrap();
    let (exporter, prometheus, alertmanager, receiver) = (free_port(), free_port(), free_port(), free_port());
    let out = std::fs::File::create(dir.path().join("out.txt")).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let child = Command::new(root.join("scripts/demo"))
        .env("DEMO_CYCLE", CYCLE.to_string())
        .env("DEMO_DIR", dir.path().join("d"))
        .env("DEMO_BIN", exporter_bin())
        .env("DEMO_EXPORTER_PORT", exporter.to_string())
        .env("DEMO_PROMETHEUS_PORT", prometheus.to_string())
        .env("DEMO_ALERTMANAGER_PORT", alertmanager.to_string())
        .env("DEMO_RECEIVER_PORT", receiver.to_string())
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("scripts/demo");
    let started = Instant::now();
    let mut demo = Demo { child, dir: dir.path().to_path_buf() };
    let seen = |demo: &Demo, what: &str, log: &[String]| -> String {
        format!(
            "{what}\nalert states seen (seconds since start: alerts):\n{}\nscript output:\n{}",
            log.join("\n"),
            demo.output()
        )
    };

    // Up: Prometheus scrapes the exporter, and the hints name every place to look.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let targets = api(prometheus, "/api/v1/targets");
        if targets["data"]["activeTargets"][0]["health"] == "up" {
            break;
        }
        assert!(demo.child.try_wait().unwrap().is_none(), "{}", seen(&demo, "the demo stopped", &[]));
        assert!(Instant::now() < deadline, "{}", seen(&demo, "Prometheus never scraped the exporter", &[]));
        std::thread::sleep(Duration::from_millis(500));
    }
    let up_at = started.elapsed();
    let hints = demo.output();
    for hint in [
        format!("http://127.0.0.1:{exporter}/ "),
        format!("http://127.0.0.1:{exporter}/metrics"),
        format!("http://127.0.0.1:{prometheus}/alerts"),
        format!("http://127.0.0.1:{alertmanager}/"),
        "diagnose --config".to_string(),
    ] {
        assert!(hints.contains(&hint), "the demo's hints name {hint}:\n{hints}");
    }

    // Healthy (the first half of the cycle): long enough for every demo `for`, nothing seeded fires.
    let mut log = Vec::new();
    let watch = |log: &mut Vec<String>| -> BTreeSet<(String, String)> {
        let alerts = active(prometheus);
        let line = format!("{:>4}s: {alerts:?}", started.elapsed().as_secs());
        if log.last().and_then(|l: &String| l.split_once(": ")).map(|(_, a)| a) != line.split_once(": ").map(|(_, a)| a)
        {
            log.push(line);
        }
        alerts
    };
    let healthy_until = up_at + Duration::from_secs(25);
    while started.elapsed() < healthy_until {
        let alerts = watch(&mut log);
        let forever: Vec<&str> = SEEDED.iter().copied().filter(|a| firing(&alerts, a)).collect();
        assert!(forever.is_empty(), "{}", seen(&demo, &format!("seeded rows fire {forever:?} while healthy"), &log));
        std::thread::sleep(Duration::from_secs(1));
    }

    // Trouble and recovery: a trouble alert goes firing, then resolves, within the cycle.
    let deadline = started + Duration::from_secs(CYCLE + 60);
    let mut fired: Option<&str> = None;
    let resolved = loop {
        let alerts = watch(&mut log);
        match fired {
            None => fired = TROUBLE.iter().copied().find(|a| firing(&alerts, a)),
            Some(name) if !alerts.iter().any(|(a, _)| a == name) => break name,
            Some(_) => {}
        }
        assert!(Instant::now() < deadline, "{}", seen(&demo, "no trouble alert fired then resolved", &log));
        std::thread::sleep(Duration::from_secs(1));
    };
    // Alertmanager delivered it to the receiver, which printed it.
    let printed = format!("firing {resolved} ");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !demo.output().contains(&printed) {
        assert!(Instant::now() < deadline, "{}", seen(&demo, &format!("the receiver never printed `{printed}`"), &log));
        std::thread::sleep(Duration::from_millis(500));
    }

    // SIGTERM to the script stops everything it started: each process group, PostgreSQL too.
    let groups = demo.groups();
    assert!(groups.len() >= 5, "the demo records the groups it started: {groups:?}");
    let dir_text = dir.path().display().to_string();
    let before = processes();
    let ours: Vec<(i32, String)> = before
        .iter()
        .filter(|(_, (pgrp, cmd))| groups.contains(pgrp) || cmd.contains(&dir_text))
        .map(|(pid, (_, cmd))| (*pid, cmd.clone()))
        .collect();
    assert!(ours.iter().any(|(_, cmd)| cmd.contains("postgres")), "PostgreSQL runs: {ours:?}");
    demo.terminate();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = demo.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "{}", seen(&demo, "the script did not stop on SIGTERM", &log));
        std::thread::sleep(Duration::from_millis(100));
    };
    let left: Vec<(i32, String)> = processes()
        .into_iter()
        .filter(|(_, (pgrp, cmd))| groups.contains(pgrp) || cmd.contains(&dir_text))
        .map(|(pid, (_, cmd))| (pid, cmd))
        .collect();
    assert!(left.is_empty(), "left running after SIGTERM ({status}): {left:?}\nwere running: {ours:?}");
    println!("seen:\n{}", log.join("\n"));
}
