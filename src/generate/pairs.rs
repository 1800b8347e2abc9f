//! Warning/critical pairs: while the critical half of a pair fires, Alertmanager mutes its
//! warning twin of the same series, and an SLO's page mutes its ticket.

use std::collections::BTreeSet;

use super::alerts;
use super::output::alertmanager::InhibitRule;
use super::promql::{escape, kept_labels, target_matchers};
use crate::spec::{Model, Severity};

/// Labels that name a warning/critical pair; the series labels are added per pair.
pub const PAIR_LABELS: [&str; 2] = ["alertname", "signal"];

/// `severity="..."`, as routes and inhibit rules match it.
pub fn severity_matcher(severity: Severity) -> String {
    format!("severity=\"{}\"", severity.as_str())
}

/// One rule per warning/critical pair: the critical mutes its warning twin of the same series.
/// Alertmanager treats a label missing on both sides as equal, so listing every label either half
/// can carry is exact.
pub fn pair_inhibitions(model: &Model) -> Vec<InhibitRule> {
    let mut out = Vec::new();
    for signal in model.enabled_signals() {
        let alerts: Vec<_> = alerts::of_signal(signal).collect();
        let names: BTreeSet<&str> = alerts.iter().map(|a| a.name.as_str()).collect();
        for name in names {
            let twins: Vec<_> = alerts.iter().filter(|a| a.name == name).collect();
            let has = |s: Severity| twins.iter().any(|a| a.severity == s);
            if !(has(Severity::Critical) && has(Severity::Warning)) {
                continue;
            }
            let kept = twins.iter().flat_map(|twin| kept_labels(model, &twin.condition));
            out.push(pair_rule(model, name, &signal.signal.id, kept));
        }
    }
    // An SLO's page mutes its ticket: one burn, one notification. Its ratio is the fleet's, so
    // its series carry the scrape target's labels but no `instance`; equal on those compares
    // two empty values, as Alertmanager does.
    for (signal, slo) in model.slos() {
        out.push(pair_rule(model, &slo.alert, &signal.signal.id, std::iter::empty()));
    }
    out
}

/// The critical `alert` of `signal` mutes its warning twin when every label either can carry is
/// equal: the pair's names, the target's and instance labels, the database label and `kept`.
fn pair_rule(model: &Model, alert: &str, signal: &str, kept: impl Iterator<Item = String>) -> InhibitRule {
    let mut series: BTreeSet<String> = model.config.generate.alertmanager.instance_labels.iter().cloned().collect();
    series.extend(target_matchers(model).into_keys());
    series.extend(model.database_label().map(str::to_string));
    series.extend(kept);
    let mut equal: Vec<String> = PAIR_LABELS.iter().map(|l| l.to_string()).collect();
    equal.extend(series.into_iter().filter(|l| !PAIR_LABELS.contains(&l.as_str())));
    let pair = |severity: Severity| {
        vec![
            format!("alertname=\"{}\"", escape(alert)),
            format!("signal=\"{}\"", escape(signal)),
            severity_matcher(severity),
        ]
    };
    InhibitRule { source_matchers: pair(Severity::Critical), target_matchers: pair(Severity::Warning), equal }
}
