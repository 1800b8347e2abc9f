//! Alerts that say when a signal is blind: its query or endpoint failing (by error kind), one
//! value missing from an endpoint's answer, the database unreachable for every query, its log
//! source with no file being read, its checkpoint failing to save, the exporter target down. Each
//! names the signal (or value, database, log source) and the error kind and says what to check;
//! Alertmanager inhibits what it blinds while it fires (see [`inhibitions`]) and no more: a value
//! still read keeps its alerts armed, and one cause (the database) is one alert, not one per
//! query. The exporter's runbook ([`runbook`]) is written from the same definitions.

use std::collections::BTreeMap;

use super::alerts;
use super::error::{GenerateError, Item, Subject};
use super::output::alertmanager::InhibitRule;
use super::output::promtool::{AlertRuleTest, ExpAlert, InputSeries, TestCase};
use super::output::rules::Rule;
use super::promql::{escape, metric_names, selector, target_matchers, target_text, try_inject};
use super::replicas;
use crate::self_metrics;
use crate::spec::source_kind::PolledKind;
use crate::spec::{Alert, Model, ResolvedSignal, Schedule, Severity};

pub const LOG_UNREADABLE: &str = "IntegrationSourceLogUnreadable";
pub const CHECKPOINT_FAILING: &str = "IntegrationSourceCheckpointFailing";
pub const LOG_FILES_SKIPPED: &str = "IntegrationSourceLogFilesSkipped";
pub const EXPORTER_DOWN: &str = "IntegrationExporterDown";
pub const DATABASE_UNREACHABLE: &str = "IntegrationDatabaseUnreachable";
pub const CERTIFICATE_EXPIRING: &str = "IntegrationExporterCertificateExpiring";

const LOG_UNREADABLE_SUMMARY: &str = "A log source has no readable file.";
const CHECKPOINT_FAILING_SUMMARY: &str = "A log checkpoint cannot be saved.";
const LOG_FILES_SKIPPED_SUMMARY: &str = "A log source matches more files than it may open; some are not read.";
const EXPORTER_DOWN_SUMMARY: &str = "The integration exporter cannot be scraped.";
const DATABASE_UNREACHABLE_SUMMARY: &str = "The exporter cannot reach its database, so every SQL signal is blind.";
const CERTIFICATE_EXPIRING_SUMMARY: &str = "The exporter's TLS certificate expires within 14 days, or has expired.";
/// Days before `notAfter` the certificate alert fires: two weeks leaves a renewal time to go
/// through a change process (ACME renews at 30 days left, so a working renewal never fires it).
const CERTIFICATE_DAYS: u64 = 14;

/// What to check, by cause, for the alerts that are not about a polled kind (the polled kinds
/// carry theirs, [`PolledKind::checks`]). Rule descriptions and the runbook both quote these.
const LOG_CHECKS: &[(&str, &str)] = &[
    (
        "paths",
        "the application writes where the paths point: a moved path, a rotation the glob no longer matches, \
         or a log file created only at its first line (missing until then)",
    ),
    ("permissions", "the exporter's user may read the files and list their directory"),
    ("errors", "the exporter's log names the file and the error"),
];
const CHECKPOINT_CHECKS: &[(&str, &str)] = &[
    ("space", "the state_dir's file system has free space (`df`)"),
    ("writable", "the state_dir is writable by the exporter's user (not mounted read-only)"),
    ("errors", "the exporter's log names the reason"),
];
const LOG_FILES_SKIPPED_CHECKS: &[(&str, &str)] = &[
    (
        "paths",
        "the glob matches only the files the application writes: old or rotated files kept under it (an \
         `app-*.log` beside years of dated logs) should be moved away, compressed (compressed files are never \
         opened) or left out with a narrower glob",
    ),
    (
        "limit",
        "the log source's `max_files`, or the exporter's open-file limit (`LimitNOFILE=` in the systemd unit; \
         the exporter raises its soft limit to the hard one and logs both at start, with its share for log files)",
    ),
];
const EXPORTER_DOWN_CHECKS: &[(&str, &str)] = &[
    (
        "process",
        "the exporter runs (`systemctl status integration-exporter`, or the pod); a spec that does not load \
         makes it exit with status 2 and a `file:line:column` message in its log",
    ),
    (
        "target",
        "it listens where the scrape config points (`--web.listen-address`), and the scrape's TLS and basic \
         auth match its web config (Prometheus' targets page shows the scrape error)",
    ),
];

const CERTIFICATE_CHECKS: &[(&str, &str)] = &[
    (
        "renew",
        "renew the certificate the web config's `tls_server_config` names (`cert_file` and `key_file`); new \
         connections get the renewed files without a restart, and `integration_exporter_tls_certificate_expiry_timestamp_seconds` \
         moves to the new notAfter",
    ),
    (
        "expired",
        "once expired, Prometheus' scrapes fail (`x509: certificate has expired`) and IntegrationExporterDown \
         follows; the exporter's log warns about an expired or not yet valid certificate at start, on every reload \
         and in `check`",
    ),
];

/// Window the error counters' increase is taken over.
const ERROR_WINDOW: &str = "5m";

/// The query error kinds that say the database as a whole is gone: while
/// [`DATABASE_UNREACHABLE`] fires, the per-query alerts of these kinds are its echo.
const UNREACHABLE_KINDS: &str = "connect|timeout";

/// What a blind source costs: the most severe of the alerts it blinds (none: `info`).
fn most_severe<'a>(alerts: impl IntoIterator<Item = &'a Alert>) -> Severity {
    alerts.into_iter().filter(|a| a.enabled).map(|a| a.severity).min().unwrap_or(Severity::Info)
}

fn alerts_of<'a>(signals: impl IntoIterator<Item = &'a ResolvedSignal>) -> impl Iterator<Item = &'a Alert> {
    signals.into_iter().flat_map(alerts::of_signal)
}

/// The signal's alerts that read `metric`.
fn alerts_reading<'a>(signal: &'a ResolvedSignal, metric: &'a str) -> impl Iterator<Item = &'a Alert> {
    alerts_of([signal]).filter(move |a| a.condition.metrics().contains(&metric))
}

/// `for` of a failing poll: three intervals (when its last values are dropped), in whole
/// minutes, at least one.
fn poll_for(schedule: Schedule) -> u64 {
    let secs = (schedule.interval.as_secs_f64() * 3.0 / 60.0).ceil() as u64 * 60;
    secs.max(60)
}

