//! Values from log lines carry their age, on the exporter binary reading real files: a `set`
//! value leaves `/metrics` once older than `max_age` (also after a restart from a checkpoint), a
//! `timestamp` follows the latest line and ignores lines from the future, and a restart without
//! `state_dir` counts no old line again while the heartbeat still knows the last beat.

use crate::support;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::exporter::Exporter;
use support::free_port;

const BUDGET: &str = "app_budget_used";
const BEAT: &str = "app_last_beat_timestamp_seconds";
const TICKS: &str = "app_ticks_total";

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// A log source whose lines start with their unix time: `<time> budget=<n>` sets a gauge,
/// `<time> beat` is a heartbeat, `<time> tick` counts.
fn spec(dir: &Path, port: u16, state_dir: bool, max_age: &str) -> std::path::PathBuf {
    let state = if state_dir { format!("state_dir: {}/state\n", dir.display()) } else { String::new() };
    let text = format!(
        "listen: 127.0.0.1:{port}
{state}logs:
  app:
    paths: [{log}]
    max_age: {max_age}
    future_tolerance: 1m
    timestamp: {{format: unix, pattern: '^(\\S+)'}}
signals:
  - id: app.age
    title: Age
    runbook_section: https://example.com/runbook#age
    metrics:
      - {{name: {BUDGET}, type: gauge, help: Budget used.}}
      - {{name: {BEAT}, type: gauge, help: Last beat.}}
      - {{name: {TICKS}, type: counter, help: Ticks.}}
    source:
      log:
        log: app
        rules:
          - {{match: 'budget=(?P<n>\\d+)', metric: {BUDGET}, action: set, value: n}}
          - {{match: ' beat', metric: {BEAT}, action: timestamp}}
          - {{match: ' tick', metric: {TICKS}, action: inc}}
",
        log = dir.join("app.log").display()
    );
    let path = dir.join("spec.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn start(spec: &Path, port: u16) -> Exporter {
    Exporter::serve(spec, port).start()
}

fn append(path: &Path, lines: &[String]) {
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    for line in lines {
        writeln!(file, "{line}").unwrap();
    }
}

#[test]
fn a_set_value_leaves_metrics_when_it_gets_old_and_a_restart_does_not_revive_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, "").unwrap();
    let port = free_port();
    let spec = spec(dir.path(), port, true, "2s");
    let exporter = start(&spec, port);
    exporter.wait_for("the log source", |m| m.get(TICKS).is_some());

    // A 95% line written an hour ago (read late, after a backlog) is never served.
    append(&log, &[format!("{:.3} budget=95", now() - 3600.0), format!("{:.3} tick", now())]);
    let m = exporter.wait_for("the tick", |m| m.get(TICKS) == Some(1.0));
    assert_eq!(m.get(BUDGET), None, "an hour-old value is served:\n{m:?}");

    // A fresh one is served, then dropped after max_age without any new line.
    append(&log, &[format!("{:.3} budget=95", now())]);
    let served = Instant::now();
    exporter.wait_for("the fresh budget", |m| m.get(BUDGET) == Some(95.0));
    exporter.wait_for("the budget going stale", |m| m.get(BUDGET).is_none());
    let lived = served.elapsed();
    assert!(lived >= Duration::from_millis(1500) && lived < Duration::from_secs(5), "served for {lived:?}");

    // Saved in the checkpoint with its age: a restart after max_age does not bring it back.
    append(&log, &[format!("{:.3} budget=96", now())]);
    exporter.wait_for("the second budget", |m| m.get(BUDGET) == Some(96.0));
    exporter.wait_for("a checkpoint", |m| {
        m.get("integration_exporter_checkpoint_last_success_timestamp_seconds{log=\"app\"}")
            .is_some_and(|saved| saved > now() - 0.5)
    });
    exporter.stop();
    std::thread::sleep(Duration::from_secs(3));
    let exporter = start(&spec, port);
    let m = exporter.wait_for("the restored counter", |m| m.get(TICKS) == Some(1.0));
    assert_eq!(m.get(BUDGET), None, "a restart revived a stale value:\n{m:?}");
    // A restart within max_age keeps it.
    append(&log, &[format!("{:.3} budget=50", now())]);
    exporter.wait_for("the third budget", |m| m.get(BUDGET) == Some(50.0));
    exporter.wait_for("a checkpoint", |m| {
        m.get("integration_exporter_checkpoint_last_success_timestamp_seconds{log=\"app\"}")
            .is_some_and(|saved| saved > now() - 0.5)
    });
    exporter.stop();
    let exporter = start(&spec, port);
    exporter.wait_for("the restored budget", |m| m.get(BUDGET) == Some(50.0));
}

