//! promtool unit tests of every SLO burn tier: quiet one step below its burn, pending before its
//! `for` and firing after it one step above, quiet while only its short window burns (the long
//! one below), resolved once its short window is clean while the long one still burns, and quiet
//! under `min_events`. Inputs are error and event counters of piecewise-constant rates; which
//! tiers fire at each evaluation is worked out here the way Prometheus does (each window's
//! increase, `for` held at every evaluation), so every case states the exact set of alerts.
//! The slowest tier's cases take the longest (its `for` is three hours): about 2,000 minutes of
//! evaluation per SLO, which is why the SLO rules are a file of their own.

use std::collections::BTreeMap;

use super::go_format::{go_number, percentage};
use super::output::grafana::PanelLinks;
use super::output::promtool::{AlertRuleTest, ExpAlert, InputSeries, TestCase};
use crate::spec::{BURN_TIERS, BurnTier, LabelDef, Model, ResolvedSignal, Selector, Slo, window_text};

/// Events a minute in the cases that are about the ratio, not the volume.
const EVENTS_PER_MINUTE: f64 = 1000.0;

/// Error and event counters over time: segments of (minutes, errors a minute, events a minute).
#[derive(Clone, Debug)]
struct Shape(Vec<(u64, f64, f64)>);

impl Shape {
    fn constant(minutes: u64, ratio: f64, events: f64) -> Self {
        Shape(vec![(minutes, ratio * events, events)])
    }

    fn then(mut self, minutes: u64, ratio: f64, events: f64) -> Self {
        self.0.push((minutes, ratio * events, events));
        self
    }

    fn minutes(&self) -> u64 {
        self.0.iter().map(|(n, _, _)| n).sum()
    }

    /// (errors, events) counted from minute 0 to minute `t`.
    fn counted(&self, t: f64) -> (f64, f64) {
        let (mut errors, mut events, mut from) = (0.0, 0.0, 0.0);
        for &(n, e, v) in &self.0 {
            let span = (t - from).clamp(0.0, n as f64);
            errors += e * span;
            events += v * span;
            from += n as f64;
        }
        (errors, events)
    }

    /// The counters' increase over the `window` minutes up to `t` (rates need two samples).
    fn increase(&self, window: f64, t: f64) -> Option<(f64, f64)> {
        if t < 1.0 {
            return None;
        }
        let (e1, v1) = self.counted(t);
        let (e0, v0) = self.counted((t - window).max(0.0));
        Some((e1 - e0, v1 - v0))
    }

    fn ratio(&self, window: f64, t: f64) -> Option<f64> {
        self.increase(window, t).filter(|(_, v)| *v > 0.0).map(|(e, v)| e / v)
    }

    /// promtool's notation for one counter: `0+<rate>x<n>` for the first segment, each further
    /// segment going on from where the one before stopped.
    fn values(&self, errors: bool) -> String {
        let mut parts = Vec::new();
        let mut value = 0.0;
        for (i, &(n, e, v)) in self.0.iter().enumerate() {
            let rate = if errors { e } else { v };
            if i == 0 {
                parts.push(format!("0+{}x{n}", go_number(rate)));
            } else if n > 0 {
                parts.push(format!("{}+{}x{}", go_number(value + rate), go_number(rate), n - 1));
            }
            value += rate * n as f64;
        }
        parts.join(" ")
    }
}

fn minutes(d: crate::spec::PromDuration) -> f64 {
    d.as_secs_f64() / 60.0
}

/// Whether the tier's condition holds at minute `t`.
fn burning(slo: &Slo, tier: &BurnTier, shape: &Shape, t: f64) -> bool {
    let threshold = slo.burn_threshold(tier);
    let above = |w| shape.ratio(minutes(w), t).is_some_and(|r| r > threshold);
    let enough = slo.min_events <= 0.0
        || shape.increase(minutes(tier.long), t).is_some_and(|(_, events)| events >= slo.min_events);
    above(tier.long) && above(tier.short) && enough
}

/// Whether the tier fires at minute `t`: its condition held at every evaluation of its `for`.
fn fires(slo: &Slo, tier: &BurnTier, shape: &Shape, t: f64) -> bool {
    let held = minutes(tier.for_);
    if t - held < 1.0 {
        return false;
    }
    let mut at = t - held;
    while at <= t {
        if !burning(slo, tier, shape, at) {
            return false;
        }
        at += 1.0;
    }
    true
}

