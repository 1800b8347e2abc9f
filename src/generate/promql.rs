//! PromQL for each condition kind. The panel draws [`measured`], the alert fires on [`alert_expr`]:
//! one expression, so the line on the dashboard and the alert cannot disagree.

use std::collections::{BTreeMap, BTreeSet};

use crate::self_metrics;
use crate::spec::{Alert, Condition, Guard, LabelDef, Model};

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

/// The labels that pick this deployment's exporters out of everything Prometheus scrapes:
/// `job` and `generate.matchers`.
pub fn target_matchers(model: &Model) -> BTreeMap<String, String> {
    let settings = &model.config.generate;
    let mut out = settings.matchers.clone();
    out.insert("job".into(), settings.job.clone());
    out
}

/// [`target_matchers`] as the text inside a selector's braces: `cluster="prod", job="x"`.
pub fn target_text(model: &Model) -> String {
    target_matchers(model).iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect::<Vec<_>>().join(", ")
}

/// The labels that tell one exporter from another beyond what [`target_matchers`] pins
/// (`instance`, and e.g. `pod` when relabelling adds it): what an `across_instances` alert
/// aggregates away.
pub fn instance_labels(model: &Model) -> Vec<String> {
    let pinned = target_matchers(model);
    let mut out: Vec<String> = model
        .config
        .generate
        .alertmanager
        .instance_labels
        .iter()
        .filter(|l| !pinned.contains_key(*l))
        .cloned()
        .collect();
    if !out.iter().any(|l| l == "instance") {
        out.push("instance".into());
    }
    out
}

/// Labels `alert`'s expression aggregates away beyond the metric's own.
pub fn aggregated_away(model: &Model, alert: &Alert) -> Vec<String> {
    if alert.across_instances { instance_labels(model) } else { Vec::new() }
}

/// Series Prometheus itself makes that rules and dashboards select.
pub const PROMETHEUS_METRICS: &[&str] = &["up", "ALERTS"];

/// Every metric name a generated expression may select: the model's (histograms with their
/// series suffixes), the exporter's own ([`self_metrics::ALL`]) and [`PROMETHEUS_METRICS`].
/// [`inject`] scopes these.
pub fn metric_names(model: &Model) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = PROMETHEUS_METRICS.iter().map(|s| s.to_string()).collect();
    names.extend(self_metrics::ALL.iter().map(|m| m.name.to_string()));
    for (_, metric) in model.metrics() {
        names.insert(metric.name.clone());
        if metric.kind == crate::spec::MetricType::Histogram {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.insert(format!("{}{suffix}", metric.name));
            }
        }
    }
    names
}