#[test]
fn the_heartbeat_is_the_latest_line_and_a_line_from_the_future_is_unparsable() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, "").unwrap();
    let port = free_port();
    let exporter = start(&spec(dir.path(), port, false, "5m"), port);
    let unparsable =
        format!("integration_exporter_log_lines_unparsable_total{{log=\"app\",path=\"{}\"}}", log.display());
    exporter.wait_for("the log source", |m| m.get(TICKS).is_some());

    let beat = now().floor();
    append(&log, &[format!("{beat} beat")]);
    exporter.wait_for("the beat", |m| m.get(BEAT) == Some(beat));
    // One host with its clock a day ahead: ignored and counted.
    append(&log, &[format!("{} beat", beat + 86_400.0), format!("{beat} tick")]);
    let m = exporter.wait_for("the next line", |m| m.get(TICKS) == Some(1.0));
    assert_eq!(m.get(BEAT), Some(beat), "a line from the future moved the heartbeat");
    assert_eq!(m.get(&unparsable), Some(1.0), "{m:?}");
    // A clock stepped back a little: the heartbeat follows the latest line.
    append(&log, &[format!("{} beat", beat - 30.0)]);
    exporter.wait_for("the latest beat", |m| m.get(BEAT) == Some(beat - 30.0));
}

/// The decision on a line dated past `future_tolerance`: only its time is wrong, so only the
/// rules that take its time (`timestamp`) ignore it, and the line counts as unparsable only when
/// no other rule took it. A counter on it still counts: the event happened, on a host whose clock
/// is ahead; the heartbeat does not move, so a host whose beats are all refused shows as stopped.
#[test]
fn a_line_from_the_future_is_ignored_by_timestamp_rules_and_counted_by_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, "").unwrap();
    let port = free_port();
    let exporter = start(&spec(dir.path(), port, false, "5m"), port);
    let per_path =
        |family: &str| format!("integration_exporter_log_{family}{{log=\"app\",path=\"{}\"}}", log.display());
    let (unparsable, matched) = (per_path("lines_unparsable_total"), per_path("lines_matched_total"));
    exporter.wait_for("the log source", |m| m.get(TICKS).is_some());
    let beat = now().floor();
    append(&log, &[format!("{beat} beat")]);
    exporter.wait_for("the beat", |m| m.get(BEAT) == Some(beat));

    // A day ahead, taken by both a `timestamp` rule and an `inc` rule.
    append(&log, &[format!("{} beat tick", beat + 86_400.0)]);
    let m = exporter.wait_for("the tick", |m| m.get(TICKS) == Some(1.0));
    assert_eq!(m.get(BEAT), Some(beat), "the heartbeat moved to the future");
    assert_eq!((m.get(&matched), m.get(&unparsable)), (Some(2.0), Some(0.0)), "{m:?}");
    // Taken by the `timestamp` rule alone: unparsable.
    append(&log, &[format!("{} beat", beat + 86_400.0), format!("{beat} tick")]);
    let m = exporter.wait_for("the next tick", |m| m.get(TICKS) == Some(2.0));
    assert_eq!((m.get(&matched), m.get(&unparsable), m.get(BEAT)), (Some(3.0), Some(1.0), Some(beat)), "{m:?}");
}

