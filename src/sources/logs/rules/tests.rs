//! The rule engine's unit tests: matching, labels, values, limits and arbitrary lines.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::series::search;
use super::*;
use crate::sources::logs::timestamp::TimestampParser;
use crate::spec::{FixedLabel, LabelDef, LogAction, LogFormat, LogRule, MetricDef, MetricType, TimestampSpec};
use crate::state::SampleValue;
use proptest::prelude::*;

fn metric(name: &str, kind: MetricType, labels: Vec<LabelDef>) -> MetricDef {
    MetricDef { name: name.into(), kind, help: "h.".into(), labels, column: None, buckets: vec![1.0, 5.0] }
}

fn rule(
    metric: &str,
    action: LogAction,
    pattern: Option<&str>,
    value: Option<&str>,
    labels: &[(&str, &str)],
) -> LogRule {
    LogRule {
        pattern: pattern.map(str::to_string),
        whole_line: false,
        fields: BTreeMap::new(),
        metric: metric.into(),
        action,
        value: value.map(str::to_string),
        labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        scale: None,
        samples: vec![],
        format: None,
    }
}

fn scalar(engine: &RuleEngine, metric: &str, labels: &[&str]) -> Option<f64> {
    let key: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
    match engine.metrics.get(metric)?.series.get(search(&key))? {
        SeriesValue::Scalar(v) => Some(*v),
        SeriesValue::Histogram { .. } => None,
    }
}

