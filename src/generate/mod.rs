//! Everything generated from the spec: rule files (plain or as `PrometheusRule` objects), their
//! promtool tests, dashboards and the Alertmanager configuration.
//!
//! Layers, each importing only those below it (tests/it/generate_layers.rs checks the modules
//! import no cycle): [`output`] holds the shapes of the files and nothing else; [`go_format`],
//! [`promql`] and [`scope`] write numbers and expressions; the builders ([`rules`],
//! [`rule_tests`], [`source_health`], [`slo`], [`slo_tests`], [`pairs`], [`panels`],
//! [`slo_panels`], [`dashboards`]) make one alert's rule, cases or panel, asking [`alerts`] which
//! alerts there are; [`plan`] computes every alert once; the writers ([`rule_files`],
//! [`alertmanager`], [`prometheus_operator`], [`kustomize`]) render the plan, and
//! [`outputs_as`] is the one place that lists what gets written.

pub mod alertmanager;
pub mod alerts;
pub mod catalog;
pub mod dashboards;
pub mod error;
pub mod go_format;
pub mod kustomize;
pub mod output;
pub mod pairs;
pub mod panels;
pub mod plan;
pub mod prometheus_operator;
pub mod promql;
pub mod replicas;
pub mod rule_files;
pub mod rule_tests;
pub mod rules;
pub mod scope;
pub mod slo;
pub mod slo_panels;
pub mod slo_tests;
pub mod source_health;

use std::path::{Path, PathBuf};

pub use error::GenerateError;
use output::HEADER;
use plan::Plan;

use crate::spec::Model;

/// How alert rules are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum RuleFormat {
    /// Plain Prometheus rule files (`alerts/*.rules.yml`) with their promtool tests
    /// (`alerts/*.tests.yml`).
    #[default]
    #[value(help = "Plain Prometheus rule files with promtool tests.")]
    Prometheus,
    /// `PrometheusRule` objects for the Prometheus Operator (`alerts/*.prometheusrule.yaml`),
    /// whose `spec` is the plain rule file. No promtool tests: promtool cannot load these
    /// objects, and the plain format's tests (same groups) cover them.
    #[value(help = "Prometheus Operator `PrometheusRule` objects, and a kustomization of everything written.")]
    PrometheusOperator,
}

/// Generated files, as (path relative to the output directory, content).
pub type Files = Vec<(PathBuf, String)>;

fn yaml<T: serde::Serialize>(rel: impl Into<PathBuf>, value: &T) -> Result<(PathBuf, String), GenerateError> {
    let rel = rel.into();
    let text = output::yaml(&rel, value)?;
    Ok((rel, text))
}

fn json<T: serde::Serialize>(rel: impl Into<PathBuf>, value: &T) -> Result<(PathBuf, String), GenerateError> {
    let rel = rel.into();
    let text = output::json(&rel, value)?;
    Ok((rel, text))
}

/// Every file `generate` writes in the default format. These are the files committed in this
/// repository: rules and their tests, dashboards, routing, and the exporter's own runbook.
pub fn outputs(model: &Model) -> Result<Files, GenerateError> {
    outputs_as(model, RuleFormat::Prometheus)
}

