//! promtool unit tests of one of the spec's alerts: quiet on the healthy side of its threshold
//! (and at the threshold itself for strict comparisons), pending before `for`, firing after it
//! with its exact labels and rendered annotations. Ratio alerts also prove their volume guard.

use std::collections::BTreeMap;

use super::alerts;
use super::go_format::render_value;
use super::output::grafana::PanelLinks;
use super::output::promtool::{AlertRuleTest, ExpAlert, InputSeries, TestCase};
use super::rules::{annotation_links, describe, labels};
use crate::spec::{Alert, Condition, LabelDef, Model, Op, ResolvedSignal, ValueUnit};

/// Samples per input series: four hours at one a minute covers every window and `for` we ship.
const STEPS: u64 = 240;

fn minutes(secs: f64) -> String {
    format!("{}m", (secs / 60.0).round() as u64)
}

/// Labels of the exporter's series in tests: the configured target's and an instance.
fn target_labels(model: &Model) -> BTreeMap<String, String> {
    let mut labels = super::promql::target_matchers(model);
    labels.insert("instance".to_string(), "exporter:29187".to_string());
    labels
}

fn series(metric: &str, labels: &BTreeMap<String, String>) -> String {
    super::promql::selector(metric, labels)
}

/// Labels a test series needs: the target's, the matchers, and a value for every declared label.
fn series_labels(model: &Model, metric: &str, matchers: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut labels = target_labels(model);
    if let Some(def) = model.metric(metric) {
        for label in &def.labels {
            let value = match label {
                LabelDef::Fixed(f) => f.values.first().cloned().unwrap_or_default(),
                LabelDef::Name(_) => "example".to_string(),
            };
            labels.insert(label.name().to_string(), value);
        }
    }
    labels.extend(matchers.iter().map(|(k, v)| (k.clone(), v.clone())));
    labels
}

/// One step of the alert's unit: the distance from the threshold tests put values at.
fn step(unit: ValueUnit, threshold: f64) -> f64 {
    match unit {
        ValueUnit::Percent => 0.01,
        ValueUnit::Duration => 60.0,
        ValueUnit::Count => 1.0,
        ValueUnit::Number => (threshold.abs() * 0.1).max(0.1),
    }
}

/// (healthy, at threshold when strict, firing) values around the threshold.
fn values_around(alert: &Alert) -> (f64, Option<f64>, f64) {
    let d = step(alert.unit, alert.threshold);
    let t = alert.threshold;
    match alert.op {
        Op::Gt => (t - d, Some(t), t + d),
        Op::Ge => (t - d, None, t),
        Op::Lt => (t + d, Some(t), t - d),
        Op::Le => (t + d, None, t),
    }
}

struct Scenario {
    input: Vec<InputSeries>,
    /// From when the measured expression has a value (rates need two samples).
    data_from: f64,
    /// The alert's labels beyond severity/signal, and its value at `eval` seconds.
    alert_labels: BTreeMap<String, String>,
    value_at: Box<dyn Fn(f64) -> f64>,
}

/// Input series that put the measured value at `value`; a guard's `increase` has a value only
/// from the second minute, so the alert's condition holds from then on.
fn scenario(model: &Model, alert: &Alert, value: f64) -> Scenario {
    let mut sc = unguarded_scenario(model, alert, value);
    if alert.while_.iter().any(|g| matches!(g.condition, Condition::Increase(_))) {
        sc.data_from = sc.data_from.max(60.0);
    }
    sc
}

