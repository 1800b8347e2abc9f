//! A spec with very many errors (a generated file, a bad merge) is checked in time linear in its
//! size: locating each error used to search the text and count its lines from the top again, and
//! each alert looked its metric up in the list of all, so 40k unknown pack names took 15 s and
//! 100k over a minute.
//!
//! The time of 4n errors is compared with that of n, in thread CPU time (what the machine's load
//! does not change) and the best of three: linear is 4x, quadratic 16x; the bound is 8x.

use std::time::Duration;

use integration_exporter::spec::{Model, SourceText};

use crate::support::{self, process::Proc};

/// CPU time this thread has used.
fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Loads `text`, which must give `errors` errors, and returns the best CPU time of three loads.
fn load_time(text: &str, errors: usize) -> Duration {
    let source = SourceText { name: "spec.yaml".into(), text: text.into() };
    (0..3)
        .map(|_| {
            let start = thread_cpu();
            let found = Model::from_text(&source).expect_err("errors").0;
            let spent = thread_cpu() - start;
            assert_eq!(found.len(), errors, "{}", found.first().map(ToString::to_string).unwrap_or_default());
            assert!(found.iter().all(|e| e.line > 1), "every error located: {:?}", found.iter().find(|e| e.line <= 1));
            spent
        })
        .min()
        .expect("three loads")
}

/// Unknown names under one pack and unknown packs: the errors of resolving packs.
fn pack_errors(n: usize) -> (String, usize) {
    let quarter = n / 4;
    let mut text = String::from("database: {url_env: X}\npacks:\n  token_refresh:\n    params:\n");
    text.extend((0..quarter).map(|i| format!("      param_{i}: 1\n")));
    text.push_str("    signals:\n");
    text.extend((0..quarter).map(|i| format!("      nosignal_{i}: {{enabled: false}}\n")));
    text.push_str("    alerts:\n");
    text.extend((0..quarter).map(|i| format!("      NoAlert{i}: {{threshold: 1}}\n")));
    text.extend((0..quarter).map(|i| format!("  nopack_{i}: {{}}\n")));
    (text, 4 * quarter)
}

/// Signals of one's own with a bad metric name and an alert on a metric nobody exports: the
/// errors of validating a model.
fn signal_errors(n: usize) -> (String, usize) {
    let half = n / 2;
    let mut text = String::from("logs:\n  app: {paths: [/nonexistent/app.log]}\nsignals:\n");
    for i in 0..half {
        text.push_str(&format!(
            "  - id: t.s{i}\n    title: S\n    runbook_section: https://example.com/r#s\n    metrics: [{{name: m_{i}, \
             type: counter, help: H.}}]\n    source: {{log: {{log: app, rules: [{{match: x, metric: m_{i}, action: \
             inc}}]}}}}\n    alerts: [{{name: A{i}, severity: warning, condition: {{increase: {{metric: none_{i}, \
             window: 5m}}}}, op: '>', threshold: 1, summary: S., description: D.}}]\n"
        ));
    }
    (text, 2 * half)
}

#[test]
fn many_spec_errors_take_linear_time() {
    for (what, make, n) in
        [("pack errors", pack_errors as fn(usize) -> (String, usize), 10_000), ("signal errors", signal_errors, 2_000)]
    {
        let (small, small_errors) = make(n);
        let (large, large_errors) = make(4 * n);
        let (t1, t4) = (load_time(&small, small_errors), load_time(&large, large_errors));
        let ratio = t4.as_secs_f64() / t1.as_secs_f64().max(1e-6);
        println!("FIGURE spec errors, {what}: {n} errors {t1:?}, {} errors {t4:?}: {ratio:.1}x", 4 * n);
        assert!(ratio < 8.0, "{what}: 4x the errors took {ratio:.1}x the time ({t1:?} -> {t4:?})");
    }
}

/// The real binary on 100k unknown pack names: every one reported with its place, in the
/// harness's deadline (it took over a minute).
#[test]
fn check_reports_100k_errors_each_with_its_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = dir.path().join("spec.yaml");
    let mut text = String::from("packs:\n");
    text.extend((0..100_000).map(|i| format!("  nopack_{i}: {{}}\n")));
    std::fs::write(&spec, &text).expect("spec");
    let mut command = std::process::Command::new(support::exporter_bin());
    command.arg("check").arg("--config").arg(&spec);
    let mut proc = Proc::start("check", &dir.path().join("out"), &mut command);
    let status = proc.wait_exit(support::exporter::WITHIN);
    let out = proc.output();
    assert!(!status.success());
    let prefix = format!("{}:", spec.display());
    let errors: Vec<&str> = out.lines().filter(|l| l.contains("unknown pack `nopack_")).collect();
    assert_eq!(errors.len(), 100_000);
    for (i, line) in [(0, errors[0]), (99_999, errors.iter().find(|l| l.contains("`nopack_99999`")).expect("last"))] {
        assert!(line.starts_with(&format!("{prefix}{}:3: unknown pack `nopack_{i}`", i + 2)), "{line}");
    }
}