/// Labels of a test series of `metric`: the scrape target's, then every label of the metric,
/// from the selector or the first of its values.
fn series_labels(model: &Model, selector: &Selector) -> BTreeMap<String, String> {
    let mut labels = super::promql::target_matchers(model);
    labels.insert("instance".to_string(), "exporter:29187".to_string());
    if let Some(def) = model.metric(&selector.metric) {
        for label in &def.labels {
            let value = match label {
                LabelDef::Fixed(f) => f.values.first().cloned().unwrap_or_default(),
                LabelDef::Name(_) => "example".to_string(),
            };
            labels.insert(label.name().to_string(), value);
        }
    }
    labels.extend(selector.matchers.iter().map(|(k, v)| (k.clone(), v.clone())));
    labels
}

/// The counters a shape puts in: the errors, and the events (all of them on a counter of their
/// own; the good ones beside the errors when errors are a part of the same counter).
fn input(model: &Model, slo: &Slo, shape: &Shape) -> Vec<InputSeries> {
    let series =
        |selector: &Selector, labels: &BTreeMap<String, String>| super::promql::selector(&selector.metric, labels);
    let errors = series_labels(model, &slo.errors);
    let mut out = vec![InputSeries { series: series(&slo.errors, &errors), values: shape.values(true) }];
    if slo.errors.metric != slo.total.metric {
        let total = series_labels(model, &slo.total);
        out.push(InputSeries { series: series(&slo.total, &total), values: shape.values(false) });
        return out;
    }
    // The good events: another value of a label the errors select on.
    let mut good = errors.clone();
    let def = model.metric(&slo.errors.metric);
    for (label, value) in slo.errors.matchers.iter().filter(|(k, _)| !slo.total.matchers.contains_key(*k)) {
        let other = def
            .and_then(|d| d.labels.iter().find(|l| l.name() == label))
            .and_then(LabelDef::fixed_values)
            .and_then(|values| values.iter().find(|v| *v != value).cloned())
            .unwrap_or_else(|| format!("not_{value}"));
        good.insert(label.clone(), other);
    }
    let good_shape = Shape(shape.0.iter().map(|&(n, e, v)| (n, 0.0, v - e)).collect());
    out.push(InputSeries { series: series(&slo.total, &good), values: good_shape.values(false) });
    out
}

/// Every tier of the SLO firing at minute `t`, as promtool must find them.
fn expected(
    model: &Model,
    panels: &PanelLinks,
    signal: &ResolvedSignal,
    slo: &Slo,
    shape: &Shape,
    t: f64,
) -> Vec<ExpAlert> {
    BURN_TIERS
        .iter()
        .filter(|tier| fires(slo, tier, shape, t))
        .map(|tier| {
            let mut exp_labels = super::promql::target_matchers(model);
            exp_labels.extend(super::slo::labels(signal, tier));
            let value = percentage(shape.ratio(minutes(tier.long), t).unwrap_or(f64::NAN));
            let mut exp_annotations = BTreeMap::from([
                ("summary".to_string(), super::slo::summary(slo, tier)),
                ("description".to_string(), super::slo::describe(slo, tier, &value)),
            ]);
            exp_annotations.extend(super::slo::links(panels, signal));
            ExpAlert { exp_labels, exp_annotations }
        })
        .collect()
}

/// The cases of one tier, each checked at the given minutes.
fn tier_cases(slo: &Slo, tier: &BurnTier) -> Vec<(String, Shape, Vec<f64>)> {
    let budget = slo.budget();
    let burn = slo.burn_threshold(tier);
    let (long, short, held) = (minutes(tier.long), minutes(tier.short), minutes(tier.for_));
    let step = budget / 10.0;
    let fire_at = 1.0 + held;
    let mut cases = Vec::new();

    let below = Shape::constant((fire_at + 10.0) as u64, burn - step, EVENTS_PER_MINUTE);
    cases.push(("quiet one step below its burn".to_string(), below, vec![fire_at, fire_at + 5.0]));

    let above = Shape::constant((fire_at + 10.0) as u64, burn + step, EVENTS_PER_MINUTE);
    cases.push((
        "pending before `for`, firing after it one step above its burn".to_string(),
        above,
        vec![fire_at - 1.0, fire_at],
    ));

    // A quarter over the burn for as long as it takes to fire on the short window alone, after
    // half that long without errors: the long window holds five sixths of the burn.
    let spell = short + held;
    let burst = Shape::constant((spell / 2.0).ceil() as u64, 0.0, EVENTS_PER_MINUTE).then(
        spell as u64,
        (1.25 * burn).min(1.0),
        EVENTS_PER_MINUTE,
    );
    let end = burst.minutes() as f64;
    cases.push(("quiet while only its short window burns".to_string(), burst, vec![end]));

    // A burn that fired, then no errors: one short window later it has resolved, while the long
    // window still holds the burn (a longer burn where the long window would forget it).
    let reset_after = |stop: f64| {
        let ratio = (2.0 * burn * (stop + short) / stop).min(1.0);
        Shape::constant(stop as u64, ratio, EVENTS_PER_MINUTE).then(short as u64 + 1, 0.0, EVENTS_PER_MINUTE)
    };
    let mut stop = fire_at + 5.0;
    for _ in 0..20 {
        let shape = reset_after(stop);
        if shape.ratio(long, stop + short + 1.0).is_some_and(|r| r > 1.2 * burn) {
            break;
        }
        stop += short;
    }
    cases.push((
        "resolved one short window after the errors stop".to_string(),
        reset_after(stop),
        vec![stop, stop + short + 1.0],
    ));

    if slo.min_events > 0.0 {
        // Every event fails, but the long window holds half the events it needs when checked:
        // spread over the whole input while that fits in the window, so a guard of one event
        // would have fired long before.
        let at = fire_at + 10.0;
        let rate = slo.min_events / 2.0 / at.min(long);
        let few = Shape::constant(at as u64, 1.0, rate);
        cases.push(("quiet below the minimum number of events".to_string(), few, vec![at]));
    }
    cases
}

