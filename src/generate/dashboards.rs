//! Grafana dashboards (placeholder until the dashboard generator lands).

use serde_json::{Value, json};

use crate::spec::Model;

pub fn dashboard(_model: &Model, pack: Option<&str>) -> Value {
    json!({ "title": pack.unwrap_or("custom") })
}
