//! Alerts that say when a signal is blind: its query or endpoint failing (by error kind), its
//! log source with no file being read, its checkpoint failing to save, the exporter target down.
//! Each names the signal (or log source) and the error kind and says what to check; Alertmanager
//! inhibits the blind signal's own alerts while it fires (see [`inhibitions`]), so a blind source
//! shows as one alert about the source, never as silence or as the signal's own alarms.

use std::collections::BTreeMap;

use super::alertmanager::InhibitRule;
use super::promql::{escape, inject, metric_names, selector, target_matchers, target_text};
use super::rule_tests::{AlertRuleTest, ExpAlert, InputSeries, TestCase};
use super::rules::Rule;
use crate::self_metrics;
use crate::spec::{Model, ResolvedSignal, Schedule, Severity};

pub const LOG_UNREADABLE: &str = "IntegrationSourceLogUnreadable";
pub const CHECKPOINT_FAILING: &str = "IntegrationSourceCheckpointFailing";
pub const EXPORTER_DOWN: &str = "IntegrationExporterDown";

/// Window the error counters' increase is taken over.
const ERROR_WINDOW: &str = "5m";

/// What a blind source costs: the most severe alert it feeds (no alert: `info`).
fn guarded_severity<'a>(signals: impl IntoIterator<Item = &'a ResolvedSignal>) -> Severity {
    signals
        .into_iter()
        .flat_map(|s| s.signal.alerts.iter().filter(|a| a.enabled))
        .map(|a| a.severity)
        .min()
        .unwrap_or(Severity::Info)
}

/// `for` of a failing poll: three intervals (when its last values are dropped), in whole
/// minutes, at least one.
fn poll_for(schedule: Schedule) -> u64 {
    let secs = (schedule.interval.as_secs_f64() * 3.0 / 60.0).ceil() as u64 * 60;
    secs.max(60)
}

