//! Rule files and their promtool tests, rendered from the plan: one group per pack (its alerts,
//! then the health alerts of its sources), one group per SLO in a file of the pack's own, and the
//! exporter's own alerts.

use super::output::promtool::{TestCase, TestFile};
use super::output::rules::{Rule, RuleFile, RuleGroup};
use super::plan::{PackPlan, Plan, PlannedAlert};

/// `integration-exporter.<pack>` (`.custom` for the user's own signals, `.exporter` for its own).
pub fn group_name(pack: Option<&str>) -> String {
    format!("integration-exporter.{}", pack.unwrap_or("custom"))
}

fn test_file(rule_file_name: &str, tests: Vec<TestCase>) -> TestFile {
    TestFile { rule_files: vec![rule_file_name.to_string()], evaluation_interval: "1m".into(), tests }
}

fn rules_of<'a>(alerts: impl IntoIterator<Item = &'a PlannedAlert>) -> Vec<Rule> {
    alerts.into_iter().map(|a| a.rule.clone()).collect()
}

fn tests_of<'a>(alerts: impl IntoIterator<Item = &'a PlannedAlert>) -> Vec<TestCase> {
    alerts.into_iter().flat_map(|a| a.tests.iter().cloned()).collect()
}

/// The pack's alerts, then the health alerts of its sources (its SLOs' rules are a file of their
/// own, [`slo_rule_file`]).
pub fn rule_file(pack: &PackPlan) -> RuleFile {
    RuleFile {
        groups: vec![RuleGroup::alerts(group_name(pack.pack), rules_of(pack.alerts.iter().chain(&pack.companions)))],
    }
}

/// The promtool tests of [`rule_file`]: the health alerts' cases only beside the pack's own, as
/// a pack of SLOs only has its tests in the SLO file.
pub fn test_file_of(pack: &PackPlan, rule_file_name: &str) -> TestFile {
    let mut tests = tests_of(&pack.alerts);
    if !tests.is_empty() {
        tests.extend(tests_of(&pack.companions));
    }
    test_file(rule_file_name, tests)
}

/// `alerts/<pack>.slo.rules.yml`, when the pack states an SLO: a file apart from the pack's
/// alerts, so its promtool tests, which need three days and more of input, evaluate only these
/// rules minute by minute.
pub fn slo_rule_file(pack: &PackPlan) -> Option<RuleFile> {
    (!pack.slos.is_empty()).then(|| RuleFile { groups: pack.slos.iter().map(|s| s.group.clone()).collect() })
}

/// The promtool tests of [`slo_rule_file`].
pub fn slo_test_file(pack: &PackPlan, rule_file_name: &str) -> TestFile {
    test_file(rule_file_name, pack.slos.iter().flat_map(|s| s.tests.iter().cloned()).collect())
}

/// `alerts/exporter.rules.yml`: the exporter's scrape target down, its certificate, its database
/// unreachable.
pub fn exporter_rule_file(plan: &Plan) -> RuleFile {
    RuleFile { groups: vec![RuleGroup::alerts(group_name(Some("exporter")), rules_of(&plan.exporter))] }
}

/// The promtool tests of [`exporter_rule_file`].
pub fn exporter_test_file(plan: &Plan, rule_file_name: &str) -> TestFile {
    test_file(rule_file_name, tests_of(&plan.exporter))
}
