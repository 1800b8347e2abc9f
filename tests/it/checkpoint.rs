//! Log checkpoints across restarts when the spec changed, the values overflowed or the file was
//! damaged: a restart never panics, never silently resets a whole source, and says what it reset.

use crate::support;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use integration_exporter::sources::logs::LogRunner;
use integration_exporter::spec::Model;
use support::fidelity::{Exported, drain, exported_logs};

const LOG: &str = "app";

/// A spec with one log source `app` reading `log`, and one signal with these metrics and rules.
fn model(state: &Path, log: &Path, metrics: &str, rules: &str, extra_log: &str) -> Model {
    support::fidelity::model(&format!(
        "state_dir: {state}
logs:
  app:
    paths: [{log}]
{extra_log}signals:
  - id: app.sig
    title: Sig
    runbook_section: https://example.com/runbook#sig
    metrics:
{metrics}    source:
      log:
        log: app
        rules:
{rules}",
        state = state.display(),
        log = log.display(),
    ))
}

fn runner(model: &Model) -> LogRunner {
    LogRunner::new(model, LOG, &model.logs[LOG]).unwrap_or_else(|e| panic!("{e}"))
}

fn append(log: &Path, lines: &[&str]) {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

fn get(exported: &Exported, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let key: Vec<(String, String)> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    exported.get(metric)?.get(&key).copied()
}

/// Histogram samples of one family as `(le, count)`, plus count.
fn histogram(runner: &LogRunner, metric: &str) -> (Vec<(f64, u64)>, u64) {
    use integration_exporter::state::SampleValue;
    let family = runner.families().into_iter().find(|f| f.name == metric).expect("family");
    match &family.samples[0].value {
        SampleValue::Histogram { buckets, count, .. } => (buckets.clone(), *count),
        other => panic!("{other:?}"),
    }
}

const HIST_RULE: &str =
    "          - {match: 'took=(?P<ms>\\d+)', metric: app_took_seconds, action: observe, value: ms}\n";
const TICK_RULE: &str = "          - {match: tick, metric: app_ticks_total, action: inc}\n";
const TICKS: &str = "      - {name: app_ticks_total, type: counter, help: Ticks.}\n";

fn hist(buckets: &str) -> String {
    format!("      - {{name: app_took_seconds, type: histogram, help: Took., buckets: {buckets}}}\n{TICKS}")
}

#[test]
fn changed_histogram_buckets_reset_that_histogram_only() {
    for new_buckets in ["[1, 2, 5, 10, 20]", "[1]", "[1, 3, 5]"] {
        let dir = tempfile::tempdir().unwrap();
        let (state, log) = (dir.path().join("state"), dir.path().join("app.log"));
        append(&log, &["took=1 tick", "took=4 tick", "took=7"]);
        let rules = format!("{HIST_RULE}{TICK_RULE}");
        let old = model(&state, &log, &hist("[1, 5, 10]"), &rules, "");
        let mut first = runner(&old);
        drain(&mut first);
        assert_eq!(histogram(&first, "app_took_seconds").1, 3);
        first.save_checkpoint().unwrap();
        drop(first);

        append(&log, &["took=3 tick"]);
        let new = model(&state, &log, &hist(new_buckets), &rules, "");
        let mut second = runner(&new);
        drain(&mut second);
        let (buckets, count) = histogram(&second, "app_took_seconds");
        assert_eq!(count, 1, "{new_buckets}: only the line read after the change: {buckets:?}");
        let bounds: Vec<f64> = buckets.iter().map(|b| b.0).collect();
        let want: Vec<f64> = serde_json::from_str(new_buckets).unwrap();
        assert_eq!(bounds, want);
        assert!(buckets.iter().all(|(le, n)| *n == u64::from(*le >= 3.0)), "{buckets:?}");
        let exported = exported_logs(&second);
        assert_eq!(get(&exported, "app_ticks_total", &[]), Some(3.0), "the other metric keeps its count");
        assert_eq!(
            get(
                &exported,
                "integration_exporter_checkpoint_metric_resets_total",
                &[("log", LOG), ("metric", "app_took_seconds"), ("reason", "buckets_changed")]
            ),
            Some(1.0),
            "{exported:#?}"
        );
    }
}

#[test]
fn changed_labels_or_type_reset_the_metric_and_removed_metrics_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (state, log) = (dir.path().join("state"), dir.path().join("app.log"));
    append(&log, &["tick user=a", "tick user=b", "took=2"]);
    let labelled = "      - {name: app_ticks_total, type: counter, help: Ticks., labels: [user]}\n";
    let rules = format!(
        "          - {{match: 'tick user=(?P<user>\\w+)', metric: app_ticks_total, action: inc, labels: {{user: $user}}}}\n{HIST_RULE}"
    );
    let took = "      - {name: app_took_seconds, type: histogram, help: Took., buckets: [1, 5]}\n";
    let first_model = model(&state, &log, &format!("{labelled}{took}"), &rules, "");
    let mut first = runner(&first_model);
    drain(&mut first);
    first.save_checkpoint().unwrap();
    drop(first);

    // The label is renamed, the histogram becomes a gauge: both start over, nothing panics.
    let renamed = "      - {name: app_ticks_total, type: counter, help: Ticks., labels: [account]}\n      - {name: app_took_seconds, type: gauge, help: Took.}\n";
    let rules = "          - {match: 'tick user=(?P<user>\\w+)', metric: app_ticks_total, action: inc, labels: {account: $user}}\n          - {match: 'took=(?P<ms>\\d+)', metric: app_took_seconds, action: set, value: ms}\n";
    let second_model = model(&state, &log, renamed, rules, "");
    let mut second = runner(&second_model);
    drain(&mut second);
    let exported = exported_logs(&second);
    assert_eq!(exported["app_ticks_total"].len(), 0, "{exported:#?}");
    assert!(!exported.contains_key("app_took_seconds") || exported["app_took_seconds"].is_empty());
    let resets = |metric, reason| {
        get(
            &exported,
            "integration_exporter_checkpoint_metric_resets_total",
            &[("log", LOG), ("metric", metric), ("reason", reason)],
        )
    };
    assert_eq!(resets("app_ticks_total", "labels_changed"), Some(1.0), "{exported:#?}");
    assert_eq!(resets("app_took_seconds", "type_changed"), Some(1.0), "{exported:#?}");
    append(&log, &["tick user=c", "took=9"]);
    drain(&mut second);
    let exported = exported_logs(&second);
    assert_eq!(get(&exported, "app_ticks_total", &[("account", "c")]), Some(1.0));
    assert_eq!(get(&exported, "app_took_seconds", &[]), Some(9.0));
    second.save_checkpoint().unwrap();
    drop(second);

    // The metric leaves the spec: its series are dropped and counted, the others kept.
    let third_model = model(&state, &log, TICKS, TICK_RULE, "");
    let third = runner(&third_model);
    let exported = exported_logs(&third);
    assert_eq!(
        get(
            &exported,
            "integration_exporter_checkpoint_metric_resets_total",
            &[("log", LOG), ("metric", "app_took_seconds"), ("reason", "removed")]
        ),
        Some(1.0),
        "{exported:#?}"
    );
}