/// Three intervals in seconds: how recent a reading must be for its source to count as read.
fn three_intervals(schedule: Schedule) -> f64 {
    (schedule.interval.as_secs_f64() * 3.0).ceil()
}

/// One way a health alert fires in its promtool tests.
struct Fire {
    case: &'static str,
    input: Vec<InputSeries>,
    /// When the condition first holds (counters need two samples).
    active_from: u64,
    /// The labels it then has beyond the rule's.
    labels: BTreeMap<String, String>,
}

/// One source-health alert: the rule and how to test it.
pub struct HealthAlert {
    pub rule: Rule,
    /// Ways it fires; the first is the plain case.
    fires: Vec<Fire>,
    /// Ways it stays quiet: (case name, input series); the first is the healthy source.
    quiet: Vec<(&'static str, Vec<InputSeries>)>,
    for_secs: u64,
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// `<agg> by (...)` of an aggregation keeping the target (`job`, `instance`, the configured
/// matchers) and `extra`.
fn agg_by(model: &Model, agg: &str, extra: &[&str]) -> String {
    agg_keeping(model, agg, extra, false)
}

/// [`agg_by`], without `instance` when `fleet`: one answer for every replica.
fn agg_keeping(model: &Model, agg: &str, extra: &[&str], fleet: bool) -> String {
    let mut keep: Vec<String> = target_matchers(model).into_keys().collect();
    if !fleet {
        keep.push("instance".into());
    }
    keep.extend(extra.iter().map(|s| s.to_string()));
    // With several databases a query's health series carry the database: kept, so the
    // alert says which database's query fails.
    if let Some(label) = model.database_label().filter(|l| !keep.iter().any(|k| k == l)) {
        keep.push(label.to_string());
    }
    format!("{agg} by ({})", keep.join(", "))
}

fn by(model: &Model, extra: &[&str]) -> String {
    agg_by(model, "sum", extra)
}

fn rule(
    model: &Model,
    name: &str,
    expr: String,
    for_secs: u64,
    labels: BTreeMap<String, String>,
    summary: &str,
    description: String,
) -> Result<Rule, GenerateError> {
    // The pack, when there is one, is named by [`alerts_of_pack`].
    let subject = || Subject::new(None, labels.get("signal").map(String::as_str), Item::Alert(name.to_string()));
    let expr =
        try_inject(&expr, &metric_names(model), &target_text(model)).map_err(|e| GenerateError::query(subject(), e))?;
    Ok(Rule {
        alert: name.to_string(),
        expr,
        for_: Some(format!("{}m", for_secs / 60)),
        keep_firing_for: None,
        labels,
        annotations: BTreeMap::from([
            ("summary".to_string(), summary.to_string()),
            ("description".to_string(), description),
            ("runbook_url".to_string(), runbook_url(model, name)),
        ]),
    })
}

/// The exporter's own alerts are about the exporter, not a pack's application: they link one
/// runbook, `integration-exporter.md` under `runbook_base_url`, one heading per alert name
/// ([`runbook`] writes it).
pub fn runbook_url(model: &Model, alert: &str) -> String {
    format!("{}/{RUNBOOK}#{}", model.config.runbook_base_url.trim_end_matches('/'), anchor(alert))
}

/// The anchor GitHub renders for a heading that is an alert name.
fn anchor(alert: &str) -> String {
    alert.to_ascii_lowercase()
}

/// File name of the exporter's runbook under `runbook_base_url`.
pub const RUNBOOK: &str = "integration-exporter.md";

/// Labels of the exporter's series in tests: the configured target's and an instance.
fn target(model: &Model) -> BTreeMap<String, String> {
    let mut out = target_matchers(model);
    out.insert("instance".into(), "exporter:29187".into());
    // With several databases the tests' series name one, as the exporter's do.
    if let Some(label) = model.database_label() {
        out.insert(label.into(), EXAMPLE_DATABASE.into());
    }
    out
}

/// The database the generated tests' series come from.
const EXAMPLE_DATABASE: &str = "db.example:5432/app";

/// `on (...)` joining two series of one query: the target, and with several databases the
/// database, so one database's failure never stands for another's.
fn on_query(model: &Model) -> String {
    match model.database_label() {
        Some(label) => format!("on (job, instance, {label})"),
        None => "on (job, instance)".into(),
    }
}

/// [`on_query`] across replicas: the job, and with several databases the database.
fn on_fleet_query(model: &Model) -> String {
    match model.database_label() {
        Some(label) => format!("on (job, {label})"),
        None => "on (job)".into(),
    }
}

/// The highest of the replicas' `inner`, per job (and database, with several): a standby's
/// missing series never counts, and whichever replica leads gives the answer.
fn fleet_max(model: &Model, inner: &str) -> String {
    let extra: Vec<&str> = model.database_label().into_iter().collect();
    format!("{} ({inner})", agg_keeping(model, "max", &extra, true))
}

/// `labels` without `instance` when the alert is the fleet's.
fn fleet_labels(mut labels: BTreeMap<String, String>, fleet: bool) -> BTreeMap<String, String> {
    if fleet {
        labels.remove("instance");
    }
    labels
}

/// `max_over_time(integration_exporter_database_up[window])`, under the query series' database
/// label: the health series name their database `database`, whatever the spec calls the label.
fn database_up_over(model: &Model, minutes: u64) -> String {
    let up = format!("max_over_time({}[{minutes}m])", self_metrics::DATABASE_UP.name);
    match model.database_label() {
        Some(label) if label != "database" => {
            format!("label_replace({up}, \"{label}\", \"$1\", \"database\", \"(.*)\")")
        }
        _ => up,
    }
}

fn input(metric: &str, labels: &BTreeMap<String, String>, values: &str) -> InputSeries {
    InputSeries { series: selector(metric, labels), values: values.to_string() }
}

fn with(base: &BTreeMap<String, String>, pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut out = base.clone();
    out.extend(labels(pairs));
    out
}

fn names<'a>(alerts: impl IntoIterator<Item = &'a Alert>) -> Vec<&'a str> {
    let mut names: Vec<&str> = alerts.into_iter().map(|a| a.name.as_str()).collect();
    names.dedup();
    names
}

fn listed(names: &[&str]) -> String {
    if names.is_empty() { "none".into() } else { names.join(", ") }
}

/// `kind: what to check; kind: ...`, as a description says it.
fn checks_text(checks: &[(&str, &str)]) -> String {
    checks.iter().map(|(kind, text)| format!("{kind}: {text}")).collect::<Vec<_>>().join("; ")
}

