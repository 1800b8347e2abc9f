//! `integration-exporter diagnose` on the scenario library's systems (`tests/scenarios/`): every
//! pack at its defaults on the runbooks' tables, with log files and stand-in APIs. Healthy, it
//! finds nothing to act on; in the token-refresh runbook's "worker crashed" incident it finds
//! exactly the alerts that scenario says fire, each with the verdict of its severity, the
//! spec's threshold, the pack's next step and the runbook link; with the database stopped or an
//! API failing it names the source and why. The report lists the checks in the runbook's order.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use integration_exporter::spec::{Model, builtin_pack, heading_anchor, pack};
use serde_json::Value;

use crate::scenarios::{Change, World, healthy, scenarios_of};
use crate::support;

/// A run of `diagnose` finishes within this, whatever the sources do.
const WITHIN: Duration = Duration::from_secs(60);

struct Run {
    status: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// Runs `command` to its end within [`WITHIN`], its output in files (no pipe to fill).
fn run(command: &mut Command) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("start");
    let status = support::wait::until("the command to finish", WITHIN, || child.try_wait().unwrap(), |s| *s);
    let read = |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned();
    Run { status: status.code().unwrap_or(-1), stdout: read(&out), stderr: read(&err), took: started.elapsed() }
}

fn diagnose(world: &World, args: &[&str]) -> Run {
    run(Command::new(support::exporter_bin())
        .arg("diagnose")
        .arg("--config")
        .arg(world.dir.path().join("spec.yaml"))
        .args(args)
        .env("SCENARIO_DATABASE_URL", &world.db.url)
        .env("SCENARIO_TOKEN", "scenario-token")
        .env_remove("NO_COLOR"))
}

fn json(world: &World, args: &[&str]) -> (i32, Value) {
    let r = diagnose(world, &[&["--format", "json"], args].concat());
    let doc = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}\n{}\n{}", r.stdout, r.stderr));
    (r.status, doc)
}

fn checks(doc: &Value) -> &Vec<Value> {
    doc["checks"].as_array().expect("checks")
}

/// `(alert, verdict)` of every check that is not ok, leaving out those one reading cannot judge.
fn to_act_on(doc: &Value) -> BTreeSet<(String, String)> {
    checks(doc)
        .iter()
        .filter(|c| c["verdict"] != "ok" && c["blind"]["cause"] != "needs_history")
        .map(|c| (c["alert"].as_str().unwrap_or("").to_string(), c["verdict"].as_str().unwrap_or("").to_string()))
        .collect()
}

/// The healthy system, its logs written once as a minute of traffic.
async fn healthy_world() -> World {
    let world = World::start(&healthy()).await;
    world.minute();
    world
}