/// One source-health alert: the rule and how to test it.
pub struct HealthAlert {
    pub rule: Rule,
    /// Input series that make it fire, the labels it then has (beyond the rule's) and its `for`.
    fire_input: Vec<InputSeries>,
    fire_labels: BTreeMap<String, String>,
    /// Input series of the healthy source: it stays quiet.
    quiet_input: Vec<InputSeries>,
    /// When the condition first holds on `fire_input` (counters need two samples).
    active_from: u64,
    for_secs: u64,
    /// Further ways it fires, with the same labels: (case name, input series, `active_from`).
    more_fires: Vec<(&'static str, Vec<InputSeries>, u64)>,
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// `by (...)` of an aggregation keeping the target (`job`, `instance`, the configured matchers)
/// and `extra`.
fn by(model: &Model, extra: &[&str]) -> String {
    let mut keep: Vec<String> = target_matchers(model).into_keys().collect();
    keep.push("instance".into());
    keep.extend(extra.iter().map(|s| s.to_string()));
    format!("sum by ({})", keep.join(", "))
}

fn rule(
    model: &Model,
    name: &str,
    expr: String,
    for_secs: u64,
    labels: BTreeMap<String, String>,
    summary: &str,
    description: String,
) -> Rule {
    Rule {
        alert: name.to_string(),
        expr: inject(&expr, &metric_names(model), &target_text(model)),
        for_: Some(format!("{}m", for_secs / 60)),
        labels,
        annotations: BTreeMap::from([
            ("summary".to_string(), summary.to_string()),
            ("description".to_string(), description),
            ("runbook_url".to_string(), runbook_url(model, name)),
        ]),
    }
}

/// The exporter's own alerts are about the exporter, not a pack's application: they link one
/// runbook, `integration-exporter.md` under `runbook_base_url`, one heading per alert name.
pub fn runbook_url(model: &Model, alert: &str) -> String {
    format!("{}/{RUNBOOK}#{}", model.config.runbook_base_url.trim_end_matches('/'), alert.to_ascii_lowercase())
}

/// File name of the exporter's runbook under `runbook_base_url`.
pub const RUNBOOK: &str = "integration-exporter.md";

/// Labels of the exporter's series in tests: the configured target's and an instance.
fn target(model: &Model) -> BTreeMap<String, String> {
    let mut out = target_matchers(model);
    out.insert("instance".into(), "exporter:29187".into());
    out
}

fn input(metric: &str, labels: &BTreeMap<String, String>, values: &str) -> InputSeries {
    InputSeries { series: selector(metric, labels), values: values.to_string() }
}

fn alert_names(signal: &ResolvedSignal) -> String {
    let mut names: Vec<&str> = signal.signal.alerts.iter().filter(|a| a.enabled).map(|a| a.name.as_str()).collect();
    names.dedup();
    if names.is_empty() { "none".into() } else { names.join(", ") }
}

/// A failing SQL query or HTTP endpoint, one alert per error kind.
fn poll_failing(model: &Model, signal: &ResolvedSignal) -> Option<HealthAlert> {
    let id = signal.signal.id.as_str();
    let schedule = signal.schedule()?;
    let spec = signal.signal.source.spec();
    let kind = spec.polled().filter(|_| !spec.watches_itself(&signal.signal))?;
    let (name, ok, errors, what, check) =
        (kind.failing_alert, kind.health.ok.name, kind.health.errors.name, kind.what, kind.check);
    let sel = labels(&[("signal", id)]);
    let for_secs = poll_for(schedule);
    let failing = format!("{} (increase({}[{ERROR_WINDOW}])) > 0", by(model, &["kind"]), selector(errors, &sel));
    let expr = if !kind.ok_on_partial_answer {
        format!("{failing}\nand on (job, instance)\n{} == 0", selector(ok, &sel))
    } else {
        // An endpoint that answers 2xx without the value (a JSON path gone) keeps `up` at 1:
        // what counts is that no poll fully succeeded for three intervals.
        format!(
            "{failing}\nunless on (job, instance)\ntime() - {} < {}",
            selector(kind.health.last_success.name, &sel),
            (schedule.interval.as_secs_f64() * 3.0).ceil()
        )
    };
    let severity = guarded_severity([signal]);
    let rule_labels = labels(&[("severity", severity.as_str()), ("signal", id)]);
    let description = format!(
        "The {what} of signal {id} has failed with {{{{ $labels.kind }}}} errors on {{{{ $labels.instance }}}} \
         for {}m; its values are gone and its alerts ({}) are held back until it reads again. Check {check}.",
        for_secs / 60,
        alert_names(signal),
    );
    let summary = kind.summary;
    let mut series = sel.clone();
    series.extend(target(model));
    let mut err_series = series.clone();
    err_series.insert("kind".into(), "connect".into());
    let mut fire_labels = target(model);
    fire_labels.insert("kind".into(), "connect".into());
    let (fire_input, quiet_input) = if !kind.ok_on_partial_answer {
        (
            vec![input(ok, &series, "0+0x240"), input(errors, &err_series, "0+1x240")],
            vec![input(ok, &series, "1+0x240"), input(errors, &err_series, "3+0x240")],
        )
    } else {
        // Fires on `path` errors while the endpoint answers; quiet while polls succeed again
        // (the last success is always now) even though earlier errors are still in the window.
        err_series.insert("kind".into(), "path".into());
        fire_labels.insert("kind".into(), "path".into());
        (
            vec![input(ok, &series, "1+0x240"), input(errors, &err_series, "0+1x240")],
            vec![
                input(ok, &series, "1+0x240"),
                input(errors, &err_series, "0+1x240"),
                input(kind.health.last_success.name, &series, "0+60x240"),
            ],
        )
    };
    Some(HealthAlert {
        rule: rule(model, name, expr, for_secs, rule_labels, summary, description),
        fire_input,
        fire_labels,
        quiet_input,
        active_from: 60,
        for_secs,
        more_fires: Vec::new(),
    })
}

/// The signals reading log source `log`.
fn log_signals<'a>(model: &'a Model, log: &str) -> Vec<&'a ResolvedSignal> {
    model.enabled_signals().filter(|s| s.log_id() == Some(log)).collect()
}

fn signal_ids(signals: &[&ResolvedSignal]) -> String {
    signals.iter().map(|s| s.signal.id.as_str()).collect::<Vec<_>>().join(", ")
}

