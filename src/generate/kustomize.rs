//! The `kustomization.yaml` that `generate --format prometheus-operator` writes beside its
//! objects, so that a kustomization referring to the output directory gets exactly the objects of
//! the packs the spec enables: nobody keeps a second list of pack files by hand.
//!
//! It stays within what kustomize v2.0.3 (built into kubectl 1.20, the `kubectl` of Debian 12)
//! reads: no per-generator `options` and no `labels` field, hence one `generatorOptions` for
//! the dashboards, the only objects generated here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::error::GenerateError;
use super::output::yaml;
use crate::spec::Model;

/// Where the kustomization goes, relative to the output directory.
pub const FILE: &str = "kustomization.yaml";

/// What Grafana's dashboard sidecar selects by default (kube-prometheus-stack's
/// `sidecar.dashboards.label` and `labelValue`).
pub const DASHBOARD_LABEL: (&str, &str) = ("grafana_dashboard", "1");

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Kustomization {
    api_version: &'static str,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    resources: Vec<String>,
    generator_options: GeneratorOptions,
    config_map_generator: Vec<ConfigMapArgs>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GeneratorOptions {
    /// Fixed names: a dashboard's ConfigMap is replaced in place, not left behind under an old hash.
    disable_name_suffix_hash: bool,
    labels: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct ConfigMapArgs {
    name: String,
    files: Vec<String>,
}

/// `integration-exporter-dashboard-<stem>`, a valid ConfigMap name.
pub fn dashboard_config_map_name(stem: &str) -> String {
    let stem: String =
        stem.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    format!("integration-exporter-dashboard-{}", stem.trim_matches('-'))
}

/// The kustomization of `files` (the operator format's outputs, relative to the output
/// directory): every `.yaml` file is an object (the plain Prometheus and Alertmanager files end in
/// `.yml` and are no objects), and every dashboard becomes a ConfigMap of its own. One ConfigMap
/// per dashboard keeps each object under the 262,144 bytes of annotations that a client-side
/// `kubectl apply` needs for its copy of the object; all of them in one would not fit.
pub fn kustomization(model: &Model, files: &[(PathBuf, String)]) -> Result<String, GenerateError> {
    let rel = |p: &Path| p.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
    let resources = files.iter().filter(|(p, _)| p.extension().is_some_and(|e| e == "yaml")).map(|(p, _)| rel(p));
    let dashboards = files
        .iter()
        .filter(|(p, _)| p.starts_with("dashboards") && p.extension().is_some_and(|e| e == "json"))
        .map(|(p, _)| ConfigMapArgs {
            name: dashboard_config_map_name(&p.file_stem().unwrap_or_default().to_string_lossy()),
            files: vec![rel(p)],
        });
    let (label, value) = DASHBOARD_LABEL;
    let body = Kustomization {
        api_version: "kustomize.config.k8s.io/v1beta1",
        kind: "Kustomization",
        namespace: model.config.generate.prometheus_operator.namespace.clone(),
        resources: resources.collect(),
        generator_options: GeneratorOptions {
            disable_name_suffix_hash: true,
            labels: BTreeMap::from([(label.to_string(), value.to_string())]),
        },
        config_map_generator: dashboards.collect(),
    };
    yaml(Path::new(FILE), &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{RuleFormat, outputs_as};
    use crate::spec::SourceText;

    #[test]
    fn lists_the_objects_and_dashboards_written_in_the_spec_namespace() {
        let text =
            "database: {url_env: X}\ngenerate: {prometheus_operator: {namespace: obs}}\npacks: {token_refresh: {}}\n";
        let model = Model::from_text(&SourceText { name: "k.yaml".into(), text: text.into() }).unwrap();
        let index: serde_json::Value = serde_saphyr::from_str(
            &kustomization(&model, &outputs_as(&model, RuleFormat::PrometheusOperator).unwrap()).unwrap(),
        )
        .unwrap();
        assert_eq!(index["namespace"], "obs");
        assert_eq!(
            index["resources"],
            serde_json::json!([
                "alerts/token-refresh.prometheusrule.yaml",
                "alerts/token-refresh.slo.prometheusrule.yaml",
                "alerts/exporter.prometheusrule.yaml",
                "alertmanager/alertmanagerconfig.yaml"
            ])
        );
        let maps = index["configMapGenerator"].as_array().unwrap();
        let names: Vec<&str> = maps.iter().map(|m| m["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["integration-exporter-dashboard-token-refresh", "integration-exporter-dashboard-overview"]);
        assert_eq!(index["generatorOptions"]["labels"]["grafana_dashboard"], "1");
        assert_eq!(dashboard_config_map_name("My_Pack"), "integration-exporter-dashboard-my-pack");
    }
}
