//! `integration-exporter replay`: the binary run on a token-refresh worker log prints the same
//! counters as the runbook's greps, and says which log source to pick when there are several.

use crate::support::lines::worker_line;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

fn replay(spec: &Path, args: &[&str]) -> Output {
    Command::new(crate::support::exporter_bin())
        .arg("replay")
        .arg("--config")
        .arg(spec)
        .args(args)
        .output()
        .expect("run integration-exporter")
}

/// `grep -c [-E] PATTERN FILE...`, summed over the files.
fn grep_count(extended: bool, pattern: &str, files: &[&Path]) -> f64 {
    files
        .iter()
        .map(|file| {
            let mut cmd = crate::support::program("grep");
            if extended {
                cmd.arg("-E");
            }
            let out = cmd.arg("-c").arg(pattern).arg(file).output().expect("grep");
            String::from_utf8_lossy(&out.stdout).trim().parse::<f64>().unwrap_or(0.0)
        })
        .sum()
}

/// Samples of the Prometheus text by `name{labels}` as printed.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').expect("sample line");
            (name.to_string(), value.parse().expect("value"))
        })
        .collect()
}

#[test]
fn replay_counts_equal_the_runbook_greps() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("email_watcher.log.1");
    let second = dir.path().join("email_watcher.log");
    let mut file = std::fs::File::create(&first).unwrap();
    for i in 0..20_000 {
        writeln!(file, "{}", worker_line(i)).unwrap();
    }
    let mut file = std::fs::File::create(&second).unwrap();
    for i in 20_000..30_000 {
        writeln!(file, "{}", worker_line(i)).unwrap();
    }
    // The last line has no newline yet; a replay counts it, as grep does.
    write!(file, "{}", worker_line(30_000)).unwrap();
    drop(file);
    let spec = dir.path().join("spec.yaml");
    std::fs::write(
        &spec,
        format!(
            "database: {{url_env: UNUSED}}\npacks:\n  token_refresh:\n    params:\n      worker_log: {}\n",
            dir.path().join("does-not-matter.log").display()
        ),
    )
    .unwrap();

    let out = replay(&spec, &[first.to_str().unwrap(), second.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let got = samples(&String::from_utf8(out.stdout).unwrap());
    let files = [first.as_path(), second.as_path()];
    let refresh = "integration_token_refresh_proactive_refreshes_total";
    for (sample, pattern) in [
        (format!("{refresh}{{result=\"success\"}}"), "ProactiveRefresh ✓"),
        (format!("{refresh}{{result=\"failure\"}}"), "ProactiveRefresh ✗"),
        ("integration_token_refresh_rate_limit_lines_total".to_string(), "M6:RateLimit"),
        ("integration_token_refresh_cycles_total".to_string(), "ProactiveRefresh.*Cycle complete"),
        ("integration_token_refresh_lock_contention_lines_total".to_string(), "acquire lock"),
    ] {
        let expected = grep_count(false, pattern, &files);
        assert!(expected > 0.0, "{pattern}");
        assert_eq!(got.get(&sample).copied(), Some(expected), "{sample}");
    }
    // The gauges hold the last line's values and time.
    let last_budget = (0..=30_000u64).rev().find(|i| i % 11 == 5).unwrap();
    assert_eq!(got["integration_token_refresh_rate_limit_attempts"], (last_budget % 97) as f64);
    let last_cycle = (0..=30_000u64).rev().find(|i| i % 11 == 6).unwrap();
    let expected = 1_770_379_200.0 + last_cycle as f64 + (last_cycle % 1000) as f64 / 1000.0;
    assert!((got["integration_token_refresh_last_cycle_timestamp_seconds"] - expected).abs() < 1e-6);

    let any_rule = "ProactiveRefresh ✓|ProactiveRefresh ✗|M6:RateLimit|ProactiveRefresh.*Cycle complete|acquire lock";
    let summary = format!("# lines 30001 matched {} unparsable 0", grep_count(true, any_rule, &files));
    assert!(stderr.lines().any(|l| l == summary), "{summary:?} not in {stderr}");
}

#[test]
fn several_log_sources_need_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(
        &log,
        concat!(
            r#"{"timestamp":"2026-02-06T12:00:01.234Z","level":"error","category":"calendar_sync","message":"x","error_code":"rate_limited"}"#,
            "\nnot json\n"
        ),
    )
    .unwrap();
    let spec = dir.path().join("spec.yaml");
    std::fs::write(&spec, "database: {url_env: UNUSED}\npacks:\n  token_refresh: {}\n  calendar_sync: {}\n").unwrap();

    let out = replay(&spec, &[log.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--log") && stderr.contains("calendar_sync.app, token_refresh.worker"), "{stderr}");

    let out = replay(&spec, &["--log", "calendar_sync.app", log.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let got = samples(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(got["integration_calendar_sync_log_errors_total{error_code=\"rate_limited\"}"], 1.0);
    assert!(stderr.contains("# lines 2 matched 1 unparsable 1"), "{stderr}");

    let out = replay(&spec, &["--log", "calendar_sync.app", dir.path().join("missing.log").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.log"));
}

/// Everything the tailer emits for a file written in `chunks` (one poll after each), as lines
/// and drops in order. A last line without a newline is finished with one, as `replay` counts it.
fn tailer_cuts(chunks: &[Vec<u8>], max: usize) -> Vec<Result<String, tailer::DropReason>> {
    use tailer::{Event, StartAt, Tailer, TailerConfig};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("app.log");
    std::fs::write(&path, "").expect("create");
    let config = TailerConfig {
        paths: vec![path.to_string_lossy().into_owned()],
        max_line_bytes: max,
        start_at: StartAt::Beginning,
        ..TailerConfig::default()
    };
    let mut tailer = Tailer::new(config, None);
    let mut cuts = Vec::new();
    let mut poll = |tailer: &mut Tailer| {
        tailer.poll(std::time::Instant::now(), &mut |e| match e {
            Event::Line { line, .. } => cuts.push(Ok(line.to_string())),
            Event::Dropped { reason, .. } => cuts.push(Err(reason)),
            _ => {}
        })
    };
    poll(&mut tailer);
    let mut file = std::fs::OpenOptions::new().append(true).open(&path).expect("open");
    let data: Vec<u8> = chunks.concat();
    for chunk in chunks {
        file.write_all(chunk).expect("append");
        poll(&mut tailer);
    }
    if data.last().is_some_and(|b| *b != b'\n') {
        file.write_all(b"\n").expect("append");
        poll(&mut tailer);
    }
    cuts
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    /// `replay` and the tailer cut the same bytes into the same lines and drops, whatever the
    /// writes, the read buffer and the line limit: long lines, `\r`, invalid UTF-8, a partial
    /// last line.
    #[test]
    fn replay_cuts_lines_as_the_tailer_does(
        chunks in proptest::collection::vec(
            proptest::collection::vec(
                proptest::sample::select(b"ab \n\n\r\xff\xc3\xa9".to_vec()),
                0..60,
            ),
            0..20,
        ),
        max in 1usize..30,
        buffer in 1usize..50,
    ) {
        let data: Vec<u8> = chunks.concat();
        let mut replayed = Vec::new();
        let bytes = integration_exporter::replay::split_reader(&data[..], max, buffer, &mut |cut| {
            replayed.push(cut.map(str::to_string));
        })
        .expect("read");
        proptest::prop_assert_eq!(bytes, data.len() as u64);
        proptest::prop_assert_eq!(replayed, tailer_cuts(&chunks, max));
    }
}