/// A log source with no readable file: its paths match no file, only files the exporter cannot
/// open, or reading fails. An existing empty file is readable (the application may just be
/// quiet): that case is left to the signals' own `absent` and age alerts.
fn log_unreadable(model: &Model, log: &str, signals: &[&ResolvedSignal]) -> HealthAlert {
    let sel = labels(&[("log", log)]);
    let errors = self_metrics::LOG_READ_ERRORS.name;
    let files = self_metrics::LOG_FILES.name;
    // The gauge exists only while the exporter is scraped: a down exporter is its own alert.
    let expr = format!(
        "{} (increase({}[{ERROR_WINDOW}])) > 0\nor\n{} ({}) == 0",
        by(model, &[]),
        selector(errors, &sel),
        by(model, &[]),
        selector(files, &sel)
    );
    let severity = guarded_severity(signals.iter().copied());
    let rule_labels = labels(&[("severity", severity.as_str()), ("log", log)]);
    let paths = model.logs.get(log).map(|l| l.paths.join(", ")).unwrap_or_default();
    let description = format!(
        "{{{{ $labels.instance }}}} has no readable file of log source {log} ({paths}): the paths match no file, \
         or only files it cannot open or read ({files} is 0, or {errors} grows); signals {} are blind and \
         their alerts held back. Check that the application writes where the paths point (a log file created \
         only at the first line counts as missing until then), that the exporter's user may read the files \
         and their directory, and the exporter's log. An existing empty file counts as readable: an \
         application that stopped writing shows in its signals' own age and absent alerts.",
        signal_ids(signals)
    );
    let mut series = sel.clone();
    series.extend(target(model));
    let file_series = series.clone();
    series.insert("path".into(), "/var/log/app.log".into());
    HealthAlert {
        rule: rule(model, LOG_UNREADABLE, expr, 300, rule_labels, "A log source has no readable file.", description),
        fire_input: vec![input(errors, &series, "0+1x240"), input(files, &file_series, "1+0x240")],
        fire_labels: target(model),
        quiet_input: vec![input(errors, &series, "2+0x240"), input(files, &file_series, "1+0x240")],
        active_from: 60,
        for_secs: 300,
        more_fires: vec![("firing while no file is there to read", vec![input(files, &file_series, "0+0x240")], 0)],
    }
}

/// A log source whose checkpoint cannot be saved: nothing is blind yet, but a restart would
/// recount or skip lines.
fn checkpoint_failing(model: &Model, log: &str) -> HealthAlert {
    let sel = labels(&[("log", log)]);
    let expr = format!(
        "{} (increase({}[{ERROR_WINDOW}])) > 0",
        by(model, &["reason"]),
        selector(self_metrics::CHECKPOINT_SAVE_FAILURES.name, &sel)
    );
    let rule_labels = labels(&[("severity", Severity::Warning.as_str()), ("log", log)]);
    let description = format!(
        "{{{{ $labels.instance }}}} cannot save the checkpoint of log source {log} ({{{{ $labels.reason }}}}); \
         counting goes on, but a restart now would count lines again or skip them. Check the state_dir's free \
         space, that it is writable by the exporter's user, and the exporter's log."
    );
    let mut series = sel.clone();
    series.extend(target(model));
    series.insert("reason".into(), "no_space".into());
    let mut fire_labels = target(model);
    fire_labels.insert("reason".into(), "no_space".into());
    HealthAlert {
        rule: rule(model, CHECKPOINT_FAILING, expr, 300, rule_labels, "A log checkpoint cannot be saved.", description),
        fire_input: vec![input(self_metrics::CHECKPOINT_SAVE_FAILURES.name, &series, "0+60x240")],
        fire_labels,
        quiet_input: vec![input(self_metrics::CHECKPOINT_SAVE_FAILURES.name, &series, "7+0x240")],
        active_from: 60,
        for_secs: 300,
        more_fires: Vec::new(),
    }
}

/// The health alerts of one pack's signals (or of the user's own when `pack` is `None`).
pub fn alerts_of(model: &Model, pack: Option<&str>) -> Vec<HealthAlert> {
    let mine: Vec<&ResolvedSignal> = model.enabled_signals().filter(|s| s.pack.as_deref() == pack).collect();
    let mut out: Vec<HealthAlert> = mine.iter().filter_map(|s| poll_failing(model, s)).collect();
    let mut logs: Vec<&str> = mine.iter().filter_map(|s| s.log_id()).collect();
    logs.sort();
    logs.dedup();
    for log in logs {
        let signals = log_signals(model, log);
        out.push(log_unreadable(model, log, &signals));
        out.push(checkpoint_failing(model, log));
    }
    out
}

/// The exporter's scrape target down (or gone from Prometheus' targets).
pub fn exporter_down(model: &Model) -> HealthAlert {
    let up = "up";
    let severity = guarded_severity(model.enabled_signals());
    let expr = format!("{up} == 0\nor\nabsent({up})");
    let description = format!(
        "Prometheus cannot scrape {{{{ $labels.instance }}}} of job {}: every integration signal it serves is \
         blind and their alerts are held back. Check that the exporter runs (its service or pod), that it \
         listens where the scrape config points, and its log.",
        model.config.generate.job
    );
    let rule_labels = labels(&[("severity", severity.as_str())]);
    let mut fire_labels = target(model);
    fire_labels.insert("job".into(), model.config.generate.job.clone());
    HealthAlert {
        rule: rule(
            model,
            EXPORTER_DOWN,
            expr,
            120,
            rule_labels,
            "The integration exporter cannot be scraped.",
            description,
        ),
        fire_input: vec![input("up", &target(model), "0+0x240")],
        fire_labels,
        quiet_input: vec![input("up", &target(model), "1+0x240")],
        active_from: 0,
        for_secs: 120,
        more_fires: Vec::new(),
    }
}