#[test]
fn json_lines_match_on_fields_with_bounded_labels() {
    let code = LabelDef::Fixed(FixedLabel {
        name: "error_code".into(),
        values: vec!["token_expired".into(), "rate_limited".into(), "other".into()],
        other: Some("other".into()),
    });
    let errors = metric("cal_errors_total", MetricType::Counter, vec![code]);
    let mut r = rule("cal_errors_total", LogAction::Inc, None, None, &[("error_code", "$error_code")]);
    r.fields = BTreeMap::from([("category".into(), "calendar_sync".into()), ("level".into(), "error".into())]);
    let latency = metric("cal_latency_seconds", MetricType::Histogram, vec![]);
    let mut observe = rule("cal_latency_seconds", LogAction::Observe, None, Some("duration"), &[]);
    observe.fields = BTreeMap::from([("category".into(), "calendar_sync".into())]);
    let mut engine = RuleEngine::new(
        vec![(r, errors), (observe, latency)],
        LogFormat::Json,
        TimestampParser::new(&TimestampSpec::default()).unwrap(),
    )
    .unwrap();
    assert_eq!(scalar(&engine, "cal_errors_total", &["rate_limited"]), Some(0.0), "fixed labels start at zero");
    for line in [
        r#"{"category":"calendar_sync","level":"error","error_code":"token_expired","duration":0.5}"#,
        r#"{"category":"calendar_sync","level":"error","error_code":"something new","duration":3}"#,
        r#"{"category":"calendar_sync","level":"info","error_code":"token_expired","duration":7}"#,
        r#"{"category":"other","level":"error","error_code":"token_expired"}"#,
    ] {
        engine.process(line);
    }
    assert_eq!(engine.process("not json"), LineOutcome::Unparsable);
    assert_eq!(scalar(&engine, "cal_errors_total", &["token_expired"]), Some(1.0));
    assert_eq!(scalar(&engine, "cal_errors_total", &["other"]), Some(1.0));
    match &engine.metrics["cal_latency_seconds"].series[search(&Vec::new())] {
        SeriesValue::Histogram { counts, sum, count } => {
            assert_eq!((counts.as_slice(), *sum, *count), (&[1, 2][..], 10.5, 3));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn json_whole_line_rules_match_any_field_but_still_need_their_fields() {
    let mut secrets = rule("secrets_total", LogAction::Inc, Some(r"(?i)bearer\s+[A-Za-z0-9._~+/-]{16,}"), None, &[]);
    secrets.whole_line = true;
    secrets.fields = BTreeMap::from([("category".into(), "calendar_sync".into())]);
    let mut engine = RuleEngine::new(
        vec![(secrets, metric("secrets_total", MetricType::Counter, vec![]))],
        LogFormat::Json,
        TimestampParser::new(&TimestampSpec::default()).unwrap(),
    )
    .unwrap();
    for line in [
        r#"{"category":"calendar_sync","message":"push","metadata":{"authorization":"Bearer abcdefghijklmnopqrstuvwxyz"}}"#,
        r#"{"category":"calendar_sync","message":"Bearer abcdefghijklmnopqrstuvwxyz"}"#,
        r#"{"category":"calendar_sync","message":"push","metadata":{"authorization":"Bearer [REDACTED]"}}"#,
        r#"{"category":"billing","metadata":{"authorization":"Bearer abcdefghijklmnopqrstuvwxyz"}}"#,
    ] {
        engine.process(line);
    }
    assert_eq!(scalar(&engine, "secrets_total", &[]), Some(2.0));
}

#[test]
fn json_rules_read_nested_fields_and_a_named_message_field() {
    let set = rule("budget_used", LogAction::Set, None, Some("budget.total_attempts"), &[]);
    let mut cycles = rule("cycles_total", LogAction::Inc, Some("Cycle complete"), None, &[]);
    cycles.fields = BTreeMap::from([("ctx.level".into(), "info".into())]);
    let mut engine = RuleEngine::new(
        vec![
            (set, metric("budget_used", MetricType::Gauge, vec![])),
            (cycles, metric("cycles_total", MetricType::Counter, vec![])),
        ],
        LogFormat::Json,
        TimestampParser::new(&TimestampSpec::default()).unwrap(),
    )
    .unwrap()
    .with_message_field("event");
    for line in [
        r#"{"event":"M6:RateLimit","budget":{"total_attempts":45,"max_requests":100}}"#,
        r#"{"event":"Cycle complete","ctx":{"level":"info"}}"#,
        r#"{"message":"Cycle complete","ctx":{"level":"info"}}"#,
        r#"{"event":"Cycle complete","ctx":"info"}"#,
        r#"{"event":"no budget","budget":7}"#,
    ] {
        engine.process(line);
    }
    assert_eq!(scalar(&engine, "budget_used", &[]), Some(45.0));
    assert_eq!(scalar(&engine, "cycles_total", &[]), Some(1.0), "only `event` is the message");
    // A key that itself contains a dot is read as written.
    engine.process(r#"{"budget.total_attempts":7}"#);
    assert_eq!(scalar(&engine, "budget_used", &[]), Some(7.0));
}

#[test]
fn free_labels_overflow_into_one_series() {
    let m = metric("users_total", MetricType::Counter, vec![LabelDef::Name("user".into())]);
    let r =
        rule("users_total", LogAction::Add, Some(r"user=(?P<user>\w+) n=(?P<n>\d+)"), Some("n"), &[("user", "$user")]);
    let mut engine =
        RuleEngine::new(vec![(r, m)], LogFormat::Text, TimestampParser::new(&TimestampSpec::default()).unwrap())
            .unwrap();
    for i in 0..(MAX_SERIES_PER_METRIC + 50) {
        engine.process(&format!("user=u{i} n=2"));
    }
    assert_eq!(engine.metrics["users_total"].series.len(), MAX_SERIES_PER_METRIC + 1);
    assert_eq!(scalar(&engine, "users_total", &[OVERFLOW_VALUE]), Some(100.0));
    assert_eq!(engine.overflows()["users_total"], 50);
    assert_eq!(engine.process("user=x n=notanumber"), LineOutcome::Unmatched);
}

/// Publishing shares each series' label text with the engine: a second snapshot points at the
/// same bytes as the first, so 100k long values are held once however many snapshots exist.
#[test]
fn snapshots_share_label_text_with_the_series() {
    let mut engine = everything(LogFormat::Text);
    engine.process("user=alice n=2");
    let value = |families: &[crate::state::Family]| {
        let family = families.iter().find(|f| f.name == "bytes_total").expect("bytes_total");
        family.samples[0].labels[0].clone()
    };
    let (first, second) = (value(&engine.families()), value(&engine.families()));
    assert_eq!((&*first.0, &*first.1), ("user", "alice"));
    assert!(std::sync::Arc::ptr_eq(&first.0, &second.0) && std::sync::Arc::ptr_eq(&first.1, &second.1));
}

/// A pattern that is not a regex says where and what is wrong with it, for text and JSON lines.
#[test]
fn a_bad_pattern_says_what_is_wrong_with_it() {
    for format in [LogFormat::Text, LogFormat::Json] {
        let r = rule("x_total", LogAction::Inc, Some("foo (bar"), None, &[]);
        let m = metric("x_total", MetricType::Counter, vec![]);
        let e = CompiledRule::compile(&r, &m, format).expect_err("not a regex");
        assert!(e.starts_with("pattern: regex parse error") && e.contains("unclosed group"), "{format:?}: {e}");
    }
}

/// Every metric shape and action at once, on a text or JSON source; free labels capped at 16.
fn everything(format: LogFormat) -> RuleEngine {
    let code = LabelDef::Fixed(FixedLabel {
        name: "code".into(),
        values: vec!["a".into(), "other".into()],
        other: Some("other".into()),
    });
    let pattern = |p: &'static str| (format == LogFormat::Text).then_some(p);
    let mut add = rule(
        "bytes_total",
        LogAction::Add,
        pattern(r"user=(?P<user>\S*) n=(?P<n>\S*)"),
        Some("n"),
        &[("user", "$user")],
    );
    add.scale = Some(1e300);
    let rules = vec![
        (add, metric("bytes_total", MetricType::Counter, vec![LabelDef::Name("user".into())])),
        (
            rule("codes_total", LogAction::Inc, pattern(r"code=(?P<code>\S*)"), None, &[("code", "$code")]),
            metric("codes_total", MetricType::Counter, vec![code]),
        ),
        (
            rule("size", LogAction::Set, pattern(r"size=(?P<n>\S*)"), Some("n"), &[]),
            metric("size", MetricType::Gauge, vec![]),
        ),
        (
            rule("took_seconds", LogAction::Observe, pattern(r"took=(?P<n>\S*)"), Some("n"), &[]),
            metric("took_seconds", MetricType::Histogram, vec![]),
        ),
        (
            rule("last_seconds", LogAction::Timestamp, pattern(r"ts"), None, &[]),
            metric("last_seconds", MetricType::Gauge, vec![]),
        ),
    ];
    let spec = TimestampSpec { format: "unix".into(), pattern: r"^(\S+)".into(), ..TimestampSpec::default() };
    RuleEngine::new(rules, format, TimestampParser::new(&spec).unwrap()).unwrap().with_max_label_bytes(16)
}

/// What must hold whatever the lines were: values a checkpoint can carry, bounded series.
fn assert_sound(engine: &RuleEngine) {
    for (name, state) in &engine.metrics {
        assert!(state.series.len() <= MAX_SERIES_PER_METRIC + 1, "{name}");
        for (labels, value) in &state.series {
            assert!(labels.values().iter().all(|l| l.len() <= 16 || &**l == OVERFLOW_VALUE), "{labels:?}");
            match value {
                SeriesValue::Scalar(v) => assert!(v.is_finite(), "{name} {v}"),
                SeriesValue::Histogram { counts, sum, count } => {
                    assert!(sum.is_finite() && counts.windows(2).all(|w| w[0] <= w[1]));
                    assert!(counts.len() == 2 && counts[1] <= *count);
                }
            }
        }
    }
    let saved = serde_json::to_vec(&engine.save()).unwrap();
    let mut fresh = everything(engine.format);
    assert_eq!(fresh.restore(&serde_json::from_slice(&saved).unwrap()), vec![]);
    // serde_json (without its float_roundtrip feature) may read a float back one unit in the
    // last place off; everything else comes back exactly.
    let close = |a: f64, b: f64| a == b || (a - b).abs() <= a.abs().max(b.abs()) * 1e-15;
    let (after, before) = (fresh.save(), engine.save());
    assert_eq!(after.shapes, before.shapes);
    for (name, series) in &before.series {
        for ((labels, v), (labels2, v2)) in series.iter().zip(&after.series[name]) {
            assert_eq!(labels, labels2);
            match (v, v2) {
                (SeriesValue::Scalar(a), SeriesValue::Scalar(b)) => assert!(close(*a, *b), "{a} {b}"),
                (
                    SeriesValue::Histogram { counts, sum, count },
                    SeriesValue::Histogram { counts: c2, sum: s2, count: n2 },
                ) => assert!(counts == c2 && count == n2 && close(*sum, *s2)),
                other => panic!("{other:?}"),
            }
        }
    }
}

fn value_at(engine: &RuleEngine, metric: &str, now: f64) -> Option<f64> {
    let families = engine.fresh_families(now);
    let family = families.iter().find(|f| f.name == metric)?;
    family.samples.first().map(|s| match s.value {
        SampleValue::Scalar(v) => v,
        _ => f64::NAN,
    })
}

#[test]
fn a_set_value_is_served_only_while_younger_than_max_age() {
    let mut engine = everything(LogFormat::Text).with_ages(300.0, 300.0);
    let now = 1_000_000.0;
    // Its own time, 100 s ago.
    engine.process_at(&format!("{} size=95", now - 100.0), LineClock::at(now));
    assert_eq!(value_at(&engine, "size", now), Some(95.0));
    assert_eq!(engine.next_expiry(now), Some(now + 200.0));
    assert_eq!(value_at(&engine, "size", now + 199.0), Some(95.0));
    assert_eq!(value_at(&engine, "size", now + 200.0), None, "one old line pages no longer than max_age");
    assert!(engine.families().iter().any(|f| f.name == "size" && !f.samples.is_empty()), "replay shows it");
    // No timestamp on the line: the time it was read. A line from the future: now.
    engine.process_at("size=7", LineClock::at(now + 1000.0));
    assert_eq!(value_at(&engine, "size", now + 1299.0), Some(7.0));
    engine.process_at(&format!("{} size=8", now + 1e6), LineClock::at(now + 2000.0));
    assert_eq!(value_at(&engine, "size", now + 2299.0), Some(8.0));
    assert_eq!(value_at(&engine, "size", now + 2300.0), None);
    // Counters and timestamps do not age.
    engine.process_at(&format!("{} ts code=a", now - 5000.0), LineClock::at(now));
    assert_eq!(value_at(&engine, "last_seconds", now + 1e6), Some(now - 5000.0));
    assert_eq!(value_at(&engine, "codes_total", now + 1e6), Some(1.0));
}

#[test]
fn a_timestamp_is_the_latest_line_and_a_line_from_the_future_is_refused() {
    let mut engine = everything(LogFormat::Text).with_ages(300.0, 300.0);
    let now = 1_000_000.0;
    assert_eq!(engine.process_at(&format!("{} ts", now - 10.0), LineClock::at(now)), LineOutcome::Matched);
    // The clock stepped back an hour: the heartbeat follows it.
    engine.process_at(&format!("{} ts", now - 3600.0), LineClock::at(now));
    assert_eq!(value_at(&engine, "last_seconds", now), Some(now - 3600.0));
    // Within the tolerance: taken. Beyond it: unparsable, ignored.
    assert_eq!(engine.process_at(&format!("{} ts", now + 299.0), LineClock::at(now)), LineOutcome::Matched);
    assert_eq!(engine.process_at(&format!("{} ts", now + 301.0), LineClock::at(now)), LineOutcome::Unparsable);
    assert_eq!(engine.process_at("4102444800 ts", LineClock::at(now)), LineOutcome::Unparsable);
    assert_eq!(value_at(&engine, "last_seconds", now), Some(now + 299.0));
    engine.process_at(&format!("{} ts", now + 30.0), LineClock::at(now + 60.0));
    assert_eq!(value_at(&engine, "last_seconds", now), Some(now + 30.0), "not the maximum ever seen");
}

#[test]
fn a_restored_value_keeps_its_age_and_a_restored_future_timestamp_is_dropped() {
    let mut engine = everything(LogFormat::Text).with_ages(300.0, 300.0);
    let now = 1_000_000.0;
    engine.process_at(&format!("{} size=95", now - 100.0), LineClock::at(now));
    let saved = serde_json::to_vec(&engine.save()).unwrap();
    let saved: SavedMetrics = serde_json::from_slice(&saved).unwrap();
    let mut restarted = everything(LogFormat::Text).with_ages(300.0, 300.0);
    assert_eq!(restarted.restore_at(&saved, now + 60.0), vec![]);
    assert_eq!(value_at(&restarted, "size", now + 60.0), Some(95.0));
    assert_eq!(value_at(&restarted, "size", now + 3600.0), None, "a restart does not revive it");
    // A checkpoint without update times (older versions): unknown age, not served.
    let mut old = saved.clone();
    old.updated.clear();
    let mut restarted = everything(LogFormat::Text).with_ages(300.0, 300.0);
    assert_eq!(restarted.restore_at(&old, now), vec![]);
    assert_eq!(value_at(&restarted, "size", now), None);
    // A heartbeat saved in the future by an older version would hide a stopped worker.
    let mut future = saved.clone();
    future.series.insert("last_seconds".into(), vec![(Vec::new().into(), SeriesValue::Scalar(now + 86_400.0))]);
    let mut restarted = everything(LogFormat::Text).with_ages(300.0, 300.0);
    restarted.restore_at(&future, now);
    assert_eq!(value_at(&restarted, "last_seconds", now), None);
    future.series.insert("last_seconds".into(), vec![(Vec::new().into(), SeriesValue::Scalar(now - 60.0))]);
    restarted.restore_at(&future, now);
    assert_eq!(value_at(&restarted, "last_seconds", now), Some(now - 60.0));
}

#[test]
fn old_content_seeds_gauges_only_and_live_lines_win() {
    let mut engine = everything(LogFormat::Text).with_ages(300.0, 300.0);
    let now = 1_000_000.0;
    let mut seed = engine.seeding();
    // Two files: the second one's last heartbeat is older; the first one's budget is older.
    let file_a = [format!("{} ts code=a size=1", now - 50.0), format!("{} size=2 took=1", now - 48.0)];
    let file_b = [format!("{} ts size=3", now - 90.0), "size=4".to_string()];
    for line in &file_a {
        seed.process_at(line, LineClock::at(now));
    }
    for line in &file_b {
        // Without a timestamp, a line of this file is no younger than its mtime.
        seed.process_at(line, LineClock { now, read_at: now - 45.0 });
    }
    engine.adopt_seed(seed);
    assert_eq!(value_at(&engine, "last_seconds", now), Some(now - 50.0));
    assert_eq!(value_at(&engine, "size", now), Some(4.0));
    assert_eq!(engine.next_expiry(now), Some(now - 45.0 + 300.0));
    assert_eq!(value_at(&engine, "codes_total", now), Some(0.0), "old lines never count");
    assert!(engine.fresh_families(now).iter().any(|f| f.name == "took_seconds"));
    match &engine.metrics["took_seconds"].series.get(search(&Vec::new())) {
        None => {}
        other => panic!("histogram seeded: {other:?}"),
    }
    // A live line read before the old content was: it stays.
    let mut engine = everything(LogFormat::Text).with_ages(300.0, 300.0);
    let mut seed = engine.seeding();
    engine.process_at(&format!("{} ts size=9", now), LineClock::at(now));
    seed.process_at(&format!("{} ts size=1", now - 10.0), LineClock::at(now));
    engine.adopt_seed(seed);
    assert_eq!(value_at(&engine, "size", now), Some(9.0));
    assert_eq!(value_at(&engine, "last_seconds", now), Some(now));
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<f64>().prop_map(|v| v.to_string()),
        Just("1e308".to_string()),
        Just("-0".to_string()),
        Just("NaN".to_string()),
        Just("inf".to_string()),
        "\\PC{0,6}",
    ]
}

fn text_line() -> impl Strategy<Value = String> {
    let field = prop_oneof![
        (r"\PC{0,40}", number()).prop_map(|(u, n)| format!("user={u} n={n}")),
        r"\PC{0,30}".prop_map(|c| format!("code={c}")),
        number().prop_map(|n| format!("size={n} took={n}")),
        number().prop_map(|n| format!("{n} ts")),
        r"\PC{0,80}",
    ];
    prop::collection::vec(field, 1..4).prop_map(|parts| parts.join(" "))
}

fn json_value() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<f64>().prop_map(|v| serde_json::Number::from_f64(v).map_or(Json::Null, Json::Number)),
        any::<i64>().prop_map(Json::from),
        Just(Json::from(1e308)),
        r"\PC{0,40}".prop_map(Json::String),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Json::Array),
            prop::collection::btree_map("[a-z]{1,3}", inner, 0..3).prop_map(|m| Json::Object(m.into_iter().collect())),
        ]
    })
}

