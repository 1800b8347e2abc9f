//! Prometheus rule files: one group per pack, every alert with severity, summary, a description
//! quoting its threshold, and a runbook link.

use std::collections::BTreeMap;

use serde::Serialize;

use super::dashboards::PanelLinks;
use super::humanize::{threshold, value_template};
use super::promql::alert_expr;
use crate::spec::{Alert, Model, ResolvedSignal};

#[derive(Serialize)]
pub struct RuleFile {
    pub groups: Vec<RuleGroup>,
}

#[derive(Serialize)]
pub struct RuleGroup {
    pub name: String,
    pub rules: Vec<Rule>,
}

#[derive(Serialize, Clone)]
pub struct Rule {
    pub alert: String,
    pub expr: String,
    #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// Alerts of one pack (or of the user's own signals when `pack` is `None`).
pub fn alerts_of<'a>(model: &'a Model, pack: Option<&'a str>) -> impl Iterator<Item = (&'a ResolvedSignal, &'a Alert)> {
    model
        .enabled_signals()
        .filter(move |s| s.pack.as_deref() == pack)
        .flat_map(|s| s.signal.alerts.iter().filter(|a| a.enabled).map(move |a| (s, a)))
}

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

pub fn rule(model: &Model, panels: &PanelLinks, signal: &ResolvedSignal, alert: &Alert) -> Rule {
    let mut annotations = BTreeMap::from([
        ("summary".to_string(), alert.summary.trim().to_string()),
        (
            "description".to_string(),
            describe(alert, value_template(alert.unit), &|label| format!("{{{{ $labels.{label} }}}}")),
        ),
    ]);
    annotations.extend(annotation_links(panels, signal));
    Rule {
        alert: alert.name.clone(),
        expr: alert_expr(model, alert),
        for_: (!alert.for_.0.is_zero()).then(|| alert.for_.to_string()),
        labels: labels(signal, alert),
        annotations,
    }
}

pub fn group_name(pack: Option<&str>) -> String {
    format!("integration-exporter.{}", pack.unwrap_or("custom"))
}

/// The pack's alerts, then the health alerts of its sources.
pub fn rule_file(model: &Model, panels: &PanelLinks, pack: Option<&str>) -> RuleFile {
    let mut rules: Vec<Rule> = alerts_of(model, pack).map(|(s, a)| rule(model, panels, s, a)).collect();
    if !rules.is_empty() {
        rules.extend(super::source_health::alerts_of(model, pack).into_iter().map(|h| h.rule));
    }
    RuleFile { groups: vec![RuleGroup { name: group_name(pack), rules }] }
}

/// `alerts/exporter.rules.yml`: the exporter's scrape target down.
pub fn exporter_rule_file(model: &Model) -> RuleFile {
    RuleFile {
        groups: vec![RuleGroup {
            name: group_name(Some("exporter")),
            rules: vec![super::source_health::exporter_down(model).rule],
        }],
    }
}