/// Puts `matchers` (text such as `job="x", cluster="prod"`) first in every selector of a metric
/// in `metrics` in `expr`: `m` becomes `m{<matchers>}`, `m{a="b"}` becomes `m{<matchers>, a="b"}`.
/// String literals, label names and other identifiers (functions, keywords, label names in
/// `by (...)`) are left alone. The one place rules and dashboards get their selector from.
pub fn inject(expr: &str, metrics: &BTreeSet<String>, matchers: &str) -> String {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = String::with_capacity(expr.len() + 64);
    let mut i = 0;
    // Inside `{...}` of a selector, or the `(...)` after `by`, `without`, `on`, ..., identifiers
    // are label names.
    let mut in_braces = false;
    let mut label_list = false;
    let mut after_grouping = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => {
                let start = i;
                i += 1;
                while i < chars.len() && chars[i] != c {
                    if chars[i] == '\\' && c != '`' {
                        i += 1;
                    }
                    i += 1;
                }
                i = (i + 1).min(chars.len());
                out.extend(&chars[start..i]);
                continue;
            }
            '{' => in_braces = true,
            '}' => in_braces = false,
            '(' => {
                label_list = after_grouping;
                after_grouping = false;
            }
            ')' => label_list = false,
            c if c.is_ascii_digit() => {
                // A number or duration (`0.95`, `10m`, `1e3`): never a metric name.
                let start = i;
                while i < chars.len() && (is_ident_char(chars[i]) || chars[i] == '.') {
                    i += 1;
                }
                out.extend(&chars[start..i]);
                continue;
            }
            c if is_ident_start(c) => {
                let start = i;
                while i < chars.len() && is_ident_char(chars[i]) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                out.push_str(&word);
                if !in_braces && !label_list {
                    after_grouping = GROUPING.contains(&word.as_str());
                }
                if !in_braces && !label_list && metrics.contains(&word) {
                    let mut j = i;
                    while j < chars.len() && chars[j].is_whitespace() {
                        j += 1;
                    }
                    if chars.get(j) == Some(&'{') {
                        // Copy up to and including the brace, then put the matchers first.
                        out.extend(&chars[i..=j]);
                        let mut k = j + 1;
                        while k < chars.len() && chars[k].is_whitespace() {
                            k += 1;
                        }
                        out.push_str(matchers);
                        if chars.get(k) != Some(&'}') {
                            out.push_str(", ");
                        }
                        i = k;
                        in_braces = true;
                    } else {
                        out.push('{');
                        out.push_str(matchers);
                        out.push('}');
                    }
                }
                continue;
            }
            _ => {}
        }
        out.push(c);
        i += 1;
    }
    out
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Keywords followed by a parenthesised list of label names.
const GROUPING: &[&str] = &["by", "without", "on", "ignoring", "group_left", "group_right"];

fn sum_without(labels: &[String], inner: &str) -> String {
    if labels.is_empty() {
        format!("sum without () ({inner})")
    } else {
        format!("sum without ({}) ({inner})", labels.join(", "))
    }
}

/// The value the alert compares with its threshold, unscoped: [`inject`] adds the target's
/// matchers (the configured job in rules, the `job`/`instance` variables on dashboards).
pub fn measured(model: &Model, alert: &Alert) -> String {
    measured_over(model, alert, None)
}

/// [`measured`] as a panel draws it: rates over Grafana's `$__rate_interval` (dashboard-linter's
/// rule: a fixed window under-samples when zoomed out and smooths away detail when zoomed in).
/// An increase alert's count becomes the current rate times the alert's window, so it stays
/// comparable with the threshold drawn beside it.
pub fn measured_on_panel(model: &Model, alert: &Alert) -> String {
    measured_over(model, alert, Some("$__rate_interval"))
}

