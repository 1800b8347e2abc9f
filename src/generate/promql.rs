//! PromQL for each condition kind. The panel draws [`measured`], the alert fires on [`alert_expr`]:
//! one expression, so the line on the dashboard and the alert cannot disagree.
//!
//! PromQL's grammar is the `promql-parser` crate's: it decides what is a selector, a string, a
//! label list or a comment, and refuses what is no PromQL. We own which names are ours, Grafana's
//! `$variables` (placeholders while parsing) and splicing the matchers into the text as written.

use std::collections::{BTreeMap, BTreeSet};

use promql_parser::label::{METRIC_NAME, MatchOp};
use promql_parser::parser::{Expr, VectorSelector};

use crate::self_metrics;
use crate::spec::{Alert, Condition, Guard, LabelDef, Model, ResolvedSignal};

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
/// [`try_inject`] scopes these.
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

/// Why a query cannot be scoped, in the parser's words, with the query.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("PromQL `{query}`: {reason}")]
pub struct InvalidQuery {
    pub query: String,
    pub reason: String,
}

/// Puts `matchers` (text such as `job="x", cluster="prod"`) first in every selector of a metric
/// in `metrics` in `expr`: `m` becomes `m{<matchers>}`, `m{a="b"}` becomes `m{<matchers>, a="b"}`,
/// `{__name__="m"}` becomes `{__name__="m", <matchers>}`. The one place rules and dashboards get
/// their selector from. Or why the parser rejects `expr`: the spec's own queries are checked when
/// the spec is loaded (so `check` names them); a generated one that does not parse stops
/// `generate` with an error naming what it was for, rather than writing a broken file.
///
/// The parser finds the selectors; the matchers are spliced into `expr` as written (its printer
/// would reformat the query), so everything else in it, white space and comments included, stays
/// as it was.
pub fn try_inject(expr: &str, metrics: &BTreeSet<String>, matchers: &str) -> Result<String, InvalidQuery> {
    let invalid = |reason: String| InvalidQuery { query: expr.to_string(), reason };
    let parsable = grafana_placeholders(expr);
    let marked = Marked::of(&parsable, metrics);
    let tree = match promql_parser::parser::parse(&marked.text) {
        Ok(tree) => tree,
        // Reported on the query as written, not on its markers.
        Err(marked_error) => {
            return Err(invalid(promql_parser::parser::parse(&parsable).err().unwrap_or(marked_error)));
        }
    };
    let mut selectors = Vec::new();
    selectors_in(&tree, &mut selectors);
    let mut inserts: Vec<(usize, String)> = Vec::new();
    let mut scoped = BTreeSet::new();
    for vs in selectors {
        if !vs.matchers.or_matchers.is_empty() {
            return Err(invalid("`or` between label matchers is not Prometheus' PromQL".into()));
        }
        let by_label = vs.matchers.matchers.iter().find(|m| m.name == METRIC_NAME && m.op == MatchOp::Equal);
        let (name, quoted) = match (&vs.name, by_label) {
            (Some(name), _) => (name, false),
            (None, Some(m)) => (&m.value, true),
            (None, None) => continue,
        };
        let Some(word) = marked.index(name) else {
            if metrics.contains(name) {
                return Err(invalid(format!("the selector of `{name}` cannot be scoped: write its name plainly")));
            }
            continue;
        };
        if !scoped.insert(word) {
            return Err(invalid(format!("`{}` is selected twice in one place", &expr[marked.words[word].clone()])));
        }
        let end = marked.words[word].end;
        let insert = if quoted {
            // `{__name__="m"}`: after the string that names the metric.
            let quote = parsable[end..].chars().next().filter(|q| ['"', '\'', '`'].contains(q));
            let Some(quote) = quote.filter(|q| parsable[..marked.words[word].start].ends_with(*q)) else {
                return Err(invalid(format!(
                    "the selector of `{}` cannot be scoped",
                    &expr[marked.words[word].clone()]
                )));
            };
            (end + quote.len_utf8(), format!(", {matchers}"))
        } else {
            let next = after_blanks(&parsable, end);
            if parsable[next..].starts_with('{') {
                let others = vs.matchers.matchers.iter().any(|m| m.name != METRIC_NAME);
                (next + 1, if others { format!("{matchers}, ") } else { matchers.to_string() })
            } else {
                (end, format!("{{{matchers}}}"))
            }
        };
        inserts.push(insert);
    }
    inserts.sort_by_key(|(at, _)| *at);
    let mut out = String::with_capacity(expr.len() + inserts.len() * (matchers.len() + 4));
    let mut copied = 0;
    for (at, text) in inserts {
        out.push_str(&expr[copied..at]);
        out.push_str(&text);
        copied = at;
    }
    out.push_str(&expr[copied..]);
    Ok(out)
}

