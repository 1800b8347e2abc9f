//! A signal's service level objective: the runbook's target ("success rate > 99%") as the share of
//! events that must be good over 30 days. Part of the spec model; every field's `///` doc is the
//! user documentation of the spec format.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::alert::{Basis, Selector, Severity};
use crate::spec::duration::PromDuration;
use crate::spec::yes;

/// The runbook's target for one kind of event, stated once. From it `generate` derives the error
/// ratio recorded over 5m, 30m, 1h, 6h, 3d and the 30-day period, the SRE workbook's
/// multi-window, multi-burn-rate alerts (two paging tiers: 2% of the budget burnt in an hour, 5% in
/// six hours; one ticket tier: 10% in three days), their promtool tests and an error budget row on
/// the pack's dashboard.
#[derive(Clone, Debug, Deserialize, JsonSchema, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    /// Name of the burn-rate alerts (CamelCase, the shared `Integration` prefix, at most 40
    /// characters): the two paging tiers are `critical`, the slow one `warning`.
    pub alert: String,
    /// Share of events that must be good over the 30-day period (`0.99`). Above 0.9306: below it
    /// the fastest tier (14.4 times the budget) would need more than every event to fail.
    pub objective: f64,
    /// The bad events: a counter and the label values that mark an event bad
    /// (`{metric: m_total, matchers: {result: error}}`).
    pub errors: Selector,
    /// Every event, good or bad: a counter (matchers optional).
    pub total: Selector,
    /// What one event is, in the plural, for summaries and descriptions (`Graph API calls`).
    pub events: String,
    /// Fewest events in a tier's long window for that tier to fire, so a burn of two requests
    /// out of three pages nobody.
    #[serde(default)]
    pub min_events: f64,
    /// Set `false` to drop the SLO's rules, alerts and dashboard row.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Where the numbers come from: `{objective: B, errors: B, min_events: B}`, each B
    /// `{runbook: {section, quote}}` or `{chosen: why}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basis: Option<SloBasis>,
}

/// Where an SLO's numbers come from.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SloBasis {
    /// The objective: the runbook's target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objective: Option<Basis>,
    /// Which events count as bad.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Basis>,
    /// The smallest number of events that may fire a tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_events: Option<Basis>,
}

impl SloBasis {
    /// The aspects stated, by name, in the order the catalog shows them.
    pub fn stated(&self) -> Vec<(&'static str, &Basis)> {
        [("objective", &self.objective), ("errors", &self.errors), ("min_events", &self.min_events)]
            .into_iter()
            .filter_map(|(name, b)| b.as_ref().map(|b| (name, b)))
            .collect()
    }
}

/// One tier of burn-rate alerting: it fires while the error ratio over both windows is above
/// `factor` times the error budget, for `for_`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BurnTier {
    /// The window that says the burn is big enough to matter.
    pub long: PromDuration,
    /// The window that says it is still going on (a twelfth of the long one), so the alert
    /// resolves soon after the errors stop.
    pub short: PromDuration,
    /// Burn rate: how many times faster than the budget lasts the period.
    pub factor: f64,
    /// How long both windows must burn before it fires.
    pub for_: PromDuration,
    /// `critical` pages, `warning` opens a ticket.
    pub severity: Severity,
}

/// The SLO period every objective is over, and the budget the tiers' factors divide.
pub const SLO_PERIOD: PromDuration = PromDuration::from_secs(30 * 86_400);

const MIN: u64 = 60;
const HOUR: u64 = 3600;

/// The SRE workbook's tiers for a 30-day SLO ("Alerting on SLOs", table 5-8): 2% of the budget in
/// an hour pages, 5% in six hours pages, 10% in three days opens a ticket. `for` as Pyrra sets it
/// (half the short window, at most three hours).
pub const BURN_TIERS: [BurnTier; 3] = [
    BurnTier {
        long: PromDuration::from_secs(HOUR),
        short: PromDuration::from_secs(5 * MIN),
        factor: 14.4,
        for_: PromDuration::from_secs(2 * MIN),
        severity: Severity::Critical,
    },
    BurnTier {
        long: PromDuration::from_secs(6 * HOUR),
        short: PromDuration::from_secs(30 * MIN),
        factor: 6.0,
        for_: PromDuration::from_secs(15 * MIN),
        severity: Severity::Critical,
    },
    BurnTier {
        long: PromDuration::from_secs(72 * HOUR),
        short: PromDuration::from_secs(6 * HOUR),
        factor: 1.0,
        for_: PromDuration::from_secs(3 * HOUR),
        severity: Severity::Warning,
    },
];

impl Slo {
    /// The error budget: the share of events allowed to be bad (`1 - objective`), rounded to
    /// twelve digits so `0.99` gives `0.01`, not `0.010000000000000009`.
    pub fn budget(&self) -> f64 {
        let b = 1.0 - self.objective;
        (b * 1e12).round() / 1e12
    }

    /// The error ratio over which `tier` fires: `factor` times the budget, rounded as
    /// [`Slo::budget`].
    pub fn burn_threshold(&self, tier: &BurnTier) -> f64 {
        (tier.factor * self.budget() * 1e12).round() / 1e12
    }

    /// The tiers' windows, shortest first: each has a record of the error ratio (and so does
    /// [`SLO_PERIOD`], for the budget left).
    pub fn windows() -> Vec<PromDuration> {
        let mut out: Vec<PromDuration> = BURN_TIERS.iter().flat_map(|t| [t.long, t.short]).collect();
        out.sort();
        out.dedup();
        out
    }
}

/// A window as record names and range selectors write it: in its largest whole unit up to days
/// (`30d`, not `4w2d`), so a record's name says its range at a glance.
pub fn window_text(window: PromDuration) -> String {
    let secs = window.0.as_secs();
    for (unit, size) in [("d", 86_400), ("h", HOUR), ("m", MIN)] {
        if secs > 0 && secs.is_multiple_of(size) {
            return format!("{}{unit}", secs / size);
        }
    }
    window.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_and_thresholds_are_the_decimal_numbers() {
        let slo: Slo = serde_saphyr::from_str(
            "{alert: IntegrationX, objective: 0.99, errors: {metric: a_total}, total: {metric: a_total}, events: calls}",
        )
        .unwrap();
        assert_eq!(slo.budget(), 0.01);
        let thresholds: Vec<f64> = BURN_TIERS.iter().map(|t| slo.burn_threshold(t)).collect();
        assert_eq!(thresholds, [0.144, 0.06, 0.01]);
        let windows: Vec<String> = Slo::windows().iter().map(|w| window_text(*w)).collect();
        assert_eq!(windows, ["5m", "30m", "1h", "6h", "3d"]);
        assert_eq!(window_text(SLO_PERIOD), "30d");
    }
}
