//! A Prometheus rule file: groups of recording and alerting rules, as `promtool check rules`
//! reads them and a `PrometheusRule`'s `spec` holds them.

use std::collections::BTreeMap;

use serde::Serialize;

#[derive(Serialize)]
pub struct RuleFile {
    pub groups: Vec<RuleGroup>,
}

/// A rule group. Prometheus writes recording and alerting rules in one `rules` list; here they
/// are kept apart, so whoever reads `rules` reads alerts only, and written records first.
#[derive(Clone)]
pub struct RuleGroup {
    pub name: String,
    pub records: Vec<Record>,
    pub rules: Vec<Rule>,
}

impl RuleGroup {
    /// A group of alerts only.
    pub fn alerts(name: String, rules: Vec<Rule>) -> Self {
        Self { name, records: Vec::new(), rules }
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.rules.is_empty()
    }
}

impl Serialize for RuleGroup {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        #[derive(Serialize)]
        #[serde(untagged)]
        enum Entry<'a> {
            Record(&'a Record),
            Alert(&'a Rule),
        }
        let entries: Vec<Entry> =
            self.records.iter().map(Entry::Record).chain(self.rules.iter().map(Entry::Alert)).collect();
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("name", &self.name)?;
        map.serialize_entry("rules", &entries)?;
        map.end()
    }
}

/// A recording rule.
#[derive(Serialize, Clone)]
pub struct Record {
    pub record: String,
    pub expr: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

#[derive(Serialize, Clone)]
pub struct Rule {
    pub alert: String,
    pub expr: String,
    #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<String>,
    /// How long a firing alert stays firing once its expression is empty: the gap of a failover.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_firing_for: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}