/// Every vector selector in `expr`, on its own or under a range.
fn selectors_in<'a>(expr: &'a Expr, out: &mut Vec<&'a VectorSelector>) {
    match expr {
        Expr::VectorSelector(vs) => out.push(vs),
        Expr::MatrixSelector(ms) => out.push(&ms.vs),
        Expr::Aggregate(a) => {
            // The parameter too (`topk(scalar(m), ...)`); the parser's own walker skips it.
            if let Some(param) = &a.param {
                selectors_in(param, out);
            }
            selectors_in(&a.expr, out);
        }
        Expr::Binary(b) => {
            selectors_in(&b.lhs, out);
            selectors_in(&b.rhs, out);
        }
        Expr::Unary(u) => selectors_in(&u.expr, out),
        Expr::Paren(p) => selectors_in(&p.expr, out),
        Expr::Subquery(s) => selectors_in(&s.expr, out),
        Expr::Call(c) => c.args.args.iter().for_each(|arg| selectors_in(arg, out)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// `expr` as the parser can read it. Grafana's variables (`$__rate_interval`, `$__range`,
/// `${cluster}`) are not PromQL: Grafana replaces them before Prometheus sees the query. Each
/// becomes a placeholder of its kind, a duration where a range, a subquery's step or an `offset`
/// takes one, a number anywhere else, padded with spaces to the variable's length: every offset
/// is the same in both texts, so what is found in this one is spliced into the original, where
/// the variables are still as written. A variable standing for a label or metric name is no
/// number, and the query is refused.
fn grafana_placeholders(expr: &str) -> String {
    let mut out = String::with_capacity(expr.len());
    let mut rest = expr;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        rest = &rest[dollar..];
        let len = variable_len(rest);
        if len == 0 {
            out.push('$');
            rest = &rest[1..];
            continue;
        }
        let placeholder = if takes_duration(&out) { "1s" } else { "1" };
        out.push_str(placeholder);
        out.extend(std::iter::repeat_n(' ', len - placeholder.len()));
        rest = &rest[len..];
    }
    out.push_str(rest);
    out
}

/// Length of the Grafana variable `rest` starts with (`$name`, `${name}`, `${name:format}`), or 0.
fn variable_len(rest: &str) -> usize {
    let Some(after) = rest.strip_prefix('$') else { return 0 };
    if let Some(inner) = after.strip_prefix('{') {
        return inner.find('}').map_or(0, |end| end + "${}".len());
    }
    match after.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'_').count() {
        0 => 0,
        name => name + 1,
    }
}

