//! Checks that need the whole model: names, references between signals, metrics and logs,
//! patterns that compile and match their own samples.

use std::collections::{BTreeMap, BTreeSet};

use super::*;

pub(super) fn validate(model: &Model, source: &SourceText) -> Result<(), SpecErrors> {
    let mut errors = Vec::new();
    let mut err = |needle: &str, message: String| errors.push(source.locate(needle, message));

    let mut ids = BTreeSet::new();
    let mut metric_owner: BTreeMap<&str, &str> = BTreeMap::new();
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
            if let Some(other) = metric_owner.insert(&metric.name, &signal.id) {
                err(
                    &metric.name,
                    format!("metric `{}` is exported by both `{other}` and `{}`", metric.name, signal.id),
                );
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
            if metric.kind == MetricType::Histogram
                && (metric.buckets.is_empty() || metric.buckets.windows(2).any(|w| w[0] >= w[1]))
            {
                err(&metric.name, format!("histogram `{}` needs increasing buckets", metric.name));
            }
        }
        for (at, message) in signal.source.spec().validate(signal, model) {
            err(&at, message);
        }
    }

    for resolved in model.enabled_signals() {
        for alert in resolved.signal.alerts.iter().filter(|a| a.enabled) {
            validate_alert(model, alert, &mut err);
        }
    }

    for (name, log) in &model.logs {
        for (at, message) in log.problems(name) {
            err(&at, message);
        }
    }

    if model.enabled_signals().any(|s| s.signal.source.spec().needs_database()) && model.config.database.is_none() {
        err("packs", "SQL signals are enabled but there is no `database:` section".into());
    }
    if let Some(db) = &model.config.database
        && db.url_env.is_some() == db.url_file.is_some()
    {
        err("database", "database: give exactly one of `url_env` or `url_file`".into());
    }

    errors.extend(super::timing::check_durations(&model.config, source));
    if errors.is_empty() { Ok(()) } else { Err(SpecErrors(errors)) }
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

fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

fn validate_alert(model: &Model, alert: &Alert, err: &mut impl FnMut(&str, String)) {
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
            match (model.metric(metric), wants) {
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
        let Some(def) = model.metric(metric) else {
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