fn unguarded_scenario(model: &Model, alert: &Alert, value: f64) -> Scenario {
    let constant = |v: f64| format!("{}+0x{STEPS}", super::go_format::go_number(v));
    match &alert.condition {
        Condition::Gauge(s) => {
            let labels = series_labels(model, &s.metric, &s.matchers);
            Scenario {
                input: vec![InputSeries { series: series(&s.metric, &labels), values: constant(value) }],
                data_from: 0.0,
                alert_labels: labels,
                value_at: Box::new(move |_| value),
            }
        }
        Condition::GaugeRatio { numerator, denominator } => {
            let num_labels = series_labels(model, &numerator.metric, &numerator.matchers);
            let den_labels = series_labels(model, &denominator.metric, &denominator.matchers);
            let scale = 1000.0;
            Scenario {
                input: vec![
                    InputSeries {
                        series: series(&numerator.metric, &num_labels),
                        values: constant((value * scale).round()),
                    },
                    InputSeries { series: series(&denominator.metric, &den_labels), values: constant(scale) },
                ],
                data_from: 0.0,
                alert_labels: num_labels,
                value_at: Box::new(move |_| (value * scale).round() / scale),
            }
        }
        Condition::Ratio(r) => {
            // 100 events a minute, `value` of them in the numerator's label value.
            let (label, wanted) = r.matchers.iter().next().map(|(k, v)| (k.clone(), v.clone())).unwrap_or_default();
            let other = model
                .metric(&r.metric)
                .and_then(|m| m.labels.iter().find(|l| l.name() == label))
                .and_then(|l| l.fixed_values())
                .and_then(|vals| vals.iter().find(|v| **v != wanted).cloned())
                .unwrap_or_else(|| "other".into());
            let good = (value * 100.0).round();
            let mut good_labels = series_labels(model, &r.metric, &r.matchers);
            let mut bad_labels = good_labels.clone();
            bad_labels.insert(label.clone(), other);
            good_labels.insert(label.clone(), wanted);
            let mut alert_labels = good_labels.clone();
            if let Some(def) = model.metric(&r.metric) {
                for l in &def.labels {
                    alert_labels.remove(l.name());
                }
            }
            Scenario {
                input: vec![
                    InputSeries { series: series(&r.metric, &good_labels), values: format!("0+{}x{STEPS}", good) },
                    InputSeries {
                        series: series(&r.metric, &bad_labels),
                        values: format!("0+{}x{STEPS}", 100.0 - good),
                    },
                ],
                data_from: 60.0,
                alert_labels,
                value_at: Box::new(move |_| good / 100.0),
            }
        }
        Condition::Increase(r) => {
            let labels = series_labels(model, &r.metric, &r.matchers);
            let mut alert_labels = labels.clone();
            if let Some(def) = model.metric(&r.metric) {
                for l in &def.labels {
                    alert_labels.remove(l.name());
                }
            }
            // One jump of `value` a minute in: the increase over the window is exactly `value`.
            Scenario {
                input: vec![InputSeries {
                    series: series(&r.metric, &labels),
                    values: format!("0 {}+0x{STEPS}", super::go_format::go_number(value)),
                }],
                data_from: 60.0,
                alert_labels,
                value_at: Box::new(move |_| value),
            }
        }
        Condition::Rise(r) => {
            // The gauge rises by `value` a minute in and stays: the rise over the window is
            // exactly `value` while that minute is in it.
            let labels = series_labels(model, &r.metric, &r.matchers);
            Scenario {
                input: vec![InputSeries {
                    series: series(&r.metric, &labels),
                    values: format!("0 {}+0x{STEPS}", super::go_format::go_number(value)),
                }],
                data_from: 60.0,
                alert_labels: labels,
                value_at: Box::new(move |_| value),
            }
        }
        Condition::Age(s) => {
            // The timestamp stays put, so the age grows by a minute a minute: the value crosses
            // the threshold on its own and the test checks where. It starts ten minutes short of
            // the threshold: promtool evaluates every rule of the file each minute up to the last
            // evaluation, and a 46-day threshold reached from age 0 took minutes of CPU per case.
            let offset = (alert.threshold - 600.0).max(0.0).floor();
            let labels = series_labels(model, &s.metric, &s.matchers);
            Scenario {
                input: vec![InputSeries { series: series(&s.metric, &labels), values: constant(-offset) }],
                data_from: 0.0,
                alert_labels: labels,
                value_at: Box::new(move |t| t + offset),
            }
        }
        Condition::Quantile(q) => {
            // Every observation in one bucket: the quantile is `lo + (hi - lo) * q` inside it.
            // The bucket is the one just below the threshold for healthy values and just above
            // it for firing ones (validation keeps thresholds on bucket bounds).
            let buckets = model.metric(&q.metric).map(|m| m.buckets.clone()).unwrap_or_default();
            let bounds: Vec<(f64, f64)> =
                std::iter::once(0.0).chain(buckets.iter().copied()).zip(buckets.iter().copied()).collect();
            let above = value > alert.threshold || (value == alert.threshold && matches!(alert.op, Op::Ge | Op::Le));
            let (lo, hi) = if above {
                bounds.iter().copied().find(|(lo, _)| *lo >= alert.threshold)
            } else {
                bounds.iter().rev().copied().find(|(_, hi)| *hi <= alert.threshold)
            }
            .unwrap_or((0.0, 1.0));
            let mut labels = series_labels(model, &q.metric, &q.matchers);
            let mut alert_labels = labels.clone();
            if let Some(def) = model.metric(&q.metric) {
                for l in &def.labels {
                    alert_labels.remove(l.name());
                }
            }
            let mut input = Vec::new();
            for bound in buckets.iter().copied().map(Some).chain(std::iter::once(None)) {
                let le = bound.map_or_else(|| "+Inf".to_string(), super::go_format::go_number);
                let filled = bound.is_none_or(|b| b >= hi);
                labels.insert("le".into(), le);
                input.push(InputSeries {
                    series: series(&format!("{}_bucket", q.metric), &labels),
                    values: format!("0+{}x{STEPS}", if filled { 10 } else { 0 }),
                });
            }
            let quantile = q.quantile;
            Scenario { input, data_from: 60.0, alert_labels, value_at: Box::new(move |_| lo + (hi - lo) * quantile) }
        }
        Condition::Absent(s) => Scenario {
            // The exporter is up and reading the source; only the series itself is missing.
            input: super::promql::reading_series(model, &s.metric)
                .map(|(name, labels, healthy)| {
                    let mut labels = labels;
                    labels.extend(target_labels(model));
                    vec![InputSeries { series: series(&name, &labels), values: constant(healthy) }]
                })
                .unwrap_or_default(),
            data_from: 0.0,
            // `absent()` keeps the equality matchers: the pack's and the target's.
            alert_labels: super::promql::target_matchers(model).into_iter().chain(s.matchers.clone()).collect(),
            value_at: Box::new(|_| 1.0),
        },
    }
}