fn takes_duration(before: &str) -> bool {
    let before = before.trim_end();
    before.ends_with(['[', ':'])
        || before.strip_suffix("offset").is_some_and(|head| !head.ends_with(|c: char| is_word_char(c)))
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// The first offset from `at` past white space and `#` comments.
fn after_blanks(text: &str, mut at: usize) -> usize {
    loop {
        let rest = &text[at..];
        let trimmed = rest.trim_start();
        at += rest.len() - trimmed.len();
        if !trimmed.starts_with('#') {
            return at;
        }
        at += trimmed.find('\n').unwrap_or(trimmed.len());
    }
}

/// The text with every word naming a known metric renamed to a marker of its own (`__m0`, `__m1`,
/// ... under a prefix the text does not hold), so the parser tells which of them are selectors
/// (a word in `by (...)`, a string or a comment is none) and the marker where each one is.
struct Marked {
    text: String,
    prefix: String,
    /// Where each marked word is, by marker number.
    words: Vec<std::ops::Range<usize>>,
}

impl Marked {
    fn of(text: &str, metrics: &BTreeSet<String>) -> Self {
        let mut prefix = "__m".to_string();
        while text.contains(&prefix) {
            prefix.push('m');
        }
        let mut marked = String::with_capacity(text.len() + 16);
        let mut words = Vec::new();
        let mut copied = 0;
        let mut at = 0;
        while at < text.len() {
            let rest = &text[at..];
            let len = rest.find(|c: char| !is_word_char(c)).unwrap_or(rest.len());
            if len == 0 {
                at += rest.chars().next().map_or(1, char::len_utf8);
                continue;
            }
            let word = &rest[..len];
            // A name followed by `(` calls a function: never a selector, and renaming it would
            // make it an unknown function.
            if metrics.contains(word) && !rest[len..].trim_start().starts_with('(') {
                marked.push_str(&text[copied..at]);
                marked.push_str(&format!("{prefix}{}", words.len()));
                words.push(at..at + len);
                copied = at + len;
            }
            at += len;
        }
        marked.push_str(&text[copied..]);
        Self { text: marked, prefix, words }
    }

    /// The marked word `name` stands for.
    fn index(&self, name: &str) -> Option<usize> {
        let n: usize = name.strip_prefix(&self.prefix)?.parse().ok()?;
        (n < self.words.len() && name == format!("{}{n}", self.prefix)).then_some(n)
    }
}

fn sum_without(labels: &[String], inner: &str) -> String {
    if labels.is_empty() {
        format!("sum without () ({inner})")
    } else {
        format!("sum without ({}) ({inner})", labels.join(", "))
    }
}

/// The value the alert compares with its threshold, unscoped: [`try_inject`] adds the target's
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
            // Across the fleet, the highest value rises: a replica taking over a database's
            // queries carries on the rise its predecessor's series began.
            let s = selector(&r.metric, &r.matchers);
            let (now, before) = (fleet_max(s.clone()), fleet_max(format!("{s} offset 1m")));
            format!("sum_over_time((clamp_min({now} - {before}, 0))[{}:1m])", r.window)
        }
        Condition::Age(s) => format!("time() - {}", fleet_max(selector(&s.metric, &s.matchers))),
        Condition::Absent(s) => format!("absent({})", selector(&s.metric, &s.matchers)),
        Condition::Quantile(q) => {
            let labels = summed(&q.metric);
            let bucket = selector(&format!("{}_bucket", q.metric), &q.matchers);
            let window = panel_window.map_or_else(|| q.window.to_string(), str::to_string);
            let rate = sum_without(&labels, &format!("rate({bucket}[{window}])"));
            format!("histogram_quantile({}, {rate})", super::go_format::go_number(q.quantile))
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
    Some(match signal.signal.source.settings().polled() {
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
        .and_then(|(s, _)| s.signal.source.settings().polled())
        .is_some_and(|kind| kind.ok_on_partial_answer);
    match reading_series(model, metric) {
        Some((name, labels, _)) if !partial => format!("\nand on ()\ncount({} == 1) > 0", selector(&name, &labels)),
        Some((name, labels, _)) => format!("\nand on ()\ncount({}) > 0", selector(&name, &labels)),
        None => String::new(),
    }
}

/// The rule's expression, every selector scoped to the configured job and matchers.
pub fn alert_expr(model: &Model, signal: &ResolvedSignal, alert: &Alert) -> Result<String, InvalidQuery> {
    let expr = unscoped_alert_expr(model, alert);
    let expr = if drops_instance(alert) { held_while_blind(model, signal, alert, &expr) } else { expr };
    try_inject(&expr, &metric_names(model), &target_text(model))
}

/// Whether the alert's series carry no `instance`: summed or maxed across the fleet, or an
/// `absent()`. Alertmanager cannot tie such an alert to one exporter, so no exporter's health
/// alert can inhibit it; [`held_while_blind`] does in the expression what inhibition cannot.
pub fn drops_instance(alert: &Alert) -> bool {
    alert.across_instances || matches!(alert.condition, Condition::Absent(_))
}

/// Some exporter of the job cannot be scraped (or none is a target): the fleet is partly blind.
pub const FLEET_BLIND: &str = "(count(up == 0) > 0 or absent(up))";

/// An alert about the whole fleet while part of it is blind (an exporter down) neither fires anew
/// nor resolves: it keeps the state it had. Firing, it stays firing, so Alertmanager sends no
/// "resolved" for an alert nobody can see; its value is the last it had within
/// [`held_value_for`] (then 1, the `ALERTS` series that keeps it). Pending or quiet, it stays quiet, as a fleet
/// missing a host is no evidence. Once every exporter is scraped again it is judged on its data:
/// still bad, it goes on firing without a new notification; healthy, it resolves, and that
/// "resolved" is true.
fn held_while_blind(model: &Model, signal: &ResolvedSignal, alert: &Alert, expr: &str) -> String {
    let firing = selector(
        "ALERTS",
        &BTreeMap::from([
            ("alertname".to_string(), alert.name.clone()),
            ("alertstate".to_string(), "firing".to_string()),
            ("severity".to_string(), alert.severity.as_str().to_string()),
            ("signal".to_string(), signal.signal.id.clone()),
        ]),
    );
    // The alert's labels are its expression's; ALERTS adds these, and the rule sets them again.
    let own = "alertname, alertstate, severity, signal";
    let kept = match alert.condition {
        // `absent()` is 1 whenever it fires: nothing to remember.
        Condition::Absent(_) => format!("max without (alertstate) ({firing})"),
        _ => format!(
            "last_over_time((\n{}\n)[{}:1m])\nand ignoring ({own})\n{firing}\nor ignoring ({own})\nmax without (alertstate) ({firing})",
            measured(model, alert),
            held_value_for(model)
        ),
    };
    format!("(\n{expr}\n)\nunless on ()\n{FLEET_BLIND}\nor\n(\n{kept}\n)\nand on ()\n{FLEET_BLIND}")
}

/// How far back a held alert's value is looked up (past it, the value is 1): Alertmanager's
/// `repeat_interval`, at least an hour, so the first reminder of a held alert still quotes its
/// last real value.
fn held_value_for(model: &Model) -> crate::spec::PromDuration {
    let repeat = model.config.generate.alertmanager.repeat_interval.as_secs_f64().ceil() as u64;
    crate::spec::PromDuration::from_secs(repeat.max(3600))
}

fn unscoped_alert_expr(model: &Model, alert: &Alert) -> String {
    let expr = unguarded_alert_expr(model, alert);
    alert.while_.iter().fold(expr, |expr, guard| format!("{expr}\nand on ()\n{}", guard_expr(model, alert, guard)))
}

/// The state a guarded alert fires in (`while`): the guard's measurement, aggregated as the
/// alert's own is, compared with its number.
pub fn guard_expr(model: &Model, alert: &Alert, guard: &Guard) -> String {
    let measured = measured(model, &Alert { condition: guard.condition.clone(), while_: Vec::new(), ..alert.clone() });
    format!("{measured} {} {}", guard.op.as_str(), super::go_format::go_number(guard.threshold))
}

/// The guard as a person reads it: `increase(m[10m]) < 1`, `m > 0`.
pub fn guard_text(guard: &Guard) -> String {
    let what = match &guard.condition {
        Condition::Increase(w) => format!("increase({}[{}])", selector(&w.metric, &w.matchers), w.window),
        other => other.metrics().join(", "),
    };
    format!("{what} {} {}", guard.op.as_str(), super::go_format::go_number(guard.threshold))
}

fn unguarded_alert_expr(model: &Model, alert: &Alert) -> String {
    let measured = measured(model, alert);
    let threshold = super::go_format::go_number(alert.threshold);
    match &alert.condition {
        Condition::Absent(s) => format!("{measured}{}", reading_guard(model, &s.metric)),
        Condition::Ratio(r) => {
            let labels: Vec<String> =
                own_labels(model, &r.metric).into_iter().chain(aggregated_away(model, alert)).collect();
            let den = sum_without(&labels, &format!("increase({}[{}])", r.metric, r.window));
            let guard = if r.min_events > 0.0 {
                format!("\nand\n{den} >= {}", super::go_format::go_number(r.min_events))
            } else {
                String::new()
            };
            format!("(\n{measured}\n) {} {threshold}{guard}", alert.op.as_str())
        }
        _ => format!("{measured} {} {threshold}", alert.op.as_str()),
    }
}
