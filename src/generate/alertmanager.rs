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

/// `group_by` then `group_by_extra`, each label once.
fn group_by(model: &Model) -> Vec<String> {
    let settings = &model.config.generate.alertmanager;
    let mut out: Vec<String> = Vec::new();
    for label in settings.group_by.iter().chain(&settings.group_by_extra) {
        if !out.contains(label) {
            out.push(label.clone());
        }
    }
    out
}

/// Every alert name `generate` writes a rule for, the exporter's own included.
fn alert_names(model: &Model) -> BTreeSet<String> {
    let mut packs: Vec<Option<&str>> = model.packs.iter().map(|p| Some(p.name.as_str())).collect();
    packs.push(None);
    // Names do not depend on where the panels are: no dashboard needs building for them.
    let panels = super::dashboards::PanelLinks::default();
    packs
        .into_iter()
        .map(|p| super::rules::rule_file(model, &panels, p))
        .chain([super::rules::exporter_rule_file(model)])
        .flat_map(|f| f.groups)
        .flat_map(|g| g.rules)
        .map(|r| r.alert)
        .collect()
}

/// `alertname=~"A|B"`, which only our alerts carry: the subtree's entry matcher. Alert names,
/// not a label of ours, because a root route sees every team's alerts and names are what ours
/// are sure to have.
pub fn our_alerts_matcher(model: &Model) -> (String, String) {
    let names: Vec<String> = alert_names(model).iter().map(|n| regex_escape(n)).collect();
    ("alertname".to_string(), names.join("|"))
}

fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
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

fn inhibit_rules(model: &Model) -> Vec<InhibitRule> {
    pair_inhibitions(model).into_iter().chain(super::source_health::inhibitions(model)).collect()
}

/// The route of our alerts: grouping, timers and one child per severity. `matchers` is empty at
/// the root of the complete file and selects our alerts in the subtree.
fn route(model: &Model, matchers: Vec<String>) -> Route {
    let settings = &model.config.generate.alertmanager;
    Route {
        // Anything not matched below (an alert without a known severity) still reaches a human.
        receiver: TICKET.to_string(),
        matchers,
        group_by: group_by(model),
        group_wait: Some(settings.group_wait.to_string()),
        group_interval: Some(settings.group_interval.to_string()),
        repeat_interval: Some(settings.repeat_interval.to_string()),
        routes: [Severity::Critical, Severity::Warning, Severity::Info].into_iter().map(child).collect(),
    }
}

pub fn config(model: &Model) -> AlertmanagerConfig {
    AlertmanagerConfig {
        route: route(model, Vec::new()),
        inhibit_rules: inhibit_rules(model),
        receivers: receivers(model),
    }
}

/// `alertmanager/route.yml`: the same routing for an Alertmanager that already has a root route.
/// Its `route` goes into the root's `routes:` list (first, or before any catch-all), its
/// `receivers` and `inhibit_rules` are appended to the root's lists.
pub fn subtree(model: &Model) -> AlertmanagerConfig {
    let (name, value) = our_alerts_matcher(model);
    let matcher = format!("{name}=~\"{}\"", super::promql::escape(&value));
    AlertmanagerConfig {
        route: route(model, vec![matcher]),
        inhibit_rules: inhibit_rules(model),
        receivers: receivers(model),
    }
}

/// How to merge `route.yml`, written above it.
pub const SUBTREE_HELP: &str = "\
# A route subtree for an Alertmanager that already has a root route: put `route` into your
# root's `routes:` list (before any catch-all), and append `receivers` and `inhibit_rules` to
# your root's lists (rename a receiver here if yours already uses the name). Check with
#   amtool config routes test --config.file=YOUR.yml alertname=IntegrationExporterDown severity=critical
";

/// The Prometheus Operator's `AlertmanagerConfig` (v1alpha1): the subtree as an object, fields in
/// camelCase and matchers as `{name, value, matchType}`. The Operator itself adds a
/// `namespace` matcher to its route, so only alerts from the object's namespace reach it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertmanagerConfigObject {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: super::prometheus_operator::Metadata,
    pub spec: OperatorSpec,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OperatorSpec {
    pub route: OperatorRoute,
    pub receivers: Vec<OperatorReceiver>,
    pub inhibit_rules: Vec<OperatorInhibitRule>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OperatorRoute {
    pub receiver: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub matchers: Vec<OperatorMatcher>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub group_by: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_wait: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat_interval: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<OperatorRoute>,
}

#[derive(Serialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OperatorMatcher {
    pub name: String,
    pub value: String,
    pub match_type: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OperatorReceiver {
    pub name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub webhook_configs: Vec<OperatorWebhook>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OperatorWebhook {
    pub url: String,
    pub send_resolved: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OperatorInhibitRule {
    pub source_match: Vec<OperatorMatcher>,
    pub target_match: Vec<OperatorMatcher>,
    pub equal: Vec<String>,
}

/// `name="value"` (or `!=`, `=~`, `!~`), as this module writes them, into the Operator's object.
/// The value is a double-quoted string with `\\` and `\"` escapes, which JSON reads alike.
pub fn operator_matcher(text: &str) -> OperatorMatcher {
    let at = text.find(['=', '!']).unwrap_or(text.len());
    let (name, rest) = text.split_at(at);
    let op_len = if rest.starts_with("=~") || rest.starts_with("!=") || rest.starts_with("!~") { 2 } else { 1 };
    let (op, quoted) = rest.split_at(op_len.min(rest.len()));
    let value = serde_json::from_str::<String>(quoted).unwrap_or_else(|_| quoted.trim_matches('"').to_string());
    OperatorMatcher { name: name.to_string(), value, match_type: op.to_string() }
}

fn operator_route(route: Route) -> OperatorRoute {
    OperatorRoute {
        receiver: route.receiver,
        matchers: route.matchers.iter().map(|m| operator_matcher(m)).collect(),
        group_by: route.group_by,
        group_wait: route.group_wait,
        group_interval: route.group_interval,
        repeat_interval: route.repeat_interval,
        routes: route.routes.into_iter().map(operator_route).collect(),
    }
}

pub const OPERATOR_API_VERSION: &str = "monitoring.coreos.com/v1alpha1";
pub const OPERATOR_KIND: &str = "AlertmanagerConfig";

/// `alertmanager/alertmanagerconfig.yaml` of `generate --format prometheus-operator`.
pub fn alertmanager_config_object(model: &Model) -> AlertmanagerConfigObject {
    let settings = &model.config.generate.prometheus_operator;
    let subtree = subtree(model);
    let matchers = |m: &[String]| m.iter().map(|m| operator_matcher(m)).collect();
    AlertmanagerConfigObject {
        api_version: OPERATOR_API_VERSION,
        kind: OPERATOR_KIND,
        metadata: super::prometheus_operator::Metadata {
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