fn json_line() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("user".to_string()),
        Just("n".to_string()),
        Just("code".to_string()),
        Just("timestamp".to_string()),
        Just("message".to_string()),
        "[a-z]{1,4}",
    ];
    prop_oneof![
        4 => prop::collection::btree_map(key, json_value(), 0..6)
            .prop_map(|m| Json::Object(m.into_iter().collect()).to_string()),
        1 => r"\PC{0,60}",
    ]
}

/// The worker log's rules (the token_refresh pack's text rules) and patterns the literal
/// prefilter must not get wrong: anchored, with a word boundary, case-insensitive, without any
/// literal, one literal the prefix of another.
fn prefilter_rules() -> RuleEngine {
    let result = LabelDef::Fixed(FixedLabel {
        name: "result".into(),
        values: vec!["success".into(), "failure".into()],
        other: None,
    });
    let plain = |name: &str, pattern: &str| {
        (rule(name, LogAction::Inc, Some(pattern), None, &[]), metric(name, MetricType::Counter, vec![]))
    };
    let budget = r"rate_limit_budget.*?total_attempts\W+(?P<attempts>\d+).*?max_requests\W+(?P<max>\d+)";
    let rules = vec![
        (
            rule("refreshes_total", LogAction::Inc, Some("ProactiveRefresh ✓"), None, &[("result", "success")]),
            metric("refreshes_total", MetricType::Counter, vec![result.clone()]),
        ),
        (
            rule("refreshes_total", LogAction::Inc, Some("ProactiveRefresh ✗"), None, &[("result", "failure")]),
            metric("refreshes_total", MetricType::Counter, vec![result]),
        ),
        (
            rule(
                "failures_total",
                LogAction::Inc,
                Some(r"ProactiveRefresh ✗(?:.*?\berror=(?P<error>[A-Za-z0-9_]+))?"),
                None,
                &[("error", "$error")],
            ),
            metric("failures_total", MetricType::Counter, vec![LabelDef::Name("error".into())]),
        ),
        (
            rule("attempts", LogAction::Set, Some(budget), Some("attempts"), &[]),
            metric("attempts", MetricType::Gauge, vec![]),
        ),
        (rule("max", LogAction::Set, Some(budget), Some("max"), &[]), metric("max", MetricType::Gauge, vec![])),
        plain("rate_limit_total", "M6:RateLimit"),
        (
            rule("cycle_seconds", LogAction::Timestamp, Some("ProactiveRefresh.*Cycle complete"), None, &[]),
            metric("cycle_seconds", MetricType::Gauge, vec![]),
        ),
        plain("cycles_total", "ProactiveRefresh.*Cycle complete"),
        plain("contention_total", "acquire lock"),
        plain("anchored_total", "^ProactiveRefresh"),
        plain("boundary_total", r"\block\b"),
        plain("any_case_total", "(?i)rate_?limit"),
        plain("no_literal_total", r"\d+ms"),
        plain("alternation_total", "lock lost|Cycle"),
        plain("repeated_total", "Re(?:fresh)+ ✓"),
    ];
    let spec = TimestampSpec { format: "unix".into(), pattern: r"^(\S+)".into(), ..TimestampSpec::default() };
    RuleEngine::new(rules, LogFormat::Text, TimestampParser::new(&spec).unwrap()).unwrap()
}

