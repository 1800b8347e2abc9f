//! Numbers as Go formats them and Prometheus' template functions (`humanizePercentage`,
//! `humanizeDuration`, `printf "%.4g"`) render them, so generated promtool tests can state the
//! exact description an alert renders, and descriptions quote thresholds the same way.
//!
//! Our own, kept on purpose: the output must equal Go's `strconv`/`fmt` byte for byte (`%.4g`
//! exponents, `humanizeDuration`'s rounding); Rust's formatting and the crates for it follow C
//! or Rust conventions instead, and promtool's unit tests hold these strings to Prometheus' own.

use crate::spec::{PromDuration, ValueUnit};

/// `fmt.Sprintf("%.4g", v)`.
pub fn go_g4(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if !v.is_finite() {
        return if v.is_nan() {
            "NaN".into()
        } else if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    // Round to 4 significant digits first; the exponent after rounding decides the notation.
    let sci = format!("{:.3e}", v);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..4).contains(&exp) {
        let mantissa = trim_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    let decimals = (3 - exp).max(0) as usize;
    trim_zeros(&format!("{:.*}", decimals, v))
}

fn trim_zeros(s: &str) -> String {
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s.to_string() }
}

/// Prometheus' `humanizePercentage`.
pub fn percentage(v: f64) -> String {
    format!("{}%", go_g4(v * 100.0))
}

/// Prometheus' `humanizeDuration`.
pub fn duration(v: f64) -> String {
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        let total = v.abs() as i64;
        let (days, hours, minutes, seconds) = (total / 86_400, (total / 3600) % 24, (total / 60) % 60, total % 60);
        if days != 0 {
            return format!("{sign}{days}d {hours}h {minutes}m {seconds}s");
        }
        if hours != 0 {
            return format!("{sign}{hours}h {minutes}m {seconds}s");
        }
        if minutes != 0 {
            return format!("{sign}{minutes}m {seconds}s");
        }
        return format!("{sign}{}s", go_g4(v.abs()));
    }
    if v == 0.0 {
        return "0s".into();
    }
    format!("{}ms", go_g4(v * 1000.0))
}

/// The template that renders `$value` in an alert description.
pub fn value_template(unit: ValueUnit) -> &'static str {
    match unit {
        ValueUnit::Count => "{{ $value | printf \"%.0f\" }}",
        ValueUnit::Number => "{{ $value | printf \"%.2f\" }}",
        ValueUnit::Percent => "{{ $value | humanizePercentage }}",
        ValueUnit::Duration => "{{ $value | humanizeDuration }}",
    }
}

/// What [`value_template`] renders for `v`.
pub fn render_value(unit: ValueUnit, v: f64) -> String {
    match unit {
        ValueUnit::Count => format!("{v:.0}"),
        ValueUnit::Number => format!("{v:.2}"),
        ValueUnit::Percent => percentage(v),
        ValueUnit::Duration => duration(v),
    }
}

/// A threshold as people write it: `95%`, `5m`, `20`.
pub fn threshold(unit: ValueUnit, v: f64) -> String {
    match unit {
        ValueUnit::Percent => percentage(v),
        ValueUnit::Duration if v >= 0.0 && v.fract() == 0.0 => PromDuration::from_secs(v as u64).to_string(),
        ValueUnit::Duration => duration(v),
        ValueUnit::Count | ValueUnit::Number => go_g4(v),
    }
}

/// A number for PromQL and YAML: shortest exact form, no float noise (`0.95`, not `0.9499999`).
pub fn go_number(v: f64) -> String {
    crate::exposition::text::format_value(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_go_formatting() {
        assert_eq!(go_g4(94.0), "94");
        assert_eq!(go_g4(0.94 * 100.0), "94");
        assert_eq!(go_g4(99.995), "100");
        assert_eq!(go_g4(12345.0), "1.234e+04");
        assert_eq!(go_g4(0.00001234), "1.234e-05");
        assert_eq!(go_g4(1.5), "1.5");
        assert_eq!(percentage(0.9), "90%");
        assert_eq!(duration(360.0), "6m 0s");
        assert_eq!(duration(90061.0), "1d 1h 1m 1s");
        assert_eq!(duration(42.5), "42.5s");
        assert_eq!(duration(0.25), "250ms");
        assert_eq!(threshold(ValueUnit::Duration, 300.0), "5m");
        assert_eq!(threshold(ValueUnit::Percent, 0.95), "95%");
    }
}
