//! `alertmanager/alertmanager.yml`: where the generated alerts go. `critical` pages, `warning`
//! opens a ticket, `info` only shows (receiver `null`, which sends nothing). Alerts group by
//! alert name and signal, and a firing critical inhibits the warning of its warning/critical pair
//! for the same series only: every label the alert carries (its signal, the scrape target's
//! labels, the labels its expression keeps such as `platform`) must be equal, so one expired
//! token never hides another platform's warning.

use serde::Serialize;

use std::collections::BTreeSet;

use crate::spec::{Model, Severity};

/// Receiver names, fixed so routes, inhibition and tests agree on them.
pub const PAGE: &str = "page";
pub const TICKET: &str = "ticket";
pub const NULL: &str = "null";

/// Labels that name a warning/critical pair; the series labels are added per pair.
pub const PAIR_LABELS: [&str; 2] = ["alertname", "signal"];

/// The receiver alerts of `severity` are routed to.
pub fn receiver(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => PAGE,
        Severity::Warning => TICKET,
        Severity::Info => NULL,
    }
}

#[derive(Serialize)]
pub struct AlertmanagerConfig {
    pub route: Route,
    pub inhibit_rules: Vec<InhibitRule>,
    pub receivers: Vec<Receiver>,
}

#[derive(Serialize)]
pub struct Route {
    pub receiver: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub matchers: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub group_by: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_wait: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat_interval: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
}

#[derive(Serialize)]
pub struct InhibitRule {
    pub source_matchers: Vec<String>,
    pub target_matchers: Vec<String>,
    pub equal: Vec<String>,
}

#[derive(Serialize)]
pub struct Receiver {
    pub name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub webhook_configs: Vec<WebhookConfig>,
}

#[derive(Serialize)]
pub struct WebhookConfig {
    pub url: String,
    pub send_resolved: bool,
}

fn severity_matcher(severity: Severity) -> String {
    format!("severity=\"{}\"", severity.as_str())
}

fn child(severity: Severity) -> Route {
    Route {
        receiver: receiver(severity).to_string(),
        matchers: vec![severity_matcher(severity)],
        group_by: Vec::new(),
        group_wait: None,
        group_interval: None,
        repeat_interval: None,
        routes: Vec::new(),
    }
}

/// Whether the model has any alert, i.e. whether an Alertmanager configuration is worth writing.
pub fn has_alerts(model: &Model) -> bool {
    model.enabled_signals().any(|s| s.signal.alerts.iter().any(|a| a.enabled))
}

/// One rule per warning/critical pair: the critical mutes its warning twin of the same series.
/// Alertmanager treats a label missing on both sides as equal, so listing every label either half
/// can carry is exact.
pub fn pair_inhibitions(model: &Model) -> Vec<InhibitRule> {
    let mut out = Vec::new();
    for signal in model.enabled_signals() {
        let alerts: Vec<_> = signal.signal.alerts.iter().filter(|a| a.enabled).collect();
        let names: BTreeSet<&str> = alerts.iter().map(|a| a.name.as_str()).collect();
        for name in names {
            let twins: Vec<_> = alerts.iter().filter(|a| a.name == name).collect();
            let has = |s: Severity| twins.iter().any(|a| a.severity == s);
            if !(has(Severity::Critical) && has(Severity::Warning)) {
                continue;
            }
            let mut equal: Vec<String> = PAIR_LABELS.iter().map(|l| l.to_string()).collect();
            let mut series = BTreeSet::new();
            series.extend(model.config.generate.alertmanager.instance_labels.iter().cloned());
            series.extend(super::promql::target_matchers(model).into_keys());
            for twin in &twins {
                series.extend(super::promql::kept_labels(model, &twin.condition));
            }
            equal.extend(series.into_iter().filter(|l| !PAIR_LABELS.contains(&l.as_str())));
            let pair = |severity: Severity| {
                vec![
                    format!("alertname=\"{}\"", super::promql::escape(name)),
                    format!("signal=\"{}\"", super::promql::escape(&signal.signal.id)),
                    severity_matcher(severity),
                ]
            };
            out.push(InhibitRule {
                source_matchers: pair(Severity::Critical),
                target_matchers: pair(Severity::Warning),
                equal,
            });
        }
    }
    out
}

pub fn config(model: &Model) -> AlertmanagerConfig {
    let settings = &model.config.generate.alertmanager;
    let webhook = |url: &str| vec![WebhookConfig { url: url.to_string(), send_resolved: true }];
    AlertmanagerConfig {
        route: Route {
            // Anything not matched below (an alert without a known severity) still reaches a human.
            receiver: TICKET.to_string(),
            matchers: Vec::new(),
            group_by: settings.group_by.clone(),
            group_wait: Some(settings.group_wait.to_string()),
            group_interval: Some(settings.group_interval.to_string()),
            repeat_interval: Some(settings.repeat_interval.to_string()),
            routes: [Severity::Critical, Severity::Warning, Severity::Info].into_iter().map(child).collect(),
        },
        inhibit_rules: pair_inhibitions(model).into_iter().chain(super::source_health::inhibitions(model)).collect(),
        receivers: vec![
            Receiver { name: PAGE.to_string(), webhook_configs: webhook(&settings.page_webhook_url) },
            Receiver { name: TICKET.to_string(), webhook_configs: webhook(&settings.ticket_webhook_url) },
            Receiver { name: NULL.to_string(), webhook_configs: Vec::new() },
        ],
    }
}