fn expect(
    model: &Model,
    panels: &PanelLinks,
    signal: &ResolvedSignal,
    alert: &Alert,
    scenario: &Scenario,
    at: f64,
) -> ExpAlert {
    let mut exp_labels = scenario.alert_labels.clone();
    for away in super::promql::aggregated_away(model, alert) {
        exp_labels.remove(&away);
    }
    exp_labels.extend(labels(signal, alert));
    let value = render_value(alert.unit, (scenario.value_at)(at));
    let description = describe(alert, &value, &|label| exp_labels.get(label).cloned().unwrap_or_default());
    let mut exp_annotations = BTreeMap::from([
        ("summary".to_string(), alert.summary.trim().to_string()),
        ("description".to_string(), description),
    ]);
    exp_annotations.extend(annotation_links(panels, signal));
    ExpAlert { exp_labels, exp_annotations }
}

/// Whether `alert` fires at `t`: its condition held at every evaluation of the last `for`.
fn fires_at(alert: &Alert, scenario: &Scenario, t: f64) -> bool {
    let mut tau = t - alert.for_.as_secs_f64();
    if tau < scenario.data_from {
        return false;
    }
    while tau <= t {
        if !alert.op.holds((scenario.value_at)(tau), alert.threshold) {
            return false;
        }
        tau += 60.0;
    }
    true
}

/// First evaluation at which the condition holds.
fn first_active(alert: &Alert, scenario: &Scenario) -> f64 {
    (0..STEPS)
        .map(|i| scenario.data_from + i as f64 * 60.0)
        .find(|t| alert.op.holds((scenario.value_at)(*t), alert.threshold))
        .unwrap_or(scenario.data_from)
}

/// Every alert of the name firing at `t`: the alert itself and its warning/critical twin on the
/// same measurement, whose threshold the scenario may cross too.
fn expected_at(
    model: &Model,
    panels: &PanelLinks,
    signal: &ResolvedSignal,
    alert: &Alert,
    scenario: &Scenario,
    t: f64,
) -> Vec<ExpAlert> {
    alerts::of_signal(signal)
        .filter(|a| a.name == alert.name && a.condition == alert.condition)
        .filter(|a| fires_at(a, scenario, t))
        .map(|a| expect(model, panels, signal, a, scenario, t))
        .collect()
}

/// Every case of `alert`; an alert without `instance` (the fleet's, or `absent()`) runs them with
/// the exporter scraped, and is also shown held while an exporter is down.
pub fn cases(model: &Model, panels: &PanelLinks, signal: &ResolvedSignal, alert: &Alert) -> Vec<TestCase> {
    let mut cases = plain_cases(model, panels, signal, alert);
    if !super::promql::drops_instance(alert) {
        return cases;
    }
    let up = series("up", &target_labels(model));
    for case in &mut cases {
        if !case.input_series.iter().any(|i| i.series == up) {
            case.input_series.push(InputSeries { series: up.clone(), values: format!("1+0x{STEPS}") });
        }
    }
    cases.extend(blind_cases(model, panels, signal, alert));
    cases
}