/// The promtool cases of every tier of one SLO.
pub fn cases(model: &Model, panels: &PanelLinks, signal: &ResolvedSignal, slo: &Slo) -> Vec<TestCase> {
    let mut out = Vec::new();
    for tier in &BURN_TIERS {
        let name = format!(
            "{} ({}, {} and {} above {} times the budget)",
            slo.alert,
            tier.severity.as_str(),
            window_text(tier.long),
            window_text(tier.short),
            go_number(tier.factor)
        );
        for (label, shape, evals) in tier_cases(slo, tier) {
            out.push(TestCase {
                name: format!("{name}: {label}"),
                interval: "1m".into(),
                input_series: input(model, slo, &shape),
                alert_rule_test: evals
                    .iter()
                    .map(|&t| AlertRuleTest {
                        eval_time: format!("{}m", t as u64),
                        alertname: slo.alert.clone(),
                        exp_alerts: expected(model, panels, signal, slo, &shape, t),
                    })
                    .collect(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slo(objective: f64, min_events: f64) -> Slo {
        serde_saphyr::from_str(&format!(
            "{{alert: IntegrationX, objective: {objective}, errors: {{metric: a_total, matchers: {{r: e}}}}, total: {{metric: a_total}}, events: calls, min_events: {min_events}}}"
        ))
        .unwrap()
    }

    /// Each case shows what it says, for the objectives of the packs and a stricter one.
    #[test]
    fn every_case_proves_what_it_names() {
        for objective in [0.95, 0.99, 0.999] {
            let slo = slo(objective, 20.0);
            for (i, tier) in BURN_TIERS.iter().enumerate() {
                let cases = tier_cases(&slo, tier);
                let at = |n: usize| (&cases[n].1, &cases[n].2);
                let (below, t) = at(0);
                assert!(t.iter().all(|&t| !fires(&slo, tier, below, t)), "{objective} tier {i}: below");
                let (above, t) = at(1);
                assert!(!fires(&slo, tier, above, t[0]) && fires(&slo, tier, above, t[1]), "{objective} tier {i}");
                let (burst, t) = at(2);
                let threshold = slo.burn_threshold(tier);
                assert!(!fires(&slo, tier, burst, t[0]), "{objective} tier {i}: burst fires");
                assert!(burst.ratio(minutes(tier.short), t[0]).unwrap() > threshold, "{objective} tier {i}");
                assert!(burst.ratio(minutes(tier.long), t[0]).unwrap() < threshold, "{objective} tier {i}");
                let (reset, t) = at(3);
                assert!(fires(&slo, tier, reset, t[0]), "{objective} tier {i}: the burn never fired");
                assert!(!fires(&slo, tier, reset, t[1]), "{objective} tier {i}: not resolved");
                assert!(reset.ratio(minutes(tier.long), t[1]).unwrap() > threshold, "{objective} tier {i}: long");
                let (few, t) = at(4);
                assert!(few.ratio(minutes(tier.long), t[0]).unwrap() > threshold, "{objective} tier {i}");
                assert!(!fires(&slo, tier, few, t[0]), "{objective} tier {i}: few events fire");
            }
        }
    }

    #[test]
    fn values_continue_each_segment_from_the_last() {
        let shape = Shape::constant(3, 0.5, 10.0).then(2, 0.0, 10.0);
        assert_eq!(shape.values(true), "0+5x3 15+0x1");
        assert_eq!(shape.values(false), "0+10x3 40+10x1");
        assert_eq!(shape.counted(5.0), (15.0, 50.0));
    }
}
