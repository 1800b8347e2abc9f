//! Prometheus Operator objects: `PrometheusRule`, whose `spec` is a plain rule file, and the
//! metadata every generated object shares.

use std::collections::BTreeMap;

use serde::Serialize;

use super::rules::RuleFile;

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