#[test]
fn overflowing_values_are_refused_and_the_checkpoint_still_loads() {
    let dir = tempfile::tempdir().unwrap();
    let (state, log) = (dir.path().join("state"), dir.path().join("app.log"));
    let metrics = format!(
        "      - {{name: app_bytes_total, type: counter, help: Bytes.}}\n      - {{name: app_size, type: gauge, help: Size.}}\n{}",
        hist("[1, 5]")
    );
    let rules = format!(
        "          - {{match: 'add=(?P<n>\\S+)', metric: app_bytes_total, action: add, value: n}}\n          - {{match: 'set=(?P<n>\\S+)', metric: app_size, action: set, value: n, scale: 1000}}\n          - {{match: 'took=(?P<ms>\\S+)', metric: app_took_seconds, action: observe, value: ms}}\n{TICK_RULE}"
    );
    let m = model(&state, &log, &metrics, &rules, "");
    append(&log, &["add=1e308", "add=1e308", "set=1e307", "took=1e308", "took=1e308", "add=5", "tick", "tick"]);
    let mut first = runner(&m);
    drain(&mut first);
    let exported = exported_logs(&first);
    let bytes = get(&exported, "app_bytes_total", &[]).unwrap();
    assert!(bytes.is_finite() && bytes >= 1e308, "{bytes}");
    assert!(get(&exported, "app_size", &[]).is_none_or(f64::is_finite));
    let unparsable = exported["integration_exporter_log_lines_unparsable_total"].values().sum::<f64>();
    assert_eq!(unparsable, 3.0, "the second add, the scaled set and the second observe are refused");
    first.save_checkpoint().unwrap();
    drop(first);

    let second = runner(&m);
    let exported = exported_logs(&second);
    assert_eq!(get(&exported, "app_ticks_total", &[]), Some(2.0), "restored, not reset: {exported:#?}");
    assert_eq!(get(&exported, "app_bytes_total", &[]), Some(bytes));
}