/// An alert about the whole fleet keeps its state while an exporter is down: firing, it stays
/// firing with its last value, so no false "resolved" goes out; past its threshold on what the
/// other exporters say, it does not fire, as part of the fleet is unseen.
fn blind_cases(model: &Model, panels: &PanelLinks, signal: &ResolvedSignal, alert: &Alert) -> Vec<TestCase> {
    let name = format!("{} ({})", alert.name, alert.severity.as_str());
    let for_secs = alert.for_.as_secs_f64();
    let case = |label: &str, input: Vec<InputSeries>, evals: Vec<(f64, Vec<ExpAlert>)>| TestCase {
        name: format!("{name}: {label}"),
        interval: "1m".to_string(),
        input_series: input,
        alert_rule_test: evals
            .into_iter()
            .map(|(at, exp_alerts)| AlertRuleTest { eval_time: minutes(at), alertname: alert.name.clone(), exp_alerts })
            .collect(),
    };
    let (fire, fired) = match &alert.condition {
        Condition::Absent(_) => (scenario(model, alert, 1.0), for_secs),
        _ => {
            let fire = scenario(model, alert, values_around(alert).2);
            let fired = first_active(alert, &fire) + for_secs;
            (fire, fired)
        }
    };
    let up = series("up", &target_labels(model));
    // A guarded alert is held in the state it fires in: its guards hold.
    let data: Vec<InputSeries> =
        fire.input.iter().filter(|i| i.series != up).cloned().chain(guard_inputs(model, alert, None)).collect();
    // The data goes on in the input, so the value remembered is the one at the evaluation.
    let expected = expected_at(model, panels, signal, alert, &fire, fired + 180.0);
    let mut going_down = data.clone();
    going_down.push(InputSeries { series: up.clone(), values: format!("1x{} 0x{STEPS}", (fired / 60.0) as u64) });
    let mut other = target_labels(model);
    other.insert("instance".into(), "exporter-2:29187".into());
    let mut one_down = data;
    one_down.push(InputSeries { series: up.clone(), values: format!("1+0x{STEPS}") });
    one_down.push(InputSeries { series: series("up", &other), values: format!("0+0x{STEPS}") });
    vec![
        case(
            "held firing, not resolved, while an exporter is down",
            going_down,
            vec![(fired, expected_at(model, panels, signal, alert, &fire, fired)), (fired + 180.0, expected)],
        ),
        case(
            "quiet past its threshold while an exporter is down",
            one_down,
            vec![(fired, vec![]), (fired + 600.0, vec![])],
        ),
    ]
}