/// Lines made of the rules' literals, pieces of them and noise, so that most lines come near some
/// rule and many match one.
fn near_miss_line() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("ProactiveRefresh".to_string()),
        Just("ProactiveRefresh ✓".to_string()),
        Just("ProactiveRefresh ✗".to_string()),
        Just("Proactive".to_string()),
        Just("✓".to_string()),
        Just("error=invalid_grant".to_string()),
        Just("error=".to_string()),
        Just("rate_limit_budget={'total_attempts': 7, 'max_requests': 100}".to_string()),
        Just("rate_limit_budget".to_string()),
        Just("total_attempts: 3".to_string()),
        Just("max_requests: 9".to_string()),
        Just("M6:RateLimit".to_string()),
        Just("RATE_LIMIT".to_string()),
        Just("Cycle complete".to_string()),
        Just("acquire lock".to_string()),
        Just("lock".to_string()),
        Just("lock lost".to_string()),
        Just("unlocked".to_string()),
        Just("RefreshRefresh ✓".to_string()),
        number().prop_map(|n| format!("{n}ms")),
        number(),
        r"[ a-zA-Z_=:.✓✗]{0,6}",
        r"\PC{0,12}",
    ];
    prop::collection::vec(piece, 0..7).prop_map(|parts| parts.concat())
}