#[test]
fn an_unreadable_checkpoint_is_set_aside_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (state, log) = (dir.path().join("state"), dir.path().join("app.log"));
    append(&log, &["tick", "tick"]);
    let m = model(&state, &log, TICKS, TICK_RULE, "");
    std::fs::create_dir_all(&state).unwrap();
    let path = state.join("app.checkpoint.json");
    std::fs::write(
        &path,
        b"{\"version\":1,\"tailer\":{\"files\":[]},\"metrics\":{\"series\":{\"a\":[[[],{\"Scalar\":null}]]}}",
    )
    .unwrap();
    let mut first = runner(&m);
    let aside: Vec<_> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("app.checkpoint.json.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "kept for a human to look at");
    assert!(!path.exists());
    let mode = std::fs::metadata(state.join(&aside[0])).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    drain(&mut first);
    let exported = exported_logs(&first);
    assert_eq!(get(&exported, "integration_exporter_checkpoint_corrupt_total", &[("log", LOG)]), Some(1.0));
    // The exporter that wrote the checkpoint counted those lines: they are not shown again as new.
    assert_eq!(get(&exported, "app_ticks_total", &[]), Some(0.0));
    append(&log, &["tick"]);
    drain(&mut first);
    assert_eq!(get(&exported_logs(&first), "app_ticks_total", &[]), Some(1.0));
    first.save_checkpoint().unwrap();
    assert!(path.exists());
}

#[test]
fn checkpoints_are_private_and_lines_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (state, log) = (dir.path().join("state/nested"), dir.path().join("app.log"));
    append(&log, &["tick", "tock", "tick"]);
    let m = model(&state, &log, TICKS, TICK_RULE, "");
    let mut first = runner(&m);
    drain(&mut first);
    first.save_checkpoint().unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&state.join("app.checkpoint.json")), 0o600);
    drop(first);

    append(&log, &["tock"]);
    let mut second = runner(&m);
    drain(&mut second);
    let exported = exported_logs(&second);
    let path = [("log", LOG), ("path", log.to_str().unwrap())];
    assert_eq!(get(&exported, "integration_exporter_log_lines_total", &path), Some(4.0), "{exported:#?}");
    assert_eq!(get(&exported, "integration_exporter_log_lines_matched_total", &path), Some(2.0));
    let saved = get(&exported, "integration_exporter_checkpoint_last_success_timestamp_seconds", &[("log", LOG)]);
    assert_eq!(saved, None, "not saved yet by this runner");
    second.save_checkpoint().unwrap();
    let exported = exported_logs(&second);
    let saved = get(&exported, "integration_exporter_checkpoint_last_success_timestamp_seconds", &[("log", LOG)]);
    assert!(saved.unwrap() > 1.7e9);
}

#[test]
fn save_failures_are_counted_by_reason() {
    let dir = tempfile::tempdir().unwrap();
    // A state dir under a regular file cannot be created, whoever runs the test (root included).
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"").unwrap();
    let (state, log) = (blocker.join("state"), dir.path().join("app.log"));
    append(&log, &["tick"]);
    let m = model(&state, &log, TICKS, TICK_RULE, "");
    let mut r = runner(&m);
    drain(&mut r);
    assert!(r.save_checkpoint().is_err());
    assert!(r.save_checkpoint().is_err());
    let exported = exported_logs(&r);
    let failures = &exported["integration_exporter_checkpoint_save_failures_total"];
    assert_eq!(failures.values().sum::<f64>(), 2.0, "{failures:?}");
    assert!(failures.keys().all(|k| k.iter().any(|(n, v)| n == "reason" && v == "not_a_directory")), "{failures:?}");
    assert_eq!(get(&exported, "app_ticks_total", &[]), Some(1.0));
}