/// The polled kind of a signal, unless one of its own alerts already watches its source.
fn polled_kind(signal: &ResolvedSignal) -> Option<&'static PolledKind> {
    let spec = signal.signal.source.settings();
    spec.polled().filter(|_| !spec.watches_itself(&signal.signal))
}

/// A failing SQL query or HTTP endpoint, one alert per error kind; for an endpoint, also one per
/// value its answers lack.
fn poll_failing(model: &Model, signal: &ResolvedSignal) -> Result<Vec<HealthAlert>, GenerateError> {
    let id = signal.signal.id.as_str();
    let (Some(schedule), Some(kind)) = (signal.schedule(), polled_kind(signal)) else { return Ok(Vec::new()) };
    let spec = signal.signal.source.settings();
    let (name, ok, errors, what) = (kind.failing_alert, kind.health.ok.name, kind.health.errors.name, kind.what);
    let sel = labels(&[("signal", id)]);
    let for_secs = poll_for(schedule);
    // With `ha`, a query runs on the leader only: one alert for the fleet, whichever leads.
    let fleet = replicas::led(model, signal);
    let answer_values = spec.answer_values();
    let mut series = sel.clone();
    series.extend(target(model));
    let fire_labels = fleet_labels(with(&target(model), &[("kind", "connect")]), fleet);
    let connect = with(&series, &[("kind", "connect")]);

    let (expr, fire, quiet) = match kind.values {
        None => {
            let failing = format!(
                "{} (increase({}[{ERROR_WINDOW}])) > 0",
                agg_keeping(model, "sum", &["kind"], fleet),
                selector(errors, &sel)
            );
            let mut expr = if fleet {
                format!("{failing}\nand {}\n{} == 0", on_fleet_query(model), fleet_max(model, &selector(ok, &sel)))
            } else {
                format!("{failing}\nand {}\n{} == 0", on_query(model), selector(ok, &sel))
            };
            let fire = vec![input(ok, &series, "0+0x240"), input(errors, &connect, "0+1x240")];
            let mut quiet = vec![(
                "quiet while the source is healthy",
                vec![input(ok, &series, "1+0x240"), input(errors, &connect, "3+0x240")],
            )];
            if spec.needs_database() {
                // Every query failing because the database is gone is one alert, the database's;
                // a query failing while the database answers others is this one's.
                let up = database_up_over(model, for_secs / 60);
                expr.push_str(&if fleet {
                    format!("\nunless {}\n{} == 0", on_fleet_query(model), fleet_max(model, &up))
                } else {
                    format!("\nunless {}\n{up} == 0", on_query(model))
                });
                let db = with(&target(model), &[("database", EXAMPLE_DATABASE)]);
                let mut unreachable = fire.clone();
                unreachable.push(input(self_metrics::DATABASE_UP.name, &db, "0+0x240"));
                quiet.push(("quiet while the database answers no query", unreachable));
            }
            (expr, fire, quiet)
        }
        Some(values) => {
            // The answer as a whole: no answer, an error status, no JSON. A value missing from
            // an answer that works is the value's own alert below.
            let answer_errors = format!(
                "{errors}{{signal=\"{}\", kind!~\"{}\"}}",
                escape(id),
                values.kinds.iter().map(|k| regex::escape(k)).collect::<Vec<_>>().join("|")
            );
            let failing = format!("{} (increase({answer_errors}[{ERROR_WINDOW}])) > 0", by(model, &["kind"]));
            let last_read = values.last_read.name;
            let (expr, fire, quiet) = match answer_values.first() {
                Some((metric, _)) => {
                    let read = with(&series, &[("metric", metric)]);
                    let path = with(&series, &[("kind", values.blinding)]);
                    (
                        format!(
                            "{failing}\nunless on (job, instance)\ntime() - {} ({}) < {}",
                            agg_by(model, "max", &[]),
                            selector(last_read, &sel),
                            three_intervals(schedule)
                        ),
                        vec![input(ok, &series, "0+0x240"), input(errors, &connect, "0+1x240")],
                        vec![
                            (
                                "quiet while values are read from its answers",
                                vec![input(errors, &connect, "0+1x240"), input(last_read, &read, "0+60x240")],
                            ),
                            (
                                "quiet while only a value is missing from its answers",
                                vec![input(ok, &series, "1+0x240"), input(errors, &path, "0+1x240")],
                            ),
                        ],
                    )
                }
                None => (
                    format!("{failing}\nand on (job, instance)\n{} == 0", selector(ok, &sel)),
                    vec![input(ok, &series, "0+0x240"), input(errors, &connect, "0+1x240")],
                    vec![(
                        "quiet while the source is healthy",
                        vec![input(ok, &series, "1+0x240"), input(errors, &connect, "3+0x240")],
                    )],
                ),
            };
            (expr, fire, quiet)
        }
    };
    let on = if fleet { "the leading replica" } else { "{{ $labels.instance }}" };
    let description = format!(
        "The {what} of signal {id} has failed with {{{{ $labels.kind }}}} errors on {on} \
         for {}m; its values are gone and its alerts ({}) are held back until it reads again. Check {}.",
        for_secs / 60,
        listed(&names(alerts_of([signal]))),
        checks_text(kind.checks),
    );
    let severity = most_severe(alerts_of([signal]));
    let rule_labels = labels(&[("severity", severity.as_str()), ("signal", id)]);
    let mut failing = rule(model, name, expr, for_secs, rule_labels, kind.summary, description)?;
    failing.keep_firing_for = replicas::keep_firing_for(model, signal);
    let mut out = vec![HealthAlert {
        rule: failing,
        fires: vec![Fire {
            case: "pending before `for`, firing after it",
            input: fire,
            active_from: 60,
            labels: fire_labels,
        }],
        quiet,
        for_secs,
    }];
    if let Some(values) = kind.values {
        for (metric, at) in &answer_values {
            out.push(value_failing(model, signal, schedule, kind, values, metric, at)?);
        }
    }
    Ok(out)
}

