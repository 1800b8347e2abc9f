//! Prometheus text format 0.0.4 and OpenMetrics 1.0 encoding of the gathered state.

use std::fmt::Write;

use crate::spec::MetricType;
use crate::state::{Family, LabelText, SampleValue};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    Prometheus,
    OpenMetrics,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

pub fn encode(families: &[Family], format: Format) -> String {
    let mut out = String::with_capacity(families.len() * 256);
    for family in families {
        encode_group(&mut out, &[family], format);
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

/// One family as the merge of `group` (one name; several producers may export it): the first
/// one's help and type, then every one's samples in turn.
pub fn encode_group(out: &mut String, group: &[&Family], format: Format) {
    let Some(family) = group.first() else { return };
    let (kind, family_name) = match family.kind {
        MetricType::Counter if format == Format::OpenMetrics => {
            ("counter", family.name.strip_suffix("_total").unwrap_or(&family.name))
        }
        MetricType::Counter => ("counter", family.name.as_str()),
        MetricType::Gauge => ("gauge", family.name.as_str()),
        MetricType::Histogram => ("histogram", family.name.as_str()),
    };
    let _ = writeln!(out, "# HELP {family_name} {}", escape_help(&family.help));
    let _ = writeln!(out, "# TYPE {family_name} {kind}");
    for sample in group.iter().flat_map(|f| &f.samples) {
        match &sample.value {
            SampleValue::Scalar(v) => write_sample(out, &family.name, &sample.labels, None, *v),
            SampleValue::Histogram { buckets, sum, count } => {
                for (bound, n) in buckets {
                    write_sample(
                        out,
                        &format!("{}_bucket", family.name),
                        &sample.labels,
                        Some(&format_value(*bound)),
                        *n as f64,
                    );
                }
                write_sample(out, &format!("{}_bucket", family.name), &sample.labels, Some("+Inf"), *count as f64);
                write_sample(out, &format!("{}_sum", family.name), &sample.labels, None, *sum);
                write_sample(out, &format!("{}_count", family.name), &sample.labels, None, *count as f64);
            }
        }
    }
}

fn write_sample(out: &mut String, name: &str, labels: &[(LabelText, LabelText)], le: Option<&str>, value: f64) {
    out.push_str(name);
    if !labels.is_empty() || le.is_some() {
        out.push('{');
        let mut first = true;
        for (k, v) in labels.iter().map(|(k, v)| (&**k, &**v)).chain(le.map(|le| ("le", le))) {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(k);
            out.push_str("=\"");
            escape_label_value(out, v);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    write_value(out, value);
    out.push('\n');
}

pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        // Rust prints the shortest text that parses back to the same float.
        format!("{v}")
    }
}

/// [`format_value`] written in place: a large body formats one value per series.
fn write_value(out: &mut String, v: f64) {
    if v.is_finite() {
        let _ = write!(out, "{v}");
    } else {
        out.push_str(&format_value(v));
    }
}

fn escape_label_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Sample;
    use proptest::prelude::*;

    fn unescape(v: &str) -> String {
        let mut out = String::new();
        let mut chars = v.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n') => out.push('\n'),
                    Some(other) => out.push(other),
                    None => {}
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn counters_drop_total_from_openmetrics_family_names() {
        let family = Family::new("x_total", "Things.", MetricType::Counter).with(&[("a", "b")], 3.0);
        let om = encode(std::slice::from_ref(&family), Format::OpenMetrics);
        assert_eq!(om, "# HELP x Things.\n# TYPE x counter\nx_total{a=\"b\"} 3\n# EOF\n");
        let text = encode(&[family], Format::Prometheus);
        assert_eq!(text, "# HELP x_total Things.\n# TYPE x_total counter\nx_total{a=\"b\"} 3\n");
    }

    #[test]
    fn histograms_have_cumulative_buckets_and_inf() {
        let family = Family {
            name: "h_seconds".into(),
            help: "H.".into(),
            kind: MetricType::Histogram,
            samples: vec![Sample {
                labels: vec![],
                value: SampleValue::Histogram { buckets: vec![(1.0, 1), (5.0, 2)], sum: 7.5, count: 3 },
            }],
        };
        let text = encode(&[family], Format::Prometheus);
        assert!(text.contains("h_seconds_bucket{le=\"1\"} 1\nh_seconds_bucket{le=\"5\"} 2\nh_seconds_bucket{le=\"+Inf\"} 3\nh_seconds_sum 7.5\nh_seconds_count 3\n"));
    }

    proptest! {
        #[test]
        fn label_values_round_trip_through_escaping(value in "\\PC*|[\\\\\"\n]{0,10}") {
            let mut out = String::new();
            escape_label_value(&mut out, &value);
            prop_assert!(!out.contains('\n'));
            prop_assert_eq!(unescape(&out), value);
        }
    }
}