#[test]
fn long_free_label_values_are_truncated_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (state, log) = (dir.path().join("state"), dir.path().join("app.log"));
    let metrics = "      - {name: app_errors_total, type: counter, help: Errors., labels: [error]}\n";
    let rules = "          - {match: 'error=(?P<e>.*)', metric: app_errors_total, action: inc, labels: {error: $e}}\n";
    let m = model(&state, &log, metrics, rules, "    max_label_bytes: 8\n");
    // 'é' is two bytes: the cut falls inside it, so it goes.
    append(&log, &["error=short", "error=abcdefgé-and-more", "error=abcdefgé-other"]);
    let mut r = runner(&m);
    drain(&mut r);
    let exported = exported_logs(&r);
    assert_eq!(get(&exported, "app_errors_total", &[("error", "short")]), Some(1.0), "{exported:#?}");
    assert_eq!(get(&exported, "app_errors_total", &[("error", "abcdefg")]), Some(2.0), "{exported:#?}");
    assert_eq!(
        get(&exported, "integration_exporter_label_truncated_total", &[("metric", "app_errors_total")]),
        Some(2.0)
    );
}

mod damaged {
    use super::*;
    use proptest::prelude::*;

    const LABELLED: &str = "      - {name: app_users_total, type: counter, help: Users., labels: [user]}\n";
    const USER_RULE: &str =
        "          - {match: 'user=(?P<u>\\w+)', metric: app_users_total, action: inc, labels: {user: $u}}\n";

    type Setup = (tempfile::TempDir, Model, Vec<u8>);

    /// A checkpoint of every shape, to damage; made once per property (cases run in turn, the
    /// two properties side by side).
    fn setup(once: &'static std::sync::OnceLock<Setup>) -> &'static Setup {
        once.get_or_init(make)
    }

    fn make() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let (state, log) = (dir.path().join("state"), dir.path().join("app.log"));
        append(&log, &["tick user=a took=3", "tick user=b took=12"]);
        let metrics = format!("{LABELLED}{}", hist("[1, 5, 10]"));
        let m = model(&state, &log, &metrics, &format!("{USER_RULE}{HIST_RULE}{TICK_RULE}"), "");
        let mut r = runner(&m);
        drain(&mut r);
        r.save_checkpoint().unwrap();
        let bytes = std::fs::read(state.join("app.checkpoint.json")).unwrap();
        (dir, m, bytes)
    }

    /// Whatever the file held: the runner starts, reads, exports finite values and saves a file
    /// the next start reads.
    fn survives(m: &Model, bytes: &[u8]) {
        let state = m.config.state_dir.clone().unwrap();
        let _ = std::fs::remove_dir_all(&state);
        std::fs::create_dir_all(&state).unwrap();
        std::fs::write(state.join("app.checkpoint.json"), bytes).unwrap();
        let mut r = runner(m);
        append(Path::new(&m.logs[LOG].paths[0]), &["tick user=a took=3"]);
        r.poll();
        for family in r.families() {
            for sample in family.samples {
                if let integration_exporter::state::SampleValue::Scalar(v) = sample.value {
                    assert!(v.is_finite(), "{} {v}", family.name);
                }
            }
        }
        r.save_checkpoint().unwrap();
        let again = exported_logs(&runner(m));
        assert_eq!(get(&again, "integration_exporter_checkpoint_corrupt_total", &[("log", LOG)]), Some(0.0));
    }

    fn token() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "null",
            "1e999",
            "-1",
            "-1e308",
            "18446744073709551615",
            "[]",
            "{}",
            "\"x\"",
            "18446744073709551616",
            "0.5",
            "true",
            "[[],{}]",
            "{\"Scalar\":1e308}",
            "{\"Histogram\":{\"counts\":[9,1],\"sum\":1,\"count\":0}}",
        ])
    }

    proptest! {
        // A few seconds by default; `scripts/fuzz` runs thousands.
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(32)
        ))]

        #[test]
        fn cut_flipped_or_spliced_checkpoints_never_panic(
            cut in any::<prop::sample::Index>(),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
            splice in prop::option::of((any::<prop::sample::Index>(), token())),
            how in 0..3u8,
        ) {
            static ONCE: std::sync::OnceLock<Setup> = std::sync::OnceLock::new();
            let (_, m, valid) = setup(&ONCE);
            let mut bytes = valid.clone();
            match how {
                0 => bytes.truncate(cut.index(valid.len())),
                1 => for (i, b) in &flips { let i = i.index(bytes.len()); bytes[i] = *b; },
                _ => {}
            }
            // A checkpoint cut to nothing has no place to splice into.
            if let Some((at, t)) = splice.filter(|_| !bytes.is_empty()) {
                // Replace the JSON value starting after a `:` or `[` near the chosen spot.
                let at = at.index(bytes.len());
                if let Some(p) = bytes[at..].iter().position(|b| *b == b':' || *b == b'[') {
                    let start = at + p + 1;
                    let end = bytes[start..].iter().position(|b| matches!(b, b',' | b']' | b'}')).map_or(bytes.len(), |e| start + e);
                    bytes.splice(start..end, t.bytes());
                }
            }
            survives(m, &bytes);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            static ONCE: std::sync::OnceLock<Setup> = std::sync::OnceLock::new();
            survives(&setup(&ONCE).1, &bytes);
        }
    }
}

