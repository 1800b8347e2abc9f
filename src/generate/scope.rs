//! Scoping PromQL to a dashboard's variables: every selector of a metric the exporter or the
//! model knows gets the `job` and `instance` matchers (and `generate.matchers`), so a panel shows
//! only what the dashboard's variables pick. Rules select with the same [`promql::inject`].

use std::collections::BTreeSet;

use super::promql::{self, escape};
use crate::spec::Model;

/// What every query of a dashboard is scoped with: the metric names [`promql::inject`] knows,
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
        Self { metrics: promql::metric_names(model), matchers }
    }

    /// For `ALERTS`: an alert of the whole fleet (`across_instances`) or of an `absent()`
    /// series has no `instance`, and shows whichever instances are picked.
    pub fn alerts(&self) -> Scope {
        let matchers = self.matchers.replacen("instance=~\"$instance\"", "instance=~\"$instance|\"", 1);
        Scope { metrics: self.metrics.clone(), matchers }
    }
}

/// `expr` with every selector of a known metric scoped (see [`promql::inject`]).
pub fn scope(expr: &str, sc: &Scope) -> String {
    promql::inject(expr, &sc.metrics, &sc.matchers)
}

/// `metric{job=~"$job", instance=~"$instance", <matchers>, <extra>}` for queries built here.
pub fn scoped(sc: &Scope, metric: &str, extra: &str) -> String {
    let m = &sc.matchers;
    if extra.is_empty() { format!("{metric}{{{m}}}") } else { format!("{metric}{{{m}, {extra}}}") }
}

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

    fn scope_of(list: &[&str]) -> Scope {
        Scope {
            metrics: list.iter().map(|s| s.to_string()).collect(),
            matchers: "job=~\"$job\", instance=~\"$instance\"".into(),
        }
    }

    #[test]
    fn scope_injects_into_model_metrics_only() {
        let m = scope_of(&["foo_total", "bar", "baz"]);
        assert_eq!(scope("bar", &m), "bar{job=~\"$job\", instance=~\"$instance\"}");
        assert_eq!(
            scope("sum by (bar) (rate(foo_total{result=\"bar\"}[5m]))", &m),
            "sum by (bar) (rate(foo_total{job=~\"$job\", instance=~\"$instance\", result=\"bar\"}[5m]))"
        );
        assert_eq!(scope("time() - baz", &m), "time() - baz{job=~\"$job\", instance=~\"$instance\"}");
        assert_eq!(scope("baz {}", &m), "baz {job=~\"$job\", instance=~\"$instance\"}");
        assert_eq!(scope("bar_other + bar2", &m), "bar_other + bar2");
        assert_eq!(
            scope("sum by (bar) (baz) / on (bar) group_left (baz) bar", &m),
            "sum by (bar) (baz{job=~\"$job\", instance=~\"$instance\"}) / on (bar) group_left (baz) bar{job=~\"$job\", instance=~\"$instance\"}"
        );
        assert_eq!(
            scope("label_replace(x, \"bar\", \"baz\", \"\", \"\")", &m),
            "label_replace(x, \"bar\", \"baz\", \"\", \"\")"
        );
    }
}