#[tokio::test(flavor = "multi_thread")]
async fn healthy_finds_nothing_and_the_worker_crash_finds_what_its_scenario_fires() {
    let healthy = healthy();
    let mut world = World::start(&healthy).await;
    world.minute();
    let model = Model::load(&world.dir.path().join("spec.yaml")).unwrap_or_else(|e| panic!("{e}"));

    let (status, doc) = json(&world, &[]);
    assert_eq!(to_act_on(&doc), BTreeSet::new(), "{doc:#}");
    assert_eq!(status, 0, "{doc:#}");
    // Every enabled alert is a check, with the spec's own threshold.
    let alerts: usize = model.enabled_signals().map(|s| s.signal.alerts.iter().filter(|a| a.enabled).count()).sum();
    assert_eq!(checks(&doc).len(), alerts);
    for c in checks(&doc) {
        let (signal, alert) = model
            .enabled_signals()
            .flat_map(|s| s.signal.alerts.iter().map(move |a| (s, a)))
            .find(|(s, a)| {
                c["signal"] == s.signal.id.as_str()
                    && c["alert"] == a.name.as_str()
                    && c["severity"] == a.severity.as_str()
            })
            .unwrap_or_else(|| panic!("no such alert: {c}"));
        assert_eq!(c["threshold"], integration_exporter::generate::catalog::when(alert).as_str());
        assert_eq!(c["runbook_url"].as_str(), signal.runbook_url.as_deref());
    }

    // token-refresh.md "2. Token Refresh Heartbeat Not Running": the scenario's SQL, and the
    // worker's last lines eleven minutes old.
    let scenario = scenarios_of("token-refresh").scenarios.into_iter().find(|s| s.name == "worker-crashed").unwrap();
    world.apply(&scenario.incident).await;
    let log = world.log_path("email_watcher.log");
    std::fs::write(&log, "").unwrap();
    let old: Vec<String> =
        healthy.logs["email_watcher.log"].per_minute.iter().map(|l| l.replace("{ts}", "{ts -11m}")).collect();
    world.write_lines("email_watcher.log", &old);
    let (status, doc) = json(&world, &[]);
    let expected: BTreeSet<(String, String)> =
        scenario.fires.iter().map(|f| (f.alert.clone(), f.severity.clone())).collect();
    assert_eq!(to_act_on(&doc), expected, "{doc:#}");
    assert_eq!(status, 2, "a critical verdict: {doc:#}");
    // Windows count lines by their own time: the 11-minute-old successes are in the hour, not
    // in the last 10 minutes.
    let check = |alert: &str| checks(&doc).iter().find(|c| c["alert"] == alert).unwrap().clone();
    assert_eq!(check("IntegrationTokenRefreshNoSuccess")["value"].as_f64(), Some(1.0));
    let rate = check("IntegrationTokenRefreshSuccessRateLow");
    assert!(rate["why"].as_str().is_some_and(|w| w.contains("no events in 10m")), "{rate}");
    let expiring = checks(&doc).iter().find(|c| c["alert"] == "IntegrationTokenRefreshTokensExpiring").unwrap();
    assert_eq!((expiring["value"].as_f64(), &expiring["threshold"]), (Some(21.0), &Value::from("> 20 for 5m")));
    assert!(expiring["step"].as_str().is_some_and(|s| s.contains("heartbeat")), "{expiring}");
    assert_eq!(
        expiring["runbook_url"],
        "https://runbooks.example.com/token-refresh.md#2-token-refresh-heartbeat-not-running"
    );

    // The text report: the checks to act on with why, next step and runbook link, in the order
    // of the JSON, which is the playbook's.
    let text = diagnose(&world, &["--pack", "token_refresh"]);
    assert_eq!(text.status, 2, "{}{}", text.stdout, text.stderr);
    assert!(!text.stdout.contains('\x1b'), "no colours when stdout is no terminal:\n{}", text.stdout);
    let lag =
        text.stdout.find("CRITICAL  IntegrationTokenRefreshHeartbeatLag").unwrap_or_else(|| panic!("{}", text.stdout));
    let after = &text.stdout[lag..];
    for part in
        ["why", "next", "runbook  https://runbooks.example.com/token-refresh.md#2-token-refresh-heartbeat-not-running"]
    {
        assert!(after.lines().take(4).any(|l| l.trim_start().starts_with(part)), "{part}:\n{after}");
    }
    let order: Vec<&str> =
        checks(&doc).iter().filter(|c| c["pack"] == "token_refresh").map(|c| c["alert"].as_str().unwrap()).collect();
    let positions: Vec<usize> = order
        .iter()
        .map(|a| text.stdout.find(&format!("  {a} ")).unwrap_or_else(|| panic!("{a}:\n{}", text.stdout)))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{order:?}\n{}", text.stdout);
    assert!(
        !text.stdout.contains("calendar_sync") && !text.stdout.contains("IntegrationCalendar"),
        "--pack: {}",
        text.stdout
    );

    // On a terminal, the verdicts are coloured.
    let spec = world.dir.path().join("spec.yaml");
    let line =
        format!("{} diagnose --pack token_refresh --config {}", support::exporter_bin().display(), spec.display());
    let tty = run(support::program("script")
        .args(["-q", "-e", "-c", &line, "/dev/null"])
        .env("SCENARIO_DATABASE_URL", &world.db.url)
        .env("SCENARIO_TOKEN", "scenario-token")
        .env_remove("NO_COLOR"));
    assert!(tty.stdout.contains("\x1b[1;31mCRITICAL"), "{:?}", tty.stdout);
    assert_eq!(tty.status, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_that_is_down_is_named_with_its_reason() {
    let mut world = healthy_world().await;
    let mut api_down = Change::default();
    api_down.http.insert("/api/metrics/queue".to_string(), "503 {}".to_string());
    world.apply(&api_down).await;
    world.db.cluster().stop();
    let port = world.db.cluster().port;

    let r = diagnose(&world, &[]);
    assert_eq!(r.status, 3, "nothing critical, sources down:\n{}{}", r.stdout, r.stderr);
    assert!(r.took < Duration::from_secs(15), "took {:?}", r.took);
    let refused = format!("connection refused at 127.0.0.1:{port}");
    let database = r.stdout.lines().find(|l| l.contains("FAILED  database")).unwrap_or_else(|| panic!("{}", r.stdout));
    assert!(database.contains(&refused), "{database}");
    let queue = r.stdout.lines().find(|l| l.contains("FAILED  http      microsoft_integration.job_queue"));
    assert!(queue.is_some_and(|l| l.contains("status: the endpoint answered 503")), "{}", r.stdout);
    assert!(!r.stdout.contains("pool timed out") && !r.stderr.contains("pool timed out"), "{}", r.stdout);

    let (status, doc) = json(&world, &[]);
    assert_eq!(status, 3);
    let sql: Vec<&Value> = checks(&doc)
        .iter()
        .filter(|c| {
            let model = Model::load(&world.dir.path().join("spec.yaml")).unwrap();
            model.enabled_signals().any(|s| {
                c["signal"] == s.signal.id.as_str()
                    && matches!(s.signal.source, integration_exporter::spec::Source::Sql(_))
            })
        })
        .collect();
    assert!(sql.len() > 10);
    for c in sql {
        assert_eq!(c["verdict"], "unknown", "{c}");
        assert!(c["why"].as_str().is_some_and(|w| w.contains(&refused)), "{c}");
    }
    let backlog = checks(&doc).iter().find(|c| c["alert"] == "IntegrationMicrosoftQueueBacklog").unwrap();
    assert_eq!(backlog["verdict"], "unknown", "{backlog}");
    assert!(backlog["why"].as_str().is_some_and(|w| w.contains("answered 503")), "{backlog}");

    let r = diagnose(&world, &["--pack", "nope"]);
    assert_eq!(r.status, 3);
    assert!(r.stderr.contains("no pack `nope`") && r.stderr.contains("token_refresh"), "{}", r.stderr);
}

/// Two databases, `up` (its query's alert a warning at `threshold`) and `down` (a signal without
/// alerts), both on `UP_URL` and `DOWN_URL`.
fn two_databases_spec(dir: &Path, threshold: u32) -> std::path::PathBuf {
    let spec = dir.join(format!("spec-{threshold}.yaml"));
    std::fs::write(
        &spec,
        format!(
            "databases:
  up: {{url_env: UP_URL, connect_timeout: 2s}}
  down: {{url_env: DOWN_URL, connect_timeout: 2s}}
signals:
  - id: t.up
    title: Up
    database: up
    metrics: [{{name: t_up, type: gauge, help: Up.}}]
    source: {{sql: {{query: SELECT 7 AS value}}}}
    alerts:
      - {{name: TUpHigh, severity: warning, condition: {{gauge: {{metric: t_up}}}}, op: '>', threshold: {threshold}, summary: Up is high., description: '{{value}} up.'}}
  - id: t.down
    title: Down
    database: down
    metrics: [{{name: t_down, type: gauge, help: Down.}}]
    source: {{sql: {{query: SELECT 1 AS value}}}}
"
        ),
    )
    .unwrap();
    spec
}

fn diagnose_two(spec: &Path, up: &str, down: &str, args: &[&str]) -> Run {
    run(Command::new(support::exporter_bin())
        .arg("diagnose")
        .arg("--config")
        .arg(spec)
        .args(args)
        .env("UP_URL", up)
        .env("DOWN_URL", down)
        .env_remove("NO_COLOR"))
}

/// Every database is tried once and read on its own: one that refuses connections is one line
/// with its reason, and never hides the other's answers. The exit status says a warning (1), or
/// that something could not be checked (3) even when the failing database feeds no alert.
#[test]
fn each_database_is_read_and_one_down_hides_nothing_of_another() {
    let cluster = support::Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let (warns, quiet) = (two_databases_spec(dir.path(), 5), two_databases_spec(dir.path(), 10));
    let up = cluster.url("postgres");
    let refused_port = support::free_port();
    let refused = format!("postgres://postgres@127.0.0.1:{refused_port}/postgres");

    // Both reachable, a warning only: 1.
    let r = diagnose_two(&warns, &up, &up, &["--format", "json"]);
    assert_eq!(r.status, 1, "{}{}", r.stdout, r.stderr);
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    let databases: Vec<&Value> =
        doc["sources"].as_array().unwrap().iter().filter(|s| s["kind"] == "database").collect();
    assert_eq!(databases.len(), 2, "each database is a source: {doc:#}");
    assert!(databases.iter().all(|d| d["ok"] == true), "{doc:#}");
    let check = &checks(&doc)[0];
    assert_eq!(
        (check["alert"].as_str(), check["verdict"].as_str(), check["value"].as_f64()),
        (Some("TUpHigh"), Some("warning"), Some(7.0))
    );
    assert!(check["series"].as_str().is_some_and(|s| s.contains("database=\"up\"")), "{check}");

    // `down` refuses: one line says so with the real reason; `up`'s answer is still judged.
    let r = diagnose_two(&warns, &up, &refused, &[]);
    assert!(r.took < Duration::from_secs(15), "took {:?}", r.took);
    assert_eq!(r.status, 1, "the warning outranks the source down:\n{}{}", r.stdout, r.stderr);
    let reason = format!("connection refused at 127.0.0.1:{refused_port}");
    let failed: Vec<&str> = r.stdout.lines().filter(|l| l.contains("FAILED")).collect();
    assert_eq!(failed.len(), 1, "one line for the database down:\n{}", r.stdout);
    assert!(failed[0].contains("database  down (127.0.0.1:") && failed[0].contains(&reason), "{}", r.stdout);
    assert!(r.stdout.lines().any(|l| l.contains("ok      database  up (127.0.0.1:")), "{}", r.stdout);
    assert!(r.stdout.contains("WARNING   TUpHigh  7"), "{}", r.stdout);
    assert!(!r.stdout.contains("pool timed out"), "{}", r.stdout);

    // No alert reads `down`, and `up` is fine: still not all was checked, 3.
    let r = diagnose_two(&quiet, &up, &refused, &["--format", "json"]);
    assert_eq!(r.status, 3, "{}{}", r.stdout, r.stderr);
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(checks(&doc)[0]["verdict"], "ok", "{doc:#}");
    let down = doc["sources"].as_array().unwrap().iter().find(|s| s["kind"] == "database" && s["ok"] == false);
    assert!(down.is_some_and(|d| d["detail"].as_str().unwrap().contains(&reason)), "{doc:#}");
    // And without the failure: 0.
    let r = diagnose_two(&quiet, &up, &up, &[]);
    assert_eq!(r.status, 0, "{}{}", r.stdout, r.stderr);
}

/// A command line `diagnose` cannot take exits with 64, a status no verdict means; other
/// commands keep clap's 2.
#[test]
fn a_wrong_command_line_is_a_usage_error_not_a_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let spec = two_databases_spec(dir.path(), 5);
    let spec = spec.to_str().unwrap();
    for args in [
        &["diagnose", "--config", spec, "--format", "yaml"][..],
        &["diagnose"],
        &["diagnose", "--config"],
        &["--log.level", "error", "diagnose", "--config", spec, "--bogus"],
    ] {
        let r = run(Command::new(support::exporter_bin()).args(args));
        assert_eq!(r.status, 64, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("error:"), "{args:?}: {}", r.stderr);
    }
    let r = run(Command::new(support::exporter_bin()).args(["diagnose", "--help"]));
    assert_eq!(r.status, 0, "{}", r.stderr);
    let r = run(Command::new(support::exporter_bin()).args(["catalog", "--format", "yaml"]));
    assert_eq!(r.status, 2, "{}", r.stderr);
}

/// Each pack's playbook follows its runbook: the headings of its alerts' sections never go back.
#[test]
fn playbooks_follow_their_runbooks() {
    for (name, _) in pack::BUILTIN {
        let def = builtin_pack(name).unwrap().unwrap();
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/runbooks").join(&def.runbook);
        let runbook = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let headings: Vec<String> =
            runbook.lines().filter(|l| l.starts_with('#')).map(|l| heading_anchor(l.trim_start_matches('#'))).collect();
        let mut last = 0;
        for step in &def.playbook {
            let signal = def
                .signals
                .iter()
                .find(|s| s.alerts.iter().any(|a| step.names(&a.name, a.severity)))
                .unwrap_or_else(|| panic!("{name}: {}", step.alert));
            let section = signal.runbook_section.as_deref().unwrap_or_else(|| panic!("{}", signal.id));
            let at = headings
                .iter()
                .position(|h| *h == heading_anchor(section))
                .unwrap_or_else(|| panic!("{name}: no heading {section:?} in {}", def.runbook));
            assert!(at >= last, "{name}: {} ({section}) comes before the step above it in {}", step.alert, def.runbook);
            last = at;
        }
    }
}