/// The contract `serve` relies on at shutdown and reload: set the flag, join the threads, and the
/// last lines are in the checkpoint and the state_dir is free for the next `spawn_all`.
#[test]
fn stopping_spawn_all_saves_a_last_checkpoint_and_frees_the_state_dir() {
    use integration_exporter::sources::logs::checkpoint::StateDirLock;
    use integration_exporter::sources::logs::spawn_all;
    use integration_exporter::state::State;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let dir = tempfile::tempdir().unwrap();
    let (state_dir, log) = (dir.path().join("state"), dir.path().join("app.log"));
    append(&log, &["tick", "tick"]);
    let m = model(&state_dir, &log, TICKS, TICK_RULE, "");
    let (state, stop) = (Arc::new(State::default()), Arc::new(AtomicBool::new(false)));
    let threads = spawn_all(&m, state.clone(), stop.clone()).unwrap();
    let ticks = || {
        let mut exported = Exported::new();
        support::fidelity::collect(&mut exported, state.gather());
        get(&exported, "app_ticks_total", &[])
    };
    let within = std::time::Duration::from_secs(10);
    support::wait::until("the lines read", within, ticks, |t| (*t == Some(2.0)).then_some(()));
    assert!(StateDirLock::acquire(&state_dir).is_err(), "locked while running");
    stop.store(true, Ordering::Relaxed);
    let running = || threads.iter().filter(|t| !t.is_finished()).count();
    support::wait::until("the log threads to stop", within, running, |n| (*n == 0).then_some(()));
    for t in threads {
        t.join().unwrap();
    }
    assert!(StateDirLock::acquire(&state_dir).unwrap().is_some(), "free once joined");
    let restarted = exported_logs(&runner(&m));
    assert_eq!(get(&restarted, "app_ticks_total", &[]), Some(2.0), "the last checkpoint has every line");
}

/// Counters at the top of u64 in a (hand-edited) checkpoint: the next lines saturate, no overflow.
#[test]
fn counters_at_their_limit_do_not_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let (state, log) = (dir.path().join("state"), dir.path().join("app.log"));
    append(&log, &["tick took=3"]);
    let m = model(&state, &log, &hist("[1, 5]"), &format!("{HIST_RULE}{TICK_RULE}"), "");
    let mut first = runner(&m);
    drain(&mut first);
    first.save_checkpoint().unwrap();
    drop(first);
    let path = state.join("app.checkpoint.json");
    let mut saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for counters in saved["paths"].as_object_mut().unwrap().values_mut() {
        for key in ["lines", "matched", "unparsable"] {
            counters[key] = u64::MAX.into();
        }
    }
    saved["metrics"]["series"]["app_took_seconds"][0][1]["Histogram"] =
        serde_json::json!({"counts": [0, u64::MAX], "sum": 3.0, "count": u64::MAX});
    std::fs::write(&path, serde_json::to_vec(&saved).unwrap()).unwrap();
    append(&log, &["tick took=3", "took=x"]);
    let mut second = runner(&m);
    drain(&mut second);
    let exported = exported_logs(&second);
    let lines =
        get(&exported, "integration_exporter_log_lines_total", &[("log", LOG), ("path", log.to_str().unwrap())]);
    assert_eq!(lines, Some(u64::MAX as f64));
    assert_eq!(histogram(&second, "app_took_seconds").1, u64::MAX);
}

