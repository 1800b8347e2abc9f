//! Content negotiation of `/metrics` (RFC 9110 §12.5): the format from `Accept` and gzip from
//! `Accept-Encoding`, with q-values and case-insensitive names. A client that says `q=0` refuses
//! what it names, so `gzip;q=0` is answered uncompressed and OpenMetrics at a lower q than the
//! text format gets the text format.
//!
//! Our own reader, kept on purpose: hyper and `http` leave `Accept` to the application, and what
//! is needed is only the RFC's comma list of `name;q=` elements for two headers (no media-type
//! parameters are acted on); a media-type crate would bring a model of MIME types we do not use.

use super::text::Format;

/// One element of a comma-separated header: its name (lower-cased) and weight.
struct Weighted {
    name: String,
    q: f64,
    /// Position in the header, for ties.
    at: usize,
}

/// The elements of `header`, with their `q` (1 when absent; an unreadable `q` counts as 0: the
/// client said something about the weight that we cannot read, so we take it as a refusal
/// rather than a preference).
fn weighted(header: &str) -> Vec<Weighted> {
    header
        .split(',')
        .enumerate()
        .filter_map(|(at, element)| {
            let mut parts = element.split(';');
            let name = parts.next()?.trim().to_ascii_lowercase();
            if name.is_empty() {
                return None;
            }
            let mut q = 1.0;
            for param in parts {
                if let Some((key, value)) = param.split_once('=')
                    && key.trim().eq_ignore_ascii_case("q")
                {
                    q = parse_q(value.trim()).unwrap_or(0.0);
                }
            }
            Some(Weighted { name, q, at })
        })
        .collect()
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`, read leniently as a number in
/// [0, 1].
fn parse_q(value: &str) -> Option<f64> {
    let value = value.trim_matches('"');
    let q: f64 = value.parse().ok()?;
    (q.is_finite() && (0.0..=1.0).contains(&q)).then_some(q)
}

/// How a media range matches a type: 3 exact, 2 `type/*`, 1 `*/*`, 0 not at all.
fn specificity(range: &str, media_type: &str) -> u8 {
    if range == media_type {
        return 3;
    }
    let Some((kind, _)) = media_type.split_once('/') else { return 0 };
    match range.split_once('/') {
        Some((k, "*")) if k == kind => 2,
        Some(("*", "*")) => 1,
        _ => 0,
    }
}

/// The weight `media_type` gets from the most specific range that matches it (RFC 9110: a more
/// specific range overrides a less specific one; among equals, the highest q), with that range's
/// specificity and position.
fn preference(ranges: &[Weighted], media_type: &str) -> Option<(f64, u8, usize)> {
    ranges
        .iter()
        .filter_map(|r| match specificity(&r.name, media_type) {
            0 => None,
            s => Some((r.q, s, r.at)),
        })
        .max_by(|a, b| a.1.cmp(&b.1).then(a.0.total_cmp(&b.0)).then(b.2.cmp(&a.2)))
}

/// The format `Accept` asks for: OpenMetrics when the client names it and weighs it above the
/// text format; the text format otherwise (also with no `Accept`, with `*/*`, or when the client
/// refuses both, as Prometheus' client libraries do rather than answer 406).
pub fn format(accept: Option<&str>) -> Format {
    let Some(accept) = accept else { return Format::Prometheus };
    let ranges = weighted(accept);
    // Only a range that names OpenMetrics (or `application/*`) asks for it: `*/*` alone is
    // every curl and browser, which should get the text format.
    let open_metrics = preference(&ranges, "application/openmetrics-text").filter(|(q, s, _)| *q > 0.0 && *s >= 2);
    let Some((om_q, om_s, om_at)) = open_metrics else { return Format::Prometheus };
    match preference(&ranges, "text/plain") {
        None => Format::OpenMetrics,
        Some((text_q, text_s, text_at)) => {
            let om_first = om_q > text_q
                || (om_q == text_q && (om_s, std::cmp::Reverse(om_at)) > (text_s, std::cmp::Reverse(text_at)));
            if om_first { Format::OpenMetrics } else { Format::Prometheus }
        }
    }
}

/// Whether `Accept-Encoding` accepts gzip: named (`gzip` or its old alias `x-gzip`, in any case)
/// with a q above 0, or not named while `*` is accepted.
pub fn gzip(accept_encoding: Option<&str>) -> bool {
    let Some(header) = accept_encoding else { return false };
    let codings = weighted(header);
    let named = codings.iter().filter(|c| c.name == "gzip" || c.name == "x-gzip").map(|c| c.q).reduce(f64::max);
    match named {
        Some(q) => q > 0.0,
        None => codings.iter().any(|c| c.name == "*" && c.q > 0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

    #[test]
    fn formats_by_accept() {
        use Format::{OpenMetrics as Om, Prometheus as Text};
        let cases: &[(Option<&str>, Format)] = &[
            (None, Text),
            (Some(""), Text),
            (Some("*/*"), Text),
            (Some("text/plain"), Text),
            (Some("application/openmetrics-text"), Om),
            (Some("application/openmetrics-text; version=1.0.0"), Om),
            (Some(PROMETHEUS_ACCEPT), Om),
            (Some("APPLICATION/OpenMetrics-Text;Version=1.0.0"), Om),
            (Some("application/openmetrics-text;q=0.1, text/plain;q=0.9"), Text),
            (Some("text/plain;q=0.9, application/openmetrics-text;q=0.1"), Text),
            (Some("application/openmetrics-text;q=0.9, text/plain;q=0.1"), Om),
            (Some("application/openmetrics-text;q=0"), Text),
            (Some("application/openmetrics-text;Q=0"), Text),
            (Some("application/openmetrics-text;q=0.000"), Text),
            (Some("application/openmetrics-text;q=banana"), Text),
            (Some("application/openmetrics-text;q=0.5"), Om),
            (Some("application/openmetrics-text;q=0.5, */*"), Text),
            (Some("application/openmetrics-text, */*"), Om),
            (Some("*/*, application/openmetrics-text"), Om),
            (Some("application/openmetrics-text, text/plain"), Om),
            (Some("text/plain, application/openmetrics-text"), Text),
            (Some("text/*;q=0.2, application/openmetrics-text;q=0.3"), Om),
            (Some("text/plain;q=0, application/openmetrics-text;q=0"), Text),
            (Some("application/*"), Om),
            (Some("application/json"), Text),
            (Some(",,;;=,"), Text),
        ];
        for (accept, want) in cases {
            assert_eq!(format(*accept), *want, "Accept: {accept:?}");
        }
    }

    #[test]
    fn gzip_by_accept_encoding() {
        let cases: &[(Option<&str>, bool)] = &[
            (None, false),
            (Some(""), false),
            (Some("identity"), false),
            (Some("gzip"), true),
            (Some("GZIP"), true),
            (Some("GZip"), true),
            (Some("x-gzip"), true),
            (Some("deflate, gzip;q=0.5, br"), true),
            (Some("gzip;q=0"), false),
            (Some("gzip; q=0"), false),
            (Some("gzip;Q=0.0"), false),
            (Some("gzip;q=0, *"), false),
            (Some("*"), true),
            (Some("*;q=0"), false),
            (Some("gzipped"), false),
            (Some("br, gzip;q=banana"), false),
            (Some("gzip;q=1.5"), false),
        ];
        for (header, want) in cases {
            assert_eq!(gzip(*header), *want, "Accept-Encoding: {header:?}");
        }
    }

    /// Randomly upper-cases ASCII letters.
    fn recase(text: &str, mask: &[bool]) -> String {
        text.chars().zip(mask.iter().cycle()).map(|(c, up)| if *up { c.to_ascii_uppercase() } else { c }).collect()
    }

    proptest! {
        #[test]
        fn case_and_spaces_never_change_the_answer(
            mask in proptest::collection::vec(any::<bool>(), 1..16),
            om_q in 0u16..=1000,
            text_q in 0u16..=1000,
            gzip_q in 0u16..=1000,
            space in "[ \t]{0,2}",
        ) {
            let accept = format!(
                "application/openmetrics-text{space};{space}q={}{space},{space}text/plain;q={}",
                f64::from(om_q) / 1000.0,
                f64::from(text_q) / 1000.0
            );
            let encoding = format!("gzip{space};{space}q={}", f64::from(gzip_q) / 1000.0);
            let want_om = om_q > 0 && om_q >= text_q;
            prop_assert_eq!(format(Some(&accept)) == Format::OpenMetrics, want_om);
            prop_assert_eq!(format(Some(&recase(&accept, &mask))) == Format::OpenMetrics, want_om);
            prop_assert_eq!(gzip(Some(&encoding)), gzip_q > 0);
            prop_assert_eq!(gzip(Some(&recase(&encoding, &mask))), gzip_q > 0);
        }

        #[test]
        fn any_header_answers_without_panicking(header in "\\PC{0,80}") {
            let _ = format(Some(&header));
            let _ = gzip(Some(&header));
        }
    }
}
