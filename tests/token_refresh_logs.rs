//! Fidelity of every token-refresh log signal: each counter equals the runbook's own grep count on
//! the same file, also when the file is rotated while being written and when the exporter
//! restarts from its checkpoint.

mod support;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use integration_exporter::sources::logs::LogRunner;
use integration_exporter::spec::Model;
use integration_exporter::state::Family;
use support::fidelity::{Exported, collect, drain, grep_count, log_runner, value};
use support::lines::worker_line;

fn model(log_glob: &Path, state_dir: Option<&Path>) -> Model {
    let state = state_dir.map(|d| format!("state_dir: {}\n", d.display())).unwrap_or_default();
    support::fidelity::model(&format!(
        "{state}database: {{url_env: UNUSED}}\npacks:\n  token_refresh:\n    params:\n      worker_log: {}\n",
        log_glob.display()
    ))
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
    let locks = "integration_token_refresh_lock_acquisitions_total";
    assert_eq!(sample(families, locks, &[("result", "failed")]), grep_count("acquire lock", files));
    assert_eq!(sample(families, locks, &[("result", "acquired")]), grep_count("Acquired lock", files));
}

#[test]
fn counters_equal_the_runbook_greps_and_gauges_hold_the_last_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("email_watcher.log");
    let mut file = std::fs::File::create(&path).unwrap();
    for i in 0..5000 {
        writeln!(file, "{}", worker_line(i)).unwrap();
    }
    // A partial line waits for its newline.
    write!(file, "2026-02-06 13:30:00,000 INFO [graph_client] ProactiveRefresh ✓ user=late").unwrap();
    file.flush().unwrap();
    let model = model(&path, None);
    let mut runner = runner(&model);
    drain(&mut runner);
    let families = runner.families();
    assert_eq!(
        sample(&families, "integration_token_refresh_proactive_refreshes_total", &[("result", "success")]),
        grep_count("ProactiveRefresh ✓", &[&path]) - 1.0
    );
    writeln!(file, " refreshed").unwrap();
    drain(&mut runner);
    // As served while the log was being written (its lines are dated 2026-02-06 12:00 UTC on).
    let written_until = 1_770_379_200.0 + 5000.0;
    let families = runner.families_at(written_until);
    assert_counts_equal_grep(&families, &[&path]);

    // "grep "total_attempts.*max_requests" logs | tail -1"
    let last_budget = (0..5000).rev().find(|i| i % 11 == 5).unwrap();
    assert_eq!(sample(&families, "integration_token_refresh_rate_limit_attempts", &[]), (last_budget % 97) as f64);
    assert_eq!(sample(&families, "integration_token_refresh_rate_limit_max_requests", &[]), 100.0);
    // "Check timestamp of last "Cycle complete" log", read in UTC from Python's default format.
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
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("email_watcher.log");
    std::fs::File::create(&path).unwrap();
    let model = model(&path, None);
    let mut runner = runner(&model);
    runner.poll();
    let writer_path = path.clone();
    let writer = std::thread::spawn(move || {
        let mut file = std::fs::OpenOptions::new().append(true).open(&writer_path).unwrap();
        for i in 0..6000u64 {
            writeln!(file, "{}", worker_line(i)).unwrap();
            // A busy worker, not a burst: each file lives for several polls.
            if i % 10 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            if i % 500 == 499 {
                // logrotate's rename rotation; the worker reopens a moment later.
                let rotated = writer_path.with_extension(format!("log.{}", i / 500));
                std::fs::rename(&writer_path, &rotated).unwrap();
                for j in 0..20 {
                    writeln!(file, "{}", worker_line(i + j)).unwrap();
                }
                std::thread::sleep(Duration::from_millis(30));
                file = std::fs::File::create(&writer_path).unwrap();
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while !writer.is_finished() && Instant::now() < deadline {
        runner.poll();
        std::thread::sleep(Duration::from_millis(5));
    }
    writer.join().unwrap();
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
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let path = dir.path().join("email_watcher.log");
    let mut file = std::fs::File::create(&path).unwrap();
    for i in 0..1000 {
        writeln!(file, "{}", worker_line(i)).unwrap();
    }
    let model = model(&path, Some(&state));
    {
        let mut first = runner(&model);
        drain(&mut first);
        first.save_checkpoint().unwrap();
        // Lines read after the checkpoint die with the process, as with kill -9.
        for i in 1000..1200 {
            writeln!(file, "{}", worker_line(i)).unwrap();
        }
        drain(&mut first);
    }
    std::fs::rename(&path, dir.path().join("email_watcher.log.1")).unwrap();
    let mut file = std::fs::File::create(&path).unwrap();
    for i in 1200..2000 {
        writeln!(file, "{}", worker_line(i)).unwrap();
    }
    let mut second = runner(&model);
    drain(&mut second);
    let rotated = dir.path().join("email_watcher.log.1");
    assert_counts_equal_grep(&second.families(), &[&rotated, &path]);
}
