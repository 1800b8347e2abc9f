//! Checks that need the whole model: names, references between signals, metrics and logs,
//! patterns that compile and match their own samples.

use std::collections::{BTreeMap, BTreeSet};

use super::source_kind::Problem;
use super::*;

pub(super) fn validate(model: &Model, source: &Locator<'_>) -> Result<(), SpecErrors> {
    let mut errors = Vec::new();
    let mut err = |needle: &str, message: String| errors.push(source.locate(needle, message));

    let mut ids = BTreeSet::new();
    // Every name the exposition gives a metric, with the metric and signal that claimed it first.
    let mut claimed: BTreeMap<String, (&str, &str)> = BTreeMap::new();
    for resolved in &model.signals {
        let signal = &resolved.signal;
        if !ids.insert(signal.id.as_str()) {
            err(&signal.id, format!("signal id `{}` is used twice", signal.id));
        }
        if !signal.enabled {
            continue;
        }
        for metric in &signal.metrics {
            if let Some(problem) = metric_name_problem(&metric.name, metric.kind) {
                err(&metric.name, format!("metric `{}`: {problem}", metric.name));
            }
            if let Some(problem) = name_collision(metric, &signal.id, &mut claimed) {
                err(&metric.name, format!("metric `{}`: {problem}", metric.name));
            }
            if metric.help.trim().is_empty() || metric.help.contains('\n') {
                err(&metric.name, format!("metric `{}`: help must be one non-empty line", metric.name));
            }
            for label in &metric.labels {
                if !valid_label_name(label.name()) {
                    err(
                        label.name(),
                        format!("metric `{}`: `{}` is not a valid label name", metric.name, label.name()),
                    );
                }
                if let LabelDef::Fixed(f) = label
                    && let Some(other) = &f.other
                    && !f.values.contains(other)
                {
                    err(other, format!("label `{}`: `other` value `{other}` must be one of its values", f.name));
                }
            }
            if metric.kind != MetricType::Histogram && !metric.buckets.is_empty() {
                err(&metric.name, format!("metric `{}`: only histograms have `buckets`", metric.name));
            }
            // Finite first: a NaN bound compares false either way and would pass the order check.
            if metric.kind == MetricType::Histogram
                && (metric.buckets.is_empty()
                    || metric.buckets.iter().any(|b| !b.is_finite())
                    || metric.buckets.windows(2).any(|w| w[0] >= w[1]))
            {
                err(
                    &metric.name,
                    format!(
                        "histogram `{}` needs finite, increasing buckets (the `+Inf` bucket is always there)",
                        metric.name
                    ),
                );
            }
        }
        for Problem { at, message } in signal.source.settings().validate(signal, model) {
            err(&at, message);
        }
    }

    // By name, for the alerts: looking each one up in the model's list made a spec of many
    // signals quadratic to check.
    let mut metrics: BTreeMap<&str, &MetricDef> = BTreeMap::new();
    for (_, metric) in model.metrics() {
        metrics.entry(&metric.name).or_insert(metric);
    }
    for resolved in model.enabled_signals() {
        for alert in resolved.signal.alerts.iter().filter(|a| a.enabled) {
            validate_alert(&metrics, alert, &mut err);
        }
    }
    // The panels' own queries, scoped as the dashboards scope them: one the PromQL parser refuses
    // stops `check` and `generate` here, named with its signal, instead of a broken dashboard.
    let dashboard_scope = crate::generate::scope::Scope::of(model);
    for resolved in model.enabled_signals() {
        for query in resolved.signal.panel.iter().flat_map(|p| &p.queries) {
            if let Err(e) = crate::generate::scope::try_scope(query.expr.trim(), &dashboard_scope) {
                let first_line = query.expr.trim().lines().next().unwrap_or_default();
                err(first_line, format!("signal `{}`: panel query: {e}", resolved.signal.id));
            }
        }
    }
    let alert_names: BTreeSet<&str> =
        model.enabled_signals().flat_map(|s| &s.signal.alerts).map(|a| a.name.as_str()).collect();
    let mut slo_names = BTreeSet::new();
    for (_, slo) in model.slos() {
        validate_slo(model, slo, &mut err);
        if alert_names.contains(slo.alert.as_str()) || !slo_names.insert(slo.alert.as_str()) {
            err(&slo.alert, format!("SLO alert `{}`: the name is taken by another alert", slo.alert));
        }
    }

    for (name, log) in &model.logs {
        for Problem { at, message } in log.problems(name) {
            err(&at, message);
        }
    }

    if model.enabled_signals().any(|s| s.signal.source.settings().needs_database())
        && model.config.databases().is_empty()
    {
        err("packs", "SQL signals are enabled but there is no `database:` section".into());
    }
    if model.config.database.is_some() && !model.config.databases.is_empty() {
        err("databases", "give `database:` (one database) or `databases:` (several by name), not both".into());
    }
    if let Some(db) = &model.config.database
        && db.url_env.is_some() == db.url_file.is_some()
    {
        err("database", "database: give exactly one of `url_env` or `url_file`".into());
    }
    for (name, db) in &model.config.databases {
        if db.url_env.is_some() == db.url_file.is_some() {
            err(name, format!("databases.{name}: give exactly one of `url_env` or `url_file`"));
        }
    }
    if model.config.labels_databases() {
        let label = model.config.database_label.as_str();
        if let Some(problem) = database_label_problem(model, label) {
            err("database_label", format!("database_label `{label}`: {problem}"));
        }
    }

    errors.extend(super::timing::check_durations(&model.config, source));
    if errors.is_empty() { Ok(()) } else { Err(SpecErrors(errors)) }
}

