use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::spec::{SourceText, pack};

/// Readings held in memory: values now, increases per (metric, matchers, window).
#[derive(Default)]
struct Fixed {
    now: BTreeMap<String, Result<Vec<(Labels, f64)>, Blind>>,
    increases: BTreeMap<(String, String, u64), f64>,
}

fn key(matchers: &BTreeMap<String, String>) -> String {
    matchers.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

impl Readings for Fixed {
    fn now(&self, metric: &str) -> Result<Vec<(Labels, f64)>, Blind> {
        self.now.get(metric).cloned().unwrap_or(Ok(Vec::new()))
    }
    fn increase(
        &self,
        metric: &str,
        matchers: &BTreeMap<String, String>,
        window: Duration,
    ) -> Result<Windowed<f64>, Blind> {
        Ok(Windowed::whole(*self.increases.get(&(metric.to_string(), key(matchers), window.as_secs())).unwrap_or(&0.0)))
    }
    fn rise(&self, _: &str, _: &BTreeMap<String, String>, w: Duration) -> Result<Windowed<Vec<(Labels, f64)>>, Blind> {
        Err(Blind::NeedsHistory(format!("a rise over {}s", w.as_secs())))
    }
    fn buckets(&self, _: &str, _: &BTreeMap<String, String>, _: Duration) -> Result<Windowed<Vec<(f64, f64)>>, Blind> {
        Ok(Windowed::whole(vec![(1.0, 1.0), (f64::INFINITY, 1.0)]))
    }
}

fn model() -> Model {
    let text = "database: {url_env: UNUSED}\npacks:\n  token_refresh: {}\n  salesforce_incidents: {}\n";
    Model::from_text(&SourceText { name: "t.yaml".into(), text: text.into() }).unwrap_or_else(|e| panic!("{e}"))
}

fn judge(model: &Model, name: &str, readings: &Fixed, now: f64) -> Finding {
    let (s, a) = checks(model).into_iter().find(|(_, a)| a.name == name).unwrap_or_else(|| panic!("no {name}"));
    evaluate(model, s, a, readings, now)
}

fn one(v: f64) -> Result<Vec<(Labels, f64)>, Blind> {
    Ok(vec![(Vec::new(), v)])
}

#[test]
fn a_gauge_past_its_threshold_takes_the_alerts_severity_and_the_threshold_is_the_specs() {
    let model = model();
    let mut r = Fixed::default();
    r.now.insert("integration_token_refresh_tokens_expiring".into(), one(21.0));
    let f = judge(&model, "IntegrationTokenRefreshTokensExpiring", &r, 0.0);
    assert_eq!((f.verdict, f.value_text.as_str(), f.threshold.as_str()), (Level::Critical, "21", "> 20 for 5m"));
    assert!(f.why.starts_with("21 > 20 now"), "{}", f.why);
    assert_eq!(f.reading, Some(Reading { series: "integration_token_refresh_tokens_expiring".into(), value: 21.0 }));
    assert!(f.step.as_deref().is_some_and(|s| s.contains("heartbeat")), "{:?}", f.step);
    r.now.insert("integration_token_refresh_tokens_expiring".into(), one(20.0));
    let f = judge(&model, "IntegrationTokenRefreshTokensExpiring", &r, 0.0);
    assert_eq!((f.verdict, f.why.as_str()), (Level::Ok, "20, not > 20"));
}

#[test]
fn a_ratio_under_its_min_events_is_quiet_and_over_it_judged() {
    let model = model();
    let metric = "integration_token_refresh_proactive_refreshes_total";
    let success = BTreeMap::from([("result".to_string(), "success".to_string())]);
    let mut r = Fixed::default();
    r.increases.insert((metric.into(), key(&success), 600), 5.0);
    r.increases.insert((metric.into(), String::new(), 600), 9.0);
    let f = judge(&model, "IntegrationTokenRefreshSuccessRateLow", &r, 0.0);
    assert_eq!(f.verdict, Level::Ok);
    assert!(f.why.contains("9 events in 10m, fewer than the 10"), "{}", f.why);
    r.increases.insert((metric.into(), String::new(), 600), 10.0);
    let f = judge(&model, "IntegrationTokenRefreshSuccessRateLow", &r, 0.0);
    assert_eq!((f.verdict, f.value_text.as_str()), (Level::Warning, "50%"));
}

#[test]
fn ages_absence_guards_and_blind_sources() {
    let model = model();
    let mut r = Fixed::default();
    r.now.insert("integration_token_refresh_last_cycle_timestamp_seconds".into(), one(1000.0));
    let f = judge(&model, "IntegrationTokenRefreshHeartbeatLag", &r, 1000.0 + 301.0);
    assert_eq!((f.verdict, f.value_text.as_str()), (Level::Critical, "5m 1s"));
    assert_eq!(f.reading.map(|r| r.value), Some(1000.0), "the reading is the timestamp /metrics serves");
    let f = judge(&model, "IntegrationTokenRefreshHeartbeatMissing", &r, 0.0);
    assert_eq!(f.verdict, Level::Ok);
    r.now.insert("integration_token_refresh_last_cycle_timestamp_seconds".into(), Ok(Vec::new()));
    let f = judge(&model, "IntegrationTokenRefreshHeartbeatMissing", &r, 0.0);
    assert_eq!(f.verdict, Level::Critical);

    // Due tokens page only while cycles complete and no attempt is logged.
    r.now.insert("integration_token_refresh_tokens_due".into(), one(3.0));
    let f = judge(&model, "IntegrationTokenRefreshAttemptsMissing", &r, 0.0);
    assert_eq!(f.verdict, Level::Ok, "{}", f.why);
    assert!(f.why.contains("quiet while"), "{}", f.why);
    r.increases.insert(("integration_token_refresh_cycles_total".into(), String::new(), 600), 4.0);
    assert_eq!(judge(&model, "IntegrationTokenRefreshAttemptsMissing", &r, 0.0).verdict, Level::Warning);

    r.now.insert("integration_token_refresh_tokens_due".into(), Err(Blind::Source("connection refused".into())));
    let f = judge(&model, "IntegrationTokenRefreshAttemptsMissing", &r, 0.0);
    assert_eq!((f.verdict, f.why.as_str(), f.source_blind()), (Level::Unknown, "connection refused", true));
    let rise = judge(&model, "IntegrationTokenRefreshPersistent429", &r, 0.0);
    assert_eq!((rise.verdict, rise.source_blind()), (Level::Unknown, false));
    assert_eq!(exit_status(std::slice::from_ref(&rise)), 0, "a condition one reading cannot judge is no failure");
    assert_eq!(exit_status(&[rise, f.clone()]), 3);
}

#[test]
fn the_worst_series_is_shown_and_counted() {
    let model = model();
    let mut r = Fixed::default();
    let series = |v: &str| vec![("workflow".into(), v.into())];
    r.now.insert(
        "integration_salesforce_mcp_server_up".into(),
        Ok(vec![(series("a"), 1.0), (series("b"), 0.0), (series("c"), 0.0)]),
    );
    let f = judge(&model, "IntegrationSalesforceMcpServerDown", &r, 0.0);
    assert_eq!(f.verdict, Level::Critical);
    assert_eq!(f.series, "workflow=\"b\"");
    assert!(f.why.contains("(2 of 3 series)"), "{}", f.why);
}

#[test]
fn exit_status_is_the_worst_verdict() {
    let model = model();
    let mut r = Fixed::default();
    r.now.insert("integration_token_refresh_tokens_expiring".into(), one(21.0));
    let critical = judge(&model, "IntegrationTokenRefreshTokensExpiring", &r, 0.0);
    r.now.insert("integration_token_refresh_degraded_watchers".into(), one(11.0));
    let warning = judge(&model, "IntegrationTokenRefreshDegradedWatchers", &r, 0.0);
    assert_eq!(warning.verdict, Level::Warning);
    assert_eq!(exit_status(&[]), 0);
    assert_eq!(exit_status(std::slice::from_ref(&warning)), 1);
    assert_eq!(exit_status(&[warning, critical]), 2);
}

/// Every alert of every built-in pack has exactly one next step, every step names an alert of
/// its pack, and the checks come in the playbook's order.
#[test]
fn every_alert_has_one_next_step() {
    for (name, _) in pack::BUILTIN {
        let def = crate::spec::builtin_pack(name).unwrap().unwrap();
        for signal in &def.signals {
            for alert in &signal.alerts {
                let exact = format!("{}:{}", alert.name, alert.severity.as_str());
                let steps: Vec<&str> = def
                    .playbook
                    .iter()
                    .filter(|s| {
                        s.alert == exact || (s.alert == alert.name && !def.playbook.iter().any(|o| o.alert == exact))
                    })
                    .map(|s| s.step.as_str())
                    .collect();
                assert_eq!(steps.len(), 1, "pack {name}, alert {exact}: {steps:?}");
                assert!(steps[0].trim().ends_with('.') && steps[0].len() > 40, "pack {name}, {exact}: {}", steps[0]);
            }
        }
        for step in &def.playbook {
            let known = def.signals.iter().flat_map(|s| &s.alerts).any(|a| step.names(&a.name, a.severity));
            assert!(known, "pack {name}: the playbook names no alert of the pack: {}", step.alert);
        }
        let mut seen = std::collections::BTreeSet::new();
        assert!(def.playbook.iter().all(|s| seen.insert(&s.alert)), "pack {name}: an alert listed twice");
    }
    let model = Model::builtin_defaults();
    let listed: Vec<String> =
        checks(&model).iter().map(|(s, a)| format!("{}:{}", s.pack.as_deref().unwrap_or(""), a.name)).collect();
    assert!(
        listed.iter().position(|c| c == "token_refresh:IntegrationTokenRefreshSuccessRateLow")
            < listed.iter().position(|c| c == "token_refresh:IntegrationTokenRefreshHeartbeatLag")
    );
}
