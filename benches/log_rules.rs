//! Throughput of the log rule engine, in lines per second: the token_refresh pack's text rules
//! (literal prefilter, then regexes and captures) on realistic worker lines, the calendar_sync
//! pack's JSON rules on application log lines, and a whole replay (line splitting included) from
//! memory.
//!
//! `cargo bench --bench log_rules`; not run by `cargo test` or CI. scripts/bench-logs compares the
//! release binary with mtail and grep on a 2M-line file.

#[path = "../tests/it/support/lines.rs"]
mod lines;
use lines::worker_line;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use integration_exporter::replay::{ReplayStats, replay_reader};
use integration_exporter::sources::logs::rule_engine;
use integration_exporter::sources::logs::rules::RuleEngine;
use integration_exporter::spec::{Model, SourceText};

const LINES: u64 = 10_000;

fn engine(spec: &str, log: &str) -> RuleEngine {
    let model = Model::from_text(&SourceText { name: "bench.yaml".into(), text: spec.into() })
        .unwrap_or_else(|e| panic!("{e}"));
    rule_engine(&model, log, &model.logs[log]).expect("engine")
}

fn token_refresh_engine() -> RuleEngine {
    engine("database: {url_env: UNUSED}\npacks:\n  token_refresh: {}\n", "token_refresh.worker")
}

fn calendar_sync_engine() -> RuleEngine {
    engine("database: {url_env: UNUSED}\npacks:\n  calendar_sync: {}\n", "calendar_sync.app")
}

/// A worker that mostly logs other things: what the prefilter rejects.
fn noise_line(i: u64) -> String {
    format!(
        "2026-02-06 12:{:02}:{:02},{:03} DEBUG [email_watcher_worker] polling mailbox for user=u{i} delta=ok messages={}",
        (i / 60) % 60,
        i % 60,
        i % 1000,
        i % 7
    )
}

/// Application log lines as in tests/it/calendar_sync.rs: 2 of 5 are calendar_sync errors.
fn app_line(i: u64) -> String {
    let (level, category) = match i % 5 {
        0 | 1 => ("error", "calendar_sync"),
        2 => ("info", "calendar_sync"),
        3 => ("error", "billing"),
        _ => ("warn", "calendar_sync"),
    };
    let code = ["token_expired", "rate_limited", "adapter_error", "database_error", "weird_new_code"][(i % 5) as usize];
    format!(
        r#"{{"timestamp":"2026-02-06T12:00:{:02}.000Z","level":"{level}","category":"{category}","message":"sync step {i}","error_code":"{code}","connection_id":"c-{}","metadata":{{"attempt":{}}}}}"#,
        i % 60,
        i % 300,
        i % 4
    )
}

fn lines(make: fn(u64) -> String) -> Vec<String> {
    (0..LINES).map(make).collect()
}

fn process_all(c: &mut Criterion, group: &str, name: &str, mut engine: RuleEngine, lines: &[String]) {
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function(name, |b| {
        b.iter(|| {
            for line in lines {
                black_box(engine.process(black_box(line)));
            }
        })
    });
    g.finish();
}

fn token_refresh(c: &mut Criterion) {
    process_all(c, "token_refresh", "process/worker_lines", token_refresh_engine(), &lines(worker_line));
    process_all(c, "token_refresh", "process/unmatched_lines", token_refresh_engine(), &lines(noise_line));
    // The replay path end to end, from memory: line splitting, UTF-8 check and the engine.
    let text: String = lines(worker_line).iter().map(|l| format!("{l}\n")).collect();
    let mut engine = token_refresh_engine();
    let mut g = c.benchmark_group("token_refresh");
    g.throughput(Throughput::Elements(LINES));
    g.bench_function("replay/worker_lines", |b| {
        b.iter(|| {
            let mut stats = ReplayStats::default();
            replay_reader(&mut engine, text.as_bytes(), 1 << 20, &mut stats).unwrap();
            black_box(stats)
        })
    });
    g.finish();
}

fn calendar_sync(c: &mut Criterion) {
    process_all(c, "calendar_sync", "process/json_lines", calendar_sync_engine(), &lines(app_line));
}

criterion_group!(benches, token_refresh, calendar_sync);
criterion_main!(benches);
