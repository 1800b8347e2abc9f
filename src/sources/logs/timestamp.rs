//! A line's own time. Python's default `2026-02-06 12:00:01,234` carries no zone, so the zone is
//! configured; lines that carry one (RFC 3339) keep theirs.

use chrono::{DateTime, TimeZone};
use chrono_tz::Tz;
use regex::Regex;

use crate::spec::TimestampSpec;

#[derive(Debug, Clone)]
enum Layout {
    /// The format read once into chrono's items, not again for every line.
    Strftime(Vec<chrono::format::Item<'static>>),
    Rfc3339,
    Unix,
}

#[derive(Debug, Clone)]
enum Zone {
    Named(Tz),
    Local,
}

#[derive(Debug, Clone)]
pub struct TimestampParser {
    pattern: Regex,
    pub field: String,
    layout: Layout,
    zone: Zone,
}

/// A strftime format chrono can read, or what is wrong with it: without this, a format with an
/// unknown specifier (`%Q`) passes `check` and then no line ever parses.
pub fn check_format(format: &str) -> Result<(), String> {
    use chrono::format::{Item, StrftimeItems};
    if !StrftimeItems::new(format).any(|item| matches!(item, Item::Error)) {
        return Ok(());
    }
    // Name the specifier: each piece from one `%` to the next, on its own (`%%` is a literal).
    let mut pieces = Vec::new();
    let mut start = None;
    let mut chars = format.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '%' {
            continue;
        }
        if chars.peek().is_some_and(|&(_, next)| next == '%') {
            chars.next();
            continue;
        }
        if let Some(from) = start.replace(i) {
            pieces.push(&format[from..i]);
        }
    }
    if let Some(from) = start {
        pieces.push(&format[from..]);
    }
    let bad = pieces.into_iter().find(|piece| StrftimeItems::new(piece).any(|item| matches!(item, Item::Error)));
    Err(match bad {
        Some(piece) => {
            let spec: String = piece.chars().take_while(|c| !c.is_whitespace()).take(4).collect();
            format!(
                "timestamp format `{format}`: `{spec}` is not a strftime specifier (Python logging's default is \
                 `%Y-%m-%d %H:%M:%S,%3f`; `rfc3339` and `unix` are accepted too)"
            )
        }
        None => format!("timestamp format `{format}` is not a valid strftime format"),
    })
}

impl TimestampParser {
    pub fn new(spec: &TimestampSpec) -> Result<Self, String> {
        let pattern = Regex::new(&spec.pattern).map_err(|e| format!("timestamp pattern: {e}"))?;
        let layout = match spec.format.as_str() {
            "rfc3339" => Layout::Rfc3339,
            "unix" => Layout::Unix,
            f => {
                check_format(f)?;
                let items = chrono::format::StrftimeItems::new(f).parse_to_owned();
                Layout::Strftime(items.map_err(|_| format!("timestamp format `{f}` is not a valid strftime format"))?)
            }
        };
        let zone = match spec.timezone.as_str() {
            "local" => Zone::Local,
            name => Zone::Named(name.parse::<Tz>().map_err(|_| format!("unknown time zone `{name}`"))?),
        };
        Ok(Self { pattern, field: spec.field.clone(), layout, zone })
    }

    /// Finds the timestamp in a text line and parses it.
    pub fn from_line(&self, line: &str) -> Option<f64> {
        let caps = self.pattern.captures(line)?;
        let text = caps.name("ts").or_else(|| caps.get(1)).or_else(|| caps.get(0))?.as_str();
        self.parse(text)
    }

    /// Parses the timestamp text itself, into unix seconds.
    pub fn parse(&self, text: &str) -> Option<f64> {
        let to_secs = |dt: DateTime<chrono::Utc>| dt.timestamp() as f64 + f64::from(dt.timestamp_subsec_nanos()) / 1e9;
        match &self.layout {
            Layout::Unix => text.trim().parse::<f64>().ok().filter(|v| v.is_finite()),
            Layout::Rfc3339 => DateTime::parse_from_rfc3339(text.trim()).ok().map(|d| to_secs(d.to_utc())),
            Layout::Strftime(items) => {
                // What `DateTime::parse_from_str` and then `NaiveDateTime::parse_from_str` do, with
                // the text parsed once.
                let mut parsed = chrono::format::Parsed::new();
                chrono::format::parse(&mut parsed, text, items.iter()).ok()?;
                if let Ok(with_zone) = parsed.to_datetime() {
                    return Some(to_secs(with_zone.to_utc()));
                }
                let naive = parsed.to_naive_datetime_with_offset(0).ok()?;
                let local = match &self.zone {
                    Zone::Named(tz) => tz.from_local_datetime(&naive).earliest()?.to_utc(),
                    Zone::Local => chrono::Local.from_local_datetime(&naive).earliest()?.to_utc(),
                };
                Some(to_secs(local))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parser(format: &str, tz: &str) -> TimestampParser {
        TimestampParser::new(&TimestampSpec { format: format.into(), timezone: tz.into(), ..TimestampSpec::default() })
            .unwrap()
    }

    #[test]
    fn unknown_specifiers_are_named() {
        for good in ["%Y-%m-%d %H:%M:%S,%3f", "%d/%b/%Y:%H:%M:%S %z", "100%% %Y", "%s", "%Y-%m-%dT%H:%M:%S%.f%:z"] {
            assert_eq!(check_format(good), Ok(()), "{good}");
        }
        for (bad, named) in [("%Q%Y", "`%Q`"), ("%Y-%m-%d %K", "`%K`"), ("%Y %", "`%`")] {
            let err = check_format(bad).expect_err(bad);
            assert!(err.contains(named), "{bad}: {err}");
        }
    }

    #[test]
    fn python_default_in_utc_and_in_a_named_zone() {
        let utc = parser("%Y-%m-%d %H:%M:%S,%3f", "UTC");
        assert_eq!(utc.from_line("2026-02-06 12:00:01,234 INFO x"), Some(1_770_379_201.234));
        let berlin = parser("%Y-%m-%d %H:%M:%S,%3f", "Europe/Berlin");
        assert_eq!(berlin.from_line("2026-02-06 12:00:01,234 INFO x"), Some(1_770_379_201.234 - 3600.0));
    }

    #[test]
    fn rfc3339_and_unix() {
        assert_eq!(parser("rfc3339", "UTC").parse("2026-02-06T12:00:01.5+01:00"), Some(1_770_375_601.5));
        assert_eq!(parser("unix", "UTC").parse("1770379201.25"), Some(1_770_379_201.25));
        assert_eq!(parser("unix", "UTC").parse("soon"), None);
    }

    #[test]
    fn unknown_zone_is_an_error() {
        assert!(
            TimestampParser::new(&TimestampSpec { timezone: "Mars/Olympus".into(), ..TimestampSpec::default() })
                .is_err()
        );
    }
}