/// The database label must be a label name no series already has for another meaning.
fn database_label_problem(model: &Model, label: &str) -> Option<String> {
    let mut chars = label.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !label.starts_with("__");
    if !valid {
        return Some("not a valid label name".into());
    }
    let taken = ["job", "instance", "signal", "kind", "metric", "le", "quantile"];
    if taken.contains(&label) || model.config.generate.matchers.contains_key(label) {
        return Some("the exporter or the scrape uses this label already".into());
    }
    model
        .metrics()
        .find(|(_, m)| m.labels.iter().any(|l| l.name() == label))
        .map(|(_, m)| format!("metric `{}` has a label of that name", m.name))
}

fn metric_name_problem(name: &str, kind: MetricType) -> Option<String> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
    if !valid {
        return Some("not a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)".into());
    }
    if kind == MetricType::Counter && !name.ends_with("_total") {
        return Some("counter names end in `_total`".into());
    }
    if kind != MetricType::Counter && name.ends_with("_total") {
        return Some("only counters end in `_total`".into());
    }
    None
}

/// Names Prometheus gives series of its own at every scrape: a metric by one of these names would
/// be overwritten or refused by it.
const PROMETHEUS_OWN: &[&str] = &[
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
    "ALERTS",
    "ALERTS_FOR_STATE",
];

/// Prefixes of the names the exporter exports about itself (`integration_exporter_*` now and in
/// later versions; `process_*` as every client library).
const EXPORTER_OWN: &[&str] = &["integration_exporter_", "process_"];

/// What the exposition names a metric: its series (a histogram's `_bucket`, `_sum` and `_count`)
/// and its family (OpenMetrics writes a counter's without `_total`). Two metrics sharing one of
/// these give the scrape two HELP/TYPE blocks or one series from two sources, and Prometheus
/// keeps whichever it read last.
fn exposed_names(metric: &MetricDef) -> Vec<String> {
    let name = metric.name.as_str();
    match metric.kind {
        MetricType::Gauge => vec![name.to_string()],
        MetricType::Counter => std::iter::once(name).chain(name.strip_suffix("_total")).map(str::to_string).collect(),
        MetricType::Histogram => std::iter::once(String::new())
            .chain(["_bucket", "_sum", "_count"].map(String::from))
            .map(|s| format!("{name}{s}"))
            .collect(),
    }
}

/// Why `metric` cannot be exported beside the exporter's own metrics, Prometheus' own series or
/// the metrics `claimed` already; claims its names otherwise.
fn name_collision<'a>(
    metric: &'a MetricDef,
    signal: &'a str,
    claimed: &mut BTreeMap<String, (&'a str, &'a str)>,
) -> Option<String> {
    let names = exposed_names(metric);
    for name in &names {
        if let Some(prefix) = EXPORTER_OWN.iter().find(|p| name.starts_with(**p)) {
            return Some(format!("`{prefix}*` names are the exporter's own metrics; choose another prefix"));
        }
        if PROMETHEUS_OWN.contains(&name.as_str()) {
            return Some(format!("`{name}` is a series Prometheus makes itself at every scrape"));
        }
        if let Some((other, owner)) = claimed.get(name) {
            let what = if name == &metric.name && name == other {
                String::new()
            } else {
                format!(" (both are exposed as `{name}`)")
            };
            return Some(if *owner == signal && *other == metric.name {
                format!("declared twice in signal `{signal}`")
            } else {
                format!("collides with metric `{other}` of signal `{owner}`{what}")
            });
        }
    }
    for name in names {
        claimed.insert(name, (&metric.name, signal));
    }
    None
}

fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

