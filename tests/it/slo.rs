//! SLOs from the runbooks' targets: the generated burn-rate tests hold promtool to each tier's
//! burn, windows, `for` and volume guard (moving one in the rule file fails them); the alerts
//! route by severity and a page mutes its own SLO's ticket only; the error budget row draws the
//! recorded ratios, green while healthy; a spec's own SLO is generated the same way and a wrong
//! one is refused at its place; and the token refresh failures are told apart by their error, so
//! the failures the runbook expects spend no budget.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use integration_exporter::generate::dashboards::dashboard;
use integration_exporter::generate::plan::Plan;
use integration_exporter::generate::{alertmanager, outputs};
use integration_exporter::spec::{Model, SourceText};
use serde_json::Value;

fn promtool(args: &[&str], dir: &Path) -> (bool, String) {
    let out = crate::support::program("promtool").args(args).current_dir(dir).output().expect("promtool");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn model(text: &str) -> Result<Model, String> {
    Model::from_text(&SourceText { name: "spec.yaml".into(), text: text.into() }).map_err(|e| e.to_string())
}

fn file<'a>(files: &'a [(std::path::PathBuf, String)], rel: &str) -> Option<&'a str> {
    files.iter().find(|(p, _)| p == Path::new(rel)).map(|(_, c)| c.as_str())
}

/// One burn tier as its rule file writes it.
struct Tier {
    /// The long window's line of the expression (`<record> > <burn>`), then the short one's.
    long: String,
    short: String,
    long_record: String,
    short_record: String,
    burn: f64,
    /// `for`, as written.
    hold: String,
    /// The volume guard's line.
    guard: String,
}

/// The burn tiers of an `.slo.rules.yml` file, in its order (fastest first).
fn tiers(text: &str) -> Vec<Tier> {
    let doc: Value = serde_saphyr::from_str(text).unwrap();
    let line = regex::Regex::new(r"^(\S+?)\{[^}]*\} > ([0-9.]+)$").unwrap();
    let mut out = Vec::new();
    for rule in doc["groups"].as_array().unwrap().iter().flat_map(|g| g["rules"].as_array().unwrap()) {
        if rule["alert"].is_null() {
            continue;
        }
        let lines: Vec<&str> = rule["expr"].as_str().unwrap().lines().collect();
        let (Some(long), Some(short)) = (line.captures(lines[0]), line.captures(lines[2])) else {
            panic!("not a burn tier: {rule}");
        };
        out.push(Tier {
            long: lines[0].to_string(),
            short: lines[2].to_string(),
            long_record: long[1].to_string(),
            short_record: short[1].to_string(),
            burn: long[2].parse().unwrap(),
            hold: rule["for"].as_str().unwrap().to_string(),
            guard: lines[4].to_string(),
        });
    }
    out
}

/// `for` as minutes (`2m`, `15m`, `3h`).
fn minutes(hold: &str) -> u64 {
    let (n, unit) = hold.split_at(hold.len() - 1);
    n.parse::<u64>().unwrap() * if unit == "h" { 60 } else { 1 }
}

/// A number as a rule file writes it, without float noise.
fn number(x: f64) -> String {
    format!("{}", (x * 1e6).round() / 1e6)
}

/// `text` with `from` replaced by `to` at its first place after `after`.
fn edit_after(text: &str, after: &str, from: &str, to: &str) -> String {
    let at = text.find(after).unwrap_or_else(|| panic!("{after} not in\n{text}"));
    let offset = at + text[at..].find(from).unwrap_or_else(|| panic!("{from} not after {after} in\n{text}"));
    format!("{}{to}{}", &text[..offset], &text[offset + from.len()..])
}

