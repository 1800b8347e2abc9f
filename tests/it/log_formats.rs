//! Packs fit real logging setups: every pack log source reads Python-logging text or JSON lines,
//! chosen by its `log_format` parameter, with the timestamp format, time zone and JSON field
//! names as parameters too.

use crate::support;

use std::collections::BTreeSet;
use std::io::Write;

use integration_exporter::spec::{Model, Source, SourceText, builtin_pack, pack::BUILTIN};
use support::fidelity::{Exported, collect, drain, log_runner, value};

/// The pack with every signal that reads a log on: a log variant that is off by default (the ETL
/// pack reads GitHub unless told otherwise) is read in both shapes too.
fn load(pack: &str, params: &[(&str, &str)]) -> Result<Model, String> {
    let mut yaml = format!("database: {{url_env: UNUSED}}\npacks:\n  {pack}:\n    params:\n");
    for (k, v) in params {
        yaml.push_str(&format!("      {k}: '{v}'\n"));
    }
    let off: Vec<String> = builtin_pack(pack)
        .and_then(Result::ok)
        .map(|p| p.signals)
        .unwrap_or_default()
        .into_iter()
        .filter(|s| !s.enabled && matches!(s.source, Source::Log(_)))
        .map(|s| s.id)
        .collect();
    if !off.is_empty() {
        yaml.push_str("    signals:\n");
        for id in off {
            yaml.push_str(&format!("      {id}: {{enabled: true}}\n"));
        }
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
        err.starts_with("spec.yaml:5:7: ")
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
    // As of a minute after the lines' own time: `set` values older than `max_age` are not served.
    collect(&mut out, runner.families_at(NOON_TWO + 60.0));
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

/// The pack's counters and gauges from `lines`, read as `shape` from a file named by `log_param`.
fn exported_as(pack: &str, log: &str, log_param: &str, shape: &str, lines: &[&str]) -> Exported {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("service.log");
    let mut file = std::fs::File::create(&path).unwrap();
    for line in lines {
        writeln!(file, "{line}").unwrap();
    }
    let path_text = path.display().to_string();
    let model = load(pack, &[(log_param, path_text.as_str()), ("log_format", shape)]).unwrap();
    let mut runner = log_runner(&model, &format!("{pack}.{log}"));
    drain(&mut runner);
    let mut out = Exported::new();
    collect(&mut out, runner.families());
    out.retain(|name, _| !name.starts_with("integration_exporter_"));
    out
}

/// A pack, its log, the parameter naming the log's path, and one event per pair as (text, JSON).
type PackLines = (&'static str, &'static str, &'static str, &'static [(&'static str, &'static str)]);

/// The same events logged as text and as JSON give the same numbers, for every pack that reads
/// logs; each pair below is one event in both shapes.
#[test]
fn both_shapes_give_the_same_numbers_in_every_pack() {
    let packs: &[PackLines] = &[
        (
            "microsoft_integration",
            "api",
            "api_log",
            &[
                (
                    "2026-02-06T12:00:01.234Z info: Graph API GET /v1.0/users/u1/messages 200 183ms",
                    r#"{"timestamp": "2026-02-06T12:00:01.234Z", "level": "info", "message": "Graph API GET /v1.0/users/u1/messages 200 183ms"}"#,
                ),
                (
                    "2026-02-06T12:00:02.001Z warn: Graph API POST /v1.0/subscriptions 429",
                    r#"{"timestamp": "2026-02-06T12:00:02.001Z", "level": "warn", "message": "Graph API POST /v1.0/subscriptions 429"}"#,
                ),
                (
                    "2026-02-06T12:00:03.120Z info: Webhook notification processed subscription=9f1c",
                    r#"{"timestamp": "2026-02-06T12:00:03.120Z", "level": "info", "message": "Webhook notification processed subscription=9f1c"}"#,
                ),
            ],
        ),
        (
            "salesforce_incidents",
            "server",
            "server_log",
            &[
                (
                    "2026-02-06 12:00:01,234 ERROR shared.auth: SalesforceAuthError: invalid_grant expired access/refresh token",
                    r#"{"timestamp": "2026-02-06T12:00:01.234Z", "level": "error", "message": "SalesforceAuthError: invalid_grant expired access/refresh token"}"#,
                ),
                (
                    "2026-02-06 12:00:04,100 INFO agent.openai: openai request model=gpt-4o status=200 duration_ms=1834",
                    r#"{"timestamp": "2026-02-06T12:00:04.100Z", "level": "info", "message": "openai request model=gpt-4o status=200 duration_ms=1834"}"#,
                ),
                (
                    "2026-02-06 12:00:03,100 ERROR mcp_servers.salesforce_crm.server: tool get_pipeline_summary ErrorResponse: INVALID_SESSION_ID: Session expired or invalid",
                    r#"{"timestamp": "2026-02-06T12:00:03.100Z", "level": "error", "message": "tool get_pipeline_summary ErrorResponse: INVALID_SESSION_ID: Session expired or invalid"}"#,
                ),
                (
                    "2026-02-06 12:00:05,200 WARNING agent.openai: openai request model=gpt-4o status=429 duration_ms=412",
                    r#"{"timestamp": "2026-02-06T12:00:05.200Z", "level": "warning", "message": "openai request model=gpt-4o status=429 duration_ms=412"}"#,
                ),
            ],
        ),
        (
            "etl_token_monitoring",
            "etl",
            "etl_log",
            &[
                (
                    "2026-01-04 13:44:00,000 INFO [token_manager] Token refresh run complete platform=meta",
                    r#"{"timestamp":"2026-01-04T13:44:00.000Z","level":"info","message":"Token refresh run complete","platform":"meta"}"#,
                ),
                (
                    "2026-01-04 13:45:00,000 WARN [token_manager] Meta token refresh failed, but token still valid",
                    r#"{"timestamp":"2026-01-04T13:45:00.000Z","level":"warn","message":"Meta token refresh failed, but token still valid"}"#,
                ),
                (
                    "2026-01-05 02:00:00,000 ERROR [token_manager] Meta token expired. Manual re-authentication required.",
                    r#"{"timestamp":"2026-01-05T02:00:00.000Z","level":"error","message":"Meta token expired. Manual re-authentication required."}"#,
                ),
            ],
        ),
        (
            "calendar_sync",
            "app",
            "app_log",
            &[
                (
                    "2026-02-06 12:00:01,234 ERROR [calendar_sync] sync failed error_code=rate_limited connection_id=c-1",
                    r#"{"timestamp":"2026-02-06T12:00:01.234Z","level":"error","category":"calendar_sync","message":"sync failed","error_code":"rate_limited"}"#,
                ),
                (
                    "2026-02-06 12:00:02,000 ERROR [calendar_sync] sync failed error_code=brand_new",
                    r#"{"timestamp":"2026-02-06T12:00:02.000Z","level":"error","category":"calendar_sync","message":"sync failed","error_code":"brand_new"}"#,
                ),
                (
                    "2026-02-06 12:00:03,000 INFO [calendar_sync] synced 12 events",
                    r#"{"timestamp":"2026-02-06T12:00:03.000Z","level":"info","category":"calendar_sync","message":"synced 12 events"}"#,
                ),
            ],
        ),
    ];
    for (pack, log, log_param, pairs) in packs {
        let text: Vec<&str> = pairs.iter().map(|(t, _)| *t).collect();
        let json: Vec<&str> = pairs.iter().map(|(_, j)| *j).collect();
        let from_text = exported_as(pack, log, log_param, "text", &text);
        let from_json = exported_as(pack, log, log_param, "json", &json);
        assert_eq!(from_text, from_json, "{pack}");
        let total: f64 = from_text.values().flat_map(|s| s.values()).sum();
        assert!(total >= 2.0, "{pack}: events counted: {from_text:#?}");
    }
}
