//! The HTTP source's path language against the real `jq`: every filter the exporter accepts gives
//! what `jq` gives on the same answer, every filter a spec in this repository holds among them.

use std::io::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use integration_exporter::sources::http::{CompiledValue, Filter};
use integration_exporter::spec::{HttpValue, HttpValueFormat, LabelDef, Model, Source, SourceText};
use serde_json::Value as Json;

use crate::support;

/// Every HTTP value of the specs this repository ships or tests with: the built-in packs at their
/// defaults (signals off by default included), the demo, the Kubernetes example and the fixtures.
fn spec_values() -> Vec<(String, HttpValue, Vec<LabelDef>)> {
    let top = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut models = vec![("<built-in defaults>".to_string(), Model::builtin_defaults())];
    let fixtures = std::fs::read_dir(top.join("tests/fixtures")).expect("tests/fixtures");
    let mut files: Vec<_> =
        fixtures.map(|e| e.expect("entry").path()).filter(|p| p.extension() == Some("yaml".as_ref())).collect();
    files.extend(["demo/spec.yaml", "deploy/kubernetes/spec.yaml"].map(|f| top.join(f)));
    files.sort();
    for file in files {
        // The demo's placeholders, as scripts/demo fills them.
        let mut text = std::fs::read_to_string(&file).expect("spec");
        for (from, to) in [
            ("DEMO_WINDOW", "30s"),
            ("DEMO_FOR", "15s"),
            ("DEMO_DIR", "/demo"),
            ("DEMO_HTTP", "127.0.0.1:9"),
            ("DEMO_RECEIVER", "127.0.0.1:9"),
            ("QUEUE_URL", "http://queue.internal/metrics"),
        ] {
            text = text.replace(from, to);
        }
        let name = file.display().to_string();
        let model = Model::from_text(&SourceText { name: name.clone(), text }).unwrap_or_else(|e| panic!("{e}"));
        models.push((name, model));
    }
    let mut out = Vec::new();
    for (origin, model) in models {
        for signal in &model.signals {
            let Source::Http(http) = &signal.signal.source else { continue };
            for value in &http.values {
                let labels = signal.signal.metrics.iter().find(|m| m.name == value.metric).map(|m| m.labels.clone());
                out.push((format!("{origin}: {}", signal.signal.id), value.clone(), labels.unwrap_or_default()));
            }
        }
    }
    out
}

/// Answers: the recorded API shapes, and documents where the same paths hold the wrong things.
fn documents() -> Vec<Json> {
    let top = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut docs = Vec::new();
    for name in ["github_repo", "github_runs", "github_workflows", "salesforce_limits"] {
        let text = std::fs::read_to_string(top.join(format!("tests/fixtures/http/{name}.json"))).expect("fixture");
        docs.push(serde_json::from_str(&text).expect("fixture JSON"));
    }
    let more = [
        r#"{"pending": 1234, "failed": 17, "limits": {"Max": 100000, "Remaining": 18250}, "extra": [1, 2]}"#,
        r#"{"pending": "12", "failed": null, "memory": {"rss_bytes": 1.5e9}, "process": {"memory_rss": true},
            "deadLetter": {"count": "x"}, "DailyApiRequests": {"Max": 5, "Remaining": "2"}}"#,
        r#"{"pending": [], "failed": {"a": 1}, "memory": 3, "deadLetter": [1], "DailyApiRequests": {"Max": null}}"#,
        r#"{"workflows": [
            {"name": "a", "path": ".github/workflows/token-refresh.yml", "state": "active"},
            {"name": 7, "path": ".github/workflows/keep-alive.yml", "state": "deleted"},
            {"name": null, "path": ".github/workflows/keep-alive.yml"},
            {"path": 3, "state": true},
            {"name": "b", "path": null, "state": "disabled_manually"}
        ], "workflow_runs": [{"conclusion": null, "updated_at": 5, "run_started_at": "2026-01-31T08:00:00Z"}],
           "pushed_at": "yesterday"}"#,
        r#"{"workflows": [1, "x", null], "workflow_runs": {"0": {}}}"#,
        r#"{"workflows": {"b": {"name": "z", "state": "active"}, "a": {"name": "y", "state": "x"}}, "workflow_runs": []}"#,
        r#"{"workflows": "none", "workflow_runs": "none", "pushed_at": null}"#,
        r#"[1, 2, {"pending": 3}]"#,
        r#"{"a\nb": 1, "anb": 2, "a\"b": 3, "é": 4, "😀": 5, "a/b": 6, "a\\b": 7, "\t": 8, "a b": 9,
            "if": 10, "and": 11, "null": 12, "x": "a\nb", "n": [null, false, true, 0, -1.5, "", "b", [], {}]}"#,
        r#""text""#,
        "null",
        "42",
    ];
    docs.extend(more.iter().map(|t| serde_json::from_str::<Json>(t).expect("corpus JSON")));
    docs
}

