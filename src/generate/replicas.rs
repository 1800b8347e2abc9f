//! Rules that give one answer whichever replica leads. With `ha` on, a database's SQL series come
//! from its leader only, and move to another replica when the leader goes: the SQL alerts are
//! about the fleet (the spec's are `across_instances`, see `spec::resolve`; the query and
//! database health alerts aggregate away `instance` here), and a firing one outlasts the gap
//! while the standby takes over ([`keep_firing_for`]).

use crate::spec::{Model, PromDuration, ResolvedSignal};

/// Whether SQL series may come from any replica: `ha` elects one leader per database.
pub fn fleet_wide(model: &Model) -> bool {
    model.config.ha.enabled
}

/// Whether `signal`'s series move between replicas on a failover.
pub fn led(model: &Model, signal: &ResolvedSignal) -> bool {
    fleet_wide(model) && signal.signal.source.settings().needs_database()
}

/// One scrape and one rule evaluation at Prometheus' default intervals: what it takes a
/// standby's first series to reach an alert once the standby has them.
const SEEN_WITHIN_SECS: f64 = 120.0;

/// How long a firing SQL alert keeps firing without series: the leader's stop being scraped, the
/// standby takes the lock within `ha.retry`, runs its query within an interval (plus the query's
/// timeout) and is scraped and evaluated within [`SEEN_WITHIN_SECS`]. A real resolve comes that
/// much later; a firing alert never resolves and fires again through a failover. A quiet alert
/// needs nothing: no series is no value past its threshold, and a pending one starts its `for`
/// again on the new leader's series, so it fires late at worst, never falsely.
pub fn keep_firing_for(model: &Model, signal: &ResolvedSignal) -> Option<String> {
    gap_secs(model, signal).map(text)
}

/// The longest [`keep_firing_for`] of the model's SQL signals: what the database's own alerts
/// bridge.
pub fn longest_gap(model: &Model) -> Option<String> {
    model.enabled_signals().filter_map(|s| gap_secs(model, s)).max().map(text)
}

fn gap_secs(model: &Model, signal: &ResolvedSignal) -> Option<u64> {
    if !led(model, signal) {
        return None;
    }
    let schedule = signal.schedule()?;
    let gap = model.config.ha.retry.as_secs_f64()
        + schedule.interval.as_secs_f64()
        + schedule.timeout.as_secs_f64()
        + SEEN_WITHIN_SECS;
    Some(gap.ceil() as u64)
}

fn text(secs: u64) -> String {
    PromDuration::from_secs(secs).to_string()
}
