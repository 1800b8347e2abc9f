//! Alertmanager's configuration file (`alertmanager.yml`, or the routing subtree merged into
//! one), and the Prometheus Operator's `AlertmanagerConfig` object holding the same subtree.

use serde::Serialize;

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

#[derive(Serialize, Clone)]
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

/// The Prometheus Operator's `AlertmanagerConfig` (v1alpha1): the subtree as an object, fields in
/// camelCase and matchers as `{name, value, matchType}`. The Operator itself adds a
/// `namespace` matcher to its route, so only alerts from the object's namespace reach it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertmanagerConfigObject {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: super::operator::Metadata,
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

pub fn operator_route(route: Route) -> OperatorRoute {
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
