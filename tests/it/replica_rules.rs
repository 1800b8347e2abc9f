//! Rules that are right across replicas (`ha`): the real Prometheus scrapes two replicas of one
//! database with the generated rules; a SQL alert fires, the leader is killed with `kill -9` and
//! leaves the targets (a deleted pod: no `up == 0` holds the fleet's alerts), then comes back as a
//! standby, and the alert never stops firing (no resolve, no second firing) while nothing else
//! fires. With `ha` on, promtool accepts every generated rule file and passes its
//! generated tests; the SQL alerts and the database's own carry no `instance`.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use integration_exporter::spec::{Model, SourceText};
use serde_json::Value;
use support::exporter::Exporter;
use support::http::api;
use support::process::prometheus;
use support::{Cluster, exporter_bin, free_port, program, sql, wait};

const ALERT: &str = "IntegrationReplicaBacklog";

/// A standby tries the lock every 5s while Prometheus scrapes every 250ms: the killed leader's
/// series go stale (two scrapes after it leaves the targets) well before the standby's appear, so
/// the rules must bridge a real gap (without `keep_firing_for` the alert resolves ~3s after the
/// kill).
fn spec(dir: &Path, port: u16) -> PathBuf {
    let text = format!(
        "listen: 127.0.0.1:{port}
database: {{url_env: IE_TEST_DSN, connect_timeout: 1s}}
ha: {{enabled: true, retry: 5s}}
poll_defaults: {{interval: 1s, timeout: 1s}}
generate: {{job: replicas}}
signals:
  - id: t.backlog
    title: Backlog
    runbook_section: https://example.com/runbook#backlog
    metrics:
      - {{name: t_backlog_rows, type: gauge, help: Rows waiting.}}
    source:
      sql:
        query: SELECT count(*) AS value FROM rr_backlog
    alerts:
      - name: {ALERT}
        severity: warning
        condition: {{gauge: {{metric: t_backlog_rows}}}}
        op: \">\"
        threshold: 0
        for: 2s
        summary: Rows wait.
        description: \"{{value}} rows wait.\"
"
    );
    let path = dir.join(format!("spec-{port}.yaml"));
    std::fs::write(&path, text).expect("spec");
    path
}

/// Every alert Prometheus holds: (name, state, labels, active since).
fn active(port: u16) -> Vec<(String, String, Value, Value)> {
    api(port, "/api/v1/alerts")["data"]["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|a| {
            let name = a["labels"]["alertname"].as_str().unwrap_or_default().to_string();
            (name, a["state"].as_str().unwrap_or_default().to_string(), a["labels"].clone(), a["activeAt"].clone())
        })
        .collect()
}

fn is_leader(replica: &Exporter) -> bool {
    replica.scrape().is_some_and(|m| {
        m.series.iter().any(|(k, v)| k.starts_with("integration_exporter_leader{") && *v == 1.0)
            && m.get("t_backlog_rows").is_some()
    })
}

/// Prometheus' targets, as a file it watches: a replica killed for good leaves service discovery
/// (a deleted pod), so no `up == 0` stands for it.
fn set_targets(d: &Path, ports: &[u16]) {
    let list: Vec<String> = ports.iter().map(|p| format!("\"127.0.0.1:{p}\"")).collect();
    let tmp = d.join("targets.json.tmp");
    std::fs::write(&tmp, format!("[{{\"targets\": [{}]}}]", list.join(", "))).expect("targets");
    std::fs::rename(&tmp, d.join("targets.json")).expect("targets");
}

/// The firing alerts named [`ALERT`]: their labels and since when each is active.
fn firing_alerts(alerts: &[(String, String, Value, Value)]) -> Vec<(Value, Value)> {
    alerts
        .iter()
        .filter(|(n, s, ..)| n == ALERT && s == "firing")
        .map(|(_, _, l, at)| (l.clone(), at.clone()))
        .collect()
}