/// `jq -c` on every document (one JSON text each, in a file), with a deadline: its exit code and
/// its output lines.
fn jq(filter: &str, docs: &[Json]) -> (Option<i32>, Vec<String>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("docs.json");
    let mut file = std::fs::File::create(&input).expect("docs");
    for doc in docs {
        writeln!(file, "{doc}").expect("docs");
    }
    let output = dir.path().join("out");
    let mut child = support::program("jq")
        .arg("-c")
        .arg(filter)
        .arg(&input)
        .stdout(std::fs::File::create(&output).expect("out"))
        .stderr(Stdio::null())
        .spawn()
        .expect("jq");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("jq") {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            panic!("jq {filter} did not finish within 30 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let text = std::fs::read_to_string(&output).expect("out");
    (status.code(), text.lines().map(str::to_string).collect())
}

/// What `jq` gives for `filter` on each document: its outputs, or `None` where it stops with an
/// error (the exporter's "missing").
fn jq_outputs(filter: &str, docs: &[Json]) -> Vec<Option<Vec<Json>>> {
    let (code, lines) = jq(&format!("try [{filter}] catch \"__error__\""), docs);
    assert_eq!(code, Some(0), "jq refuses `{filter}`, which the exporter accepts");
    assert_eq!(lines.len(), docs.len(), "{filter}");
    lines
        .iter()
        .map(|line| match serde_json::from_str::<Json>(line).expect("jq output") {
            Json::Array(values) => Some(values),
            _ => None,
        })
        .collect()
}

fn ours(filter: &str, docs: &[Json]) -> Vec<Option<Vec<Json>>> {
    let filter = Filter::parse(filter).unwrap_or_else(|e| panic!("`{filter}` {e}"));
    docs.iter().map(|d| filter.run(d).map(|v| v.into_iter().map(|v| v.into_owned()).collect())).collect()
}

/// Numbers as the doubles both sides compute with (jq prints `1.5e9` as `1500000000`).
fn doubles(value: Json) -> Json {
    match value {
        Json::Number(n) => n.as_f64().and_then(serde_json::Number::from_f64).map_or(Json::Null, Json::Number),
        Json::Array(items) => Json::Array(items.into_iter().map(doubles).collect()),
        Json::Object(map) => Json::Object(map.into_iter().map(|(k, v)| (k, doubles(v))).collect()),
        other => other,
    }
}

/// Filters the language accepts, beyond the specs': every kind of step, quoting, escape, operator
/// and type order.
const ACCEPTED: &[&str] = &[
    ".",
    " .pending ",
    ".limits.Max",
    ".limits[\"Max\"]",
    ".\"limits\".\"Max\"",
    ".[\"limits\"][\"Max\"]",
    ".extra[0]",
    ".extra[5]",
    ".extra[]",
    ".[]",
    ".[0]",
    ".[2].pending",
    ".a.b.c",
    ".workflows[].name",
    ".workflows[] | .name",
    ".workflows[]|.state",
    ".workflows[] | select(.state == \"active\") | .name",
    ".workflows[] | select( .state != \"active\" )",
    ".workflows[] | select(.name >= \"b\")",
    ".workflows[] | select(.name < 7)",
    ".workflows[] | select(.name | IN(\"a\", 7, null))",
    ".workflows[] | select(.state|IN(true,\"x\"))",
    ".workflows[] | .state == \"active\"",
    ".workflow_runs[] | select(.conclusion == null)",
    "select(.pending == 1234) | .failed",
    ".pending == 1234",
    ".pending == \"1234\"",
    ".pending != null",
    ".failed > -1",
    ".failed <= 17.0",
    ".failed < 1e2",
    ".extra > 100",
    ".limits >= \"z\"",
    ".missing == null",
    ".missing < false",
    ".n[] | . < 0",
    ".n[] | . > \"a\"",
    ".n[] | . == false",
    ".n[] | . >= true",
    ".[\"a\\nb\"]",
    ".[\"a\\\"b\"]",
    ".[\"\\u00e9\"]",
    ".[\"\\ud83d\\ude00\"]",
    ".[\"a\\/b\"]",
    ".[\"a\\\\b\"]",
    ".[\"\\t\"]",
    ".\"a b\"",
    ".[\"é\"]",
    ".if",
    ".and",
    ".null",
    ".x == \"a\\nb\"",
    ".[\"x\"] | . != \"anb\"",
];

/// Filters that jq refuses, which the old hand-written parser read with a meaning of its own
/// (`\q` as `q`, `-` inside a key, `.a.["b"]`): the exporter refuses them too.
const JQ_REFUSES: &[&str] = &[
    ".a-b",
    ".a$b",
    ".a@b",
    ".1a",
    ".é",
    ".a.[\"b\"]",
    ".[\"a\\qb\"]",
    ".[\"a\\xb\"]",
    ".a..b",
    ".a.",
    ".a[",
    ".a[\"b",
    "pending",
    ".w[] | select(.a == active)",
];

/// Every filter of every spec value and of the list above gives on every document what `jq`
/// gives; what jq refuses, the exporter refuses.
#[test]
fn filters_give_what_jq_gives() {
    let docs = documents();
    let mut filters: Vec<String> = ACCEPTED.iter().map(|f| f.to_string()).collect();
    for (_, value, _) in spec_values() {
        let labels = value.labels.values().cloned();
        let each = value.each.iter().cloned();
        let parts = [value.path.clone()].into_iter().chain(value.minus.clone()).chain(each).chain(labels);
        filters.extend(parts.filter(|f| !matches!(f.as_str(), "up" | "duration" | "count")));
    }
    filters.sort();
    filters.dedup();
    assert!(filters.len() > 60, "{filters:?}");
    for filter in &filters {
        let (want, got) = (jq_outputs(filter, &docs), ours(filter, &docs));
        for ((doc, want), got) in docs.iter().zip(want).zip(got) {
            let (got, want) = (
                got.map(|v| v.into_iter().map(doubles).collect::<Vec<_>>()),
                want.map(|v| v.into_iter().map(doubles).collect()),
            );
            assert_eq!(got, want, "`{filter}` on {doc}");
        }
    }
    for filter in JQ_REFUSES {
        assert!(Filter::parse(filter).is_err(), "the exporter accepts `{filter}`");
        assert_eq!(jq(filter, &[Json::Null]).0, Some(3), "jq accepts `{filter}`");
    }
}

/// A number as the exporter reads one: numbers, numeric strings, booleans as 1/0.
fn number(value: &Json, format: HttpValueFormat) -> Option<f64> {
    let n = match (format, value) {
        (_, Json::Bool(b)) => Some(if *b { 1.0 } else { 0.0 }),
        (HttpValueFormat::Rfc3339, v) => v
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t.trim()).ok())
            .map(|at| at.timestamp() as f64 + f64::from(at.timestamp_subsec_nanos()) / 1e9),
        (_, Json::Number(n)) => n.as_f64(),
        (_, Json::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    n.filter(|v: &f64| v.is_finite())
}

fn one(outputs: &Option<Vec<Json>>) -> Option<&Json> {
    outputs.as_ref().filter(|v| v.len() == 1).map(|v| &v[0])
}

/// Each spec value, read by the exporter from each document, equals the same value computed from
/// `jq`'s outputs of its filters: the number, the series and their labels, and whether the value
/// is missing (the `path` error of its health).
#[test]
fn spec_values_equal_jq() {
    let docs = documents();
    let mut checked = 0;
    for (origin, value, labels) in spec_values() {
        let compiled = CompiledValue::new(&value, &labels);
        assert_eq!(compiled.error(), None, "{origin}");
        if compiled.probe().is_some() {
            continue;
        }
        // Fixed label sets fold values; no HTTP spec has one (the model below would not).
        assert!(labels.iter().all(|l| matches!(l, LabelDef::Name(_))), "{origin}");
        let reads: Vec<_> = docs.iter().map(|d| compiled.read(d)).collect();
        let Some(each) = &value.each else {
            let path = jq_outputs(&value.path, &docs);
            let minus = value.minus.as_ref().map(|m| jq_outputs(m, &docs));
            for (i, read) in reads.iter().enumerate() {
                let got = number_of(one(&path[i]), value.format);
                let less = minus.as_ref().map_or(Some(0.0), |m| number_of(one(&m[i]), HttpValueFormat::Number));
                let want = got.zip(less).map(|(v, m)| v - m).filter(|v| v.is_finite());
                assert_eq!(read.samples.first().map(|s| s.1), want, "{origin} {value:?} on {}", docs[i]);
                assert_eq!(read.missing, want.is_none(), "{origin} {value:?} on {}", docs[i]);
                checked += 1;
            }
            continue;
        };
        // Per item: the value's outputs, then each label's, as jq reads them from the item.
        let read_item = if value.path == "count" { "[]".to_string() } else { format!("[{}]", value.path) };
        let names: Vec<&str> = labels.iter().map(LabelDef::name).collect();
        let label_parts: Vec<String> =
            names.iter().map(|n| format!("(try [{}] catch null)", value.labels[*n])).collect();
        let per_item = format!("{each} | [(try {read_item} catch null), {}]", label_parts.join(", "));
        let items = jq_outputs(&per_item, &docs);
        for (i, read) in reads.iter().enumerate() {
            let Some(items) = &items[i] else {
                assert!(read.missing && read.samples.is_empty(), "{origin} {value:?} on {}", docs[i]);
                checked += 1;
                continue;
            };
            let mut want: Vec<(Vec<(String, String)>, f64)> = Vec::new();
            let mut missing = false;
            for item in items {
                let key: Vec<(String, String)> = names
                    .iter()
                    .enumerate()
                    .map(|(n, name)| {
                        let text = match one(&Some(item[n + 1].as_array().cloned().unwrap_or_default())) {
                            Some(Json::String(s)) => s.clone(),
                            Some(v @ (Json::Number(_) | Json::Bool(_))) => v.to_string(),
                            _ => String::new(),
                        };
                        (name.to_string(), text)
                    })
                    .collect();
                if let Some(at) = want.iter().position(|(k, _)| *k == key) {
                    if value.path == "count" {
                        want[at].1 += 1.0;
                    }
                    continue;
                }
                let v = if value.path == "count" {
                    Some(1.0)
                } else {
                    number_of(one(&Some(item[0].as_array().cloned().unwrap_or_default())), value.format)
                };
                match v {
                    Some(v) => want.push((key, v)),
                    None => missing = true,
                }
            }
            if value.path == "count" && names.is_empty() && want.is_empty() {
                want.push((Vec::new(), 0.0));
            }
            assert_eq!(read.samples, want, "{origin} {value:?} on {}", docs[i]);
            assert_eq!(read.missing, missing, "{origin} {value:?} on {}", docs[i]);
            checked += 1;
        }
    }
    assert!(checked > 500, "{checked} reads checked");
}

fn number_of(value: Option<&Json>, format: HttpValueFormat) -> Option<f64> {
    value.and_then(|v| number(v, format))
}

fn spec(values: &str) -> Result<Model, String> {
    let text = format!(
        "signals:\n  - id: t.x\n    title: X\n    metrics: [{{name: t_x, type: gauge, help: X.}}]\n    source:\n      http:\n        url: http://localhost/x\n        values: {values}\n"
    );
    Model::from_text(&SourceText { name: "t.yaml".into(), text }).map_err(|e| e.to_string())
}

/// A filter that does not parse is refused when the spec loads, naming the file and line, the
/// signal, the value, the field and the column in the filter.
#[test]
fn spec_errors_name_the_value_and_the_column() {
    for (values, want) in [
        (r#"[{metric: t_x, path: '.a-b'}]"#, "t.yaml:8:"),
        (r#"[{metric: t_x, path: '.a-b'}]"#, "signal `t.x`: `t_x`: path `.a-b` at column 3: unexpected `-`"),
        (r#"[{metric: t_x, path: '.a', minus: '.b.["c"]'}]"#, "minus `.b.[\"c\"]` at column 4"),
        (r#"[{metric: t_x, path: '.["a\qb"]'}]"#, "path `.[\"a\\qb\"]` at column 6: invalid string"),
        (r#"[{metric: t_x, each: '.w[] | select(.s)', path: count}]"#, "each `.w[] | select(.s)` at column 17"),
    ] {
        let err = spec(values).map(|_| ()).unwrap_err();
        assert!(err.contains(want), "{values}: {err}");
    }
}

/// Filters that could run without end (or read the environment) cannot be written: the language
/// has no loop, recursion, variable or builtin, so every one is refused when the spec loads, and
/// what it accepts runs in time linear in the answer.
#[test]
fn runaway_filters_are_refused_and_accepted_ones_are_linear() {
    for filter in [
        "repeat(.)",
        "range(1e12)",
        "[range(1e12)] | length",
        "last(range(1e12))",
        "def f: f; f",
        "def f: 1 + f; f",
        "..",
        ".[] | recurse",
        ".a | until(false; .)",
        "env.HOME",
        "$ENV.HOME",
        "input",
        ".a | halt_error",
        ".w[] | select(.a == (repeat(1)))",
    ] {
        for values in [
            format!("[{{metric: t_x, path: '{filter}'}}]"),
            format!("[{{metric: t_x, each: '{filter}', path: count}}]"),
        ] {
            let err = spec(&values).map(|_| ()).unwrap_err();
            assert!(err.contains("signal `t.x`: `t_x`") && err.contains("at column"), "{filter}: {err}");
        }
    }
    // The longest kind of filter over a large answer: each stage touches each item once.
    let items: Vec<Json> = (0..50_000).map(|i| serde_json::json!({"s": i % 3, "p": {"q": [i]}})).collect();
    let doc = serde_json::json!({"items": items});
    let value: HttpValue = serde_saphyr::from_str(
        "{metric: t_x, each: '.items[] | select(.s != 0) | select(.s | IN(1, 2)) | .p | select(.q[0] >= 0)', path: count}",
    )
    .expect("value");
    let started = Instant::now();
    let read = CompiledValue::new(&value, &[]).read(&doc);
    assert_eq!(read.samples, [(vec![], 33_333.0)]);
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
}
