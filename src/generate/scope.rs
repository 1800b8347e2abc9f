//! Scoping PromQL to a dashboard's variables: every selector of a metric the exporter or the
//! model knows gets the `job` and `instance` matchers (and `generate.matchers`), so a panel shows
//! only what the dashboard's variables pick. Rules select with the same [`promql::try_inject`].

use std::collections::BTreeSet;

use super::promql::{self, escape};
use crate::spec::Model;

/// What every query of a dashboard is scoped with: the metric names [`promql::try_inject`] knows,
/// and the matchers: the `job` and `instance` variables, then `generate.matchers`, which
/// restrict further whatever the variables pick.
pub struct Scope {
    pub(super) metrics: BTreeSet<String>,
    pub(super) matchers: String,
}

impl Scope {
    pub fn of(model: &Model) -> Self {
        let mut matchers = "job=~\"$job\", instance=~\"$instance\"".to_string();
        for (k, v) in &model.config.generate.matchers {
            matchers.push_str(&format!(", {k}=\"{}\"", escape(v)));
        }
        // With several databases, the dashboard's database variable; `|` keeps the series that
        // no database has (log signals, the exporter's own) whichever databases are picked.
        if let Some(label) = model.database_label() {
            matchers.push_str(&format!(", {label}=~\"${label}|\""));
        }
        Self { metrics: promql::metric_names(model), matchers }
    }

    /// For `ALERTS`: an alert of the whole fleet (`across_instances`) or of an `absent()`
    /// series has no `instance`, and shows whichever instances are picked.
    pub fn alerts(&self) -> Scope {
        let matchers = self.matchers.replacen("instance=~\"$instance\"", "instance=~\"$instance|\"", 1);
        Scope { metrics: self.metrics.clone(), matchers }
    }
}

/// `expr` with every selector of a known metric scoped (see [`promql::try_inject`]), or why the
/// parser refuses `expr`: how the spec's own queries are checked, and the panels' built.
pub fn try_scope(expr: &str, sc: &Scope) -> Result<String, promql::InvalidQuery> {
    promql::try_inject(expr, &sc.metrics, &sc.matchers)
}

/// `metric{job=~"$job", instance=~"$instance", <matchers>, <extra>}` for queries built here.
pub fn scoped(sc: &Scope, metric: &str, extra: &str) -> String {
    let m = &sc.matchers;
    if extra.is_empty() { format!("{metric}{{{m}}}") } else { format!("{metric}{{{m}, {extra}}}") }
}

/// `text` as a regex matching exactly it, for Prometheus and Alertmanager (Go RE2) matchers.
/// Not `regex::escape`: it also escapes `#`, `&`, `-` and `~` (syntax only in Rust's own
/// extensions), which RE2 accepts but does not need, so a log or signal named `api-access` would
/// come out as `api\-access` and every generated file naming it would change its bytes.
pub fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `label=~"a|b"` matching exactly the given values.
pub fn one_of(label: &str, values: &[&str]) -> String {
    let alternatives: Vec<String> = values.iter().map(|v| regex_escape(v)).collect();
    format!("{label}=~\"{}\"", escape(&alternatives.join("|")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_escape_touches_only_re2_metacharacters() {
        assert_eq!(regex_escape("api-access #1 & ~x_y:z/é"), "api-access #1 & ~x_y:z/é");
        assert_eq!(regex_escape(r"a.b+c*d?e(f)g|h[i]j{k}l^m$n\o"), r"a\.b\+c\*d\?e\(f\)g\|h\[i\]j\{k\}l\^m\$n\\o");
    }

    proptest::proptest! {
        /// Whatever a name holds, its escape matches that name and nothing else (anchored, as
        /// Prometheus and Alertmanager anchor matchers).
        #[test]
        fn regex_escape_matches_exactly_its_text(text in "\\PC{0,12}", other in "\\PC{0,12}") {
            let re = regex::Regex::new(&format!("^(?:{})$", regex_escape(&text))).unwrap();
            proptest::prop_assert!(re.is_match(&text));
            proptest::prop_assert_eq!(re.is_match(&other), other == text);
            let alternation = regex::Regex::new(&format!("^(?:{}|{})$", regex_escape(&text), regex_escape("b"))).unwrap();
            proptest::prop_assert!(alternation.is_match(&text) && alternation.is_match("b"));
        }
    }

    fn scope_of(list: &[&str]) -> Scope {
        Scope {
            metrics: list.iter().map(|s| s.to_string()).collect(),
            matchers: "job=~\"$job\", instance=~\"$instance\"".into(),
        }
    }

    fn sc(expr: &str, scope: &Scope) -> String {
        try_scope(expr, scope).unwrap()
    }

    #[test]
    fn scope_injects_into_model_metrics_only() {
        let m = scope_of(&["foo_total", "bar", "baz"]);
        assert_eq!(sc("bar", &m), "bar{job=~\"$job\", instance=~\"$instance\"}");
        assert_eq!(
            sc("sum by (bar) (rate(foo_total{result=\"bar\"}[5m]))", &m),
            "sum by (bar) (rate(foo_total{job=~\"$job\", instance=~\"$instance\", result=\"bar\"}[5m]))"
        );
        assert_eq!(sc("time() - baz", &m), "time() - baz{job=~\"$job\", instance=~\"$instance\"}");
        assert_eq!(sc("baz {}", &m), "baz {job=~\"$job\", instance=~\"$instance\"}");
        assert_eq!(sc("bar_other + bar2", &m), "bar_other + bar2");
        assert_eq!(
            sc("sum by (bar) (baz) / on (bar) group_left (baz) bar", &m),
            "sum by (bar) (baz{job=~\"$job\", instance=~\"$instance\"}) / on (bar) group_left (baz) bar{job=~\"$job\", instance=~\"$instance\"}"
        );
        assert_eq!(
            sc("label_replace(x, \"bar\", \"baz\", \"\", \"\")", &m),
            "label_replace(x, \"bar\", \"baz\", \"\", \"\")"
        );
    }
}