/// Every file `generate --format <format>` writes, rendered from one [`Plan`].
pub fn outputs_as(model: &Model, format: RuleFormat) -> Result<Files, GenerateError> {
    let plan = Plan::of(model)?;
    let alerts = Path::new("alerts");
    let mut out = Vec::new();
    for (pack, (_, board)) in plan.packs.iter().zip(plan.dashboards.iter()) {
        let stem = pack.pack.unwrap_or("custom").replace('_', "-");
        let rules = rule_files::rule_file(pack);
        if rules.groups.iter().any(|g| !g.is_empty()) {
            match format {
                RuleFormat::Prometheus => {
                    let rules_name = format!("{stem}.rules.yml");
                    let tests = rule_files::test_file_of(pack, &rules_name);
                    out.push(yaml(alerts.join(&rules_name), &rules)?);
                    out.push(yaml(alerts.join(format!("{stem}.tests.yml")), &tests)?);
                }
                RuleFormat::PrometheusOperator => {
                    let object = prometheus_operator::prometheus_rule(model, pack.pack, rules);
                    out.push(yaml(alerts.join(format!("{stem}.prometheusrule.yaml")), &object)?);
                }
            }
        }
        if let Some(slo_rules) = rule_files::slo_rule_file(pack) {
            match format {
                RuleFormat::Prometheus => {
                    let rules_name = format!("{stem}.slo.rules.yml");
                    let tests = rule_files::slo_test_file(pack, &rules_name);
                    out.push(yaml(alerts.join(&rules_name), &slo_rules)?);
                    out.push(yaml(alerts.join(format!("{stem}.slo.tests.yml")), &tests)?);
                }
                RuleFormat::PrometheusOperator => {
                    let mut object = prometheus_operator::prometheus_rule(model, pack.pack, slo_rules);
                    object.metadata.name.push_str("-slo");
                    out.push(yaml(alerts.join(format!("{stem}.slo.prometheusrule.yaml")), &object)?);
                }
            }
        }
        out.push(json(Path::new("dashboards").join(format!("{stem}.json")), board)?);
    }
    if plan.has_alerts {
        // The exporter itself: one alert whatever the packs, in its own group.
        let rules = rule_files::exporter_rule_file(&plan);
        match format {
            RuleFormat::Prometheus => {
                let rules_name = "exporter.rules.yml";
                out.push(yaml(alerts.join(rules_name), &rules)?);
                out.push(yaml("alerts/exporter.tests.yml", &rule_files::exporter_test_file(&plan, rules_name))?);
            }
            RuleFormat::PrometheusOperator => {
                let object = prometheus_operator::prometheus_rule(model, Some("exporter"), rules);
                out.push(yaml("alerts/exporter.prometheusrule.yaml", &object)?);
            }
        }
    }
    out.push(json("dashboards/overview.json", &dashboards::overview(model, &plan.dashboards.links)?)?);
    if plan.has_alerts {
        // Where the exporter's own alerts point their runbook_url: published beside the packs'.
        out.push((Path::new("runbooks").join(source_health::RUNBOOK), source_health::runbook(&plan.runbook)));
        // The complete file in both formats: an Alertmanager outside the Operator may route them.
        out.push(yaml("alertmanager/alertmanager.yml", &alertmanager::config(&plan))?);
        match format {
            RuleFormat::Prometheus => {
                let (rel, text) = yaml("alertmanager/route.yml", &alertmanager::subtree(&plan))?;
                let help = format!("{HEADER}{}", alertmanager::SUBTREE_HELP);
                out.push((rel, text.replacen(HEADER, &help, 1)));
            }
            RuleFormat::PrometheusOperator => {
                let object = alertmanager::alertmanager_config_object(&plan);
                out.push(yaml("alertmanager/alertmanagerconfig.yaml", &object)?);
            }
        }
    }
    Ok(out)
}

/// Writes every output of the default format under `dir`. Returns the paths written.
pub fn write_all(model: &Model, dir: &Path) -> Result<Vec<PathBuf>, GenerateError> {
    write_all_as(model, dir, RuleFormat::Prometheus)
}

/// [`outputs_as`], and with the operator format the `kustomization.yaml` listing its objects and
/// dashboards: made from the list itself, it names no file that was not written.
pub fn files_as(model: &Model, format: RuleFormat) -> Result<Files, GenerateError> {
    let mut files = outputs_as(model, format)?;
    if format == RuleFormat::PrometheusOperator {
        let index = kustomize::kustomization(model, &files)?;
        files.push((PathBuf::from(kustomize::FILE), index));
    }
    Ok(files)
}

/// Writes every file of `format` ([`files_as`]) under `dir`. Returns the paths written.
pub fn write_all_as(model: &Model, dir: &Path, format: RuleFormat) -> Result<Vec<PathBuf>, GenerateError> {
    let mut written = Vec::new();
    for (rel, content) in files_as(model, format)? {
        let path = dir.join(&rel);
        let write = |path: &Path| {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(path, &content)
        };
        write(&path).map_err(|source| GenerateError::Write { path: path.clone(), source })?;
        written.push(path);
    }
    Ok(written)
}
