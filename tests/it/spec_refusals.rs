//! What `check` (and so every load, at start and at a reload) refuses because the exposition would
//! lie with it: metric names that collide with the exporter's own, with Prometheus' own or with
//! another metric's series (a histogram's `_bucket`, a counter's OpenMetrics family), and numbers
//! that are not finite where a bound or a factor is expected. Each refusal names the place in the
//! file, as the real binary prints it.

use std::path::Path;

use crate::support::{self, process::Proc};
use support::exporter::WITHIN;

/// `check --config` on `text`, written to a fresh file: whether it passed, and what it printed.
fn check(dir: &Path, text: &str) -> (bool, String) {
    let spec = dir.join("spec.yaml");
    std::fs::write(&spec, text).expect("spec");
    let log = dir.join("check.out");
    let _ = std::fs::remove_file(&log);
    let mut command = std::process::Command::new(support::exporter_bin());
    command.arg("check").arg("--config").arg(&spec);
    let mut proc = Proc::start("check", &log, &mut command);
    let status = proc.wait_exit(WITHIN);
    (status.success(), proc.output())
}

/// `file:line:col: ` of byte `offset` of the spec in `dir`.
fn place(dir: &Path, text: &str, offset: usize) -> String {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or_default().chars().count() + 1;
    format!("{}:{line}:{column}: ", dir.join("spec.yaml").display())
}

/// Where metric `name` is declared (`name: <name>,`): the place of the name itself.
fn declared(dir: &Path, text: &str, name: &str) -> String {
    let offset = text.find(&format!("name: {name},")).unwrap_or_else(|| panic!("`{name}` in the spec"));
    place(dir, text, offset + "name: ".len())
}

/// One signal per metric, all reading one log: `(name, type, metric_extra, rule_extra)`, the
/// extras going into the metric's mapping (`buckets: [1, 2]`) and into its rule (`scale: 2`).
fn spec(metrics: &[(&str, &str, &str, &str)]) -> String {
    let mut text = String::from("logs:\n  app: {paths: [/nonexistent/app.log]}\nsignals:\n");
    for (i, (name, kind, metric_extra, rule_extra)) in metrics.iter().enumerate() {
        let action = match *kind {
            "counter" => "add, value: v",
            "gauge" => "set, value: v",
            _ => "observe, value: v",
        };
        let sep = |s: &str| if s.is_empty() { String::new() } else { format!(", {s}") };
        text.push_str(&format!(
            "  - id: t.s{i}\n    title: S{i}\n    runbook_section: https://example.com/runbook#s{i}\n    metrics:\n      \
             - {{name: {name}, type: {kind}, help: Some.{}}}\n    source:\n      log:\n        log: app\n        \
             rules: [{{match: 'v=(?P<v>\\d+)', metric: {name}, action: {action}{}}}]\n",
            sep(metric_extra),
            sep(rule_extra),
        ));
    }
    text
}

#[test]
fn metric_names_that_collide_are_refused_where_the_second_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let h = "buckets: [1, 5]";
    // The metrics, in order; the last one is refused, at its own name.
    for (metrics, says) in [
        (vec![("process_open_fds", "gauge")], "`process_*` names are the exporter's own metrics"),
        (vec![("integration_exporter_app_lines_total", "counter")], "`integration_exporter_*` names"),
        (vec![("up", "gauge")], "`up` is a series Prometheus makes itself"),
        (vec![("scrape_duration_seconds", "gauge")], "a series Prometheus makes itself"),
        (vec![("app_h", "histogram"), ("app_h_bucket", "gauge")], "collides with metric `app_h` of signal `t.s0`"),
        (vec![("app_h_sum", "gauge"), ("app_h", "histogram")], "both are exposed as `app_h_sum`"),
        (vec![("app_h", "histogram"), ("app_h_count_total", "counter")], "exposed as `app_h_count`"),
        (vec![("app_jobs_total", "counter"), ("app_jobs", "gauge")], "both are exposed as `app_jobs`"),
        (vec![("app_jobs", "gauge"), ("app_jobs_total", "counter")], "both are exposed as `app_jobs`"),
        (vec![("app_jobs", "gauge"), ("app_jobs", "gauge")], "collides with metric `app_jobs` of signal `t.s0`"),
        (vec![("process_x", "histogram")], "`process_*` names"),
    ] {
        let metrics: Vec<_> = metrics.iter().map(|&(n, k)| (n, k, if k == "histogram" { h } else { "" }, "")).collect();
        let text = spec(&metrics);
        let (ok, out) = check(dir.path(), &text);
        let refused = metrics.last().expect("a metric").0;
        assert!(!ok, "{metrics:?} passed:\n{out}");
        let line =
            out.lines().find(|l| l.contains(says)).unwrap_or_else(|| panic!("{metrics:?}: no `{says}` in\n{out}"));
        let expected = format!("{}metric `{refused}`: ", declared(dir.path(), &text, refused));
        // The same name twice is found at its first place; every other at the refused one's.
        let twice = metrics.len() == 2 && metrics[0].0 == refused;
        assert!(twice || line.starts_with(&expected), "{metrics:?}: `{line}` is not at {expected}");
    }
    // Near names are fine: the series of each are their own.
    let text = spec(&[
        ("app_h", "histogram", h, ""),
        ("app_h_buckets", "gauge", "", ""),
        ("app_hx_total", "counter", "", ""),
        ("app_h_total_x", "gauge", "", ""),
        ("processes", "gauge", "", ""),
        ("uptime", "gauge", "", ""),
    ]);
    let (ok, out) = check(dir.path(), &text);
    assert!(ok, "{out}");
}

