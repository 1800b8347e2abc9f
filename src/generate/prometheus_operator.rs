//! `PrometheusRule` objects for the Prometheus Operator: one per pack, whose `spec` is exactly the
//! plain rule file ([`rules::rule_file`](super::rules::rule_file)).

use std::collections::BTreeMap;

use serde::Serialize;

use super::rules::RuleFile;
use crate::spec::Model;

pub const API_VERSION: &str = "monitoring.coreos.com/v1";
pub const KIND: &str = "PrometheusRule";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusRule {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: Metadata,
    pub spec: RuleFile,
}

#[derive(Serialize)]
pub struct Metadata {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// `integration-exporter-<pack>` (`-custom` for the user's own signals), a valid object name.
pub fn object_name(pack: Option<&str>) -> String {
    let pack: String = pack
        .unwrap_or("custom")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .collect();
    format!("integration-exporter-{}", pack.trim_matches('-'))
}

/// Wraps the pack's rule file into a `PrometheusRule`.
pub fn prometheus_rule(model: &Model, pack: Option<&str>, rules: RuleFile) -> PrometheusRule {
    let settings = &model.config.generate.prometheus_operator;
    PrometheusRule {
        api_version: API_VERSION,
        kind: KIND,
        metadata: Metadata {
            name: object_name(pack),
            namespace: settings.namespace.clone(),
            labels: settings.labels.clone(),
        },
        spec: rules,
    }
}
