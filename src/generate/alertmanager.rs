//! `alertmanager/alertmanager.yml`: where the generated alerts go. `critical` pages, `warning`
//! opens a ticket, `info` only shows (receiver `null`, which sends nothing). Alerts group by
//! alert name and signal, and a firing critical inhibits the warning of its warning/critical pair
//! for the same series only: every label the alert carries (its signal, the scrape target's
//! labels, the labels its expression keeps such as `platform`) must be equal, so one expired
//! token never hides another platform's warning.

use super::output::alertmanager::{
    AlertmanagerConfig, AlertmanagerConfigObject, OperatorInhibitRule, OperatorReceiver, OperatorSpec, OperatorWebhook,
    Receiver, Route, WebhookConfig, operator_matcher, operator_route,
};
use super::output::operator::Metadata;
use super::pairs::severity_matcher;
use super::plan::Plan;
use super::promql::escape;
use super::scope::regex_escape;
use crate::spec::{Model, Severity};

/// Receiver names, fixed so routes, inhibition and tests agree on them.
pub const PAGE: &str = "page";
pub const TICKET: &str = "ticket";
pub const NULL: &str = "null";

/// The receiver alerts of `severity` are routed to.
pub fn receiver(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => PAGE,
        Severity::Warning => TICKET,
        Severity::Info => NULL,
    }
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

/// `group_by` then `group_by_extra`, each label once.
fn group_by(model: &Model) -> Vec<String> {
    let settings = &model.config.generate.alertmanager;
    let mut out: Vec<String> = Vec::new();
    // With several databases, one database's trouble is a notification of its own.
    let database = model.database_label().map(str::to_string);
    for label in settings.group_by.iter().chain(&settings.group_by_extra).chain(&database) {
        if !out.contains(label) {
            out.push(label.clone());
        }
    }
    out
}

/// `alertname=~"A|B"`, which only our alerts carry: the subtree's entry matcher. Alert names,
/// not a label of ours, because a root route sees every team's alerts and names are what ours
/// are sure to have.
pub fn our_alerts_matcher(plan: &Plan) -> (String, String) {
    let names: Vec<String> = plan.alert_names().into_iter().map(regex_escape).collect();
    ("alertname".to_string(), names.join("|"))
}

fn receivers(model: &Model) -> Vec<Receiver> {
    let settings = &model.config.generate.alertmanager;
    let webhook = |url: &str| vec![WebhookConfig { url: url.to_string(), send_resolved: true }];
    vec![
        Receiver { name: PAGE.to_string(), webhook_configs: webhook(&settings.page_webhook_url) },
        Receiver { name: TICKET.to_string(), webhook_configs: webhook(&settings.ticket_webhook_url) },
        Receiver { name: NULL.to_string(), webhook_configs: Vec::new() },
    ]
}

fn by_severity() -> Vec<Route> {
    [Severity::Critical, Severity::Warning, Severity::Info].into_iter().map(child).collect()
}

/// `group_by` of the exporter's own alerts: by alert name and exporter (`instance_labels`), then
/// `group_by_extra`, so one cause on one exporter (a migration that broke several queries) is one
/// notification listing every blind signal, not one per signal.
pub fn own_group_by(model: &Model) -> Vec<String> {
    let settings = &model.config.generate.alertmanager;
    let mut out = vec!["alertname".to_string()];
    for label in settings.instance_labels.iter().chain(&settings.group_by_extra) {
        if !out.contains(label) {
            out.push(label.clone());
        }
    }
    out
}

/// The exporter's own alerts (source health, exporter down, database unreachable): grouped per
/// exporter, then routed by severity like the rest.
fn own_alerts_route(plan: &Plan) -> Option<Route> {
    let names: Vec<String> = plan.own_alert_names().into_iter().map(regex_escape).collect();
    (!names.is_empty()).then(|| Route {
        receiver: TICKET.to_string(),
        matchers: vec![format!("alertname=~\"{}\"", escape(&names.join("|")))],
        group_by: own_group_by(plan.model),
        group_wait: None,
        group_interval: None,
        repeat_interval: None,
        routes: by_severity(),
    })
}