fn validate_alert(metrics: &BTreeMap<&str, &MetricDef>, alert: &Alert, err: &mut impl FnMut(&str, String)) {
    let name = &alert.name;
    if !name.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        || !name.chars().all(|c| c.is_ascii_alphanumeric())
        || name.len() > 40
    {
        err(name, format!("alert `{name}`: names are CamelCase, at most 40 characters"));
    }
    if let Condition::Quantile(q) = &alert.condition
        && !(q.quantile > 0.0 && q.quantile < 1.0)
    {
        err(name, format!("alert `{name}`: quantile is between 0 and 1"));
    }
    let summary = alert.summary.trim();
    if !summary.ends_with('.') || !summary.chars().next().is_some_and(char::is_uppercase) || summary.contains("{{") {
        err(
            &alert.summary,
            format!("alert `{name}`: summary is one plain sentence, capitalised, ending with a period"),
        );
    }
    if !alert.threshold.is_finite() {
        err(name, format!("alert `{name}`: threshold must be a finite number"));
    }
    for guard in &alert.while_ {
        let wants = match &guard.condition {
            Condition::Gauge(_) => Some(MetricType::Gauge),
            Condition::Increase(_) => Some(MetricType::Counter),
            _ => None,
        };
        for metric in guard.condition.metrics() {
            match (metrics.get(metric), wants) {
                (_, None) => err(metric, format!("alert `{name}`: `while` measures a `gauge` or an `increase`")),
                (None, _) => {
                    err(metric, format!("alert `{name}`: `while` reads `{metric}`, which no enabled signal exports"))
                }
                (Some(def), Some(kind)) if def.kind != kind => {
                    err(metric, format!("alert `{name}`: `while` cannot use `{metric}`, a {:?}", def.kind))
                }
                _ => {}
            }
        }
        if !guard.threshold.is_finite() {
            err(name, format!("alert `{name}`: the `while` threshold must be a finite number"));
        }
    }
    for metric in alert.condition.metrics() {
        let Some(def) = metrics.get(metric) else {
            err(metric, format!("alert `{name}` reads `{metric}`, which no enabled signal exports"));
            continue;
        };
        let wants = match alert.condition {
            Condition::Ratio(_) | Condition::Increase(_) => Some(MetricType::Counter),
            Condition::Quantile(_) => Some(MetricType::Histogram),
            Condition::Absent(_) => None,
            _ => Some(MetricType::Gauge),
        };
        if wants.is_some_and(|kind| kind != def.kind) {
            err(metric, format!("alert `{name}`: `{metric}` is a {:?}, which this condition cannot use", def.kind));
        }
        if let Condition::Quantile(q) = &alert.condition
            && !def.buckets.contains(&alert.threshold)
        {
            err(metric, format!("alert `{name}`: a quantile threshold must be one of `{}`'s bucket bounds", q.metric));
        }
        if let Condition::Ratio(r) = &alert.condition {
            if !r.min_events.is_finite() {
                err(name, format!("alert `{name}`: `min_events` must be a finite number"));
            }
            let fixed = r.matchers.keys().all(|label| {
                def.labels.iter().any(|l| l.name() == label && l.fixed_values().is_some_and(|v| v.len() >= 2))
            });
            if r.matchers.len() != 1 || !fixed {
                err(
                    metric,
                    format!(
                        "alert `{name}`: a ratio selects its numerator with one label that has a fixed set of values"
                    ),
                );
            }
        }
    }
}

fn validate_slo(model: &Model, slo: &Slo, err: &mut impl FnMut(&str, String)) {
    let name = &slo.alert;
    if !name.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        || !name.chars().all(|c| c.is_ascii_alphanumeric())
        || name.len() > 40
    {
        err(name, format!("SLO alert `{name}`: names are CamelCase, at most 40 characters"));
    }
    // The fastest tier must be able to fire: 14.4 times the budget below every event failing.
    let fastest = BURN_TIERS.iter().map(|t| t.factor).fold(0.0, f64::max);
    if !(slo.objective < 1.0 && fastest * (1.0 - slo.objective) < 1.0) {
        err(
            name,
            format!(
                "SLO `{name}`: objective {} must be below 1 and above {:.4} (at {fastest} times its budget the fastest tier needs fewer than every event to fail)",
                slo.objective,
                1.0 - 1.0 / fastest
            ),
        );
    }
    if !(slo.min_events.is_finite() && slo.min_events >= 0.0) {
        err(name, format!("SLO `{name}`: min_events is a number of events, 0 or more"));
    }
    if slo.events.trim().is_empty() {
        err(name, format!("SLO `{name}`: `events` names what is counted (`Graph API calls`)"));
    }
    for (what, selector) in [("errors", &slo.errors), ("total", &slo.total)] {
        let metric = &selector.metric;
        let Some(def) = model.metric(metric) else {
            err(metric, format!("SLO `{name}`: {what} reads `{metric}`, which no enabled signal exports"));
            continue;
        };
        if def.kind != MetricType::Counter {
            err(metric, format!("SLO `{name}`: {what} counts events, and `{metric}` is a {:?}", def.kind));
        }
        for label in selector.matchers.keys() {
            if !def.labels.iter().any(|l| l.name() == label) {
                err(metric, format!("SLO `{name}`: `{metric}` has no label `{label}`"));
            }
        }
    }
    if slo.errors == slo.total {
        err(&slo.errors.metric, format!("SLO `{name}`: errors select a part of total, with matchers"));
    }
}