proptest! {
    // A few seconds by default; `scripts/fuzz` runs thousands.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(32)
    ))]

    /// Arbitrary text lines: no panic, and every value stays one a checkpoint can restore.
    #[test]
    fn arbitrary_text_lines_keep_the_engine_sound(lines in prop::collection::vec(text_line(), 1..40)) {
        let mut engine = everything(LogFormat::Text);
        for line in &lines {
            engine.process(line);
        }
        assert_sound(&engine);
    }

    /// Arbitrary JSON lines (and lines that are not JSON): the same.
    #[test]
    fn arbitrary_json_lines_keep_the_engine_sound(lines in prop::collection::vec(json_line(), 1..40)) {
        let mut engine = everything(LogFormat::Json);
        for line in &lines {
            engine.process(line);
        }
        assert_sound(&engine);
    }

    /// The literal prefilter changes no count: with it, the engine says the same of every line
    /// and ends with the same families as when every rule runs its regex on every line.
    #[test]
    fn the_literal_prefilter_gives_what_every_regex_gives(
        lines in prop::collection::vec(near_miss_line(), 1..60),
        glue in prop::collection::vec(r"[ ,]{0,2}", 1..60),
    ) {
        let mut filtered = prefilter_rules();
        let mut reference = prefilter_rules().without_prefilter();
        let clock = LineClock::at(2e9);
        for (i, line) in lines.iter().enumerate() {
            let line = format!("{}{line}", glue[i % glue.len()]);
            prop_assert_eq!(filtered.process_at(&line, clock), reference.process_at(&line, clock), "{}", line);
        }
        prop_assert_eq!(filtered.families(), reference.families());
    }

    /// A series map searched by the values read from a line finds exactly the series stored
    /// under those values: the search order and the keys' own order agree.
    #[test]
    fn a_series_is_found_by_the_values_it_was_stored_under(
        keys in prop::collection::vec(prop::collection::vec("[ab]{0,2}", 0..3), 0..20),
        probes in prop::collection::vec(prop::collection::vec("[ab]{0,2}", 0..3), 0..20),
    ) {
        let map: BTreeMap<SeriesKey, usize> = keys.iter().enumerate().map(|(i, k)| (SeriesKey::from(k.as_slice()), i)).collect();
        for probe in keys.iter().chain(&probes) {
            let stored = keys.iter().rposition(|k| k == probe);
            prop_assert_eq!(map.get(search(probe)).copied(), stored, "{:?}", probe);
        }
    }

    /// A batch read on several threads stores what its lines store one by one: cut anywhere into
    /// batches, the lines end with the same values, ages, overflows, truncations and counts.
    #[test]
    fn batches_give_what_their_lines_give_one_by_one(
        near in prop::collection::vec(near_miss_line(), 1..60),
        text in prop::collection::vec(text_line(), 1..60),
        users in prop::collection::vec((0usize..3, number()), 0..300),
        cuts in prop::collection::vec(0usize..500, 0..5),
    ) {
        // Past the series limit when long: users `0`, `i` or `2i` for line `i`.
        let many: Vec<String> = users
            .iter()
            .enumerate()
            .map(|(i, (k, n))| format!("user=u{u} n={n} code=c{u} size={n} ts", u = i * k))
            .collect();
        for (make, lines) in [(prefilter_rules as fn() -> RuleEngine, &near), (|| everything(LogFormat::Text), &text),
            (|| everything(LogFormat::Text), &many)]
        {
            let clock = LineClock { now: 2e9, read_at: 2e9 - 1.0 };
            let mut one_by_one = make();
            let mut expected = LineCounts { lines: lines.len() as u64, ..LineCounts::default() };
            for line in lines.iter() {
                match one_by_one.process_at(line, clock) {
                    LineOutcome::Matched => expected.matched += 1,
                    LineOutcome::Unparsable => expected.unparsable += 1,
                    LineOutcome::Unmatched => {}
                }
            }
            let mut batched = make();
            let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (lines.len() + 1)).collect();
            bounds.extend([0, lines.len()]);
            bounds.sort_unstable();
            let mut counts = LineCounts::default();
            for w in bounds.windows(2) {
                let batch: Vec<&str> = lines[w[0]..w[1]].iter().map(String::as_str).collect();
                let c = batched.process_lines(&batch, clock);
                counts.lines += c.lines;
                counts.matched += c.matched;
                counts.unparsable += c.unparsable;
            }
            prop_assert_eq!(counts, expected);
            prop_assert_eq!(batched.families(), one_by_one.families());
            prop_assert_eq!(batched.save(), one_by_one.save());
            prop_assert_eq!(batched.overflows(), one_by_one.overflows());
            prop_assert_eq!(batched.truncations(), one_by_one.truncations());
        }
    }
}