/// The route of our alerts: grouping, timers, the exporter's own alerts grouped per exporter,
/// and one child per severity. `matchers` is empty at the root of the complete file and selects
/// our alerts in the subtree.
fn route(plan: &Plan, matchers: Vec<String>) -> Route {
    let model = plan.model;
    let settings = &model.config.generate.alertmanager;
    Route {
        // Anything not matched below (an alert without a known severity) still reaches a human.
        receiver: TICKET.to_string(),
        matchers,
        group_by: group_by(model),
        group_wait: Some(settings.group_wait.to_string()),
        group_interval: Some(settings.group_interval.to_string()),
        repeat_interval: Some(settings.repeat_interval.to_string()),
        routes: own_alerts_route(plan).into_iter().chain(by_severity()).collect(),
    }
}

/// `alertmanager/alertmanager.yml`: the complete file, our route at its root.
pub fn config(plan: &Plan) -> AlertmanagerConfig {
    AlertmanagerConfig {
        route: route(plan, Vec::new()),
        inhibit_rules: plan.inhibitions.clone(),
        receivers: receivers(plan.model),
    }
}

/// `alertmanager/route.yml`: the same routing for an Alertmanager that already has a root route.
/// Its `route` goes into the root's `routes:` list (first, or before any catch-all), its
/// `receivers` and `inhibit_rules` are appended to the root's lists.
pub fn subtree(plan: &Plan) -> AlertmanagerConfig {
    let (name, value) = our_alerts_matcher(plan);
    let matcher = format!("{name}=~\"{}\"", escape(&value));
    AlertmanagerConfig {
        route: route(plan, vec![matcher]),
        inhibit_rules: plan.inhibitions.clone(),
        receivers: receivers(plan.model),
    }
}

/// How to merge `route.yml`, written above it.
pub const SUBTREE_HELP: &str = "\
# A route subtree for an Alertmanager that already has a root route: put `route` into your
# root's `routes:` list (before any catch-all), and append `receivers` and `inhibit_rules` to
# your root's lists (rename a receiver here if yours already uses the name). Check with
#   amtool config routes test --config.file=YOUR.yml alertname=IntegrationExporterDown severity=critical
";

pub const OPERATOR_API_VERSION: &str = "monitoring.coreos.com/v1alpha1";
pub const OPERATOR_KIND: &str = "AlertmanagerConfig";

/// `alertmanager/alertmanagerconfig.yaml` of `generate --format prometheus-operator`.
pub fn alertmanager_config_object(plan: &Plan) -> AlertmanagerConfigObject {
    let settings = &plan.model.config.generate.prometheus_operator;
    let subtree = subtree(plan);
    let matchers = |m: &[String]| m.iter().map(|m| operator_matcher(m)).collect();
    AlertmanagerConfigObject {
        api_version: OPERATOR_API_VERSION,
        kind: OPERATOR_KIND,
        metadata: Metadata {
            name: "integration-exporter".to_string(),
            namespace: settings.namespace.clone(),
            labels: settings.labels.clone(),
        },
        spec: OperatorSpec {
            route: operator_route(subtree.route),
            receivers: subtree
                .receivers
                .into_iter()
                .map(|r| OperatorReceiver {
                    name: r.name,
                    webhook_configs: r
                        .webhook_configs
                        .into_iter()
                        .map(|w| OperatorWebhook { url: w.url, send_resolved: w.send_resolved })
                        .collect(),
                })
                .collect(),
            inhibit_rules: subtree
                .inhibit_rules
                .into_iter()
                .map(|r| OperatorInhibitRule {
                    source_match: matchers(&r.source_matchers),
                    target_match: matchers(&r.target_matchers),
                    equal: r.equal,
                })
                .collect(),
        },
    }
}