fn measured_over(model: &Model, alert: &Alert, panel_window: Option<&str>) -> String {
    let away = aggregated_away(model, alert);
    let summed = |metric: &str| -> Vec<String> { own_labels(model, metric).into_iter().chain(away.clone()).collect() };
    // Gauges of the whole fleet: the highest of the exporters' values (the newest timestamp).
    let fleet_max = |inner: String| -> String {
        if away.is_empty() { inner } else { format!("max without ({}) ({inner})", away.join(", ")) }
    };
    match &alert.condition {
        Condition::Gauge(s) => fleet_max(selector(&s.metric, &s.matchers)),
        Condition::GaugeRatio { numerator, denominator } => format!(
            "{} / {}",
            fleet_max(selector(&numerator.metric, &numerator.matchers)),
            fleet_max(selector(&denominator.metric, &denominator.matchers))
        ),
        Condition::Ratio(r) => {
            let labels = summed(&r.metric);
            // On a panel, a ratio of rates: the same ratio, and a rate is what `$__rate_interval` is for.
            let (f, window) =
                panel_window.map_or_else(|| ("increase", r.window.to_string()), |w| ("rate", w.to_string()));
            let num = sum_without(&labels, &format!("{f}({}[{window}])", selector(&r.metric, &r.matchers)));
            let den = sum_without(&labels, &format!("{f}({}[{window}])", r.metric));
            format!("{num}\n/\n{den}")
        }
        Condition::Increase(r) => {
            let labels = summed(&r.metric);
            match panel_window {
                None => sum_without(&labels, &format!("increase({}[{}])", selector(&r.metric, &r.matchers), r.window)),
                Some(w) => format!(
                    "{} * {}",
                    sum_without(&labels, &format!("rate({}[{w}])", selector(&r.metric, &r.matchers))),
                    r.window.0.as_secs()
                ),
            }
        }
        Condition::Rise(r) => {
            // Each minute's rise, clamped at zero, summed over the window: a backlog cleared by
            // hand neither cancels new entries nor counts as new ones.
            let s = selector(&r.metric, &r.matchers);
            format!("sum_over_time((clamp_min({s} - {s} offset 1m, 0))[{}:1m])", r.window)
        }
        Condition::Age(s) => format!("time() - {}", fleet_max(selector(&s.metric, &s.matchers))),
        Condition::Absent(s) => format!("absent({})", selector(&s.metric, &s.matchers)),
        Condition::Quantile(q) => {
            let labels = summed(&q.metric);
            let bucket = selector(&format!("{}_bucket", q.metric), &q.matchers);
            let window = panel_window.map_or_else(|| q.window.to_string(), str::to_string);
            let rate = sum_without(&labels, &format!("rate({bucket}[{window}])"));
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
    Some(match signal.signal.source.spec().polled() {
        None => ("up".into(), BTreeMap::new(), 1.0),
        Some(kind) => (kind.health.ok.name.into(), BTreeMap::from([("signal".to_string(), id)]), 1.0),
    })
}

/// `absent()` holds only while the source is read: its `ok` is 1 (or merely present, for a kind
/// whose `ok` stays 1 through partial answers), or the exporter is scraped for a log source.
fn reading_guard(model: &Model, metric: &str) -> String {
    let partial = model
        .metrics()
        .find(|(_, m)| m.name == metric)
        .and_then(|(s, _)| s.signal.source.spec().polled())
        .is_some_and(|kind| kind.ok_on_partial_answer);
    match reading_series(model, metric) {
        Some((name, labels, _)) if !partial => format!("\nand on ()\ncount({} == 1) > 0", selector(&name, &labels)),
        Some((name, labels, _)) => format!("\nand on ()\ncount({}) > 0", selector(&name, &labels)),
        None => String::new(),
    }
}

/// The rule's expression, every selector scoped to the configured job and matchers.
pub fn alert_expr(model: &Model, alert: &Alert) -> String {
    inject(&unscoped_alert_expr(model, alert), &metric_names(model), &target_text(model))
}

fn unscoped_alert_expr(model: &Model, alert: &Alert) -> String {
    let expr = unguarded_alert_expr(model, alert);
    alert.while_.iter().fold(expr, |expr, guard| format!("{expr}\nand on ()\n{}", guard_expr(model, alert, guard)))
}

/// The state a guarded alert fires in (`while`): the guard's measurement, aggregated as the
/// alert's own is, compared with its number.
pub fn guard_expr(model: &Model, alert: &Alert, guard: &Guard) -> String {
    let measured = measured(model, &Alert { condition: guard.condition.clone(), while_: Vec::new(), ..alert.clone() });
    format!("{measured} {} {}", guard.op.as_str(), super::humanize::go_number(guard.threshold))
}

/// The guard as a person reads it: `increase(m[10m]) < 1`, `m > 0`.
pub fn guard_text(guard: &Guard) -> String {
    let what = match &guard.condition {
        Condition::Increase(w) => format!("increase({}[{}])", selector(&w.metric, &w.matchers), w.window),
        other => other.metrics().join(", "),
    };
    format!("{what} {} {}", guard.op.as_str(), super::humanize::go_number(guard.threshold))
}

fn unguarded_alert_expr(model: &Model, alert: &Alert) -> String {
    let measured = measured(model, alert);
    let threshold = super::humanize::go_number(alert.threshold);
    match &alert.condition {
        Condition::Absent(s) => format!("{measured}{}", reading_guard(model, &s.metric)),
        Condition::Ratio(r) => {
            let labels: Vec<String> =
                own_labels(model, &r.metric).into_iter().chain(aggregated_away(model, alert)).collect();
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