fn render(template: &str, labels: &BTreeMap<String, String>) -> String {
    let mut out = template.to_string();
    for (k, v) in labels {
        out = out.replace(&format!("{{{{ $labels.{k} }}}}"), v);
    }
    out
}

/// promtool cases: quiet while the source is healthy, pending one minute before `for` ends,
/// firing with its exact labels and annotations after it.
pub fn test_cases(alert: &HealthAlert) -> Vec<TestCase> {
    let name = &alert.rule.alert;
    let severity = alert.rule.labels.get("severity").cloned().unwrap_or_default();
    let mut exp_labels = alert.fire_labels.clone();
    exp_labels.extend(alert.rule.labels.clone());
    let exp_annotations: BTreeMap<String, String> =
        alert.rule.annotations.iter().map(|(k, v)| (k.clone(), render(v, &exp_labels))).collect();
    let expected = || ExpAlert { exp_labels: exp_labels.clone(), exp_annotations: exp_annotations.clone() };
    let fire_at = alert.active_from + alert.for_secs;
    let case = |label: &str, input: Vec<InputSeries>, evals: Vec<(u64, Vec<ExpAlert>)>| TestCase {
        name: format!("{name} ({severity}): {label}"),
        interval: "1m".into(),
        input_series: input,
        alert_rule_test: evals
            .into_iter()
            .map(|(at, exp_alerts)| AlertRuleTest {
                eval_time: format!("{}m", at / 60),
                alertname: name.clone(),
                exp_alerts,
            })
            .collect(),
    };
    let mut cases = vec![
        case("quiet while the source is healthy", alert.quiet_input.clone(), vec![(fire_at + 600, vec![])]),
        case(
            "pending before `for`, firing after it",
            alert.fire_input.clone(),
            vec![(fire_at - 60, vec![]), (fire_at, vec![expected()])],
        ),
    ];
    for (label, input, active_from) in &alert.more_fires {
        let fire_at = active_from + alert.for_secs;
        cases.push(case(label, input.clone(), vec![(fire_at - 60, vec![]), (fire_at, vec![expected()])]));
    }
    cases
}

/// Inhibit rules: while a source-health alert fires, the alerts of the signals it blinds are held
/// back, for the same exporter (`instance_labels`) only.
pub fn inhibitions(model: &Model) -> Vec<InhibitRule> {
    let equal = model.config.generate.alertmanager.instance_labels.clone();
    let mut out = Vec::new();
    let own = |signals: &[&ResolvedSignal], except: &str| -> Option<Vec<String>> {
        let ids: Vec<String> = signals
            .iter()
            .filter(|s| s.signal.alerts.iter().any(|a| a.enabled))
            .map(|s| regex::escape(&s.signal.id))
            .collect();
        (!ids.is_empty())
            .then(|| vec![format!("signal=~\"{}\"", escape(&ids.join("|"))), format!("alertname!=\"{except}\"")])
    };
    for signal in model.enabled_signals() {
        let spec = signal.signal.source.spec();
        let Some(kind) = spec.polled().filter(|_| !spec.watches_itself(&signal.signal)) else { continue };
        let name = kind.failing_alert;
        if let Some(target_matchers) = own(&[signal], name) {
            out.push(InhibitRule {
                source_matchers: vec![
                    format!("alertname=\"{name}\""),
                    format!("signal=\"{}\"", escape(&signal.signal.id)),
                ],
                target_matchers,
                equal: equal.clone(),
            });
        }
    }
    let mut logs: Vec<&str> = model.enabled_signals().filter_map(|s| s.log_id()).collect();
    logs.sort();
    logs.dedup();
    for log in logs {
        if let Some(target_matchers) = own(&log_signals(model, log), LOG_UNREADABLE) {
            out.push(InhibitRule {
                source_matchers: vec![format!("alertname=\"{LOG_UNREADABLE}\""), format!("log=\"{}\"", escape(log))],
                target_matchers,
                equal: equal.clone(),
            });
        }
    }
    out.push(InhibitRule {
        source_matchers: vec![format!("alertname=\"{EXPORTER_DOWN}\"")],
        target_matchers: vec!["signal=~\".+\"".into()],
        equal,
    });
    out
}
