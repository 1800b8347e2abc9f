//! Fidelity of every token-refresh log signal: each counter equals the runbook's own grep count on
//! the same file, also when the file is rotated while being written and when the exporter
//! restarts from its checkpoint. The worker may log Python-logging text or structlog JSON lines:
//! both shapes give the same numbers.

use crate::support;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use integration_exporter::sources::logs::LogRunner;
use integration_exporter::spec::Model;
use integration_exporter::state::Family;
use support::alerting::{Timeline, alerts, replay_log};
use support::fidelity::{Exported, collect, drain, export_sql, grep_count, log_runner, value};
use support::lines::worker_line;
use support::wait::{self, Worker};

#[derive(Clone, Copy, Debug)]
enum Shape {
    Text,
    Json,
}

impl Shape {
    fn line(self, i: u64) -> String {
        match self {
            Shape::Text => worker_line(i),
            Shape::Json => worker_json_line(i),
        }
    }
}

fn model_in(shape: Shape, log_glob: &Path, state_dir: Option<&Path>) -> Model {
    let state = state_dir.map(|d| format!("state_dir: {}\n", d.display())).unwrap_or_default();
    let format = match shape {
        Shape::Text => "text",
        Shape::Json => "json",
    };
    support::fidelity::model(&format!(
        "{state}database: {{url_env: UNUSED}}\npacks:\n  token_refresh:\n    params:\n      worker_log: {}\n      log_format: {format}\n",
        log_glob.display()
    ))
}

