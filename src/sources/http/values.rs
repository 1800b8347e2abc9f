//! What each configured value reads from a JSON answer: one number, or one number per item (with
//! labels from the item), or a count of items. A value that cannot be read is reported, never
//! silently left out.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::path::{Filter, as_number, rfc3339_seconds};
use crate::spec::{HttpValue, HttpValueFormat, LabelDef};

/// Label values read from items are cut to this many bytes.
pub const MAX_LABEL_BYTES: usize = 128;
/// One value makes at most this many series per poll (a list that grows without bound must not
/// grow the exposition with it).
pub const MAX_SERIES_PER_VALUE: usize = 200;

pub type Labels = Vec<(String, String)>;

/// What one value read from one answer.
#[derive(Debug, Default, PartialEq)]
pub struct Read {
    pub samples: Vec<(Labels, f64)>,
    /// The value (or an item's part of it) was missing or not a number.
    pub missing: bool,
    /// Series were dropped for the series bound.
    pub over_limit: bool,
    /// A number was read but the arithmetic on it (`minus`) left the finite range: no +Inf, -Inf
    /// or NaN is exported, the value counts as missing (`path`) and this says why.
    pub not_finite: bool,
}

/// Paths that name a measure of the request instead of a place in the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// `up`: 1 when the endpoint answered 2xx within the timeout, else 0.
    Up,
    /// `duration`: how long the request took, in seconds.
    Duration,
}

