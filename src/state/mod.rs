//! The exported state: every producer (a query, a log source, the exporter itself) publishes a
//! complete snapshot of its families; a scrape only reads snapshots and never waits on a source.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::spec::MetricType;

#[derive(Clone, Debug, PartialEq)]
pub enum SampleValue {
    Scalar(f64),
    /// Cumulative bucket counts by upper bound (without +Inf), sum and count.
    Histogram {
        buckets: Vec<(f64, u64)>,
        sum: f64,
        count: u64,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub labels: Vec<(String, String)>,
    pub value: SampleValue,
}

impl Sample {
    pub fn scalar(labels: Vec<(String, String)>, value: f64) -> Self {
        Self { labels, value: SampleValue::Scalar(value) }
    }
}

/// A metric family. Counter names carry their `_total` suffix.
#[derive(Clone, Debug, PartialEq)]
pub struct Family {
    pub name: String,
    pub help: String,
    pub kind: MetricType,
    pub samples: Vec<Sample>,
}

impl Family {
    pub fn new(name: impl Into<String>, help: impl Into<String>, kind: MetricType) -> Self {
        Self { name: name.into(), help: help.into(), kind, samples: Vec::new() }
    }

    pub fn with(mut self, labels: &[(&str, &str)], value: f64) -> Self {
        self.push(labels, value);
        self
    }

    pub fn push(&mut self, labels: &[(&str, &str)], value: f64) {
        let labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.samples.push(Sample::scalar(labels, value));
    }
}

/// Latest snapshot of every producer.
#[derive(Default)]
pub struct State {
    producers: RwLock<BTreeMap<String, Arc<Vec<Family>>>>,
    pub readiness: Readiness,
}

impl State {
    pub fn publish(&self, producer: &str, families: Vec<Family>) {
        let mut guard = self.producers.write().unwrap_or_else(|p| p.into_inner());
        guard.insert(producer.to_string(), Arc::new(families));
    }

    /// All families, merged by name (several producers may export one family) and sorted.
    pub fn gather(&self) -> Vec<Family> {
        let snapshots: Vec<Arc<Vec<Family>>> = {
            let guard = self.producers.read().unwrap_or_else(|p| p.into_inner());
            guard.values().cloned().collect()
        };
        let mut merged: BTreeMap<&str, Family> = BTreeMap::new();
        for snapshot in &snapshots {
            for family in snapshot.iter() {
                merged
                    .entry(&family.name)
                    .and_modify(|f| f.samples.extend(family.samples.iter().cloned()))
                    .or_insert_with(|| family.clone());
            }
        }
        merged.into_values().collect()
    }
}

/// Producers that have not finished their first run yet; `/ready` answers 200 when empty.
#[derive(Default)]
pub struct Readiness {
    pending: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

impl Readiness {
    pub fn expect(&self, producer: &str) {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).insert(producer.to_string());
    }

    pub fn done(&self, producer: &str) {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(producer);
    }

    pub fn pending(&self) -> Vec<String> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect()
    }
}
