//! The plan: every alert `generate` writes, computed once from the model. Each of the spec's
//! alerts becomes its rule (expression, labels, annotations with the runbook and panel links) and
//! its promtool cases; beside them go the health alerts of the sources they read, the SLOs'
//! groups and cases, the exporter's own alerts, the inhibit rules and the exporter's runbook.
//! The writers (rule and test files, Alertmanager routing, `PrometheusRule` objects) only render
//! the plan: none of them builds an alert again, and [`Plan::alert_names`] is the one list of
//! what gets written.
//!
//! The dashboards are laid out first: an alert's `dashboard_url` is where its panel landed.

use std::collections::BTreeSet;

use super::alerts;
use super::dashboards::{self, Dashboards};
use super::error::GenerateError;
use super::output::alertmanager::InhibitRule;
use super::output::promtool::TestCase;
use super::output::rules::{Rule, RuleGroup};
use super::source_health::{self, HealthAlert, RunbookSection};
use super::{pairs, rule_tests, rules, slo, slo_tests};
use crate::spec::Model;

/// One alert as the writers need it: its rule and its promtool cases.
pub struct PlannedAlert {
    pub rule: Rule,
    pub tests: Vec<TestCase>,
}

impl From<HealthAlert> for PlannedAlert {
    fn from(alert: HealthAlert) -> Self {
        let tests = source_health::test_cases(&alert);
        Self { rule: alert.rule, tests }
    }
}

/// One SLO: its group (the error ratio recorded, then the burn tiers' alerts) and its cases.
pub struct PlannedSlo {
    pub group: RuleGroup,
    pub tests: Vec<TestCase>,
}

/// The alerts of one dashboard's signals: a pack's, or the user's own (`pack` is `None`).
pub struct PackPlan<'m> {
    pub pack: Option<&'m str>,
    /// The spec's alerts, in the spec's order.
    pub alerts: Vec<PlannedAlert>,
    /// The health alerts of the pack's sources, when it has an alert or an SLO for them to guard.
    pub companions: Vec<PlannedAlert>,
    pub slos: Vec<PlannedSlo>,
}

/// Everything `generate` writes, before it is rendered.
pub struct Plan<'m> {
    pub model: &'m Model,
    /// Every dashboard, and where each signal's panel is.
    pub dashboards: Dashboards,
    /// In the dashboards' order ([`dashboards::groups`]).
    pub packs: Vec<PackPlan<'m>>,
    /// Whether the model has any alert: without one, neither the exporter's own alerts nor an
    /// Alertmanager configuration is written.
    pub has_alerts: bool,
    /// The exporter's own alerts file: the exporter down, its certificate, its database.
    pub exporter: Vec<PlannedAlert>,
    /// Warning/critical pairs, then what each source-health alert holds back.
    pub inhibitions: Vec<InhibitRule>,
    /// The exporter's runbook, one section per own alert the model generates.
    pub runbook: Vec<RunbookSection>,
}

impl<'m> Plan<'m> {
    /// The plan, or the first generated query the parser refuses, named by what it was for.
    pub fn of(model: &'m Model) -> Result<Self, GenerateError> {
        let dashboards = Dashboards::of(model)?;
        let links = &dashboards.links;
        let packs = dashboards::groups(model)
            .into_iter()
            .map(|pack| {
                let alerts: Vec<PlannedAlert> = alerts::of_pack(model, pack)
                    .map(|(signal, alert)| {
                        Ok(PlannedAlert {
                            rule: rules::rule(model, links, signal, alert)?,
                            tests: rule_tests::cases(model, links, signal, alert),
                        })
                    })
                    .collect::<Result<_, GenerateError>>()?;
                let slos: Vec<PlannedSlo> = alerts::slos_of(model, pack)
                    .map(|(signal, slo)| {
                        Ok(PlannedSlo {
                            group: slo::group(model, links, signal, slo)?,
                            tests: slo_tests::cases(model, links, signal, slo),
                        })
                    })
                    .collect::<Result<_, GenerateError>>()?;
                let companions = if alerts.is_empty() && slos.is_empty() {
                    Vec::new()
                } else {
                    source_health::alerts_of_pack(model, pack)?.into_iter().map(PlannedAlert::from).collect()
                };
                Ok(PackPlan { pack, alerts, companions, slos })
            })
            .collect::<Result<_, GenerateError>>()?;
        let has_alerts = alerts::any(model);
        let (exporter, inhibitions, runbook) = if has_alerts {
            (
                source_health::exporter_alerts(model)?.into_iter().map(PlannedAlert::from).collect(),
                pairs::pair_inhibitions(model).into_iter().chain(source_health::inhibitions(model)).collect(),
                source_health::runbook_sections(model),
            )
        } else {
            (Vec::new(), Vec::new(), Vec::new())
        };
        Ok(Self { model, dashboards, packs, has_alerts, exporter, inhibitions, runbook })
    }

    /// The plan of `pack`'s dashboard (`None`: the user's own signals), if it has one.
    pub fn pack(&self, pack: Option<&str>) -> Option<&PackPlan<'m>> {
        self.packs.iter().find(|p| p.pack == pack)
    }

    /// Every alert name `generate` writes a rule for: the spec's, their SLOs', the sources'
    /// health alerts and the exporter's own.
    pub fn alert_names(&self) -> BTreeSet<&str> {
        let packs = self.packs.iter().flat_map(|p| {
            let slo_rules = p.slos.iter().flat_map(|s| &s.group.rules);
            p.alerts.iter().chain(&p.companions).map(|a| &a.rule).chain(slo_rules)
        });
        packs.chain(self.exporter.iter().map(|a| &a.rule)).map(|r| r.alert.as_str()).collect()
    }

    /// The names of the exporter's own alerts the model generates, in its runbook's order.
    pub fn own_alert_names(&self) -> Vec<&'static str> {
        self.runbook.iter().map(|s| s.alert).collect()
    }
}
