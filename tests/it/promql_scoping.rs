//! Scoping PromQL with the target's matchers: every selector of a known metric gets them, wherever
//! it stands (functions, aggregations, binary operations, subqueries, `@` and `offset`), and
//! nothing else changes: strings, label lists, comments, unknown metrics and white space stay as
//! written. A query the PromQL parser refuses is an error, and a spec whose panel holds one is
//! refused by `check` and `generate`, which then write nothing.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use integration_exporter::generate::promql::try_inject;
use promql_parser::label::{METRIC_NAME, MatchOp, Matcher};
use promql_parser::parser::{Expr, VectorSelector};
use proptest::prelude::*;

const M: &str = r#"cluster=~"$cluster", job="x""#;

fn known() -> BTreeSet<String> {
    ["up", "bar", "foo_total", "ALERTS"].iter().map(|s| s.to_string()).collect()
}

/// (query, scoped query); `<M>` stands for the matchers.
const CORPUS: &[(&str, &str)] = &[
    ("up", "up{<M>}"),
    ("bar {}", "bar {<M>}"),
    ("bar{ }", "bar{<M> }"),
    (r#"foo_total{code=~"5..|4.."}"#, r#"foo_total{<M>, code=~"5..|4.."}"#),
    // Strings holding braces, keywords and metric names.
    (
        r#"label_replace(up, "dst", "}{", "src", "{(.*)} bar")"#,
        r#"label_replace(up{<M>}, "dst", "}{", "src", "{(.*)} bar")"#,
    ),
    (r#"foo_total{kind="by (up)", x='}'}"#, r#"foo_total{<M>, kind="by (up)", x='}'}"#),
    (r#"count_values("up", bar)"#, r#"count_values("up", bar{<M>})"#),
    // Label lists naming a metric, before and after the aggregated expression.
    ("sum by (up) (rate(foo_total[5m]))", "sum by (up) (rate(foo_total{<M>}[5m]))"),
    ("sum without (instance, bar) (bar)", "sum without (instance, bar) (bar{<M>})"),
    ("sum(bar) by (up)", "sum(bar{<M>}) by (up)"),
    ("bar / on (job) group_left (up) up", "bar{<M>} / on (job) group_left (up) up{<M>}"),
    (
        "bar * ignoring (instance) group_right () foo_total",
        "bar{<M>} * ignoring (instance) group_right () foo_total{<M>}",
    ),
    ("bar and on () up == bool 1", "bar{<M>} and on () up{<M>} == bool 1"),
    // Subqueries, `@` and `offset`.
    ("max_over_time(rate(foo_total[5m])[1h:5m])", "max_over_time(rate(foo_total{<M>}[5m])[1h:5m])"),
    (
        "sum_over_time((clamp_min(bar - bar offset 1m, 0))[1h:1m])",
        "sum_over_time((clamp_min(bar{<M>} - bar{<M>} offset 1m, 0))[1h:1m])",
    ),
    ("bar @ start()", "bar{<M>} @ start()"),
    ("rate(foo_total[5m] @ end() offset 1h)", "rate(foo_total{<M>}[5m] @ end() offset 1h)"),
    ("bar offset -5m @ 1700000000", "bar{<M>} offset -5m @ 1700000000"),
    ("topk(scalar(bar), up)", "topk(scalar(bar{<M>}), up{<M>})"),
    // Comments are no PromQL, the metric names in them stay.
    ("bar # up and foo_total{}\n+ up", "bar{<M>} # up and foo_total{}\n+ up{<M>}"),
    ("bar # c\n  {a=\"b\"}", "bar # c\n  {<M>, a=\"b\"}"),
    // Unknown metrics, recording rules and functions are left alone.
    (r#"bar_other + other{a="b"} + bar:rate5m + time()"#, r#"bar_other + other{a="b"} + bar:rate5m + time()"#),
    // Selectors by `__name__`: an equality names a metric, a regex none.
    (r#"{__name__="bar", a="b"}"#, r#"{__name__="bar", <M>, a="b"}"#),
    (r#"{a="b", __name__="bar"}"#, r#"{a="b", __name__="bar", <M>}"#),
    (r#"{"bar"}"#, r#"{"bar", <M>}"#),
    (
        r#"count({__name__=~"bar|up"}) + count({__name__="other"})"#,
        r#"count({__name__=~"bar|up"}) + count({__name__="other"})"#,
    ),
    // Grafana's variables, in ranges, subquery steps, offsets and strings.
    ("rate(foo_total[$__rate_interval])", "rate(foo_total{<M>}[$__rate_interval])"),
    ("avg_over_time(bar[$__range:$__interval])", "avg_over_time(bar{<M>}[$__range:$__interval])"),
    ("bar offset ${shift} > $threshold", "bar{<M>} offset ${shift} > $threshold"),
    (r#"up{instance=~"${instance:regex}"}"#, r#"up{<M>, instance=~"${instance:regex}"}"#),
    // Multi-line, as the spec's block scalars write them.
    ("sum(\n  rate(foo_total[5m])\n)\n/\nsum(up)", "sum(\n  rate(foo_total{<M>}[5m])\n)\n/\nsum(up{<M>})"),
];

/// Queries the parser refuses, with what the error says.
const REFUSED: &[(&str, &str)] = &[
    ("sum(rate(foo_total[5m])) +", "invalid promql query"),
    ("rate(foo_total[5m]", ""),
    ("sum by ($label) (bar)", ""),
    (r#"foo_total{a="1" or b="2"}"#, "`or` between label matchers"),
    // A metric of ours named through an escape cannot be scoped where it is written.
    (r#"{__name__="\x62ar"}"#, "write its name plainly"),
];

/// Grafana's variables as it would send them.
fn as_grafana_sends(expr: &str) -> String {
    [("$__rate_interval", "1m"), ("$__range", "1h"), ("$__interval", "1m"), ("${shift}", "5m"), ("$threshold", "1")]
        .iter()
        .fold(expr.to_string(), |e, (var, value)| e.replace(var, value))
}

/// Whether promtool loads every expression (as recording rules).
fn promtool_accepts(exprs: &[String]) -> (bool, String) {
    let rules: Vec<serde_json::Value> = exprs
        .iter()
        .enumerate()
        .map(|(i, e)| serde_json::json!({"record": format!("corpus:expr_{i}"), "expr": as_grafana_sends(e)}))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corpus.rules.json");
    std::fs::write(&path, serde_json::json!({"groups": [{"name": "corpus", "rules": rules}]}).to_string()).unwrap();
    let out = crate::support::program("promtool").args(["check", "rules"]).arg(&path).output().expect("promtool");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn tricky_queries_are_scoped_where_the_parser_finds_selectors() {
    let mut wrong = Vec::new();
    let mut outputs = Vec::new();
    for (query, scoped) in CORPUS {
        let wanted = scoped.replace("<M>", M);
        let got = try_inject(query, &known(), M).unwrap_or_else(|e| e.to_string());
        if got != wanted {
            wrong.push(format!("{query:?}\n  got    {got:?}\n  wanted {wanted:?}"));
        }
        // A quoted metric name (`{"m"}`) is Prometheus 3's; the promtool here is older.
        if !query.contains("{\"") {
            outputs.push(wanted);
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    let (ok, out) = promtool_accepts(&outputs);
    assert!(ok, "{out}");
}

#[test]
fn queries_the_parser_refuses_are_errors_naming_them() {
    for (query, says) in REFUSED {
        let err = try_inject(query, &known(), M).expect_err(query);
        assert_eq!(err.query, *query);
        assert!(err.to_string().contains(query) && err.reason.contains(says), "{query}: {err}");
    }
}

/// A spec whose panel draws `expr` beside a metric of its own.
fn spec_with_query(dir: &Path, expr: &str) -> std::path::PathBuf {
    let text = format!(
        "logs:\n  app: {{paths: [{}]}}\nsignals:\n  - id: app.errors\n    title: Errors\n    runbook_section: \
         https://example.com/r#s\n    metrics: [{{name: app_errors_total, type: counter, help: Errors.}}]\n    \
         source: {{log: {{log: app, rules: [{{match: x, metric: app_errors_total, action: inc}}]}}}}\n    panel:\n      \
         queries:\n        - expr: '{expr}'\n",
        dir.join("app.log").display()
    );
    let spec = dir.join("spec.yaml");
    std::fs::write(&spec, text).unwrap();
    spec
}

fn run(args: &[&str], spec: &Path, extra: &[&Path]) -> (Option<i32>, String) {
    let out = Command::new(crate::support::exporter_bin())
        .args(args)
        .arg("--config")
        .arg(spec)
        .args(extra)
        .output()
        .expect("run the exporter");
    (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn a_panel_query_the_parser_refuses_fails_check_and_generate_naming_signal_and_query() {
    let dir = tempfile::tempdir().unwrap();
    let bad = "sum(rate(app_errors_total[$__rate_interval])) +";
    let spec = spec_with_query(dir.path(), bad);
    let (code, output) = run(&["check"], &spec, &[]);
    assert_eq!(code, Some(2), "{output}");
    let first = output.lines().next().unwrap_or_default();
    assert!(first.starts_with(&format!("{}:11:18", spec.display())), "{first}");
    assert!(first.contains("signal `app.errors`") && first.contains(bad), "{first}");

    let out = dir.path().join("out");
    let (code, output) = run(&["generate"], &spec, &[Path::new("--out"), &out]);
    assert_eq!(code, Some(2), "{output}");
    assert!(output.contains("signal `app.errors`") && output.contains(bad), "{output}");
    assert!(!out.exists(), "generate wrote files for a spec it refused");

    // The same query made whole is checked, generated and scoped on the dashboard.
    let good = "sum(rate(app_errors_total[$__rate_interval])) + 0";
    let spec = spec_with_query(dir.path(), good);
    let (code, output) = run(&["check"], &spec, &[]);
    assert_eq!(code, Some(0), "{output}");
    let (code, output) = run(&["generate"], &spec, &[Path::new("--out"), &out]);
    assert_eq!(code, Some(0), "{output}");
    let board = std::fs::read_to_string(out.join("dashboards/custom.json")).unwrap();
    let scoped = r#"sum(rate(app_errors_total{job=~\"$job\", instance=~\"$instance\"}[$__rate_interval])) + 0"#;
    assert!(board.contains(scoped), "{board}");
}

/// Expressions of known and unknown metrics, with strings, label lists, comments, subqueries,
/// `@` and `offset` in them, all of instant-vector type.
fn expression() -> impl Strategy<Value = String> {
    let name = prop::sample::select(vec!["up", "bar", "foo_total", "other", "bar_other", "up:rate5m"]);
    let value =
        prop::sample::select(vec![r#""{""#, r#""}""#, r#""by (up)""#, r#""a\"b""#, r##""# up""##, "'x'", "`{bar}`"]);
    let matcher = (prop::sample::select(vec!["a", "up", "le"]), prop::sample::select(vec!["=", "!=", "=~"]), value)
        .prop_map(|(l, op, v)| format!("{l}{op}{v}"));
    let braces = prop::option::of(prop::collection::vec(matcher, 0..3)).prop_map(|m| match m {
        None => String::new(),
        Some(m) => format!("{{{}}}", m.join(", ")),
    });
    let modifier = prop::sample::select(vec!["", " offset 5m", " @ start()", " @ 100 offset -1m"]);
    let selector = prop_oneof![
        (name.clone(), braces.clone(), modifier.clone()).prop_map(|(n, b, m)| format!("{n}{b}{m}")),
        (name.clone(), braces.clone()).prop_map(|(n, b)| format!("rate({n}{b}[5m])")),
        name.prop_map(|n| format!("{{__name__=\"{n}\"}}")),
    ];
    selector.prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} + {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a}\n/ on (up) group_left (bar)\n{b}")),
            inner.clone().prop_map(|a| format!("sum by (up, le) ({a})")),
            inner.clone().prop_map(|a| format!("sum({a}) without (bar)")),
            inner.clone().prop_map(|a| format!("max_over_time(({a})[1h:5m])")),
            inner.clone().prop_map(|a| format!("label_replace({a}, \"dst\", \"{{up}}\", \"src\", \"}}\")")),
            inner.clone().prop_map(|a| format!("({a}) # up{{}} bar\n")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("topk(scalar({a}), {b})")),
        ]
    })
}

/// `tree` with the matchers added to each selector of a known metric, where scoping puts them:
/// first, or after the `__name__` matcher of a selector without a name.
fn add_matchers(tree: &mut Expr, added: &[Matcher]) {
    match tree {
        Expr::VectorSelector(vs) => add_to_selector(vs, added),
        Expr::MatrixSelector(ms) => add_to_selector(&mut ms.vs, added),
        Expr::Aggregate(a) => {
            if let Some(p) = a.param.as_mut() {
                add_matchers(p, added);
            }
            add_matchers(&mut a.expr, added);
        }
        Expr::Binary(b) => {
            add_matchers(&mut b.lhs, added);
            add_matchers(&mut b.rhs, added);
        }
        Expr::Unary(u) => add_matchers(&mut u.expr, added),
        Expr::Paren(p) => add_matchers(&mut p.expr, added),
        Expr::Subquery(s) => add_matchers(&mut s.expr, added),
        Expr::Call(c) => c.args.args.iter_mut().for_each(|a| add_matchers(a, added)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

fn add_to_selector(vs: &mut VectorSelector, added: &[Matcher]) {
    let by_name = vs.matchers.matchers.iter().position(|m| m.name == METRIC_NAME && m.op == MatchOp::Equal);
    let name = vs.name.clone().or_else(|| by_name.map(|i| vs.matchers.matchers[i].value.clone()));
    if name.is_some_and(|n| known().contains(&n)) {
        let at = by_name.filter(|_| vs.name.is_none()).map_or(0, |i| i + 1);
        vs.matchers.matchers.splice(at..at, added.iter().cloned());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Scoped, a query is the same query with the matchers in each selector of a known metric,
    /// and every character of it is still there, in order.
    #[test]
    fn scoping_adds_the_matchers_to_known_selectors_and_nothing_else(expr in expression()) {
        let added = match promql_parser::parser::parse(r#"x{job="x", cluster=~"c|d"}"#).unwrap() {
            Expr::VectorSelector(vs) => vs.matchers.matchers,
            _ => unreachable!(),
        };
        let scoped = try_inject(&expr, &known(), r#"job="x", cluster=~"c|d""#).expect("scopes");
        let tree = promql_parser::parser::parse(&scoped).unwrap_or_else(|e| panic!("{e}: {scoped}"));
        let mut expected = promql_parser::parser::parse(&expr).unwrap_or_else(|e| panic!("{e}: {expr}"));
        add_matchers(&mut expected, &added);
        prop_assert_eq!(tree, expected, "{}", scoped);
        let mut rest = scoped.chars();
        prop_assert!(expr.chars().all(|c| rest.any(|s| s == c)), "{} is not within {}", expr, scoped);
    }
}
