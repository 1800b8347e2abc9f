//! A promtool rule test file (`promtool test rules`): input series, and the alerts expected at
//! each evaluation with their exact labels and annotations.

use std::collections::BTreeMap;

use serde::Serialize;

#[derive(Serialize)]
pub struct TestFile {
    pub rule_files: Vec<String>,
    pub evaluation_interval: String,
    pub tests: Vec<TestCase>,
}

#[derive(Serialize, Clone)]
pub struct TestCase {
    pub name: String,
    pub interval: String,
    pub input_series: Vec<InputSeries>,
    pub alert_rule_test: Vec<AlertRuleTest>,
}

#[derive(Serialize, Clone)]
pub struct InputSeries {
    pub series: String,
    pub values: String,
}

#[derive(Serialize, Clone)]
pub struct AlertRuleTest {
    pub eval_time: String,
    pub alertname: String,
    pub exp_alerts: Vec<ExpAlert>,
}

#[derive(Serialize, Clone)]
pub struct ExpAlert {
    pub exp_labels: BTreeMap<String, String>,
    pub exp_annotations: BTreeMap<String, String>,
}