/// When an unreadable checkpoint cannot be moved (here: its new name is taken by a directory), it
/// is never written over; saves fail visibly instead.
#[test]
fn an_unreadable_checkpoint_that_cannot_be_moved_is_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let (state, log) = (dir.path().join("state"), dir.path().join("app.log"));
    append(&log, &["tick"]);
    let m = model(&state, &log, TICKS, TICK_RULE, "");
    std::fs::create_dir_all(&state).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    for secs in now..now + 30 {
        std::fs::create_dir_all(state.join(format!("app.checkpoint.json.corrupt-{secs}/x"))).unwrap();
    }
    let path = state.join("app.checkpoint.json");
    std::fs::write(&path, b"{not json").unwrap();
    let mut r = runner(&m);
    drain(&mut r);
    assert!(r.save_checkpoint().is_err());
    assert_eq!(std::fs::read(&path).unwrap(), b"{not json");
    let exported = exported_logs(&r);
    // Started at the end: the lines before the restart were counted by the previous exporter.
    assert_eq!(get(&exported, "app_ticks_total", &[]), Some(0.0));
    assert_eq!(get(&exported, "integration_exporter_checkpoint_corrupt_total", &[("log", LOG)]), Some(1.0));
    assert_eq!(
        get(&exported, "integration_exporter_checkpoint_save_failures_total", &[("log", LOG), ("reason", "other")]),
        Some(1.0)
    );
}

/// Files that come and go under a glob leave nothing in the checkpoint once they have been gone
/// for `rotate_wait`, and files the paths no longer match leave it after a restart: thousands of
/// them keep the checkpoint as small as the files present.
#[test]
fn files_that_came_and_went_leave_no_checkpoint_entries() {
    let dir = tempfile::tempdir().unwrap();
    let (state, logs) = (dir.path().join("state"), dir.path().join("logs"));
    std::fs::create_dir(&logs).unwrap();
    let wait = "    rotate_wait: 100ms\n";
    let m = model(&state, &logs.join("*.log"), TICKS, TICK_RULE, wait);
    let mut r = runner(&m);
    let path = state.join("app.checkpoint.json");
    let saved = || -> serde_json::Value { serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap() };
    let mut sizes = Vec::new();
    for batch in 0..30 {
        let files: Vec<_> = (0..100).map(|i| logs.join(format!("f{batch}-{i}.log"))).collect();
        for (i, f) in files.iter().enumerate() {
            // Heads of their own: a file that looks like another waits before it is read.
            append(f, &[&format!("tick {batch}-{i}")]);
        }
        drain(&mut r);
        for f in &files {
            std::fs::remove_file(f).unwrap();
        }
        // Gone for rotate_wait: closed, and forgotten.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            r.poll();
            r.save_checkpoint().unwrap();
            if saved()["tailer"]["files"].as_array().unwrap().is_empty() {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "files still open after 10 s");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        sizes.push(std::fs::metadata(&path).unwrap().len());
    }
    assert_eq!(get(&exported_logs(&r), "app_ticks_total", &[]), Some(3000.0));
    let cp = saved();
    assert_eq!(cp["paths"].as_object().unwrap().len(), 0, "entries of files gone");
    assert_eq!(cp["tailer"]["files"].as_array().unwrap().len(), 0);
    println!(
        "FIGURE checkpoint after 3000 files came and went: {} bytes (largest after a batch: {})",
        sizes[sizes.len() - 1],
        sizes.iter().max().unwrap_or(&0)
    );
    assert!(sizes.iter().all(|s| *s < 2048), "checkpoint sizes after each 100 files: {sizes:?}");

    // Two files, then a spec whose paths match one of them: the other's entry goes.
    append(&logs.join("keep.log"), &["tick keep"]);
    append(&logs.join("other.log"), &["tick other"]);
    drain(&mut r);
    r.save_checkpoint().unwrap();
    assert_eq!(saved()["paths"].as_object().unwrap().len(), 2);
    drop(r);
    let narrower = model(&state, &logs.join("keep*.log"), TICKS, TICK_RULE, wait);
    let mut r = runner(&narrower);
    drain(&mut r);
    std::thread::sleep(std::time::Duration::from_millis(150));
    drain(&mut r);
    r.save_checkpoint().unwrap();
    let keep = logs.join("keep.log").display().to_string();
    let paths: Vec<String> = saved()["paths"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(paths, std::slice::from_ref(&keep));
    let lines = get(&exported_logs(&r), "integration_exporter_log_lines_total", &[("log", LOG), ("path", &keep)]);
    assert_eq!(lines, Some(1.0), "the file still matched keeps its count");
}