#[test]
fn a_restart_without_state_dir_counts_no_old_line_but_knows_the_last_beat() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let port = free_port();
    let spec = spec(dir.path(), port, false, "5m");
    let t0 = now().floor();
    let mut old: Vec<String> = (0..100).map(|i| format!("{} tick", t0 - 200.0 + f64::from(i))).collect();
    old.push(format!("{} beat", t0 - 60.0));
    old.push(format!("{} budget=42", t0 - 30.0));
    old.push(format!("{} tick", t0 - 20.0));
    append(&log, &old);

    let exporter = start(&spec, port);
    let m = exporter.wait_for("the seeded heartbeat", |m| m.get(BEAT) == Some(t0 - 60.0));
    assert_eq!(m.get(TICKS), Some(0.0), "old lines counted at start:\n{m:?}");
    assert_eq!(m.get(BUDGET), Some(42.0), "the last budget before the start");
    append(&log, &[format!("{} tick", now()), format!("{} tick", now())]);
    exporter.wait_for("two new ticks", |m| m.get(TICKS) == Some(2.0));
    exporter.stop();

    // Rotated while the exporter was down; the new file has lines of its own.
    std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    append(&log, &(0..50).map(|i| format!("{} tick", t0 + f64::from(i) / 100.0)).collect::<Vec<_>>());
    let exporter = start(&spec, port);
    let m = exporter.wait_for("the second start", |m| m.get(TICKS).is_some());
    assert_eq!(m.get(TICKS), Some(0.0), "the rotated file's lines counted again:\n{m:?}");
    append(&log, &[format!("{} tick", now())]);
    exporter.wait_for("a new tick", |m| m.get(TICKS) == Some(1.0));
}

/// The log runner of `spec`'s source, in this process.
fn runner(spec: &Path) -> integration_exporter::sources::logs::LogRunner {
    let text = std::fs::read_to_string(spec).unwrap();
    let model = support::fidelity::model(&text);
    integration_exporter::sources::logs::LogRunner::new(&model, "app", &model.logs["app"]).unwrap()
}

fn served(runner: &integration_exporter::sources::logs::LogRunner, metric: &str) -> Option<f64> {
    let mut exported = support::fidelity::Exported::new();
    support::fidelity::collect(&mut exported, runner.families());
    exported.get(metric)?.values().next().copied()
}

#[test]
fn the_first_start_with_a_state_dir_counts_old_lines_once_and_never_shows_them_as_new() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, &(0..30).map(|i| format!("{} tick", now() - 100.0 + f64::from(i))).collect::<Vec<_>>());
    let spec = spec(dir.path(), free_port(), true, "5m");
    let mut first = runner(&spec);
    // Served at zero before the lines are read, a scrape would see them all as an increase.
    assert_eq!(served(&first, TICKS), None, "counters served before the old lines were read");
    support::fidelity::drain(&mut first);
    assert_eq!(served(&first, TICKS), Some(30.0));
    first.save_checkpoint().unwrap();
    drop(first);
    append(&log, &[format!("{} tick", now())]);
    let mut second = runner(&spec);
    support::fidelity::drain(&mut second);
    assert_eq!(served(&second, TICKS), Some(31.0));
}

#[test]
fn after_an_unreadable_checkpoint_counters_start_at_the_end_and_gauges_from_the_old_lines() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let t0 = now().floor();
    append(&log, &[format!("{} tick", t0 - 10.0), format!("{} beat", t0 - 5.0), format!("{} tick", t0 - 1.0)]);
    let spec = spec(dir.path(), free_port(), true, "5m");
    std::fs::create_dir(dir.path().join("state")).unwrap();
    std::fs::write(dir.path().join("state/app.checkpoint.json"), b"{\"version\": 1, \"tail").unwrap();
    let mut runner = runner(&spec);
    support::fidelity::drain(&mut runner);
    // Those lines were counted by the exporter that wrote the checkpoint.
    assert_eq!(served(&runner, TICKS), Some(0.0));
    assert_eq!(served(&runner, BEAT), Some(t0 - 5.0));
}
