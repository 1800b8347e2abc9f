//! PromQL for each condition kind. The panel draws [`measured`], the alert fires on [`alert_expr`]:
//! one expression, so the line on the dashboard and the alert cannot disagree.

use std::collections::BTreeMap;

use crate::spec::{Alert, Condition, LabelDef, Model, Source};

/// `metric{a="b"}`, with label values escaped as PromQL strings.
pub fn selector(metric: &str, matchers: &BTreeMap<String, String>) -> String {
    if matchers.is_empty() {
        return metric.to_string();
    }
    let inner: Vec<String> = matchers.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
    format!("{metric}{{{}}}", inner.join(", "))
}

pub fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The metric's own labels, aggregated away so the target labels (job, instance) remain.
fn own_labels(model: &Model, metric: &str) -> Vec<String> {
    model.metric(metric).map(|m| m.labels.iter().map(LabelDef::name).map(str::to_string).collect()).unwrap_or_default()
}

fn sum_without(labels: &[String], inner: &str) -> String {
    if labels.is_empty() {
        format!("sum without () ({inner})")
    } else {
        format!("sum without ({}) ({inner})", labels.join(", "))
    }
}

/// The value the alert compares with its threshold.
pub fn measured(model: &Model, condition: &Condition) -> String {
    match condition {
        Condition::Gauge(s) => selector(&s.metric, &s.matchers),
        Condition::GaugeRatio { numerator, denominator } => format!(
            "{} / {}",
            selector(&numerator.metric, &numerator.matchers),
            selector(&denominator.metric, &denominator.matchers)
        ),
        Condition::Ratio(r) => {
            let labels = own_labels(model, &r.metric);
            let num = sum_without(&labels, &format!("increase({}[{}])", selector(&r.metric, &r.matchers), r.window));
            let den = sum_without(&labels, &format!("increase({}[{}])", r.metric, r.window));
            format!("{num}\n/\n{den}")
        }
        Condition::Increase(r) => {
            let labels = own_labels(model, &r.metric);
            sum_without(&labels, &format!("increase({}[{}])", selector(&r.metric, &r.matchers), r.window))
        }
        Condition::Rise(r) => {
            // Each minute's rise, clamped at zero, summed over the window: a backlog cleared by
            // hand neither cancels new entries nor counts as new ones.
            let s = selector(&r.metric, &r.matchers);
            format!("sum_over_time((clamp_min({s} - {s} offset 1m, 0))[{}:1m])", r.window)
        }
        Condition::Age(s) => format!("time() - {}", selector(&s.metric, &s.matchers)),
        Condition::Absent(s) => format!("absent({})", selector(&s.metric, &s.matchers)),
        Condition::Quantile(q) => {
            let labels = own_labels(model, &q.metric);
            let bucket = selector(&format!("{}_bucket", q.metric), &q.matchers);
            let rate = sum_without(&labels, &format!("rate({bucket}[{}])", q.window));
            format!("histogram_quantile({}, {rate})", super::humanize::go_number(q.quantile))
        }
    }
}

/// Labels of the alert's series besides the scrape target's: the ones [`alert_expr`] keeps, so
/// two alerts of one rule differ in these (and in the target's labels) only.
pub fn kept_labels(model: &Model, condition: &Condition) -> Vec<String> {
    let mut labels: Vec<String> = match condition {
        Condition::Gauge(s) | Condition::Age(s) => own_labels(model, &s.metric),
        Condition::Rise(r) => own_labels(model, &r.metric),
        Condition::GaugeRatio { numerator, .. } => own_labels(model, &numerator.metric),
        // `absent()` carries the equality matchers only.
        Condition::Absent(s) => s.matchers.keys().cloned().collect(),
        // Aggregated `without` the metric's own labels.
        Condition::Ratio(_) | Condition::Increase(_) | Condition::Quantile(_) => Vec::new(),
    };
    labels.sort();
    labels.dedup();
    labels
}

/// What shows that the exporter is up and reading the source of `metric`: a series that exists
/// only then (the signal's query succeeding, its endpoint being polled; for a log source the
/// exporter being scraped, as it lists a file only once it has read from it). `absent()` alerts
/// fire only while it holds, so a stopped exporter or a failing query cannot pass for "the worker
/// is not running". (series, labels, healthy value).
pub fn reading_series(model: &Model, metric: &str) -> Option<(String, BTreeMap<String, String>, f64)> {
    let (signal, _) = model.metrics().find(|(_, m)| m.name == metric)?;
    let id = signal.signal.id.clone();
    Some(match &signal.signal.source {
        Source::Log(_) => ("up".into(), BTreeMap::from([("job".to_string(), model.config.generate.job.clone())]), 1.0),
        Source::Sql(_) => {
            ("integration_exporter_query_success".into(), BTreeMap::from([("signal".to_string(), id)]), 1.0)
        }
        Source::Http(_) => ("integration_exporter_http_up".into(), BTreeMap::from([("signal".to_string(), id)]), 1.0),
    })
}

fn reading_guard(model: &Model, metric: &str) -> String {
    match reading_series(model, metric) {
        Some((name, labels, _)) if name == "integration_exporter_query_success" || name == "up" => {
            format!("\nand on ()\ncount({} == 1) > 0", selector(&name, &labels))
        }
        Some((name, labels, _)) => format!("\nand on ()\ncount({}) > 0", selector(&name, &labels)),
        None => String::new(),
    }
}

pub fn alert_expr(model: &Model, alert: &Alert) -> String {
    let measured = measured(model, &alert.condition);
    let threshold = super::humanize::go_number(alert.threshold);
    match &alert.condition {
        Condition::Absent(s) => format!("{measured}{}", reading_guard(model, &s.metric)),
        Condition::Ratio(r) => {
            let labels = own_labels(model, &r.metric);
            let den = sum_without(&labels, &format!("increase({}[{}])", r.metric, r.window));
            let guard = if r.min_events > 0.0 {
                format!("\nand\n{den} >= {}", super::humanize::go_number(r.min_events))
            } else {
                String::new()
            };
            format!("(\n{measured}\n) {} {threshold}{guard}", alert.op.as_str())
        }
        _ => format!("{measured} {} {threshold}", alert.op.as_str()),
    }
}
