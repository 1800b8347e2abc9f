//! Result rows into a signal's series, row by row, so a run can stop reading at the series cap
//! instead of holding (or even fetching) a result of any size.

use std::collections::BTreeMap;

use sqlx::postgres::PgRow;

use super::{QueryError, QueryErrorKind, Reach, decode};
use crate::sources::logs::rules::MAX_SERIES_PER_METRIC;
use crate::spec::{LabelDef, ResolvedSignal};
use crate::state::Family;

/// Label values read from a row are cut to this many bytes, at a character boundary, as a log
/// source's are by default: a free-text column (an error message, a JSON blob) must not make a
/// 100 kB label that every scrape, and Prometheus' index, carries. Cut rather than refused: the
/// row still counts, and the cut shows in `integration_exporter_label_truncated_total{metric}`.
pub const MAX_LABEL_BYTES: usize = 256;

/// What one run folded, by metric name: rows whose label values were cut, and rows added into a
/// series an earlier row of the run had opened.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Folds {
    pub cut: BTreeMap<String, u64>,
    pub merged: BTreeMap<String, u64>,
}

/// One signal's metrics being built from rows.
pub struct Series<'a> {
    signal: &'a ResolvedSignal,
    /// Per metric: label set -> value.
    values: Vec<BTreeMap<Vec<String>, f64>>,
    folds: Folds,
}

impl<'a> Series<'a> {
    pub fn new(signal: &'a ResolvedSignal) -> Self {
        Series { signal, values: vec![BTreeMap::new(); signal.signal.metrics.len()], folds: Folds::default() }
    }

    /// What the rows added so far folded.
    pub fn folds(&self) -> &Folds {
        &self.folds
    }

    /// Adds one row to every metric. `Ok(false)`, and nothing added, when the row would open a
    /// series past the cap in any metric: the caller stops reading there.
    pub fn add(&mut self, row: &PgRow) -> Result<bool, QueryError> {
        // Decoded for every metric first, so a row is added whole or not at all.
        let mut updates: Vec<Option<(Vec<String>, f64, bool)>> = Vec::with_capacity(self.values.len());
        for (metric, values) in self.signal.signal.metrics.iter().zip(&self.values) {
            let column = metric.column.as_deref().unwrap_or("value");
            let mut labels = Vec::with_capacity(metric.labels.len());
            let mut cut = false;
            for label in &metric.labels {
                let mut value = decode::label(row, label.name())?;
                if value.len() > MAX_LABEL_BYTES {
                    value.truncate(value.floor_char_boundary(MAX_LABEL_BYTES));
                    cut = true;
                }
                labels.push(value);
            }
            // NULL: the row says nothing about this metric.
            let Some(value) = decode::number(row, column)? else {
                updates.push(None);
                continue;
            };
            if !value.is_finite() {
                return Err(self.not_finite(&metric.name, column, &metric.labels, &labels, value, "is"));
            }
            let total = match values.get(&labels) {
                Some(sum) => sum + value,
                None if values.len() >= MAX_SERIES_PER_METRIC => return Ok(false),
                None => value,
            };
            if !total.is_finite() {
                let what = "summed with the earlier rows of the same labels gives";
                return Err(self.not_finite(&metric.name, column, &metric.labels, &labels, total, what));
            }
            updates.push(Some((labels, total, cut)));
        }
        for ((metric, values), update) in self.signal.signal.metrics.iter().zip(&mut self.values).zip(updates) {
            let Some((labels, value, cut)) = update else { continue };
            if cut {
                *self.folds.cut.entry(metric.name.clone()).or_default() += 1;
            }
            // Two rows with the same labels are summed, as a GROUP BY would (`SELECT kind, 1 AS
            // value FROM jobs` counts by kind); counted, since for a value that does not add up
            // (seconds until expiry) a second row is a fan-out in the query.
            if values.insert(labels, value).is_some() {
                *self.folds.merged.entry(metric.name.clone()).or_default() += 1;
            }
        }
        Ok(true)
    }

    /// A value no exposition should carry: Prometheus would store `NaN` or `±Inf` and every
    /// comparison in an alert on it would be false (or always true). The run fails whole, as for a
    /// column of the wrong type, rather than export the other rows: a series missing from a sum or
    /// a ratio would be a wrong number, and the last good values stay until they go stale. The
    /// row is named by its label values, which the exposition would carry anyway.
    fn not_finite(
        &self,
        metric: &str,
        column: &str,
        names: &[LabelDef],
        values: &[String],
        value: f64,
        what: &str,
    ) -> QueryError {
        let labels: Vec<String> = names.iter().zip(values).map(|(n, v)| format!("{}={v:?}", n.name())).collect();
        let shown = if value.is_nan() {
            "NaN"
        } else if value > 0.0 {
            "+Inf"
        } else {
            "-Inf"
        };
        let message = format!(
            "signal `{}`, metric `{metric}`: column `{column}` in the row {{{}}} {what} {shown}, which is not exported; \
             leave such rows out in the query",
            self.signal.signal.id,
            labels.join(",")
        );
        QueryError { kind: QueryErrorKind::Decode, message: super::secret::scrub(&message), reach: Reach::Answered }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_truncation_counter_names_the_cap() {
        let help = crate::self_metrics::LABEL_TRUNCATED.help;
        assert!(help.contains(&format!("{MAX_LABEL_BYTES} bytes")), "{help}");
    }
}