/// One value an endpoint's answers lack (`path`) or read only in part (`limit`), while the
/// endpoint answers: only the alerts reading it are blind.
fn value_failing(
    model: &Model,
    signal: &ResolvedSignal,
    schedule: Schedule,
    kind: &PolledKind,
    values: &self_metrics::ValueHealthMetrics,
    metric: &str,
    at: &str,
) -> Result<HealthAlert, GenerateError> {
    let id = signal.signal.id.as_str();
    let sel = labels(&[("signal", id), ("metric", metric)]);
    let for_secs = poll_for(schedule);
    let (errors, last_read) = (values.errors.name, values.last_read.name);
    let expr = format!(
        "{} (increase({}[{ERROR_WINDOW}])) > 0\nunless on (job, instance)\ntime() - {} < {}",
        by(model, &["kind"]),
        selector(errors, &sel),
        selector(last_read, &sel),
        three_intervals(schedule)
    );
    let readers = names(alerts_reading(signal, metric));
    let others: Vec<&str> = names(alerts_of([signal])).into_iter().filter(|n| !readers.contains(n)).collect();
    let description = format!(
        "Value {metric} (`{at}`) of signal {id} has not been read in full from the {} answers on \
         {{{{ $labels.instance }}}} for {}m ({{{{ $labels.kind }}}} errors). {}: it is gone, and the alerts reading \
         it ({}) are held back; the signal's other values are still read and their alerts ({}) still fire. limit: \
         series past the limit were dropped and nothing is held back. Check {}.",
        kind.what,
        for_secs / 60,
        values.blinding,
        listed(&readers),
        listed(&others),
        checks_text(values.checks),
    );
    let severity = most_severe(alerts_reading(signal, metric));
    let rule_labels = labels(&[("severity", severity.as_str()), ("signal", id), ("metric", metric)]);
    let mut series = sel.clone();
    series.extend(target(model));
    let errors_of = |k: &str| with(&series, &[("kind", k)]);
    let fire = |k: &'static str, case: &'static str| Fire {
        case,
        input: vec![input(errors, &errors_of(k), "0+1x240")],
        active_from: 60,
        labels: with(&target(model), &[("kind", k)]),
    };
    Ok(HealthAlert {
        rule: rule(model, kind.failing_alert, expr, for_secs, rule_labels, kind.summary, description)?,
        fires: values
            .kinds
            .iter()
            .enumerate()
            .map(|(i, k)| {
                fire(k, if i == 0 { "pending before `for`, firing after it" } else { "firing on its other kind" })
            })
            .collect(),
        quiet: vec![(
            "quiet while the value is read",
            vec![input(errors, &errors_of(values.blinding), "0+1x240"), input(last_read, &series, "0+60x240")],
        )],
        for_secs,
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
fn log_unreadable(model: &Model, log: &str, signals: &[&ResolvedSignal]) -> Result<HealthAlert, GenerateError> {
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
    let severity = most_severe(alerts_of(signals.iter().copied()));
    let rule_labels = labels(&[("severity", severity.as_str()), ("log", log)]);
    let paths = model.logs.get(log).map(|l| l.paths.join(", ")).unwrap_or_default();
    let description = format!(
        "{{{{ $labels.instance }}}} has no readable file of log source {log} ({paths}): the paths match no file, \
         or only files it cannot open or read ({files} is 0, or {errors} grows); signals {} are blind and \
         their alerts held back. Check {}. An existing empty file counts as readable: an application that \
         stopped writing shows in its signals' own age and absent alerts.",
        signal_ids(signals),
        checks_text(LOG_CHECKS),
    );
    let mut series = sel.clone();
    series.extend(target(model));
    let file_series = series.clone();
    series.insert("path".into(), "/var/log/app.log".into());
    Ok(HealthAlert {
        rule: rule(model, LOG_UNREADABLE, expr, 300, rule_labels, LOG_UNREADABLE_SUMMARY, description)?,
        fires: vec![
            Fire {
                case: "pending before `for`, firing after it",
                input: vec![input(errors, &series, "0+1x240"), input(files, &file_series, "1+0x240")],
                active_from: 60,
                labels: target(model),
            },
            Fire {
                case: "firing while no file is there to read",
                input: vec![input(files, &file_series, "0+0x240")],
                active_from: 0,
                labels: target(model),
            },
        ],
        quiet: vec![(
            "quiet while the source is healthy",
            vec![input(errors, &series, "2+0x240"), input(files, &file_series, "1+0x240")],
        )],
        for_secs: 300,
    })
}

/// A log source whose checkpoint cannot be saved: nothing is blind yet, but a restart would
/// recount or skip lines.
fn checkpoint_failing(model: &Model, log: &str) -> Result<HealthAlert, GenerateError> {
    let sel = labels(&[("log", log)]);
    let expr = format!(
        "{} (increase({}[{ERROR_WINDOW}])) > 0",
        by(model, &["reason"]),
        selector(self_metrics::CHECKPOINT_SAVE_FAILURES.name, &sel)
    );
    let rule_labels = labels(&[("severity", Severity::Warning.as_str()), ("log", log)]);
    let description = format!(
        "{{{{ $labels.instance }}}} cannot save the checkpoint of log source {log} ({{{{ $labels.reason }}}}); \
         counting goes on, but a restart now would count lines again or skip them. Check {}.",
        checks_text(CHECKPOINT_CHECKS),
    );
    let mut series = sel.clone();
    series.extend(target(model));
    series.insert("reason".into(), "no_space".into());
    let failures = self_metrics::CHECKPOINT_SAVE_FAILURES.name;
    Ok(HealthAlert {
        rule: rule(model, CHECKPOINT_FAILING, expr, 300, rule_labels, CHECKPOINT_FAILING_SUMMARY, description)?,
        fires: vec![Fire {
            case: "pending before `for`, firing after it",
            input: vec![input(failures, &series, "0+60x240")],
            active_from: 60,
            labels: with(&target(model), &[("reason", "no_space")]),
        }],
        quiet: vec![("quiet while the source is healthy", vec![input(failures, &series, "7+0x240")])],
        for_secs: 300,
    })
}

/// A log source whose paths match more files than its `max_files`: the files beyond it are not
/// read, so its signals undercount, but nothing is blind as a whole.
fn log_files_skipped(model: &Model, log: &str) -> Result<HealthAlert, GenerateError> {
    let sel = labels(&[("log", log)]);
    let skipped = self_metrics::LOG_FILES_SKIPPED.name;
    let expr = format!("{} ({}) > 0", by(model, &[]), selector(skipped, &sel));
    let rule_labels = labels(&[("severity", Severity::Warning.as_str()), ("log", log)]);
    let paths = model.logs.get(log).map(|l| l.paths.join(", ")).unwrap_or_default();
    let description = format!(
        "{{{{ $labels.instance }}}} leaves files of log source {log} ({paths}) unread: its paths match more \
         files than it may open ({skipped} counts them). Their lines are not counted; the most recently written \
         files are read. Check {}.",
        checks_text(LOG_FILES_SKIPPED_CHECKS),
    );
    let mut series = sel.clone();
    series.extend(target(model));
    Ok(HealthAlert {
        rule: rule(model, LOG_FILES_SKIPPED, expr, 300, rule_labels, LOG_FILES_SKIPPED_SUMMARY, description)?,
        fires: vec![Fire {
            case: "pending before `for`, firing after it",
            input: vec![input(skipped, &series, "0 0 25+0x240")],
            active_from: 120,
            labels: target(model),
        }],
        quiet: vec![
            ("quiet while every file is read", vec![input(skipped, &series, "0+0x240")]),
            ("quiet when a rotation waits only briefly", vec![input(skipped, &series, "0 3 0 0 2 0+0x240")]),
        ],
        for_secs: 300,
    })
}

/// The health alerts of one pack's signals (or of the user's own when `pack` is `None`).
pub fn alerts_of_pack(model: &Model, pack: Option<&str>) -> Result<Vec<HealthAlert>, GenerateError> {
    alerts_of_pack_unnamed(model, pack).map_err(|e| match e {
        GenerateError::Query { mut subject, source } => {
            subject.pack = pack.map(str::to_string);
            GenerateError::Query { subject, source }
        }
        other => other,
    })
}

fn alerts_of_pack_unnamed(model: &Model, pack: Option<&str>) -> Result<Vec<HealthAlert>, GenerateError> {
    let mine: Vec<&ResolvedSignal> = model.enabled_signals().filter(|s| s.pack.as_deref() == pack).collect();
    let mut out = Vec::new();
    for signal in &mine {
        out.extend(poll_failing(model, signal)?);
    }
    let mut logs: Vec<&str> = mine.iter().filter_map(|s| s.log_id()).collect();
    logs.sort();
    logs.dedup();
    for log in logs {
        let signals = log_signals(model, log);
        out.push(log_unreadable(model, log, &signals)?);
        out.push(checkpoint_failing(model, log)?);
        out.push(log_files_skipped(model, log)?);
    }
    Ok(out)
}

/// The signals that read the spec's database.
fn database_signals(model: &Model) -> Vec<&ResolvedSignal> {
    model.enabled_signals().filter(|s| s.signal.source.settings().needs_database()).collect()
}

/// No query gets an answer from the database: one alert for what would otherwise be one per
/// query. `kind` is `connect` when any run lacked a connection in the error window, else
/// `timeout` (connected, no answer), so it stays put through an outage instead of flapping
/// between the two.
/// Whether [`database_unreachable`] has an alert to make: some polled signal reads the database.
pub fn database_alerted(model: &Model) -> bool {
    database_signals(model).iter().any(|s| s.schedule().is_some())
}

pub fn database_unreachable(model: &Model) -> Result<Option<HealthAlert>, GenerateError> {
    let signals = database_signals(model);
    let Some(for_secs) = signals.iter().filter_map(|s| s.schedule()).map(poll_for).min() else { return Ok(None) };
    let errors = self_metrics::DATABASE_ERRORS.name;
    let up = self_metrics::DATABASE_UP.name;
    // With `ha`, every replica reports the database (a standby through its lock session): one
    // alert when none of them reaches it, not one per replica.
    let fleet = replicas::fleet_wide(model);
    let of_kind = |kind: &str| {
        format!(
            "{} (increase({}[{ERROR_WINDOW}])) > 0",
            agg_keeping(model, "sum", &["database", "kind"], fleet),
            selector(errors, &labels(&[("kind", kind)]))
        )
    };
    let expr = if fleet {
        format!(
            "(\n{}\nor on (job, database)\n{}\n)\nand on (job, database)\n{} ({up}) == 0",
            of_kind("connect"),
            of_kind("timeout"),
            agg_keeping(model, "max", &["database"], true),
        )
    } else {
        format!(
            "(\n{}\nor on (job, instance, database)\n{}\n)\nand on (job, instance, database)\n{up} == 0",
            of_kind("connect"),
            of_kind("timeout")
        )
    };
    let who = if fleet { "No replica can" } else { "{{ $labels.instance }} cannot" };
    let severity = most_severe(alerts_of(signals.iter().copied()));
    let description = format!(
        "{who} reach the database {{{{ $labels.database }}}}: its queries fail with \
         {{{{ $labels.kind }}}} errors (connect: no connection, e.g. refused, unknown host, wrong password, too \
         many connections; timeout: connected, no answer) and none has got an answer for {}m. Blind until it \
         answers: every SQL signal ({}). This is the one alert for it: the per-query {} alerts of kind connect \
         and timeout, and the alerts of those signals, are held back. Check {}.",
        for_secs / 60,
        signal_ids(&signals),
        sql_failing_alert(model).unwrap_or("IntegrationSourceQueryFailing"),
        checks_text(DATABASE_CHECKS),
    );
    let db = with(&target(model), &[("database", "db.example:5432/app")]);
    let kinds = |connect: &str, timeout: &str, up_now: &str| {
        vec![
            input(errors, &with(&db, &[("kind", "connect")]), connect),
            input(errors, &with(&db, &[("kind", "timeout")]), timeout),
            input(up, &db, up_now),
        ]
    };
    let fire = |case, input, kind: &str| Fire {
        case,
        input,
        active_from: 60,
        labels: fleet_labels(with(&db, &[("kind", kind)]), fleet),
    };
    Ok(Some(HealthAlert {
        rule: rule(
            model,
            DATABASE_UNREACHABLE,
            expr,
            for_secs,
            labels(&[("severity", severity.as_str())]),
            DATABASE_UNREACHABLE_SUMMARY,
            description,
        )?,
        fires: vec![
            fire("pending before `for`, firing after it", kinds("0+1x240", "0+0x240", "0+0x240"), "connect"),
            fire("firing as timeout when connections hang", kinds("0+0x240", "0+1x240", "0+0x240"), "timeout"),
            fire("one alert, connect, when both kinds occur", kinds("0+1x240", "0+1x240", "0+0x240"), "connect"),
        ],
        quiet: vec![
            ("quiet while the database answers", kinds("0+0x240", "0+0x240", "1+0x240")),
            ("quiet while some runs fail but others get answers", kinds("0+1x240", "0+1x240", "1+0x240")),
        ],
        for_secs,
    }))
}

/// The failing alert of the kind that reads the database, if the model has one.
fn sql_failing_alert(model: &Model) -> Option<&'static str> {
    database_signals(model).into_iter().find_map(polled_kind).map(|k| k.failing_alert)
}

/// What to check when the database is unreachable, by kind.
const DATABASE_CHECKS: &[(&str, &str)] = &[
    (
        "connect",
        "the database runs and accepts connections from the exporter's host (`pg_isready -h HOST -p PORT`); the \
         exporter's log names the cause (refused, unknown host, password authentication failed, too many \
         connections); the database URL secret is current",
    ),
    (
        "timeout",
        "connections are made but nothing answers: a firewall or NAT dropping packets, a server hung or out of \
         resources (`pg_stat_activity` from another client)",
    ),
];

/// The exporter's scrape target down (or gone from Prometheus' targets).
pub fn exporter_down(model: &Model) -> Result<HealthAlert, GenerateError> {
    let up = "up";
    let severity = most_severe(alerts_of(model.enabled_signals()));
    let expr = format!("{up} == 0\nor\nabsent({up})");
    let description = format!(
        "Prometheus cannot scrape {{{{ $labels.instance }}}} of job {}: every integration signal it serves is \
         blind and their alerts are held back. Check {}.",
        model.config.generate.job,
        checks_text(EXPORTER_DOWN_CHECKS),
    );
    let rule_labels = labels(&[("severity", severity.as_str())]);
    let mut fire_labels = target(model);
    fire_labels.insert("job".into(), model.config.generate.job.clone());
    Ok(HealthAlert {
        rule: rule(model, EXPORTER_DOWN, expr, 120, rule_labels, EXPORTER_DOWN_SUMMARY, description)?,
        fires: vec![Fire {
            case: "pending before `for`, firing after it",
            input: vec![input("up", &target(model), "0+0x240")],
            active_from: 0,
            labels: fire_labels,
        }],
        quiet: vec![("quiet while the source is healthy", vec![input("up", &target(model), "1+0x240")])],
        for_secs: 120,
    })
}

/// The certificate the endpoint serves (when the web config gives one) expiring or expired: the
/// exporter then cannot be scraped over TLS at all, and every signal goes blind at once.
pub fn certificate_expiring(model: &Model) -> Result<HealthAlert, GenerateError> {
    let expiry = self_metrics::TLS_CERTIFICATE_EXPIRY.name;
    let expr = format!("{expiry} - time() < {CERTIFICATE_DAYS} * 86400");
    let description = format!(
        "The TLS certificate {{{{ $labels.instance }}}} serves expires within {CERTIFICATE_DAYS} days or has expired; \
         once expired, no scrape of it works and every signal it serves is blind. Check {}.",
        checks_text(CERTIFICATE_CHECKS),
    );
    let rule_labels = labels(&[("severity", Severity::Warning.as_str())]);
    let fire = |case, expires: &str| Fire {
        case,
        input: vec![input(expiry, &target(model), &format!("{expires}+0x240"))],
        active_from: 0,
        labels: target(model),
    };
    Ok(HealthAlert {
        rule: rule(model, CERTIFICATE_EXPIRING, expr, 600, rule_labels, CERTIFICATE_EXPIRING_SUMMARY, description)?,
        fires: vec![
            fire("pending before `for`, firing after it (10 days left)", "864000"),
            fire("firing when already expired", "0"),
        ],
        quiet: vec![("quiet with a year left", vec![input(expiry, &target(model), "31536000+0x240")])],
        for_secs: 600,
    })
}

/// `alerts/exporter.rules.yml`'s alerts: the exporter down, its certificate expiring, and its
/// database unreachable.
pub fn exporter_alerts(model: &Model) -> Result<Vec<HealthAlert>, GenerateError> {
    Ok([exporter_down(model)?, certificate_expiring(model)?].into_iter().chain(database_unreachable(model)?).collect())
}

fn render(template: &str, labels: &BTreeMap<String, String>) -> String {
    let mut out = template.to_string();
    for (k, v) in labels {
        out = out.replace(&format!("{{{{ $labels.{k} }}}}"), v);
    }
    out
}

/// promtool cases: quiet while the source is healthy (and in the other quiet cases), pending one
/// minute before `for` ends, firing with its exact labels and annotations after it.
pub fn test_cases(alert: &HealthAlert) -> Vec<TestCase> {
    let name = &alert.rule.alert;
    let severity = alert.rule.labels.get("severity").cloned().unwrap_or_default();
    let expected = |fire_labels: &BTreeMap<String, String>| {
        let mut exp_labels = fire_labels.clone();
        exp_labels.extend(alert.rule.labels.clone());
        let exp_annotations = alert.rule.annotations.iter().map(|(k, v)| (k.clone(), render(v, &exp_labels))).collect();
        ExpAlert { exp_labels, exp_annotations }
    };
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
    let latest = alert.fires.iter().map(|f| f.active_from).max().unwrap_or(0) + alert.for_secs;
    let mut cases = Vec::new();
    for (label, input) in &alert.quiet {
        cases.push(case(label, input.clone(), vec![(latest + 600, vec![])]));
    }
    for fire in &alert.fires {
        let fire_at = fire.active_from + alert.for_secs;
        cases.push(case(
            fire.case,
            fire.input.clone(),
            vec![(fire_at - 60, vec![]), (fire_at, vec![expected(&fire.labels)])],
        ));
    }
    cases
}

fn own_alert_matchers(signal: &ResolvedSignal, except: &str) -> Option<Vec<String>> {
    alerts_of([signal]).next().map(|_| {
        vec![format!("signal=\"{}\"", escape(&signal.signal.id)), format!("alertname!=\"{}\"", escape(except))]
    })
}

/// Inhibit rules: while a source-health alert fires, the alerts it blinds are held back, for the
/// same exporter (`instance_labels`) only, and no more than it blinds: a value gone from an
/// endpoint's answer holds back the alerts reading that value, never those of the values still
/// read.
pub fn inhibitions(model: &Model) -> Vec<InhibitRule> {
    let mut equal = model.config.generate.alertmanager.instance_labels.clone();
    // One database's failing query or unreachable server holds back that database's alerts only.
    equal.extend(model.database_label().map(str::to_string));
    let mut out = Vec::new();
    let rule = |source: Vec<String>, target: Vec<String>| InhibitRule {
        source_matchers: source,
        target_matchers: target,
        equal: equal.clone(),
    };
    for signal in model.enabled_signals() {
        let Some(kind) = polled_kind(signal) else { continue };
        let name = kind.failing_alert;
        let id = escape(&signal.signal.id);
        let mut source = vec![format!("alertname=\"{name}\""), format!("signal=\"{id}\"")];
        if kind.values.is_some() {
            // The endpoint's own alert carries no `metric`; a value's does.
            source.push("metric=\"\"".into());
        }
        if let Some(target) = own_alert_matchers(signal, name) {
            out.push(rule(source, target));
        }
        let Some(values) = kind.values else { continue };
        for (metric, _) in signal.signal.source.settings().answer_values() {
            let readers = names(alerts_reading(signal, metric));
            if readers.is_empty() {
                continue;
            }
            let readers: Vec<String> = readers.iter().map(|n| regex::escape(n)).collect();
            out.push(rule(
                vec![
                    format!("alertname=\"{name}\""),
                    format!("signal=\"{id}\""),
                    format!("metric=\"{}\"", escape(metric)),
                    format!("kind=\"{}\"", values.blinding),
                ],
                vec![format!("signal=\"{id}\""), format!("alertname=~\"{}\"", escape(&readers.join("|")))],
            ));
        }
    }
    let mut logs: Vec<&str> = model.enabled_signals().filter_map(|s| s.log_id()).collect();
    logs.sort();
    logs.dedup();
    for log in logs {
        let ids: Vec<String> = log_signals(model, log)
            .into_iter()
            .filter(|s| alerts_of([*s]).next().is_some())
            .map(|s| regex::escape(&s.signal.id))
            .collect();
        if !ids.is_empty() {
            out.push(rule(
                vec![format!("alertname=\"{LOG_UNREADABLE}\""), format!("log=\"{}\"", escape(log))],
                vec![format!("signal=~\"{}\"", escape(&ids.join("|"))), format!("alertname!=\"{LOG_UNREADABLE}\"")],
            ));
        }
    }
    if database_alerted(model) {
        let source = vec![format!("alertname=\"{DATABASE_UNREACHABLE}\"")];
        if let Some(failing) = sql_failing_alert(model) {
            out.push(rule(
                source.clone(),
                vec![format!("alertname=\"{failing}\""), format!("kind=~\"{UNREACHABLE_KINDS}\"")],
            ));
        }
        let ids: Vec<String> = database_signals(model)
            .into_iter()
            .filter(|s| alerts_of([*s]).next().is_some())
            .map(|s| regex::escape(&s.signal.id))
            .collect();
        if !ids.is_empty() {
            out.push(rule(
                source,
                vec![
                    format!("signal=~\"{}\"", escape(&ids.join("|"))),
                    format!("alertname!=\"{}\"", sql_failing_alert(model).unwrap_or_default()),
                ],
            ));
        }
    }
    out.push(rule(vec![format!("alertname=\"{EXPORTER_DOWN}\"")], vec!["signal=~\".+\"".into()]));
    out
}

/// One of the exporter's own alerts as its runbook explains it: written from the same
/// definitions as the rules (names, summaries, what to check by kind), so a `runbook_url` never
/// points at a section that is missing or says something else.
pub struct RunbookSection {
    pub alert: &'static str,
    pub summary: &'static str,
    /// What firing means.
    pub meaning: String,
    /// The labels it carries beyond `severity`, and what each says.
    pub labels: Vec<(&'static str, &'static str)>,
    /// What it holds back while it fires.
    pub holds_back: String,
    /// What to check, by kind or cause.
    pub checks: Vec<(&'static str, &'static str)>,
}

/// The sections of the exporter's runbook: one per own alert the model generates, most
/// encompassing first (the exporter, its database, one query or endpoint, one log source).
pub fn runbook_sections(model: &Model) -> Vec<RunbookSection> {
    let mut kinds: Vec<&'static PolledKind> = Vec::new();
    for signal in model.enabled_signals() {
        if let Some(kind) = polled_kind(signal)
            && !kinds.iter().any(|k| k.failing_alert == kind.failing_alert)
        {
            kinds.push(kind);
        }
    }
    let mut out = vec![RunbookSection {
        alert: EXPORTER_DOWN,
        summary: EXPORTER_DOWN_SUMMARY,
        meaning: format!(
            "Prometheus cannot scrape the exporter (`up == 0` for 2m), or no target of job `{}` exists at all. \
             Nothing it serves is fresh: every signal it reads is blind.",
            model.config.generate.job
        ),
        labels: vec![("job", "the scrape job"), ("instance", "the exporter that cannot be scraped")],
        holds_back: "Every alert carrying a `signal` from the same exporter (same `job` and `instance`). Alerts \
                     about the whole fleet (`across_instances`) and `absent` alerts carry no `instance`, so no \
                     inhibition can reach them: their expressions hold them instead. While any exporter of the \
                     job is down they do not fire anew, and one that was firing stays firing with its last value, \
                     so no false \"resolved\" goes out; once every exporter is scraped again they are judged on \
                     their data."
            .into(),
        checks: EXPORTER_DOWN_CHECKS.to_vec(),
    }];
    out.push(RunbookSection {
        alert: CERTIFICATE_EXPIRING,
        summary: CERTIFICATE_EXPIRING_SUMMARY,
        meaning: format!(
            "The certificate the exporter serves (`tls_server_config` of its web config) has less than \
             {CERTIFICATE_DAYS} days left, by `{}` (its notAfter), for 10m; it fires on as well once expired. \
             Without TLS the metric is not exported and the alert stays quiet.",
            self_metrics::TLS_CERTIFICATE_EXPIRY.name
        ),
        labels: vec![("instance", "the exporter serving the certificate")],
        holds_back: "Nothing: nothing is blind yet. Once the certificate has expired, scrapes fail and \
                     IntegrationExporterDown holds back the exporter's alerts."
            .into(),
        checks: CERTIFICATE_CHECKS.to_vec(),
    });
    if database_alerted(model) {
        out.push(RunbookSection {
            alert: DATABASE_UNREACHABLE,
            summary: DATABASE_UNREACHABLE_SUMMARY,
            meaning: format!(
                "No query of the exporter has got an answer from its database for three intervals of the fastest \
                 SQL signal (at least a minute): `{}` is 0 and `{}` grows. Every SQL signal is blind at once; this \
                 is the one alert for that, however many queries there are. A query failing while the database \
                 answers the others is {} instead.",
                self_metrics::DATABASE_UP.name,
                self_metrics::DATABASE_ERRORS.name,
                sql_failing_alert(model).unwrap_or("IntegrationSourceQueryFailing"),
            ),
            labels: vec![
                ("database", "where, as `host:port/db`; never a user or password"),
                ("kind", "`connect` when a run lacked a connection in the last 5m, else `timeout`"),
                if replicas::fleet_wide(model) {
                    ("instance", "none: with `ha`, one alert for every replica, when none of them reaches it")
                } else {
                    ("instance", "the exporter that cannot reach it")
                },
            ],
            holds_back: format!(
                "The per-query {} alerts of kind `connect` and `timeout` (their expressions also stay quiet once \
                 the database has been unreachable for their whole `for`), and every alert of the SQL signals, \
                 on the same exporter{}.",
                sql_failing_alert(model).unwrap_or("IntegrationSourceQueryFailing"),
                if replicas::fleet_wide(model) { " (with `ha`, none of them carries `instance`)" } else { "" }
            ),
            checks: DATABASE_CHECKS.to_vec(),
        });
    }
    for kind in kinds {
        let mut checks = kind.checks.to_vec();
        let (meaning, labels, holds_back) = match kind.values {
            None => (
                format!(
                    "A signal's {} has failed for three of its intervals (at least a minute), by `kind`. Its values \
                     were served for three intervals after the last success, then dropped.{}",
                    kind.what,
                    if database_alerted(model) {
                        " When the database answers no query at all, IntegrationDatabaseUnreachable fires instead."
                    } else {
                        ""
                    }
                ),
                vec![("signal", "the blind signal"), ("kind", "why its runs fail"), ("instance", "the exporter")],
                "Every alert of that signal on the same exporter.".to_string(),
            ),
            Some(values) => {
                checks.extend(values.checks.iter().copied());
                (
                    format!(
                        "Without a `metric` label: the signal's {what} as a whole has failed for three of its \
                         intervals (no answer, an error status, no JSON), so every value of the signal is blind. \
                         With a `metric` label: that one value has not been read in full from the answers for \
                         three intervals while the {what} answers; `{path}` means it is gone from the answer, \
                         `{limit}` that some of its series were dropped. The signal's other values are still read.",
                        what = kind.what,
                        path = values.blinding,
                        limit = values.kinds.iter().find(|k| **k != values.blinding).copied().unwrap_or_default(),
                    ),
                    vec![
                        ("signal", "the signal"),
                        ("metric", "the value that cannot be read; absent when the whole answer fails"),
                        ("kind", "why"),
                        ("instance", "the exporter"),
                    ],
                    format!(
                        "Without `metric`: every alert of the signal on the same exporter. With `metric` and kind \
                         `{}`: only the alerts reading that metric; the alerts of the values still read stay armed. \
                         With kind `limit`: nothing.",
                        values.blinding
                    ),
                )
            }
        };
        out.push(RunbookSection {
            alert: kind.failing_alert,
            summary: kind.summary,
            meaning,
            labels,
            holds_back,
            checks,
        });
    }
    if model.enabled_signals().any(|s| s.log_id().is_some()) {
        out.push(RunbookSection {
            alert: LOG_UNREADABLE,
            summary: LOG_UNREADABLE_SUMMARY,
            meaning: format!(
                "For 5m the exporter has had no readable file of a log source: its paths match no file, or only files \
                 it cannot open (`{}` is 0), or reading fails (`{}` grows). An existing empty file counts as \
                 readable: an application that stopped writing shows in its signals' own age and absent alerts.",
                self_metrics::LOG_FILES.name,
                self_metrics::LOG_READ_ERRORS.name
            ),
            labels: vec![("log", "the log source"), ("instance", "the exporter")],
            holds_back: "Every alert of the signals reading that log source, on the same exporter.".into(),
            checks: LOG_CHECKS.to_vec(),
        });
        out.push(RunbookSection {
            alert: CHECKPOINT_FAILING,
            summary: CHECKPOINT_FAILING_SUMMARY,
            meaning: "The exporter cannot save a log source's checkpoint (its offsets and the counters they \
                      produced). Counting goes on, but a restart now would count lines again or skip them."
                .into(),
            labels: vec![
                ("log", "the log source"),
                ("reason", "`no_space`, `read_only`, `permission_denied`, ..."),
                ("instance", "the exporter"),
            ],
            holds_back: "Nothing: no signal is blind yet.".into(),
            checks: CHECKPOINT_CHECKS.to_vec(),
        });
        out.push(RunbookSection {
            alert: LOG_FILES_SKIPPED,
            summary: LOG_FILES_SKIPPED_SUMMARY,
            meaning: format!(
                "For 5m a log source's paths have matched more files than it may hold open (its `max_files`, by \
                 default a share of the exporter's open-file limit): `{}` counts the files left unopened. Their \
                 lines are not read, so the source's counters miss them; the most recently written files are the \
                 ones read, and the others are opened as followed ones close. Capping them keeps file \
                 descriptors for the endpoint: without the cap, a glob matching thousands of files made the \
                 exporter unable to accept a scrape.",
                self_metrics::LOG_FILES_SKIPPED.name
            ),
            labels: vec![("log", "the log source"), ("instance", "the exporter")],
            holds_back: "Nothing: the files that are read still feed their signals.".into(),
            checks: LOG_FILES_SKIPPED_CHECKS.to_vec(),
        });
    }
    out
}

/// The exporter's runbook (`runbooks/integration-exporter.md`): publish it as
/// `<runbook_base_url>/integration-exporter.md`, where the own alerts' `runbook_url` point.
pub fn runbook(sections: &[RunbookSection]) -> String {
    let mut out = String::from(
        "# integration-exporter runbook\n\n\
         <!-- Generated by `integration-exporter generate` from the definitions of the alerts below. Do not edit. -->\n\n\
         The exporter's own alerts: it cannot see some application state, so that application's alerts could stay \
         silent while something is wrong. Each says what is blind and holds back (Alertmanager inhibits, on the \
         same exporter) exactly the alerts it blinds, so a blind source shows as one alert about the source, never \
         as silence or as a flood.\n",
    );
    for section in sections {
        out.push_str(&format!("\n## {}\n\n{}\n\n", section.alert, section.summary));
        out.push_str(&format!("**What it means.** {}\n\n", section.meaning));
        let labels: Vec<String> = section.labels.iter().map(|(l, what)| format!("`{l}` ({what})")).collect();
        out.push_str(&format!("**Labels.** {}.\n\n", labels.join(", ")));
        out.push_str(&format!("**Holds back.** {}\n\n", section.holds_back));
        out.push_str("**What to do.**\n\n");
        for (kind, check) in &section.checks {
            out.push_str(&format!("- {kind}: {check}.\n"));
        }
    }
    out
}
