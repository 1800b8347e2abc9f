//! `PrometheusRule` objects for the Prometheus Operator: one per pack, whose `spec` is exactly the
//! plain rule file of the pack's plan.

use super::output::operator::{API_VERSION, KIND, Metadata, PrometheusRule};
use super::output::rules::RuleFile;
use crate::spec::Model;

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
