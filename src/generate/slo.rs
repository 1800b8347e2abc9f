//! SLOs: from a signal's `slo` (the runbook's target, stated once), the error ratio recorded over
//! every burn tier's windows and over the 30-day period, the SRE workbook's multi-window,
//! multi-burn-rate alerts. The pack dashboard's error budget row is [`super::slo_panels`], their
//! promtool tests [`super::slo_tests`].
//!
//! The ratio is the fleet's: counters summed over every exporter of the job, as an objective is
//! about the service, not one host. A tier fires while the error ratio over its long window and
//! over its short window are both above `factor` times the budget, and the long window held at
//! least `min_events` events.

use std::collections::BTreeMap;

use super::error::{GenerateError, Item, Subject};
use super::go_format::{go_number, percentage};
use super::output::grafana::PanelLinks;
use super::output::rules::{Record, Rule, RuleGroup};
use super::promql::{InvalidQuery, instance_labels, metric_names, selector, target_matchers, target_text, try_inject};
use crate::spec::{
    BURN_TIERS, BurnTier, LabelDef, Model, PromDuration, ResolvedSignal, SLO_PERIOD, Selector, Slo, window_text,
};

/// Labels that tell an SLO's tiers apart: its two paging tiers share name and severity.
pub const LONG_WINDOW: &str = "long_window";
pub const SHORT_WINDOW: &str = "short_window";

/// `job:<events>_errors:ratio_rate<window>`, `<events>` being the total counter's name without
/// `_total` (Prometheus' `level:metric:operations`; the fleet's ratio keeps `job`).
pub fn record_name(slo: &Slo, window: PromDuration) -> String {
    let events = slo.total.metric.strip_suffix("_total").unwrap_or(&slo.total.metric);
    format!("job:{events}_errors:ratio_rate{}", window_text(window))
}

/// The counter's own labels and the ones that tell exporters apart: what the fleet's sum drops.
fn summed_away(model: &Model, metric: &str) -> Vec<String> {
    let own: Vec<String> = model
        .metric(metric)
        .map(|m| m.labels.iter().map(LabelDef::name).map(str::to_string).collect())
        .unwrap_or_default();
    own.into_iter().chain(instance_labels(model)).collect()
}

fn sum_of(model: &Model, function: &str, events: &Selector, window: &str) -> String {
    let labels = summed_away(model, &events.metric).join(", ");
    format!("sum without ({labels}) ({function}({}[{window}]))", selector(&events.metric, &events.matchers))
}

/// The fleet's error ratio over `window`, unscoped. A window without a single error is 0, not
/// missing, when the error counter has no series yet (labels it has not seen).
pub fn ratio_expr(model: &Model, slo: &Slo, window: PromDuration) -> String {
    let w = window_text(window);
    let errors = sum_of(model, "rate", &slo.errors, &w);
    let total = sum_of(model, "rate", &slo.total, &w);
    format!("(\n{errors}\nor\n0 * {total}\n)\n/\n{total}")
}

fn records(
    model: &Model,
    signal: &ResolvedSignal,
    slo: &Slo,
    windows: &[PromDuration],
) -> Result<Vec<Record>, GenerateError> {
    let names = metric_names(model);
    let target = target_text(model);
    windows
        .iter()
        .map(|w| {
            let record = record_name(slo, *w);
            let expr = try_inject(&ratio_expr(model, slo, *w), &names, &target)
                .map_err(|e| GenerateError::query(Subject::of_signal(signal, Item::Record(record.clone())), e))?;
            Ok(Record { record, expr, labels: BTreeMap::new() })
        })
        .collect()
}

/// The error ratio a tier compares, as `14.4%`.
pub fn percent(v: f64) -> String {
    percentage(v)
}

