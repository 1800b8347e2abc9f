//! Durations written the way Prometheus writes them (`90s`, `10m`, `1h30m`), so one value can be
//! pasted into a `for:` clause, a range selector and a SQL interval without conversion.
//!
//! Our own reader, kept on purpose: the one library here that parses them (`promql-parser`'s
//! `parse_duration`) takes a bare `90` as float seconds, where a spec that forgot its unit should
//! be told so, and refuses `0`, which a spec may mean (`rotate_wait: 0`). What we print (largest
//! unit first, each once) is always a duration Prometheus' own parser accepts.

#![warn(missing_docs)]

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration as Prometheus writes it: a number and a unit (`ms`, `s`, `m`, `h`, `d`, `w`), several
/// combined (`1h30m`), or `0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PromDuration(pub Duration);

impl PromDuration {
    /// Whole seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }

    /// Seconds, fractions included.
    pub fn as_secs_f64(self) -> f64 {
        self.0.as_secs_f64()
    }

    /// `interval 'N seconds'` in SQL, so the database's own clock does the arithmetic.
    pub fn sql_interval(self) -> String {
        let ms = self.0.as_millis();
        if ms.is_multiple_of(1000) {
            format!("interval '{} seconds'", ms / 1000)
        } else {
            format!("interval '{} milliseconds'", ms)
        }
    }

    /// Reads `90s`, `1h30m`, `0`; an error says what is wrong with the text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("empty duration".into());
        }
        if text == "0" {
            return Ok(Self(Duration::ZERO));
        }
        let bytes = text.as_bytes();
        let mut i = 0;
        let mut total_ms: u128 = 0;
        while i < bytes.len() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if start == i {
                return Err(format!("`{text}` is not a duration like 30s, 10m, 1h30m"));
            }
            let number: u128 = text[start..i].parse().map_err(|_| format!("`{text}`: number too large"))?;
            let unit_start = i;
            while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                i += 1;
            }
            let unit_ms: u128 = match &text[unit_start..i] {
                "ms" => 1,
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                "w" => 7 * 86_400_000,
                "" => return Err(format!("`{text}`: missing unit (ms, s, m, h, d, w)")),
                other => return Err(format!("`{text}`: unknown unit `{other}`")),
            };
            total_ms = number
                .checked_mul(unit_ms)
                .and_then(|v| total_ms.checked_add(v))
                .ok_or_else(|| format!("`{text}`: duration too large"))?;
        }
        let ms = u64::try_from(total_ms).map_err(|_| format!("`{text}`: duration too large"))?;
        Ok(Self(Duration::from_millis(ms)))
    }
}

impl fmt::Display for PromDuration {
    /// Largest units first, the way Prometheus prints durations: `1h30m`, `10m`, `90s` -> `1m30s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in
            [("w", 7 * 86_400_000u128), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)]
        {
            if ms >= size {
                write!(f, "{}{}", ms / size, unit)?;
                ms %= size;
            }
        }
        Ok(())
    }
}

impl Serialize for PromDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl schemars::JsonSchema for PromDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    /// What [`PromDuration::parse`] reads; `0` unquoted is a YAML number the reader takes as text.
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A duration as Prometheus writes it: a whole number and a unit (`ms`, `s`, `m`, `h`, `d`, `w`), several combined largest first (`1h30m`), or `0`.",
            "anyOf": [
                {"type": "string", "pattern": "^(0|([0-9]+(ms|s|m|h|d|w))+)$"},
                {"const": 0}
            ]
        })
    }
}

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        PromDuration::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_prints_prometheus_durations() {
        for (text, printed) in [("10m", "10m"), ("90s", "1m30s"), ("1h30m", "1h30m"), ("500ms", "500ms"), ("0", "0s")] {
            assert_eq!(PromDuration::parse(text).unwrap().to_string(), printed);
        }
        assert!(PromDuration::parse("10").is_err());
        assert!(PromDuration::parse("10y").is_err());
        assert!(PromDuration::parse("").is_err());
    }

    #[test]
    fn renders_sql_intervals() {
        assert_eq!(PromDuration::parse("10m").unwrap().sql_interval(), "interval '600 seconds'");
    }

    proptest! {
        #[test]
        fn display_round_trips(ms in 0u64..10_000_000_000) {
            let d = PromDuration(Duration::from_millis(ms));
            prop_assert_eq!(PromDuration::parse(&d.to_string()).unwrap(), d);
        }

        #[test]
        fn never_panics_on_text(text in ".{0,20}") {
            let _ = PromDuration::parse(&text);
        }
    }
}
