//! Result rows into a signal's series, row by row, so a run can stop reading at the series cap
//! instead of holding (or even fetching) a result of any size.

use std::collections::BTreeMap;

use sqlx::postgres::PgRow;

use super::{QueryError, decode};
use crate::sources::logs::rules::MAX_SERIES_PER_METRIC;
use crate::spec::{LabelDef, ResolvedSignal};
use crate::state::Family;

/// One signal's metrics being built from rows.
pub struct Series<'a> {
    signal: &'a ResolvedSignal,
    /// Per metric: label set -> value.
    values: Vec<BTreeMap<Vec<String>, f64>>,
}

impl<'a> Series<'a> {
    pub fn new(signal: &'a ResolvedSignal) -> Self {
        Series { signal, values: vec![BTreeMap::new(); signal.signal.metrics.len()] }
    }

    /// Adds one row to every metric. `Ok(false)`, and nothing added, when the row would open a
    /// series past the cap in any metric: the caller stops reading there.
    pub fn add(&mut self, row: &PgRow) -> Result<bool, QueryError> {
        // Decoded for every metric first, so a row is added whole or not at all.
        let mut updates: Vec<Option<(Vec<String>, f64)>> = Vec::with_capacity(self.values.len());
        for (metric, values) in self.signal.signal.metrics.iter().zip(&self.values) {
            let column = metric.column.as_deref().unwrap_or("value");
            let mut labels = Vec::with_capacity(metric.labels.len());
            for label in &metric.labels {
                labels.push(decode::label(row, label.name())?);
            }
            // NULL: the row says nothing about this metric.
            let Some(value) = decode::number(row, column)? else {
                updates.push(None);
                continue;
            };
            if !values.contains_key(&labels) && values.len() >= MAX_SERIES_PER_METRIC {
                return Ok(false);
            }
            updates.push(Some((labels, value)));
        }
        for (values, update) in self.values.iter_mut().zip(updates) {
            // Two rows with the same labels are summed, as a GROUP BY would.
            if let Some((labels, value)) = update {
                *values.entry(labels).or_default() += value;
            }
        }
        Ok(true)
    }

    /// The families, fixed-value labels zero-filled.
    pub fn families(self) -> Vec<Family> {
        let mut families = Vec::new();
        for (metric, mut values) in self.signal.signal.metrics.iter().zip(self.values) {
            let label_names: Vec<&str> = metric.labels.iter().map(LabelDef::name).collect();
            if !metric.labels.is_empty() && metric.labels.iter().all(|l| l.fixed_values().is_some()) {
                for combo in LabelDef::combinations(&metric.labels).unwrap_or_default() {
                    values.entry(combo).or_insert(0.0);
                }
            }
            let mut family = Family::new(&metric.name, &metric.help, metric.kind);
            for (labels, value) in values {
                let pairs: Vec<(&str, &str)> =
                    label_names.iter().copied().zip(labels.iter().map(String::as_str)).collect();
                family.push(&pairs, value);
            }
            families.push(family);
        }
        families
    }
}

/// Turns result rows into the signal's families, up to the series cap.
pub fn rows_to_families(signal: &ResolvedSignal, rows: &[PgRow]) -> Result<Vec<Family>, QueryError> {
    let mut series = Series::new(signal);
    for row in rows {
        if !series.add(row)? {
            break;
        }
    }
    Ok(series.families())
}