/// The same events as `worker_line`, as structlog's JSONRenderer writes them (`json.dumps` with
/// `ensure_ascii=False`): `event`, `level`, an ISO 8601 `timestamp` with `Z`, and the budget as a
/// nested object.
fn worker_json_line(i: u64) -> String {
    let ts = format!("2026-02-06T{:02}:{:02}:{:02}.{:03}Z", 12 + i / 3600, (i / 60) % 60, i % 60, i % 1000);
    let (event, level, rest) = match i % 11 {
        0..=3 => ("ProactiveRefresh ✓", "info", format!(r#""user": "u{i}", "expires_in": 3599"#)),
        4 => (
            "ProactiveRefresh ✗",
            "warning",
            format!(r#""user": "u{i}", "error": "invalid_grant", "consecutive_failures": 3"#),
        ),
        5 => (
            "M6:RateLimit",
            "info",
            format!(
                r#""rate_limit_budget": {{"total_attempts": {}, "max_requests": 100, "window_seconds": 60}}"#,
                i % 97
            ),
        ),
        6 => (
            "ProactiveRefresh Cycle complete",
            "info",
            r#""refreshed": 4, "failed": 1, "skipped": 0, "duration": 1.2"#.into(),
        ),
        7 => ("Acquired lock", "info", r#""lock": "token_refresh_heartbeat", "lease": 120"#.into()),
        8 => {
            ("Failed to acquire lock", "warning", r#""lock": "token_refresh_heartbeat", "held_by": "worker-2""#.into())
        }
        9 => ("M6:RateLimit budget exhausted", "warning", r#""deferred": 3"#.into()),
        _ => ("polling mailbox", "debug", format!(r#""user": "u{i}", "delta": "ok""#)),
    };
    format!(r#"{{"event": "{event}", {rest}, "level": "{level}", "logger": "graph_client", "timestamp": "{ts}"}}"#)
}

fn runner(model: &Model) -> LogRunner {
    log_runner(model, "token_refresh.worker")
}

fn sample(families: &[Family], metric: &str, labels: &[(&str, &str)]) -> f64 {
    let mut exported = Exported::new();
    collect(&mut exported, families.to_vec());
    value(&exported, metric, labels)
}

fn assert_counts_equal_grep(families: &[Family], files: &[&Path]) {
    let refresh = "integration_token_refresh_proactive_refreshes_total";
    assert_eq!(sample(families, refresh, &[("result", "success")]), grep_count("ProactiveRefresh ✓", files));
    assert_eq!(sample(families, refresh, &[("result", "failure")]), grep_count("ProactiveRefresh ✗", files));
    assert_eq!(
        sample(families, "integration_token_refresh_rate_limit_lines_total", &[]),
        grep_count("M6:RateLimit", files)
    );
    assert_eq!(
        sample(families, "integration_token_refresh_cycles_total", &[]),
        grep_count("ProactiveRefresh.*Cycle complete", files)
    );
    // "grep "acquire lock"": the warnings of workers that found the lock taken. "Acquired lock"
    // lines are no part of it (the runbook never shows them), so nothing counts them.
    assert_eq!(
        sample(families, "integration_token_refresh_lock_contention_lines_total", &[]),
        grep_count("acquire lock", files)
    );
    assert!(grep_count("Acquired lock", files) > 0.0, "the log holds both kinds of lock line");
}

#[test]
fn counters_equal_the_runbook_greps_and_gauges_hold_the_last_line() {
    counters_equal_the_runbook_greps_in(Shape::Text);
}

#[test]
fn json_lines_give_the_same_counters_budget_and_heartbeat() {
    counters_equal_the_runbook_greps_in(Shape::Json);
}

fn counters_equal_the_runbook_greps_in(shape: Shape) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("email_watcher.log");
    let mut file = std::fs::File::create(&path).unwrap();
    for i in 0..5000 {
        writeln!(file, "{}", shape.line(i)).unwrap();
    }
    // A partial line waits for its newline.
    match shape {
        Shape::Text => write!(file, "2026-02-06 13:30:00,000 INFO [graph_client] ProactiveRefresh ✓ user=late"),
        Shape::Json => {
            write!(file, r#"{{"event": "ProactiveRefresh ✓", "user": "late", "timestamp": "2026-02-06T13:30:00Z""#)
        }
    }
    .unwrap();
    file.flush().unwrap();
    let model = model_in(shape, &path, None);
    let mut runner = runner(&model);
    drain(&mut runner);
    let families = runner.families();
    assert_eq!(
        sample(&families, "integration_token_refresh_proactive_refreshes_total", &[("result", "success")]),
        grep_count("ProactiveRefresh ✓", &[&path]) - 1.0
    );
    match shape {
        Shape::Text => writeln!(file, " refreshed"),
        Shape::Json => writeln!(file, "}}"),
    }
    .unwrap();
    drain(&mut runner);
    // As served while the log was being written (its lines are dated 2026-02-06 12:00 UTC on).
    let written_until = 1_770_379_200.0 + 5000.0;
    let families = runner.families_at(written_until);
    assert_counts_equal_grep(&families, &[&path]);

    // "grep "total_attempts.*max_requests" logs | tail -1"
    let last_budget = (0..5000).rev().find(|i| i % 11 == 5).unwrap();
    assert_eq!(sample(&families, "integration_token_refresh_rate_limit_attempts", &[]), (last_budget % 97) as f64);
    assert_eq!(sample(&families, "integration_token_refresh_rate_limit_max_requests", &[]), 100.0);
    // "Check timestamp of last "Cycle complete" log", read in UTC from Python's default format
    // or from the JSON line's ISO 8601 timestamp.
    let last_cycle = (0..5000u64).rev().find(|i| i % 11 == 6).unwrap();
    let expected = 1_770_379_200.0 + last_cycle as f64 + (last_cycle % 1000) as f64 / 1000.0;
    let got = sample(&families, "integration_token_refresh_last_cycle_timestamp_seconds", &[]);
    assert!((got - expected).abs() < 1e-6, "{got} vs {expected}");
    // An hour after the last budget line, its value no longer feeds the rate-limit alert; the
    // heartbeat stays for the age alert, the counters for increase().
    let mut later = Exported::new();
    collect(&mut later, runner.families_at(written_until + 3600.0));
    for budget in ["integration_token_refresh_rate_limit_attempts", "integration_token_refresh_rate_limit_max_requests"]
    {
        assert!(later.get(budget).is_none_or(|series| series.is_empty()), "{budget} is still served");
    }
    assert_eq!(value(&later, "integration_token_refresh_last_cycle_timestamp_seconds", &[]), got);
    assert_counts_equal_grep(&runner.families_at(written_until + 3600.0), &[&path]);
    assert_eq!(
        sample(
            &families,
            "integration_exporter_log_lines_total",
            &[("log", "token_refresh.worker"), ("path", path.to_str().unwrap())]
        ),
        5001.0
    );
}

#[test]
fn rotation_while_writing_loses_and_repeats_no_line() {
    rotation_while_writing_in(Shape::Text);
}

#[test]
fn rotation_while_writing_json_loses_and_repeats_no_line() {
    rotation_while_writing_in(Shape::Json);
}

fn rotation_while_writing_in(shape: Shape) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("email_watcher.log");
    std::fs::File::create(&path).unwrap();
    let model = model_in(shape, &path, None);
    let mut runner = runner(&model);
    runner.poll();
    let writer_path = path.clone();
    let writer = Worker::spawn("writer", move |_| {
        let mut file = std::fs::OpenOptions::new().append(true).open(&writer_path).unwrap();
        for i in 0..6000u64 {
            writeln!(file, "{}", shape.line(i)).unwrap();
            // A busy worker, not a burst: each file lives for several polls.
            if i % 10 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            if i % 500 == 499 {
                // logrotate's rename rotation; the worker reopens a moment later.
                let rotated = writer_path.with_extension(format!("log.{}", i / 500));
                std::fs::rename(&writer_path, &rotated).unwrap();
                for j in 0..20 {
                    writeln!(file, "{}", shape.line(i + j)).unwrap();
                }
                std::thread::sleep(Duration::from_millis(30));
                file = std::fs::File::create(&writer_path).unwrap();
            }
        }
    });
    let polled = || {
        runner.poll();
        writer.finished()
    };
    let finished = wait::poll(Duration::from_secs(60), Duration::from_millis(5), polled, |&f| f.then_some(()));
    assert!(finished.is_ok(), "the writer did not finish within 60 s");
    writer.join();
    drain(&mut runner);
    let mut files: Vec<std::path::PathBuf> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let refs: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    assert!(refs.len() > 10, "rotated files: {refs:?}");
    assert_counts_equal_grep(&runner.families(), &refs);
}

#[test]
fn restart_from_checkpoint_neither_skips_nor_recounts() {
    restart_from_checkpoint_in(Shape::Text);
}

#[test]
fn restart_from_checkpoint_in_json_neither_skips_nor_recounts() {
    restart_from_checkpoint_in(Shape::Json);
}

fn restart_from_checkpoint_in(shape: Shape) {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let path = dir.path().join("email_watcher.log");
    let mut file = std::fs::File::create(&path).unwrap();
    for i in 0..1000 {
        writeln!(file, "{}", shape.line(i)).unwrap();
    }
    let model = model_in(shape, &path, Some(&state));
    {
        let mut first = runner(&model);
        drain(&mut first);
        first.save_checkpoint().unwrap();
        // Lines read after the checkpoint die with the process, as with kill -9.
        for i in 1000..1200 {
            writeln!(file, "{}", shape.line(i)).unwrap();
        }
        drain(&mut first);
    }
    std::fs::rename(&path, dir.path().join("email_watcher.log.1")).unwrap();
    let mut file = std::fs::File::create(&path).unwrap();
    for i in 1200..2000 {
        writeln!(file, "{}", shape.line(i)).unwrap();
    }
    let mut second = runner(&model);
    drain(&mut second);
    let rotated = dir.path().join("email_watcher.log.1");
    assert_counts_equal_grep(&second.families(), &[&rotated, &path]);
}

/// structlog's JSONRenderer calls `json.dumps`, which by default escapes `✓` as `\u2713`: the
/// runbook's `grep "ProactiveRefresh ✓"` then finds nothing, but the exporter reads the JSON and
/// counts the line all the same.
#[test]
fn escaped_json_lines_count_where_the_grep_finds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("email_watcher.log");
    let mut file = std::fs::File::create(&path).unwrap();
    for i in 0..20u64 {
        let line = worker_json_line(i).replace('✓', "\\u2713").replace('✗', "\\u2717");
        writeln!(file, "{line}").unwrap();
    }
    let model = model_in(Shape::Json, &path, None);
    let mut runner = runner(&model);
    drain(&mut runner);
    let families = runner.families();
    let refresh = "integration_token_refresh_proactive_refreshes_total";
    assert_eq!(grep_count("ProactiveRefresh ✓", &[&path]), 0.0);
    assert_eq!(grep_count("ProactiveRefresh \\\\u2713", &[&path]), 8.0);
    assert_eq!(sample(&families, refresh, &[("result", "success")]), 8.0);
    assert_eq!(sample(&families, refresh, &[("result", "failure")]), 2.0);
}

/// 2026-02-06 12:00:00 UTC, where the replayed worker logs start.
const LOG_EPOCH: u64 = 1_770_379_200;

/// Python logging's `asctime` `second` seconds after [`LOG_EPOCH`].
fn asctime(second: u64) -> String {
    format!("2026-02-06 {:02}:{:02}:{:02},000", 12 + second / 3600, (second / 60) % 60, second % 60)
}

/// A worker line at `second` of `minute`.
fn at(minute: u64, second: u64, rest: &str) -> String {
    format!("{} {rest}", asctime(minute * 60 + second))
}

/// The worker's log replayed minute by minute ([`replay_log`]), `also` served beside it; with
/// the model the pack's rules are generated from.
fn replay_worker(minutes: u64, also: &Exported, lines: impl Fn(u64) -> Vec<String>) -> (Model, Timeline) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("email_watcher.log");
    let model = model_in(Shape::Text, &path, None);
    let timeline = replay_log(&model, "token_refresh.worker", &path, LOG_EPOCH, minutes, also, lines);
    (model, timeline)
}

/// One refresh cycle of a healthy worker at `minute`: `refreshed` tokens, then the heartbeat.
fn cycle(minute: u64, refreshed: u64) -> Vec<String> {
    let mut lines: Vec<String> = (0..refreshed)
        .map(|i| {
            at(
                minute,
                1 + i,
                &format!("INFO [graph_client] ProactiveRefresh ✓ user=u{minute}x{i} refreshed token expires_in=3599s"),
            )
        })
        .collect();
    lines.push(at(
        minute,
        50,
        "INFO [email_watcher_worker] ProactiveRefresh Cycle complete: refreshed=5 failed=0 skipped=0",
    ));
    lines
}

/// "Multiple Workers Fighting for Lock": three workers, one takes the lock each cycle and the
/// others log "Failed to acquire lock". "This is normal in multi-region deployment": nothing
/// pages. When no worker gets the lock any more, what pages is the heartbeat that stopped.
#[test]
fn contention_of_three_workers_pages_nobody_and_a_lock_nobody_gets_pages_as_a_stopped_heartbeat() {
    let failed = |minute: u64, worker: u64| {
        at(
            minute,
            worker,
            &format!("WARNING [graph_client] Failed to acquire lock token_refresh_heartbeat: held by worker-{worker}"),
        )
    };
    let (model, timeline) = replay_worker(60, &Exported::new(), |minute| {
        if minute < 40 {
            let mut lines = cycle(minute, 5);
            lines.extend([failed(minute, 2), failed(minute, 3)]);
            lines
        } else {
            // The lease is stuck: every worker fails to take it, no cycle completes.
            (1..=3).map(|w| failed(minute, w)).collect()
        }
    });
    let firing = timeline.firing(&model, "token_refresh", &[20, 35, 58]);
    assert_eq!(firing[0], alerts(&[]), "contention is normal");
    assert_eq!(firing[1], alerts(&[]), "contention is normal");
    assert_eq!(firing[2], alerts(&[("IntegrationTokenRefreshHeartbeatLag", "critical")]));
}

/// A fleet too small for the runbook's 10-minute rate (10 attempts in 10 minutes): a handful of
/// tokens, one refresh every 5 minutes. A user waiting to reconnect fails now and then, nothing
/// pages; then every refresh fails for an hour, and a ticket says so.
#[test]
fn a_small_fleet_failing_every_refresh_is_seen() {
    let (model, timeline) = replay_worker(110, &Exported::new(), |minute| {
        let mut lines = Vec::new();
        if minute % 5 == 0 {
            let failing = minute >= 30 || minute % 20 == 0;
            lines.push(if failing {
                at(minute, 3, "WARNING [graph_client] ProactiveRefresh ✗ user=u7 failed error=invalid_client consecutive_failures=2")
            } else {
                at(minute, 3, "INFO [graph_client] ProactiveRefresh ✓ user=u3 refreshed token expires_in=3599s")
            });
        }
        if minute % 2 == 0 {
            lines.push(at(
                minute,
                50,
                "INFO [email_watcher_worker] ProactiveRefresh Cycle complete: refreshed=1 failed=0",
            ));
        }
        lines
    });
    let firing = timeline.firing(&model, "token_refresh", &[28, 80, 108]);
    assert_eq!(firing[0], alerts(&[]));
    assert_eq!(firing[1], alerts(&[]), "successes of the last hour are still in the window");
    assert_eq!(firing[2], alerts(&[("IntegrationTokenRefreshNoSuccess", "warning")]));
}

/// Tokens due for refresh (a real database) while the worker's ✓/✗ lines change shape: the
/// success-rate alerts see no attempt and say nothing, so the missing attempts must.
#[tokio::test]
async fn due_tokens_without_a_logged_attempt_are_seen() {
    let db = support::TestDb::new().await;
    db.execute(&support::pack_schema("token_refresh", &[])).await;
    db.execute("INSERT INTO auth_microsoft_tokens (expires_at) SELECT now() + interval '50 minutes' FROM generate_series(1, 40);
                INSERT INTO auth_microsoft_tokens (expires_at) SELECT now() + interval '4 minutes' FROM generate_series(1, 6);")
        .await;
    let sql_model = support::fidelity::model("database: {url_env: UNUSED}\npacks:\n  token_refresh: {}\n");
    let due = export_sql(&db.url, &sql_model).await;
    assert_eq!(value(&due, "integration_token_refresh_tokens_due", &[]), 6.0);
    let (model, timeline) = replay_worker(50, &due, |minute| {
        if minute < 20 {
            cycle(minute, 5)
        } else {
            // A new release logs its attempts as "ProactiveRefresh OK": no ✓ any more.
            let mut lines = vec![at(minute, 2, "INFO [graph_client] ProactiveRefresh OK user=u1 refreshed token")];
            lines.push(at(
                minute,
                50,
                "INFO [email_watcher_worker] ProactiveRefresh Cycle complete: refreshed=1 failed=0",
            ));
            lines
        }
    });
    let firing = timeline.firing(&model, "token_refresh", &[18, 35, 48]);
    assert_eq!(firing[0], alerts(&[]));
    assert_eq!(firing[1], alerts(&[]), "10 minutes without a line, then 10 more");
    assert_eq!(firing[2], alerts(&[("IntegrationTokenRefreshAttemptsMissing", "warning")]));
}