#[test]
fn numbers_that_are_not_finite_are_refused_at_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (metric, kind, metric_extra, rule_extra, says) in [
        ("app_a", "histogram", "buckets: [.inf]", "", "needs finite, increasing buckets"),
        ("app_b", "histogram", "buckets: [1, .inf]", "", "the `+Inf` bucket is always there"),
        ("app_c", "histogram", "buckets: [-.inf, 1]", "", "needs finite, increasing buckets"),
        ("app_d", "histogram", "buckets: [.nan]", "", "needs finite, increasing buckets"),
        ("app_e", "histogram", "buckets: [1, .nan, 2]", "", "needs finite, increasing buckets"),
        ("app_f_total", "counter", "", "scale: .nan", "`scale` must be a finite number"),
        ("app_g", "gauge", "", "scale: .inf", "`scale` must be a finite number"),
        ("app_h", "histogram", "buckets: [1]", "scale: -.Inf", "`scale` must be a finite number"),
        ("app_i", "gauge", "buckets: [.nan]", "", "only histograms have `buckets`"),
    ] {
        let text = spec(&[(metric, kind, metric_extra, rule_extra)]);
        let (ok, out) = check(dir.path(), &text);
        assert!(!ok, "{metric_extra}{rule_extra} passed:\n{out}");
        let at = declared(dir.path(), &text, metric);
        assert!(
            out.lines().any(|l| l.starts_with(&at) && l.contains(says)),
            "{metric_extra}{rule_extra}: not `{at}... {says}` in\n{out}"
        );
        // The same spec with finite numbers passes: only the number was refused.
        let fine = text.replace("[1, .nan, 2]", "[1, 2]").replace("-.inf", "0").replace(".inf", "3");
        let fine = if kind == "histogram" { fine } else { fine.replace(", buckets: [.nan]", "") };
        let fine = fine.replace(".nan", "2").replace("-.Inf", "2");
        let (ok, out) = check(dir.path(), &fine);
        assert!(ok, "{fine}\n{out}");
    }
    // A ratio alert whose `min_events` is not a number.
    let ratio = "logs:\n  app: {paths: [/nonexistent/app.log]}\nsignals:\n  - id: t.r\n    title: R\n    \
                 runbook_section: https://example.com/runbook#r\n    metrics:\n      - {name: app_r_total, type: \
                 counter, help: Requests., labels: [{name: result, values: [ok, error]}]}\n    source:\n      log: \
                 {log: app, rules: [{match: 'ok', metric: app_r_total, action: inc, labels: {result: ok}}]}\n    \
                 alerts:\n      - name: AppErrors\n        severity: warning\n        condition: {ratio: {metric: \
                 app_r_total, matchers: {result: error}, window: 5m, min_events: .nan}}\n        op: '>'\n        \
                 threshold: 0.1\n        summary: Many errors.\n        description: Errors.\n";
    let (ok, out) = check(dir.path(), ratio);
    let at = place(dir.path(), ratio, ratio.find("AppErrors").expect("the alert"));
    assert!(!ok && out.contains(&format!("{at}alert `AppErrors`: `min_events` must be a finite number")), "{out}");
    let (ok, out) = check(dir.path(), &ratio.replace(".nan", "20"));
    assert!(ok, "{out}");
}