#[test]
fn a_firing_sql_alert_keeps_firing_through_a_failover() {
    let cluster = Cluster::start();
    let url = cluster.url("postgres");
    sql(&url, "CREATE TABLE rr_backlog (id int); INSERT INTO rr_backlog VALUES (1)");
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let ports = [free_port(), free_port()];
    let specs: Vec<PathBuf> = ports.iter().map(|p| spec(d, *p)).collect();
    let out = Command::new(exporter_bin()).args(["generate", "--config"]).arg(&specs[0]).arg("--out").arg(d).output();
    let out = out.expect("generate");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rules = std::fs::read_to_string(d.join("alerts/custom.rules.yml")).expect("rules");
    assert!(rules.contains("keep_firing_for: "), "{rules}");
    let launch = |i: usize| Exporter::serve(&specs[i], ports[i]).env("IE_TEST_DSN", &url).start();
    let mut replicas = [launch(0), launch(1)];

    set_targets(d, &ports);
    let prom_port = free_port();
    let config = format!(
        "global: {{scrape_interval: 250ms, evaluation_interval: 250ms}}\nrule_files: ['{d}/alerts/*.rules.yml']\nscrape_configs:\n  - job_name: replicas\n    file_sd_configs: [{{files: ['{d}/targets.json'], refresh_interval: 1s}}]\n",
        d = d.display(),
    );
    std::fs::write(d.join("prometheus.yml"), config).expect("prometheus.yml");
    let _prometheus = prometheus(d, prom_port);

    let (labels, since) = wait::until(
        "the SQL alert firing",
        Duration::from_secs(40),
        || active(prom_port),
        |a| {
            let f = firing_alerts(a);
            (f.len() == 1).then(|| f[0].clone())
        },
    );
    assert!(labels.get("instance").is_none(), "one alert for the replicas: {labels}");

    let leader = wait::until(
        "one leader",
        Duration::from_secs(10),
        || replicas.iter().map(is_leader).collect::<Vec<_>>(),
        |l| (l.iter().filter(|x| **x).count() == 1).then(|| l.iter().position(|x| *x).unwrap()),
    );
    // kill -9 of the leader, gone from the targets at once; back (as a standby) later.
    let killed = Instant::now();
    replicas[leader].kill();
    set_targets(d, &[ports[1 - leader]]);
    let mut restarted = false;
    let mut checks = 0;
    let mut took_over = None;
    while killed.elapsed() < Duration::from_secs(20) {
        if !restarted && killed.elapsed() > Duration::from_secs(10) {
            replicas[leader].restart();
            set_targets(d, &ports);
            restarted = true;
        }
        let alerts = active(prom_port);
        let ours = firing_alerts(&alerts);
        let after = killed.elapsed();
        assert_eq!(ours.len(), 1, "{ALERT} firing once through the failover, {after:?} after kill -9: {alerts:?}");
        assert_eq!(ours[0], (labels.clone(), since.clone()), "the same alert, never resolved and fired anew");
        let others: Vec<_> = alerts.iter().filter(|(n, s, ..)| n != ALERT && s == "firing").collect();
        assert!(others.is_empty(), "nothing else fires: {others:?}");
        if took_over.is_none() && is_leader(&replicas[1 - leader]) {
            took_over = Some(after);
        }
        checks += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(is_leader(&replicas[1 - leader]), "the survivor leads");
    let took_over = took_over.expect("the survivor took over within the checks");
    println!(
        "FIGURE replica rules: {ALERT} stayed firing (active since {since}) through kill -9 of the leader: {checks} checks over 20 s, the standby leading {} ms after the kill, the killed replica out of the targets for 10 s",
        took_over.as_millis()
    );
    assert!(checks > 40, "{checks} checks");
}

fn ha_model() -> Model {
    let mut text = String::from("database: {url_env: DATABASE_URL}\nha: {enabled: true}\npacks:\n");
    for pack in
        ["calendar_sync", "etl_token_monitoring", "microsoft_integration", "salesforce_incidents", "token_refresh"]
    {
        text.push_str(&format!("  {pack}: {{}}\n"));
    }
    Model::from_text(&SourceText { name: "ha.yaml".into(), text }).unwrap_or_else(|e| panic!("{e}"))
}

/// With `ha`, every generated rule file passes `promtool check rules` and its generated tests.
#[test]
fn with_ha_promtool_accepts_the_rules_and_their_tests_pass() {
    let dir = tempfile::tempdir().expect("tempdir");
    integration_exporter::generate::write_all(&ha_model(), dir.path()).expect("generate");
    let alerts = dir.path().join("alerts");
    let mut files: Vec<String> = std::fs::read_dir(&alerts)
        .expect("alerts")
        .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
        .collect();
    files.sort();
    assert!(files.iter().any(|f| f.ends_with(".tests.yml")), "{files:?}");
    for f in &files {
        let args: &[&str] =
            if f.ends_with(".rules.yml") { &["check", "rules", "--lint-fatal"] } else { &["test", "rules"] };
        let out = program("promtool").args(args).arg(f).current_dir(&alerts).output().expect("promtool");
        assert!(
            out.status.success(),
            "{f}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The rules `ha` changes, as a reviewable diff: the exporter's own (one database alert for the
/// fleet) and a pack reading the database (its alerts and query health without `instance`,
/// bridging the failover with `keep_firing_for`).
#[test]
fn with_ha_the_sql_rules_are_the_fleets() {
    let outputs =
        integration_exporter::generate::outputs_as(&ha_model(), integration_exporter::generate::RuleFormat::Prometheus)
            .expect("generate");
    for (path, content) in outputs {
        let name = path.display().to_string();
        if name == "alerts/exporter.rules.yml" || name == "alerts/etl-token-monitoring.rules.yml" {
            insta::assert_snapshot!(name.replace(['/', '.'], "_"), content);
        }
    }
}
