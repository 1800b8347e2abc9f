//! A check's last hour as a small inline SVG: the values as a line, the threshold dashed across
//! it, the newest value a dot. Described in words for screen readers; no script, no fonts. Less
//! than an hour kept (the exporter started lately), the line spans what there is, and the
//! description says how long that is.

use std::fmt::Write;

const WIDTH: f64 = 120.0;
const HEIGHT: f64 = 28.0;
const PAD: f64 = 3.0;
/// The span drawn, in seconds.
const SPAN: f64 = 3600.0;

/// The sparkline of `points` (unix seconds, value) up to `now`; `show` writes a value for the
/// description. Without points, a note instead of a drawing.
pub fn svg(points: &[(f64, f64)], now: f64, threshold: Option<f64>, show: &dyn Fn(f64) -> String) -> String {
    let drawn: Vec<(f64, f64)> =
        points.iter().copied().filter(|(t, v)| v.is_finite() && *t >= now - SPAN && *t <= now + 1.0).collect();
    let Some(&(_, last)) = drawn.last() else {
        return "<span class=\"none\">no readings yet</span>".into();
    };
    let threshold = threshold.filter(|t| t.is_finite());
    let values = drawn.iter().map(|(_, v)| *v);
    let lo = values.clone().chain(threshold).fold(f64::INFINITY, f64::min);
    let hi = values.clone().chain(threshold).fold(f64::NEG_INFINITY, f64::max);
    let (min, max) = (values.clone().fold(f64::INFINITY, f64::min), values.fold(f64::NEG_INFINITY, f64::max));
    let span = if hi > lo { hi - lo } else { 1.0 };
    let from = drawn[0].0.max(now - SPAN);
    let seconds = (now - from).max(60.0);
    let x = |t: f64| PAD + (t - (now - seconds)) / seconds * (WIDTH - 2.0 * PAD);
    let y = |v: f64| {
        HEIGHT - PAD - (v - lo) / span * (HEIGHT - 2.0 * PAD) - if hi > lo { 0.0 } else { (HEIGHT - 2.0 * PAD) / 2.0 }
    };
    let label = format!(
        "{}: {} readings from {} to {}, now {}{}",
        if seconds >= SPAN - 60.0 {
            "Last hour".to_string()
        } else {
            format!("Last {}", crate::generate::go_format::duration(seconds.round()))
        },
        drawn.len(),
        show(min),
        show(max),
        show(last),
        threshold.map(|t| format!("; threshold {}", show(t))).unwrap_or_default()
    );
    let mut out = format!(
        "<svg class=\"spark\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"{}\"><title>{}</title>",
        super::page::esc(&label),
        super::page::esc(&label)
    );
    if let Some(t) = threshold {
        let _ = write!(
            out,
            "<line class=\"thr\" x1=\"{PAD}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\"/>",
            WIDTH - PAD,
            y(t),
            y(t)
        );
    }
    let line: Vec<String> = drawn.iter().map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v))).collect();
    let _ = write!(out, "<polyline points=\"{}\"/>", line.join(" "));
    if let Some((t, v)) = drawn.last() {
        let _ = write!(out, "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2\"/>", x(*t), y(*v));
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_the_hour_and_says_it_in_words() {
        let points: Vec<(f64, f64)> = (0..10).map(|i| (1000.0 + f64::from(i) * 60.0, f64::from(i))).collect();
        let out = svg(&points, 1540.0, Some(5.0), &|v| format!("{v}"));
        assert!(
            out.contains("role=\"img\"") && out.contains("Last 9m 0s: 10 readings from 0 to 9, now 9; threshold 5"),
            "{out}"
        );
        assert!(out.contains("points=\"3.0,"), "the first reading kept is at the left: {out}");
        assert_eq!(out.matches("<polyline").count(), 1);
        assert!(out.contains("class=\"thr\""));
        assert!(svg(&[], 0.0, None, &|v| format!("{v}")).contains("no readings yet"));
        // Older than the hour: not drawn.
        assert!(svg(&[(0.0, 1.0)], 4000.0, None, &|v| format!("{v}")).contains("no readings yet"));
    }
}