/// The edits each pinning one property of `text`'s tiers: (what moved, the file moved).
fn moves(text: &str) -> Vec<(String, String)> {
    let tiers = tiers(text);
    assert_eq!(tiers.len(), 3, "three burn tiers:\n{text}");
    // The slowest tier burns at 1x: its burn is the budget. The cases stand a tenth of the
    // budget either side of each tier's burn; a move of 0.15 of it crosses one.
    let budget = tiers.iter().map(|t| t.burn).fold(f64::MAX, f64::min);
    let (fast, middle, slow) = (&tiers[0], &tiers[1], &tiers[2]);
    let burn = |t: &Tier, to: f64| {
        let (from, to) = (format!("> {}\n", number(t.burn)), format!("> {}\n", number(to)));
        assert!(text.contains(&from), "{from} not in\n{text}");
        (format!("burn {from:?} to {to:?}"), text.replace(&from, &to))
    };
    let line = |t: &Tier, from: &str, to: &str| (format!("{from} to {to}"), edit_after(text, &t.long, from, to));
    vec![
        // Each tier's burn lower than the case below it: that case fires.
        burn(fast, fast.burn - 0.15 * budget),
        burn(middle, middle.burn - 0.15 * budget),
        burn(slow, slow.burn - 0.15 * budget),
        // And higher than the case above: that one never fires.
        burn(fast, fast.burn + 0.15 * budget),
        burn(slow, slow.burn + 0.15 * budget),
        // A long window swapped for the short one: a burst of the short window alone fires.
        line(fast, &fast.long, &fast.long.replace(&fast.long_record, &fast.short_record)),
        line(slow, &slow.long, &slow.long.replace(&slow.long_record, &slow.short_record)),
        // A short window swapped for the long one: the alert no longer resolves once errors stop.
        line(middle, &middle.short, &middle.short.replace(&middle.short_record, &middle.long_record)),
        // `for` a minute longer or shorter.
        line(fast, &format!("for: {}", fast.hold), &format!("for: {}m", minutes(&fast.hold) + 1)),
        line(slow, &format!("for: {}", slow.hold), &format!("for: {}m", minutes(&slow.hold) - 1)),
        // The guard: two failed attempts out of two page nobody.
        line(fast, &fast.guard, &regex::Regex::new(r">= \d+$").unwrap().replace(&fast.guard, ">= 1")),
    ]
}

/// The tests generated for each tier pass, and fail once the rule file's burn, a window, a `for`
/// or the volume guard is not what they were written for: each case pins one of them, in every
/// SLO rule file.
#[test]
fn burn_rate_tests_fail_when_a_burn_window_for_or_guard_moves() {
    let dir = tempfile::tempdir().unwrap();
    integration_exporter::generate::write_all(&Model::builtin_defaults(), dir.path()).unwrap();
    let alerts = dir.path().join("alerts");
    let mut packs: Vec<String> = std::fs::read_dir(&alerts)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str()?.strip_suffix(".slo.rules.yml").map(str::to_string))
        .collect();
    packs.sort();
    assert_eq!(packs, ["microsoft-integration", "salesforce-incidents", "token-refresh"]);
    // The files apart: one thread each (a file's moves one after the other).
    std::thread::scope(|scope| {
        for pack in &packs {
            let alerts = &alerts;
            scope.spawn(move || {
                let (rules, tests) = (format!("{pack}.slo.rules.yml"), format!("{pack}.slo.tests.yml"));
                let (ok, out) = promtool(&["check", "rules", "--lint-fatal", &rules], alerts);
                assert!(ok, "{rules}: {out}");
                let (ok, out) = promtool(&["test", "rules", &tests], alerts);
                assert!(ok, "{tests}: {out}");
                let path = alerts.join(&rules);
                let text = std::fs::read_to_string(&path).unwrap();
                for (what, moved) in moves(&text) {
                    assert_ne!(moved, text, "{rules}: {what} changed nothing");
                    std::fs::write(&path, moved).unwrap();
                    let (ok, out) = promtool(&["test", "rules", &tests], alerts);
                    assert!(!ok, "{tests} passed with {what}:\n{out}");
                }
                std::fs::write(&path, text).unwrap();
            });
        }
    });
}