fn plain_cases(model: &Model, panels: &PanelLinks, signal: &ResolvedSignal, alert: &Alert) -> Vec<TestCase> {
    let for_secs = alert.for_.as_secs_f64();
    let interval = "1m".to_string();
    let name = format!("{} ({})", alert.name, alert.severity.as_str());
    let guarded_case = |label: &str,
                        input: Vec<InputSeries>,
                        failing: Option<usize>,
                        evals: Vec<(f64, Vec<ExpAlert>)>| TestCase {
        name: format!("{name}: {label}"),
        interval: interval.clone(),
        input_series: input.into_iter().chain(guard_inputs(model, alert, failing)).collect(),
        alert_rule_test: evals
            .into_iter()
            .map(|(at, exp_alerts)| AlertRuleTest { eval_time: minutes(at), alertname: alert.name.clone(), exp_alerts })
            .collect(),
    };
    // A guarded alert's cases run in the state it fires in, but for those that prove its guards.
    let case = |label: &str, input: Vec<InputSeries>, evals: Vec<(f64, Vec<ExpAlert>)>| {
        guarded_case(label, input, None, evals)
    };
    let mut cases = Vec::new();

    if let Condition::Absent(s) = &alert.condition {
        let labels = series_labels(model, &s.metric, &s.matchers);
        let present = vec![InputSeries { series: series(&s.metric, &labels), values: "1700000000+60x240".into() }];
        cases.push(case("quiet while the series exists", present, vec![(for_secs + 600.0, vec![])]));
        let missing = scenario(model, alert, 1.0);
        let mut evals = Vec::new();
        if for_secs >= 60.0 {
            evals.push((for_secs - 60.0, vec![]));
        }
        evals.push((for_secs, vec![expect(model, panels, signal, alert, &missing, for_secs)]));
        cases.push(case("pending before `for`, firing after it", missing.input, evals));
        // The exporter is down (or not reading the source): that is the source-health alerts'
        // business, not "the series was never seen".
        let down = vec![InputSeries { series: series("up", &target_labels(model)), values: format!("0+0x{STEPS}") }];
        cases.push(case("quiet while the exporter does not read the source", down, vec![(for_secs + 600.0, vec![])]));
        return cases;
    }

    let quiet = |label: &str, sc: Scenario, at: f64| {
        let expected = expected_at(model, panels, signal, alert, &sc, at);
        case(label, sc.input, vec![(at, expected)])
    };
    if let Condition::Age(_) = &alert.condition {
        let sc = scenario(model, alert, 0.0);
        // The last whole minute the age is not past the threshold, then `for`.
        let at = ((alert.threshold - (sc.value_at)(0.0)) / 60.0).floor() * 60.0 + for_secs;
        cases.push(quiet("quiet up to the threshold", sc, at));
    } else {
        let (healthy, at, _) = values_around(alert);
        let sc = scenario(model, alert, healthy);
        let horizon = sc.data_from + for_secs + 600.0;
        cases.push(quiet("quiet on the healthy side of the threshold", sc, horizon));
        if let Some(at) = at {
            cases.push(quiet("quiet at the threshold itself", scenario(model, alert, at), horizon));
        }
    }

    if let Condition::Ratio(r) = &alert.condition
        && r.min_events > 0.0
    {
        // Every attempt fails, but too few happen in the window to mean anything.
        let window_minutes = r.window.as_secs_f64() / 60.0;
        let per_minute = (r.min_events / window_minutes / 2.0).max(0.0);
        let (label, wanted) = r.matchers.iter().next().map(|(k, v)| (k.clone(), v.clone())).unwrap_or_default();
        let input = scenario(model, alert, 0.0)
            .input
            .into_iter()
            .map(|i| {
                let is_good = i.series.contains(&format!("{label}=\"{}\"", super::promql::escape(&wanted)));
                let rate = if is_good { 0.0 } else { per_minute };
                InputSeries { series: i.series, values: format!("0+{}x{STEPS}", super::go_format::go_number(rate)) }
            })
            .collect();
        // Twins share the guard, so nothing of this name fires.
        let at = r.window.as_secs_f64() + for_secs + 60.0;
        cases.push(case("quiet below the minimum number of events", input, vec![(at, vec![])]));
    }

    let (_, _, firing) = values_around(alert);
    let fire = scenario(model, alert, firing);
    let active = first_active(alert, &fire);
    let mut evals = Vec::new();
    if for_secs >= 60.0 {
        let pending = active + for_secs - 60.0;
        evals.push((pending, expected_at(model, panels, signal, alert, &fire, pending)));
    }
    // The earliest moment it can fire: a threshold moved by one step makes this fail.
    let fire_at = active + for_secs;
    evals.push((fire_at, expected_at(model, panels, signal, alert, &fire, fire_at)));
    for (i, guard) in alert.while_.iter().enumerate() {
        let label = format!("quiet while `{}` does not hold", super::promql::guard_text(guard));
        cases.push(guarded_case(&label, fire.input.clone(), Some(i), vec![(fire_at, vec![])]));
    }
    cases.push(case("pending before `for`, firing after it", fire.input, evals));
    cases
}

/// The measurements of a guarded alert's `while`, each far on the side where it holds, but for
/// the `failing` one: a gauge one past its number, a counter flat or rising steadily.
fn guard_inputs(model: &Model, alert: &Alert, failing: Option<usize>) -> Vec<InputSeries> {
    let mut out = Vec::new();
    for (i, guard) in alert.while_.iter().enumerate() {
        let holds = failing != Some(i);
        let t = guard.threshold;
        let small_holds = matches!(guard.op, Op::Lt | Op::Le);
        let (metric, matchers, values) = match &guard.condition {
            Condition::Increase(w) => {
                // Flat: no increase at all; rising: more than the threshold in every minute.
                let rise = if holds == small_holds { 0.0 } else { t.max(0.0) + 1.0 };
                (&w.metric, &w.matchers, format!("0+{}x{STEPS}", super::go_format::go_number(rise)))
            }
            Condition::Gauge(s) => {
                let (yes, no) = match guard.op {
                    Op::Gt => (t + 1.0, t),
                    Op::Ge => (t, t - 1.0),
                    Op::Lt => (t - 1.0, t),
                    Op::Le => (t, t + 1.0),
                };
                let value = super::go_format::go_number(if holds { yes } else { no });
                (&s.metric, &s.matchers, format!("{value}+0x{STEPS}"))
            }
            // Validation allows no other kind.
            _ => continue,
        };
        let labels = series_labels(model, metric, matchers);
        out.push(InputSeries { series: series(metric, &labels), values });
    }
    out
}