/// `Graph API calls` -> `Graph API calls`; `proactive refreshes` -> `Proactive refreshes`.
fn capitalised(text: &str) -> String {
    let mut chars = text.trim().chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// One plain sentence per tier (summaries take no templating).
pub fn summary(slo: &Slo, tier: &BurnTier) -> String {
    let events = capitalised(&slo.events);
    let objective = percent(slo.objective);
    if tier.factor > 1.0 {
        format!("{events} fail {} times as often as the {objective} objective allows.", go_number(tier.factor))
    } else {
        format!("{events} fail more often than the {objective} objective allows.")
    }
}

/// The description with `value` (the long window's error ratio, a template in rules, its
/// rendering in tests) filled in.
pub fn describe(slo: &Slo, tier: &BurnTier, value: &str) -> String {
    let pace = if tier.factor > 1.0 { format!("{} times", go_number(tier.factor)) } else { "above".to_string() };
    let days = SLO_PERIOD.as_secs_f64() / 86_400.0 / tier.factor;
    let days = format!("{days:.1}");
    format!(
        "{value} of {} failed over the last {} and more than {} over the last {}: {pace} the {} the {} objective lets fail, a pace that spends the 30-day error budget in {} days.",
        slo.events.trim(),
        window_text(tier.long),
        percent(slo.burn_threshold(tier)),
        window_text(tier.short),
        percent(slo.budget()),
        percent(slo.objective),
        days.trim_end_matches(".0"),
    )
}

/// The labels of a tier's alerts; the scrape target's come from the expression.
pub fn labels(signal: &ResolvedSignal, tier: &BurnTier) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("severity".to_string(), tier.severity.as_str().to_string()),
        ("signal".to_string(), signal.signal.id.clone()),
        (LONG_WINDOW.to_string(), window_text(tier.long)),
        (SHORT_WINDOW.to_string(), window_text(tier.short)),
    ])
}

/// `runbook_url`, and `dashboard_url` pointing at the SLO's burn-rate panel.
pub fn links(panels: &PanelLinks, signal: &ResolvedSignal) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(url) = &signal.runbook_url {
        out.insert("runbook_url".to_string(), url.clone());
    }
    if let Some(url) = panels.slo_url(signal) {
        out.insert("dashboard_url".to_string(), url.to_string());
    }
    out
}

/// The tier's expression: both windows above the burn, and enough events in the long one.
pub fn tier_expr(model: &Model, slo: &Slo, tier: &BurnTier) -> Result<String, InvalidQuery> {
    let target = target_matchers(model);
    let threshold = go_number(slo.burn_threshold(tier));
    let long = selector(&record_name(slo, tier.long), &target);
    let short = selector(&record_name(slo, tier.short), &target);
    let mut expr = format!("{long} > {threshold}\nand\n{short} > {threshold}");
    if slo.min_events > 0.0 {
        let events = sum_of(model, "increase", &slo.total, &window_text(tier.long));
        let events = try_inject(&events, &metric_names(model), &target_text(model))?;
        expr.push_str(&format!("\nand\n{events} >= {}", go_number(slo.min_events)));
    }
    Ok(expr)
}

fn tier_rule(
    model: &Model,
    panels: &PanelLinks,
    signal: &ResolvedSignal,
    slo: &Slo,
    tier: &BurnTier,
) -> Result<Rule, GenerateError> {
    let expr = tier_expr(model, slo, tier)
        .map_err(|e| GenerateError::query(Subject::of_signal(signal, Item::Alert(slo.alert.clone())), e))?;
    let mut annotations = BTreeMap::from([
        ("summary".to_string(), summary(slo, tier)),
        ("description".to_string(), describe(slo, tier, "{{ $value | humanizePercentage }}")),
    ]);
    annotations.extend(links(panels, signal));
    Ok(Rule {
        alert: slo.alert.clone(),
        expr,
        for_: (!tier.for_.0.is_zero()).then(|| tier.for_.to_string()),
        keep_firing_for: None,
        labels: labels(signal, tier),
        annotations,
    })
}

/// `integration-exporter.<signal id>.slo`: one group per SLO (six records, three alerts), so no
/// group outgrows the 20 rules linters allow, and each alert reads the records its own group
/// has just written.
pub fn group_name(signal: &ResolvedSignal) -> String {
    format!("integration-exporter.{}.slo", signal.signal.id)
}

/// The group of one SLO: the error ratio over every tier's windows and over the period (for the
/// budget left; reading 30 days of a few counters each evaluation is cheap next to a second group
/// on its own interval, whose rules stay unevaluated for minutes after a reload), then the tiers'
/// alerts. A pack's SLO groups are a file apart from its alerts (`alerts/<pack>.slo.rules.yml`), so
/// their promtool tests, which need three days and more of input, evaluate only these rules
/// minute by minute.
pub fn group(
    model: &Model,
    panels: &PanelLinks,
    signal: &ResolvedSignal,
    slo: &Slo,
) -> Result<RuleGroup, GenerateError> {
    let windows: Vec<PromDuration> = Slo::windows().into_iter().chain([SLO_PERIOD]).collect();
    Ok(RuleGroup {
        name: group_name(signal),
        records: records(model, signal, slo, &windows)?,
        rules: BURN_TIERS.iter().map(|t| tier_rule(model, panels, signal, slo, t)).collect::<Result<_, _>>()?,
    })
}