/// The SLO alerts are routed like every alert (critical pages, warning opens a ticket), the
/// subtree's entry matcher names them, and an SLO's page mutes its own ticket, no other.
#[test]
fn burn_alerts_route_by_severity_and_a_page_mutes_only_its_own_ticket() {
    let model = Model::builtin_defaults();
    let files = outputs(&model).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(&config, file(&files, "alertmanager/alertmanager.yml").unwrap()).unwrap();
    let (_, names) = alertmanager::our_alerts_matcher(&Plan::of(&model).expect("generates"));
    let mut checked = 0;
    for (rel, content) in &files {
        if !rel.to_string_lossy().ends_with(".slo.rules.yml") {
            continue;
        }
        let doc: Value = serde_saphyr::from_str(content).unwrap();
        for rule in doc["groups"].as_array().unwrap().iter().flat_map(|g| g["rules"].as_array().unwrap()) {
            let Some(alert) = rule["alert"].as_str() else { continue };
            assert!(names.split('|').any(|n| n == alert), "{alert} is not in the subtree's matcher {names}");
            let labels: BTreeMap<String, String> = serde_json::from_value(rule["labels"].clone()).unwrap();
            let receiver = match labels["severity"].as_str() {
                "critical" => "page",
                "warning" => "ticket",
                other => panic!("{alert}: severity {other}"),
            };
            let mut args = vec![
                "config".to_string(),
                "routes".into(),
                "test".into(),
                format!("--config.file={}", config.display()),
                format!("--verify.receivers={receiver}"),
                format!("alertname={alert}"),
            ];
            args.extend(labels.iter().map(|(k, v)| format!("{k}={v}")));
            let out = crate::support::program("amtool").args(&args).output().unwrap();
            assert!(
                out.status.success(),
                "{alert} {labels:?} should go to {receiver}: {}",
                String::from_utf8_lossy(&out.stdout)
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 9, "three tiers of three SLOs");

    let am: Value = serde_saphyr::from_str(file(&files, "alertmanager/alertmanager.yml").unwrap()).unwrap();
    let rules: Vec<&Value> = am["inhibit_rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["source_matchers"][0].as_str().is_some_and(|m| m.contains("BudgetBurn")))
        .collect();
    assert_eq!(rules.len(), 3, "one per SLO: {rules:?}");
    for rule in rules {
        let source: Vec<&str> = rule["source_matchers"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        let target: Vec<&str> = rule["target_matchers"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        assert_eq!(source[..2], target[..2], "the same alert and signal");
        assert_eq!((source[2], target[2]), ("severity=\"critical\"", "severity=\"warning\""));
        let equal: Vec<&str> = rule["equal"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        assert_eq!(equal, ["alertname", "signal", "instance", "job"], "never the tiers' window labels");
    }
}

/// What Grafana colours a value under threshold steps: the last step at or below it.
fn color(steps: &Value, v: f64) -> String {
    let mut out = String::new();
    for step in steps.as_array().unwrap() {
        if step["value"].is_null() || step["value"].as_f64().unwrap() <= v {
            out = step["color"].as_str().unwrap().to_string();
        }
    }
    out
}

/// Every record named by an `.slo.rules.yml` file of `files`.
fn recorded(files: &[(std::path::PathBuf, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (rel, content) in files {
        if rel.to_string_lossy().ends_with(".slo.rules.yml") {
            let doc: Value = serde_saphyr::from_str(content).unwrap();
            for rule in doc["groups"].as_array().unwrap().iter().flat_map(|g| g["rules"].as_array().unwrap()) {
                out.extend(rule["record"].as_str().map(str::to_string));
            }
        }
    }
    out
}

/// The pack's dashboard opens with the budget row, before the signals: the budget left over 30
/// days and each tier's burn rate, from the records the rules write, green while healthy and in
/// its tier's colour only past the tier's burn.
#[test]
fn the_error_budget_row_draws_the_records_and_is_green_while_healthy() {
    let model = Model::builtin_defaults();
    let records = recorded(&outputs(&model).unwrap());
    let d = dashboard(&model, Some("token_refresh")).expect("generates");
    let panels = d["panels"].as_array().unwrap();
    let titles: Vec<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
    let row = titles.iter().position(|t| *t == "Error budgets (30 days)").expect("an error budget row");
    assert_eq!(titles[row + 3], "Token refresh", "the budget row comes before the signals: {titles:?}");
    let left = &panels[row + 1];
    let burn = &panels[row + 2];
    assert_eq!(left["title"], "Proactive refresh success rate: error budget left");
    assert_eq!(left["fieldConfig"]["defaults"]["unit"], "percentunit");
    let steps = &left["fieldConfig"]["defaults"]["thresholds"]["steps"];
    // Healthy is the whole budget left; spent past it is red.
    for (v, want) in [(1.0, "green"), (0.3, "green"), (0.2, "orange"), (0.0, "orange"), (-0.1, "red")] {
        assert_eq!(color(steps, v), want, "{v}: {steps}");
    }
    let expr = left["targets"][0]["expr"].as_str().unwrap();
    assert_eq!(
        expr,
        "1 - job:integration_token_refresh_proactive_refreshes_errors:ratio_rate30d{job=~\"$job\", instance=~\"$instance|\"} / 0.01"
    );
    let targets = burn["targets"].as_array().unwrap();
    let overrides = burn["fieldConfig"]["overrides"].as_array().unwrap();
    for (i, (window, factor, over)) in
        [("1h", 14.4, "red"), ("6h", 6.0, "red"), ("3d", 1.0, "orange")].into_iter().enumerate()
    {
        let expr = targets[i]["expr"].as_str().unwrap();
        let record = expr.split('{').next().unwrap();
        assert!(record.ends_with(&format!(":ratio_rate{window}")), "{expr}");
        assert!(records.iter().any(|r| r == record), "{record} is recorded by no rule");
        assert_eq!(overrides[i]["matcher"]["options"], targets[i]["refId"]);
        let steps = &overrides[i]["properties"][0]["value"]["steps"];
        for (v, want) in [(0.0, "green"), (factor, "green"), (factor + 0.01, over)] {
            assert_eq!(color(steps, v), want, "{window} at {v}: {steps}");
        }
    }
    // The alerts link the burn panel.
    let rules: Value =
        serde_saphyr::from_str(file(&outputs(&model).unwrap(), "alerts/token-refresh.slo.rules.yml").unwrap()).unwrap();
    let url = rules["groups"][0]["rules"][6]["annotations"]["dashboard_url"].as_str().unwrap();
    assert!(url.ends_with(&format!("?viewPanel={}", burn["id"])), "{url}");
}

const OWN: &str = r#"
logs:
  api: {paths: [/var/log/api.log]}
signals:
  - id: api.requests
    title: API requests
    runbook_section: Error rate
    metrics:
      - {name: app_requests_total, type: counter, help: Requests by result., labels: [{name: result, values: [ok, failed]}]}
      - {name: app_queue_depth, type: gauge, help: Jobs waiting.}
    source:
      log:
        log: api
        rules:
          - {match: 'status=2', metric: app_requests_total, action: inc, labels: {result: ok}}
          - {match: 'status=5', metric: app_requests_total, action: inc, labels: {result: failed}}
    slo:
      alert: AppRequestsBudgetBurn
      objective: OBJECTIVE
      errors: {metric: ERRORS, matchers: {result: failed}}
      total: {metric: app_requests_total}
      events: API requests
      min_events: 5
"#;

fn own(objective: &str, errors: &str) -> String {
    format!(
        "runbook_base_url: https://wiki.example.org\n{}",
        OWN.replace("OBJECTIVE", objective).replace("ERRORS", errors)
    )
}

/// A spec's own signal with an SLO gets the same rules, tests, routing and budget row; its tests
/// pass in promtool.
#[test]
fn a_spec_states_its_own_slo() {
    let model = model(&own("0.999", "app_requests_total")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    integration_exporter::generate::write_all(&model, dir.path()).unwrap();
    let alerts = dir.path().join("alerts");
    let rules = std::fs::read_to_string(alerts.join("custom.slo.rules.yml")).unwrap();
    assert!(rules.contains("record: job:app_requests_errors:ratio_rate5m"), "{rules}");
    assert!(rules.contains("job:app_requests_errors:ratio_rate1h{job=\"integration-exporter\"} > 0.0144"), "{rules}");
    assert!(rules.contains(">= 5"), "{rules}");
    assert!(rules.contains("https://wiki.example.org#error-rate"), "{rules}");
    let (ok, out) = promtool(&["test", "rules", "custom.slo.tests.yml"], &alerts);
    assert!(ok, "{out}");
    let am = std::fs::read_to_string(dir.path().join("alertmanager/alertmanager.yml")).unwrap();
    assert!(am.contains("alertname=\"AppRequestsBudgetBurn\""), "{am}");
    let board: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("dashboards/custom.json")).unwrap()).unwrap();
    assert!(board["panels"].as_array().unwrap().iter().any(|p| p["title"] == "API requests: error budget left"));
}

/// Mistakes in an SLO are refused with the place they are at; an override turns the SLO off or
/// changes its guard, and may change nothing else.
#[test]
fn a_wrong_slo_is_refused_at_its_place_and_overrides_keep_to_enabled_and_min_events() {
    for (objective, errors, wanted) in [
        ("0.9", "app_requests_total", "objective 0.9 must be below 1 and above 0.9306"),
        ("1", "app_requests_total", "objective 1 must be below 1"),
        ("0.99", "app_queue_depth", "errors counts events, and `app_queue_depth` is a Gauge"),
        ("0.99", "app_missing_total", "errors reads `app_missing_total`, which no enabled signal exports"),
    ] {
        let err = model(&own(objective, errors)).unwrap_err();
        assert!(err.contains(wanted), "{objective} {errors}: {err}");
        assert!(err.starts_with("spec.yaml:") && !err.starts_with("spec.yaml:1:1:"), "no place: {err}");
    }
    let err = model(&own("0.99", "app_requests_total").replace("AppRequestsBudgetBurn", "App-Burn")).unwrap_err();
    assert!(err.contains("names are CamelCase"), "{err}");

    let pack = |alerts: &str| {
        format!("database: {{url_env: X}}\npacks:\n  microsoft_integration:\n    alerts:\n      {alerts}\n")
    };
    let err = model(&pack("IntegrationMicrosoftGraphBudgetBurn: {threshold: 0.1}")).unwrap_err();
    assert!(err.contains("SLO's burn-rate alert: it takes only `enabled` and `min_events`"), "{err}");
    assert!(err.contains("spec.yaml:5:"), "{err}");

    let off = model(&pack("IntegrationMicrosoftGraphBudgetBurn: {enabled: false}")).unwrap();
    let files = outputs(&off).unwrap();
    assert!(file(&files, "alerts/microsoft-integration.slo.rules.yml").is_none());
    assert!(!file(&files, "alertmanager/alertmanager.yml").unwrap().contains("BudgetBurn"));
    assert!(!dashboard(&off, Some("microsoft_integration")).expect("generates").to_string().contains("error budget"));

    let guarded = model(&pack("IntegrationMicrosoftGraphBudgetBurn: {min_events: 500}")).unwrap();
    let files = outputs(&guarded).unwrap();
    let rules = file(&files, "alerts/microsoft-integration.slo.rules.yml").unwrap();
    assert_eq!(rules.matches(">= 500").count(), 3, "{rules}");
}

/// A failed refresh is counted by its error: invalid_grant and consent_required (and
/// interaction_required) apart, anything else or nothing as `other`, the only class the token
/// refresh SLO counts against its budget.
#[test]
fn refresh_failures_are_told_apart_by_their_error() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("email_watcher.log");
    let mut f = std::fs::File::create(&log).unwrap();
    for line in [
        "2026-02-06 12:00:01,000 WARNING [graph_client] ProactiveRefresh ✗ user=1 failed error=invalid_grant consecutive_failures=3",
        "2026-02-06 12:00:02,000 WARNING [graph_client] ProactiveRefresh ✗ user=2 failed error=consent_required consecutive_failures=1",
        "2026-02-06 12:00:03,000 WARNING [graph_client] ProactiveRefresh ✗ user=3 failed error=429 consecutive_failures=1",
        "2026-02-06 12:00:04,000 WARNING [graph_client] ProactiveRefresh ✗ user=4 failed error=AADSTS7000215: Invalid client secret",
        "2026-02-06 12:00:05,000 WARNING [graph_client] ProactiveRefresh ✗ user=5 failed",
        "2026-02-06 12:00:06,000 INFO [graph_client] ProactiveRefresh ✓ user=6 refreshed token expires_in=3599s",
    ] {
        writeln!(f, "{line}").unwrap();
    }
    drop(f);
    let spec = dir.path().join("spec.yaml");
    std::fs::write(&spec, "database: {url_env: UNUSED}\npacks:\n  token_refresh: {}\n").unwrap();
    let out = std::process::Command::new(crate::support::exporter_bin())
        .args(["replay", "--config"])
        .arg(&spec)
        .arg(&log)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let failures = "integration_token_refresh_proactive_refresh_failures_total";
    for (class, n) in [("invalid_grant", 1), ("consent_required", 1), ("interaction_required", 0), ("other", 3)] {
        let line = format!("{failures}{{error_class=\"{class}\"}} {n}");
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }
    assert!(
        text.lines().any(|l| l == "integration_token_refresh_proactive_refreshes_total{result=\"failure\"} 5"),
        "{text}"
    );
}