impl Probe {
    pub fn named(path: &str) -> Option<Probe> {
        match path {
            "up" => Some(Probe::Up),
            "duration" => Some(Probe::Duration),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
enum What {
    /// The request itself, filled in by the poller.
    Probe(Probe),
    One {
        expr: Filter,
        minus: Option<Filter>,
    },
    Each {
        items: Filter,
        read: Option<Filter>,
        labels: Vec<(String, Filter, Option<Fixed>)>,
    },
}

#[derive(Debug, Clone)]
struct Fixed {
    values: Vec<String>,
    other: Option<String>,
}

/// Why a value cannot be read: the spec text at fault (a filter, or the metric's name) and what.
#[derive(Debug, Clone)]
struct Refused {
    at: String,
    message: String,
}

/// A configured value, parsed once.
#[derive(Debug, Clone)]
pub struct CompiledValue {
    pub metric: String,
    what: Result<What, Refused>,
    format: HttpValueFormat,
}

impl CompiledValue {
    /// `declared` are the metric's labels. Errors (also caught by spec validation) make every
    /// read a `path` error rather than a panic.
    pub fn new(value: &HttpValue, declared: &[LabelDef]) -> CompiledValue {
        CompiledValue { metric: value.metric.clone(), what: compile(value, declared), format: value.format }
    }

    /// What the value reads of the request itself, when it is no JSON path.
    pub fn probe(&self) -> Option<Probe> {
        match self.what {
            Ok(What::Probe(probe)) => Some(probe),
            _ => None,
        }
    }

    pub fn error(&self) -> Option<&str> {
        self.what.as_ref().err().map(|r| r.message.as_str())
    }

    /// The spec text the error is about, to point at it: the faulty filter, else the metric.
    pub fn error_at(&self) -> Option<&str> {
        self.what.as_ref().err().map(|r| r.at.as_str())
    }

    pub fn read(&self, doc: &Json) -> Read {
        let mut out = self.read_any(doc);
        let read = out.samples.len();
        out.samples.retain(|(_, v)| v.is_finite());
        if out.samples.len() < read {
            out.missing = true;
            out.not_finite = true;
        }
        out
    }

    /// What `read` gives before values that are not finite are taken out.
    fn read_any(&self, doc: &Json) -> Read {
        let mut out = Read::default();
        match &self.what {
            Err(_) => out.missing = true,
            Ok(What::Probe(_)) => {}
            Ok(What::One { expr, minus }) => {
                let minus = match minus {
                    None => Some(0.0),
                    Some(filter) => filter.one(doc).and_then(|v| as_number(&v)),
                };
                match (self.number(expr, doc), minus) {
                    (Some(v), Some(m)) => out.samples.push((Vec::new(), v - m)),
                    _ => out.missing = true,
                }
            }
            Ok(What::Each { items, read, labels }) => {
                let Some(items) = items.run(doc) else {
                    out.missing = true;
                    return out;
                };
                // Series in first-seen order; the first item of a series gives its value.
                let mut series: BTreeMap<Labels, usize> = BTreeMap::new();
                for item in &items {
                    let Some(key) = item_labels(item, labels) else { continue };
                    if let Some(&at) = series.get(&key) {
                        if read.is_none() {
                            out.samples[at].1 += 1.0;
                        }
                        continue;
                    }
                    if series.len() >= MAX_SERIES_PER_VALUE {
                        out.over_limit = true;
                        continue;
                    }
                    let value = match read {
                        None => Some(1.0),
                        Some(expr) => self.number(expr, item),
                    };
                    match value {
                        Some(v) => {
                            series.insert(key.clone(), out.samples.len());
                            out.samples.push((key, v));
                        }
                        None => out.missing = true,
                    }
                }
                // An empty list counts as zero when there is a single unlabelled count series.
                if read.is_none() && labels.is_empty() && out.samples.is_empty() {
                    out.samples.push((Vec::new(), 0.0));
                }
            }
        }
        out
    }

    /// The one value `expr` gives, as a number: none, several or an error is no number. A
    /// comparison is 1 or 0 whatever the format.
    fn number(&self, expr: &Filter, item: &Json) -> Option<f64> {
        let found = expr.one(item)?;
        match self.format {
            _ if expr.gives_bool() => as_number(&found),
            HttpValueFormat::Number => as_number(&found),
            HttpValueFormat::Rfc3339 => rfc3339_seconds(&found),
        }
    }
}

/// A filter of the value, parsed; errors name the value, the field and the column.
fn filter(metric: &str, field: &str, text: &str) -> Result<Filter, Refused> {
    Filter::parse(text)
        .map_err(|e| Refused { at: text.to_string(), message: format!("`{metric}`: {field} `{text}` {e}") })
}

fn compile(value: &HttpValue, declared: &[LabelDef]) -> Result<What, Refused> {
    let path = value.path.as_str();
    let metric = value.metric.as_str();
    let refuse =
        |at: &str, message: String| Err(Refused { at: at.to_string(), message: format!("`{metric}`: {message}") });
    if let Some(probe) = Probe::named(path) {
        if value.each.is_some() || value.minus.is_some() || !value.labels.is_empty() {
            return refuse(path, format!("`{path}` is about the request; it takes no `each`, `minus` or `labels`"));
        }
        return Ok(What::Probe(probe));
    }
    let Some(each) = &value.each else {
        if path == "count" {
            return refuse(path, "`count` counts the items of `each`".into());
        }
        if !value.labels.is_empty() || !declared.is_empty() {
            return refuse(metric, "labels are read from the items of `each`".into());
        }
        let expr = filter(metric, "path", path)?;
        if expr.has_each() {
            return refuse(path, "`[]` makes many values; put the list in `each`".into());
        }
        let minus = match value.minus.as_deref() {
            None => None,
            Some(text) => {
                let minus = filter(metric, "minus", text)?;
                if minus.has_each() {
                    return refuse(text, "`minus` reads one value; no `[]`".into());
                }
                Some(minus)
            }
        };
        return Ok(What::One { expr, minus });
    };
    if let Some(minus) = &value.minus {
        return refuse(minus, "`minus` does not go with `each`".into());
    }
    let items = filter(metric, "each", each)?;
    let read = if path == "count" {
        None
    } else {
        let expr = filter(metric, "path", path)?;
        if expr.has_each() {
            return refuse(path, "`path` reads one value from each item; no `[]`".into());
        }
        Some(expr)
    };
    let declared_names: Vec<&str> = declared.iter().map(LabelDef::name).collect();
    let mut wanted: Vec<&str> = value.labels.keys().map(String::as_str).collect();
    wanted.sort_unstable();
    let mut sorted = declared_names.clone();
    sorted.sort_unstable();
    if wanted != sorted {
        return refuse(
            metric,
            format!("`labels` ({}) must be the metric's labels ({})", wanted.join(", "), sorted.join(", ")),
        );
    }
    // In the metric's declared order, so the exposition is stable.
    let mut labels = Vec::new();
    for def in declared {
        let spec = &value.labels[def.name()];
        let read = filter(metric, &format!("label `{}`", def.name()), spec)?;
        if read.has_each() {
            return refuse(spec, format!("label `{}` reads one value; no `[]`", def.name()));
        }
        let fixed = match def {
            LabelDef::Name(_) => None,
            LabelDef::Fixed(f) => Some(Fixed { values: f.values.clone(), other: f.other.clone() }),
        };
        labels.push((def.name().to_string(), read, fixed));
    }
    Ok(What::Each { items, read, labels })
}

/// The item's label values; `None` drops the item (a value outside a fixed set without `other`).
fn item_labels(item: &Json, labels: &[(String, Filter, Option<Fixed>)]) -> Option<Labels> {
    let mut out = Vec::with_capacity(labels.len());
    for (name, read, fixed) in labels {
        // Null, no value, several or an error: an empty label, as a missing field always was.
        let mut text = match read.one(item).as_deref() {
            Some(Json::String(s)) => s.clone(),
            Some(Json::Number(n)) => n.to_string(),
            Some(Json::Bool(b)) => b.to_string(),
            _ => String::new(),
        };
        if text.len() > MAX_LABEL_BYTES {
            let mut cut = MAX_LABEL_BYTES;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        if let Some(fixed) = fixed
            && !fixed.values.contains(&text)
        {
            text = fixed.other.clone()?;
        }
        out.push((name.clone(), text));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(yaml: &str) -> HttpValue {
        serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("{e}"))
    }

    fn names(labels: &[&str]) -> Vec<LabelDef> {
        labels.iter().map(|l| LabelDef::Name(l.to_string())).collect()
    }

    #[test]
    fn counts_filtered_items_and_reads_per_item_values() {
        let doc = serde_json::json!({"workflows": [
            {"name": "sync", "state": "active", "at": "2026-01-31T08:00:00Z"},
            {"name": "refresh", "state": "disabled_manually", "at": "2026-01-31T09:00:00Z"},
            {"name": "sync", "state": "active", "at": "2026-01-30T08:00:00Z"}
        ]});
        let count = |each: &str| {
            let v = value(&format!("{{metric: m, each: '{each}', path: count}}"));
            CompiledValue::new(&v, &[]).read(&doc)
        };
        assert_eq!(count(".workflows[] | select(.state != \"active\")").samples, [(vec![], 1.0)]);
        assert_eq!(count(".workflows[] | select(.state == \"gone\")").samples, [(vec![], 0.0)]);
        let missing = count(".runs[]");
        assert!(missing.missing && missing.samples.is_empty(), "a missing list is an error, not zero");

        let v = value("{metric: m, each: '.workflows[]', path: .at, format: rfc3339, labels: {workflow: .name}}");
        let read = CompiledValue::new(&v, &names(&["workflow"])).read(&doc);
        let l = |w: &str| vec![("workflow".to_string(), w.to_string())];
        assert_eq!(read.samples, [(l("sync"), 1_769_846_400.0), (l("refresh"), 1_769_850_000.0)], "first wins");
        let v = value("{metric: m, each: '.workflows[]', path: '.state == \"active\"', labels: {workflow: .name}}");
        assert_eq!(
            CompiledValue::new(&v, &names(&["workflow"])).read(&doc).samples,
            [(l("sync"), 1.0), (l("refresh"), 0.0)]
        );
        let v = value("{metric: m, each: '.workflows[]', path: count, labels: {workflow: .name}}");
        assert_eq!(
            CompiledValue::new(&v, &names(&["workflow"])).read(&doc).samples,
            [(l("sync"), 2.0), (l("refresh"), 1.0)]
        );
    }

    #[test]
    fn series_and_label_values_are_bounded() {
        let items: Vec<Json> = (0..MAX_SERIES_PER_VALUE + 5)
            .map(|i| serde_json::json!({"name": format!("{i}{}", "é".repeat(100))}))
            .collect();
        let doc = serde_json::json!({"items": items});
        let v = value("{metric: m, each: '.items[]', path: count, labels: {name: .name}}");
        let read = CompiledValue::new(&v, &names(&["name"])).read(&doc);
        assert_eq!(read.samples.len(), MAX_SERIES_PER_VALUE);
        assert!(read.over_limit);
        assert!(read.samples.iter().all(|(l, _)| l[0].1.len() <= MAX_LABEL_BYTES));
    }

    proptest::proptest! {
        /// `count` after `select` is the number of items a plain filter keeps; per-item labels
        /// make one series per distinct value, first item wins.
        #[test]
        fn count_and_labels_agree_with_a_plain_filter(states in proptest::collection::vec(0u8..4, 0..40)) {
            let items: Vec<Json> = states.iter().enumerate()
                .map(|(i, s)| serde_json::json!({"id": i, "state": format!("s{s}")}))
                .collect();
            let doc = serde_json::json!({"items": items});
            let v = value("{metric: m, each: '.items[] | select(.state != \"s0\")', path: count}");
            let want = states.iter().filter(|s| **s != 0).count() as f64;
            proptest::prop_assert_eq!(CompiledValue::new(&v, &[]).read(&doc).samples, vec![(vec![], want)]);
            let v = value("{metric: m, each: '.items[]', path: .id, labels: {state: .state}}");
            let read = CompiledValue::new(&v, &names(&["state"])).read(&doc);
            let mut distinct = states.clone();
            distinct.sort_unstable();
            distinct.dedup();
            proptest::prop_assert_eq!(read.samples.len(), distinct.len());
            for (labels, id) in read.samples {
                let first = states.iter().position(|s| format!("s{s}") == labels[0].1).unwrap();
                proptest::prop_assert_eq!(id, first as f64);
            }
        }
    }

    #[test]
    fn bad_combinations_are_errors() {
        for (yaml, labels) in [
            ("{metric: m, path: count}", vec![]),
            ("{metric: m, path: '.a[]'}", vec![]),
            ("{metric: m, path: .a, labels: {x: .x}}", vec!["x"]),
            ("{metric: m, each: '.a[]', path: count, labels: {x: .x}}", vec!["y"]),
            ("{metric: m, each: '.a[]', path: .b, minus: .c}", vec![]),
            ("{metric: m, each: '.a[]', path: up}", vec![]),
        ] {
            assert!(CompiledValue::new(&value(yaml), &names(&labels)).error().is_some(), "{yaml}");
        }
    }
}