/// Any set of metric names, types, buckets and scales: the spec is refused with a located error,
/// or every name the exposition would give its metrics is its own, none is the exporter's or
/// Prometheus', and every bound and factor is a finite number. `scripts/fuzz` runs thousands.
mod any {
    use std::collections::BTreeSet;

    use integration_exporter::spec::{MetricType, Model, Source, SourceText};
    use proptest::prelude::*;

    fn metric() -> impl Strategy<Value = (String, &'static str, Vec<&'static str>, &'static str)> {
        let prefix = prop::sample::select(vec!["app_", "process_", "integration_exporter_", "scrape_", ""]);
        let base = prop::sample::select(vec!["h", "jobs", "up", "duration_seconds"]);
        let suffix = prop::sample::select(vec!["", "_bucket", "_sum", "_count", "_total"]);
        let kind = prop::sample::select(vec!["counter", "gauge", "histogram"]);
        let bound = prop::sample::select(vec!["0.5", "1", "2", ".inf", "-.inf", ".nan", "1e308"]);
        let scale = prop::sample::select(vec!["1", "0.001", ".nan", ".inf", "-.Inf", "1e308"]);
        (prefix, base, suffix, kind, prop::collection::vec(bound, 0..4), scale)
            .prop_map(|(p, b, s, k, buckets, scale)| (format!("{p}{b}{s}"), k, buckets, scale))
    }

    fn exposed(name: &str, kind: MetricType) -> Vec<String> {
        match kind {
            MetricType::Gauge => vec![name.to_string()],
            MetricType::Counter => {
                [Some(name), name.strip_suffix("_total")].into_iter().flatten().map(String::from).collect()
            }
            MetricType::Histogram => ["", "_bucket", "_sum", "_count"].iter().map(|s| format!("{name}{s}")).collect(),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(64)
        ))]

        #[test]
        fn metric_sets_load_only_when_every_exposed_name_is_their_own(metrics in prop::collection::vec(metric(), 1..5)) {
            let mut text = String::from("logs:\n  app: {paths: [/nonexistent/app.log]}\nsignals:\n");
            for (i, (name, kind, buckets, scale)) in metrics.iter().enumerate() {
                let action = match *kind { "counter" => "add", "gauge" => "set", _ => "observe" };
                text.push_str(&format!(
                    "  - id: t.s{i}\n    title: S{i}\n    runbook_section: https://example.com/runbook#s{i}\n    \
                     metrics:\n      - {{name: {name}, type: {kind}, help: Some., buckets: [{}]}}\n    source:\n      \
                     log: {{log: app, rules: [{{match: 'v=(?P<v>\\d+)', metric: {name}, action: {action}, value: v, \
                     scale: {scale}}}]}}\n",
                    buckets.join(", ")
                ));
            }
            match Model::from_text(&SourceText { name: "spec.yaml".into(), text: text.clone() }) {
                Err(errors) => {
                    for e in errors.0 {
                        prop_assert!(e.line > 1 && e.column >= 1, "{e} in\n{text}");
                    }
                }
                Ok(model) => {
                    let mut seen = BTreeSet::new();
                    for (_, def) in model.metrics() {
                        for name in exposed(&def.name, def.kind) {
                            prop_assert!(!name.starts_with("process_") && !name.starts_with("integration_exporter_"), "{name}");
                            prop_assert!(name != "up" && !name.starts_with("scrape_d"), "{name}");
                            prop_assert!(seen.insert(name.clone()), "`{name}` exposed twice in\n{text}");
                        }
                        prop_assert!(def.buckets.iter().all(|b| b.is_finite()), "{:?}", def.buckets);
                        prop_assert!(def.buckets.windows(2).all(|w| w[0] < w[1]), "{:?}", def.buckets);
                    }
                    for signal in model.enabled_signals() {
                        if let Source::Log(rules) = &signal.signal.source {
                            prop_assert!(rules.rules.iter().all(|r| r.scale.is_none_or(f64::is_finite)));
                        }
                    }
                }
            }
        }
    }
}
