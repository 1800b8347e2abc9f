//! Packs fit real logging setups: every pack log source reads Python-logging text or JSON lines,
//! chosen by its `log_format` parameter, with the timestamp format, time zone and JSON field
//! names as parameters too.

mod support;

use std::collections::BTreeSet;
use std::io::Write;

use integration_exporter::spec::{Model, Source, SourceText, builtin_pack, pack::BUILTIN};
use support::fidelity::{Exported, collect, drain, log_runner, value};

fn load(pack: &str, params: &[(&str, &str)]) -> Result<Model, String> {
    let mut yaml = format!("database: {{url_env: UNUSED}}\npacks:\n  {pack}:\n    params:\n");
    for (k, v) in params {
        yaml.push_str(&format!("      {k}: '{v}'\n"));
    }
    Model::from_text(&SourceText { name: "spec.yaml".into(), text: yaml }).map_err(|e| e.to_string())
}

/// Each built-in pack, loaded in each line shape it declares, validates (every rule matches its
/// own sample lines of that shape), and every metric of its log signals still has a rule: no
/// signal goes quiet because the service logs JSON.
#[test]
fn every_pack_reads_every_line_shape_it_declares() {
    let mut checked = 0;
    for (name, _) in BUILTIN {
        let pack = builtin_pack(name).unwrap().unwrap();
        let shapes: BTreeSet<&String> = pack.logs.values().flat_map(|l| l.shapes.keys()).collect();
        if pack.logs.is_empty() {
            continue;
        }
        assert_eq!(shapes, BTreeSet::from([&"json".to_string(), &"text".to_string()]), "{name}");
        for shape in shapes {
            let model = load(name, &[("log_format", shape)]).unwrap_or_else(|e| panic!("{name} as {shape}: {e}"));
            for log in model.logs.values() {
                assert_eq!(format!("{:?}", log.format).to_lowercase(), *shape, "{name}");
            }
            for resolved in model.enabled_signals() {
                let Source::Log(rules) = &resolved.signal.source else { continue };
                for metric in &resolved.signal.metrics {
                    assert!(
                        rules.rules.iter().any(|r| r.metric == metric.name),
                        "{name} as {shape}: no rule updates {}",
                        metric.name
                    );
                    checked += 1;
                }
                for rule in &rules.rules {
                    assert!(
                        !rule.samples.is_empty()
                            || rules.rules.iter().any(|r| r.pattern == rule.pattern && !r.samples.is_empty()),
                        "{name} as {shape}: rule on {} has no sample line",
                        rule.metric
                    );
                }
            }
        }
    }
    assert!(checked > 20, "{checked}");
}

#[test]
fn an_unknown_format_names_the_pack_log_and_choices() {
    let err = load("token_refresh", &[("log_format", "xml")]).unwrap_err();
    assert!(
        err.contains("spec.yaml:")
            && err.contains("pack `token_refresh`, log `worker`: format `xml` is not one this pack reads (json, text)"),
        "{err}"
    );
    let err = load("salesforce_incidents", &[("log_timezone", "Mars/Olympus")]).unwrap_err();
    assert!(err.contains("unknown time zone `Mars/Olympus`"), "{err}");
}

fn heartbeat(pack_params: &[(&str, &str)], lines: &[&str]) -> Exported {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("worker.log");
    let mut file = std::fs::File::create(&path).unwrap();
    for line in lines {
        writeln!(file, "{line}").unwrap();
    }
    let path_text = path.display().to_string();
    let mut params = vec![("worker_log", path_text.as_str())];
    params.extend_from_slice(pack_params);
    let model = load("token_refresh", &params).unwrap();
    let mut runner = log_runner(&model, "token_refresh.worker");
    drain(&mut runner);
    let mut out = Exported::new();
    collect(&mut out, runner.families());
    out
}

const LAST_CYCLE: &str = "integration_token_refresh_last_cycle_timestamp_seconds";
/// 2026-02-06 12:02:00 UTC.
const NOON_TWO: f64 = 1_770_379_320.0;

/// Python's `asctime` is the worker host's local time: with the zone set, the heartbeat is the
/// true instant, not an hour in the future.
#[test]
fn python_asctime_is_read_in_the_configured_zone() {
    let line = "2026-02-06 12:02:00,000 INFO [email_watcher_worker] ProactiveRefresh Cycle complete: refreshed=1";
    let utc = heartbeat(&[], &[line]);
    assert_eq!(value(&utc, LAST_CYCLE, &[]), NOON_TWO);
    let berlin = heartbeat(&[("log_timezone", "Europe/Berlin")], &[line]);
    assert_eq!(value(&berlin, LAST_CYCLE, &[]), NOON_TWO - 3600.0);
    // Another layout: the timestamp pattern and format are parameters too.
    let custom = heartbeat(
        &[
            ("text_timestamp_pattern", r"^\[(?P<ts>[^\]]+)\]"),
            ("text_timestamp_format", "%d/%m/%Y %H:%M:%S"),
            ("log_timezone", "America/New_York"),
        ],
        &["[06/02/2026 07:02:00] INFO ProactiveRefresh Cycle complete: refreshed=1"],
    );
    assert_eq!(value(&custom, LAST_CYCLE, &[]), NOON_TWO);
}

/// JSON loggers differ in field names and timestamps: python-json-logger writes `message` and
/// (by default) local `asctime`; structlog's `TimeStamper(fmt="iso")` without `utc` writes local
/// time with no offset. Field names, nested objects and zones are parameters.
#[test]
fn json_field_names_and_local_iso_timestamps_are_parameters() {
    let out = heartbeat(
        &[
            ("log_format", "json"),
            ("json_message_field", "message"),
            ("json_timestamp_field", "asctime"),
            ("json_timestamp_format", "%Y-%m-%dT%H:%M:%S%.f"),
            ("log_timezone", "Europe/Berlin"),
            ("json_budget_field", "budget"),
        ],
        &[
            r#"{"message": "ProactiveRefresh Cycle complete", "asctime": "2026-02-06T13:02:00.000"}"#,
            r#"{"message": "M6:RateLimit", "budget": {"total_attempts": 91, "max_requests": 100}, "asctime": "2026-02-06T13:02:01"}"#,
            r#"{"message": "ProactiveRefresh ✓", "asctime": "2026-02-06T13:02:02"}"#,
            r#"{"event": "ProactiveRefresh ✓", "asctime": "2026-02-06T13:02:03"}"#,
        ],
    );
    assert_eq!(value(&out, LAST_CYCLE, &[]), NOON_TWO);
    assert_eq!(value(&out, "integration_token_refresh_rate_limit_attempts", &[]), 91.0);
    assert_eq!(value(&out, "integration_token_refresh_rate_limit_max_requests", &[]), 100.0);
    assert_eq!(value(&out, "integration_token_refresh_proactive_refreshes_total", &[("result", "success")]), 1.0);
}
