//! The rule of one of the spec's alerts: severity, summary, a description quoting its threshold,
//! a runbook link and the link to its panel. The plan ([`super::plan`]) asks once per alert.

use std::collections::BTreeMap;

use super::error::{GenerateError, Item, Subject};
use super::go_format::{threshold, value_template};
use super::output::grafana::PanelLinks;
use super::output::rules::Rule;
use super::promql::alert_expr;
use crate::spec::{Alert, Model, ResolvedSignal};

/// `{value}`, `{threshold}`, `{window}`, `{for}` and `{label:NAME}` filled; `value` and `label`
/// give the template (in rules) or its rendering (in tests).
pub fn describe(alert: &Alert, value: &str, label: &dyn Fn(&str) -> String) -> String {
    let window = alert.condition.window().map(|w| w.to_string()).unwrap_or_default();
    let mut description = alert.description.clone();
    // monitoring-mixins: every description names what fired. An `absent` alert has no value,
    // and its only label is the scrape job its selector names.
    if matches!(alert.condition, crate::spec::Condition::Absent(_))
        && !description.contains("{value}")
        && !description.contains("{label:")
    {
        description = format!("{} (scrape job {{label:job}})", description.trim_end());
    }
    let mut text = description
        .replace("{value}", value)
        .replace("{threshold}", &threshold(alert.unit, alert.threshold))
        .replace("{window}", &window)
        .replace("{for}", &alert.for_.to_string());
    while let Some(start) = text.find("{label:") {
        let Some(len) = text[start..].find('}') else { break };
        let name = text[start + 7..start + len].to_string();
        text.replace_range(start..start + len + 1, &label(&name));
    }
    text
}

/// `runbook_url` and `dashboard_url` (the panel that shows the alert's signal) of an alert.
pub fn annotation_links(panels: &PanelLinks, signal: &ResolvedSignal) -> BTreeMap<String, String> {
    let mut links = BTreeMap::new();
    if let Some(url) = &signal.runbook_url {
        links.insert("runbook_url".to_string(), url.clone());
    }
    if let Some(url) = panels.url(signal) {
        links.insert("dashboard_url".to_string(), url.to_string());
    }
    links
}

pub fn labels(signal: &ResolvedSignal, alert: &Alert) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("severity".to_string(), alert.severity.as_str().to_string()),
        ("signal".to_string(), signal.signal.id.clone()),
    ])
}

pub fn rule(model: &Model, panels: &PanelLinks, signal: &ResolvedSignal, alert: &Alert) -> Result<Rule, GenerateError> {
    let expr = alert_expr(model, signal, alert)
        .map_err(|e| GenerateError::query(Subject::of_signal(signal, Item::Alert(alert.name.clone())), e))?;
    let mut annotations = BTreeMap::from([
        ("summary".to_string(), alert.summary.trim().to_string()),
        (
            "description".to_string(),
            describe(alert, value_template(alert.unit), &|label| format!("{{{{ $labels.{label} }}}}")),
        ),
    ]);
    annotations.extend(annotation_links(panels, signal));
    Ok(Rule {
        alert: alert.name.clone(),
        expr,
        for_: (!alert.for_.0.is_zero()).then(|| alert.for_.to_string()),
        keep_firing_for: super::replicas::keep_firing_for(model, signal),
        labels: labels(signal, alert),
        annotations,
    })
}
