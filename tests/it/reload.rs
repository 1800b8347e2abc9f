//! The exporter binary's life: SIGHUP and `POST /-/reload` reload the spec without a restart and
//! keep the running one when the new one does not load; SIGTERM stops after a last checkpoint.
//! The spec reads only a log file, so no database is needed.

use crate::support;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::exporter::Exporter;
use support::{free_port, http};

/// One request's status and body.
fn request(port: u16, method: &str, path: &str) -> (u16, String) {
    let answer = http::request(port, method, path, &[]).unwrap_or_else(|| panic!("no answer to {method} {path}"));
    (answer.status, answer.text())
}

/// A spec counting `tick` lines of `app.log`, with a checkpoint directory; `extra` adds rules.
fn write_spec(dir: &Path, port: u16, extra_rule: Option<&str>) -> PathBuf {
    let path = dir.join("spec.yaml");
    let log = dir.join("app.log");
    let mut text = format!(
        "listen: 127.0.0.1:{port}\nstate_dir: {}\n{}",
        dir.join("state").display(),
        support::ticks_spec(&log.display().to_string())
    );
    if let Some(metric) = extra_rule {
        text = text.replace(
            "      - {name: app_ticks_total, type: counter, help: Tick lines.}\n",
            &format!(
                "      - {{name: app_ticks_total, type: counter, help: Tick lines.}}\n      - {{name: {metric}, type: counter, help: Tock lines.}}\n"
            ),
        );
        text.push_str(&format!("          - {{match: tock, metric: {metric}, action: inc}}\n"));
    }
    // Written whole then renamed, as config management does.
    std::fs::write(dir.join("spec.yaml.tmp"), text).unwrap();
    std::fs::rename(dir.join("spec.yaml.tmp"), &path).unwrap();
    path
}

fn append(dir: &Path, lines: &str) {
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("app.log")).unwrap();
    file.write_all(lines.as_bytes()).unwrap();
}

const RELOAD_OK: &str = "integration_exporter_config_last_reload_successful";
const RELOAD_AT: &str = "integration_exporter_config_last_reload_success_timestamp_seconds";

#[test]
fn sighup_reloads_the_spec_keeps_the_old_one_when_the_new_does_not_load_and_never_kills() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    append(d, "tick\ntick\n");
    let port = free_port();
    let spec = write_spec(d, port, None);
    let mut exporter = Exporter::serve(&spec, port).env("RUST_LOG", "info").start();
    let m = exporter.wait_for("two ticks", |m| m.get("app_ticks_total") == Some(2.0));
    assert_eq!(m.get(RELOAD_OK), Some(1.0), "{m:?}");
    let started_at = m.get(RELOAD_AT).expect("reload timestamp at start");

    // A good change: a new signal appears, the running counter goes on from where it was.
    write_spec(d, port, Some("app_tocks_total"));
    exporter.signal("HUP");
    // Lines are read by the rules in force when they are read: wait for the new ones.
    exporter.wait_for("the reload", |m| m.get(RELOAD_AT).is_some_and(|at| at > started_at));
    append(d, "tock\ntick\n");
    let m = exporter
        .wait_for("the new signal", |m| m.get("app_tocks_total") == Some(1.0) && m.get("app_ticks_total") == Some(3.0));
    assert!(exporter.exited().is_none(), "SIGHUP killed the exporter:\n{}", exporter.output());
    assert_eq!(m.get(RELOAD_OK), Some(1.0), "{m:?}");

    // A broken spec: the old one keeps serving, the failure shows in a metric and names the place.
    std::fs::write(&spec, std::fs::read_to_string(&spec).unwrap().replace("action: inc}", "action: inc")).unwrap();
    exporter.signal("HUP");
    let m = exporter.wait_for("the failed reload", |m| m.get(RELOAD_OK) == Some(0.0));
    append(d, "tock\n");
    exporter.wait_for("the old rules still counting", |m| m.get("app_tocks_total") == Some(2.0));
    assert!(exporter.exited().is_none());
    let output = exporter.output();
    let failure = output.lines().find(|l| l.contains("reload failed")).unwrap_or_else(|| panic!("{output}"));
    assert!(failure.contains(&format!("{}:", spec.display())), "names the file: {failure}");
    assert!(
        failure.split(&format!("{}:", spec.display())).nth(1).is_some_and(|rest| {
            let mut parts = rest.splitn(3, ':');
            let line = parts.next().and_then(|l| l.parse::<u32>().ok());
            let column = parts.next().and_then(|c| c.parse::<u32>().ok());
            line.is_some() && column.is_some()
        }),
        "names line and column: {failure}"
    );
    assert_eq!(m.get("app_ticks_total"), Some(3.0));

    // Fixed again: back to 1, nothing counted twice over the reloads.
    write_spec(d, port, Some("app_tocks_total"));
    exporter.signal("HUP");
    let m = exporter.wait_for("the fixed reload", |m| m.get(RELOAD_OK) == Some(1.0));
    assert_eq!((m.get("app_ticks_total"), m.get("app_tocks_total")), (Some(3.0), Some(2.0)));

    // Without the new signal: its series go away instead of freezing.
    write_spec(d, port, None);
    exporter.signal("HUP");
    // (Its name may still appear as a label value of the checkpoint's reset counter.)
    exporter.wait_for("the removed signal gone", |m| {
        !m.text.lines().any(|l| l.starts_with("app_tocks_total") || l.contains(" app_tocks_total "))
            && m.get(RELOAD_OK) == Some(1.0)
    });
    assert!(exporter.exited().is_none());
    // Reloads are not available over HTTP unless asked for.
    assert_eq!(request(port, "POST", "/-/reload").0, 403);
}

#[test]
fn post_reload_when_enabled_answers_how_the_reload_went() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    append(d, "tick\n");
    let port = free_port();
    let spec = write_spec(d, port, None);
    let exporter = Exporter::serve(&spec, port).arg("--web.enable-lifecycle").env("RUST_LOG", "info").start();
    exporter.wait_for("a tick", |m| m.get("app_ticks_total") == Some(1.0));
    assert_eq!(request(port, "GET", "/-/reload").0, 405);

    write_spec(d, port, Some("app_tocks_total"));
    let (status, body) = request(port, "POST", "/-/reload");
    assert_eq!(status, 200, "{body}");
    append(d, "tock\n");
    exporter.wait_for("the new signal", |m| m.get("app_tocks_total") == Some(1.0));

    // Another listen address applies after a restart only: said, and the listener stays.
    write_spec(d, free_port(), Some("app_tocks_total"));
    assert_eq!(request(port, "POST", "/-/reload").0, 200);
    assert!(exporter.output().contains("the listen address changed; it applies after a restart"));
    assert_eq!(request(port, "GET", "/healthz").0, 200);

    std::fs::write(&spec, "listen: [unclosed\n").unwrap();
    let (status, body) = request(port, "PUT", "/-/reload");
    assert_eq!(status, 500, "{body}");
    assert!(body.contains(&format!("{}:1:", spec.display())), "{body}");
    let m = exporter.wait_for("the failed reload", |m| m.get(RELOAD_OK) == Some(0.0));
    assert_eq!(m.get("app_ticks_total"), Some(1.0));
    drop(exporter);
}

#[test]
fn sigterm_saves_a_last_checkpoint_so_counters_continue_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    append(d, "tick\n");
    let port = free_port();
    let spec = write_spec(d, port, None);
    let mut total = 1.0;
    let mut exporter = Exporter::serve(&spec, port).env("RUST_LOG", "info").start();
    for round in 0..3 {
        if round > 0 {
            exporter.restart();
        }
        exporter.wait_for("the lines so far", |m| m.get("app_ticks_total") == Some(total));
        // Lines written right before the signal: counted before the stop or after the restart,
        // never lost and never twice.
        let lines = 50 + round * 25;
        append(d, &"tick\n".repeat(lines));
        total += lines as f64;
        exporter.signal(if round == 1 { "INT" } else { "TERM" });
        assert_eq!(exporter.wait_exit(Duration::from_secs(20)).code(), Some(0), "{}", exporter.output());
    }
    exporter.restart();
    exporter.wait_for("every line once", |m| m.get("app_ticks_total") == Some(total));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(exporter.metrics().get("app_ticks_total"), Some(total));
    drop(exporter);
}

/// A spec with one SQL signal of its own, `metric` read by `query`.
fn write_sql_spec(dir: &Path, port: u16, metric: &str, query: &str) -> PathBuf {
    let path = dir.join("spec.yaml");
    let text = format!(
        "listen: 127.0.0.1:{port}
database: {{url_env: TEST_DATABASE_URL, connect_timeout: 1s, max_connections: 2}}
poll_defaults: {{interval: 200ms, timeout: 2s}}
signals:
  - id: app.{metric}
    title: A number
    runbook_section: https://example.com/runbook#number
    metrics: [{{name: {metric}, type: gauge, help: A number.}}]
    source: {{sql: {{query: '{query}'}}}}
"
    );
    std::fs::write(dir.join("spec.yaml.tmp"), text).unwrap();
    std::fs::rename(dir.join("spec.yaml.tmp"), &path).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_replaces_the_sql_sources_and_closes_the_old_connections() {
    let db = support::TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();
    let spec = write_sql_spec(d, port, "app_first", "SELECT 1::float8 AS value");
    let exporter = Exporter::serve(&spec, port).env("TEST_DATABASE_URL", &db.url).start();
    exporter.wait_for("the first query", |m| m.get("app_first") == Some(1.0));
    let database = db.url.rsplit('/').next().unwrap().to_string();
    let backends = || {
        let (db, database) = (&db, database.clone());
        async move {
            db.scalar(&format!(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = '{database}' AND pid <> pg_backend_pid()"
            ))
            .await
        }
    };
    for round in 0..3 {
        let (metric, query) = if round % 2 == 0 {
            ("app_second", "SELECT 2::float8 AS value")
        } else {
            ("app_first", "SELECT 1::float8 AS value")
        };
        write_sql_spec(d, port, metric, query);
        exporter.signal("HUP");
        if round % 2 == 0 {
            exporter.wait_for("the second signal alone", |m| {
                m.get("app_second") == Some(2.0) && !m.text.contains("app_first")
            });
        } else {
            exporter.wait_for("the first signal alone", |m| {
                m.get("app_first") == Some(1.0) && !m.text.contains("app_second")
            });
        }
    }
    // Three reloads later, only the current pool's connections are open.
    let open = backends().await;
    assert!(open <= 2.0, "{open} connections open after three reloads:\n{}", exporter.output());
    drop(exporter);
}

#[test]
fn a_reload_whose_sources_fail_to_start_brings_the_running_ones_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    append(d, "tick\n");
    let port = free_port();
    let spec = write_spec(d, port, None);
    let exporter = Exporter::serve(&spec, port).env("RUST_LOG", "info").start();
    exporter.wait_for("a tick", |m| m.get("app_ticks_total") == Some(1.0));

    // A second log source, and a state_dir every user can write (refused when the log sources
    // start): the spec is valid, starting its sources is not.
    let shared = d.join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let other = format!("  other:\n    paths: [{}]\n", d.join("other.log").display());
    let text = std::fs::read_to_string(&spec).unwrap().replacen("logs:\n", &format!("logs:\n{other}"), 1).replacen(
        &d.join("state").display().to_string(),
        &shared.display().to_string(),
        1,
    ) + "  - id: other.lines
    title: Other lines
    runbook_section: https://example.com/runbook#other
    metrics:
      - {name: other_lines_total, type: counter, help: Lines.}
    source:
      log:
        log: other
        rules:
          - {match: '.', metric: other_lines_total, action: inc}
";
    std::fs::write(&spec, text).unwrap();
    exporter.signal("HUP");
    let m = exporter.wait_for("the failed reload", |m| m.get(RELOAD_OK) == Some(0.0));
    assert!(!m.text.contains("other_lines_total"), "{m:?}");
    let output = exporter.output();
    assert!(output.contains("reload failed") && output.contains(&shared.display().to_string()), "{output}");
    // The running log source is back and counts on, from its checkpoint.
    append(d, "tick\n");
    exporter.wait_for("the running source back", |m| m.get("app_ticks_total") == Some(2.0));
    drop(exporter);
}

/// Without a `state_dir`, a reload used to start every log source over: counters back to zero and
/// the lines written meanwhile never read (40 SIGHUPs while 38,500 lines were written lost
/// 2,500). A source whose spec did not change goes on where it was: a writer appends lines at a
/// steady rate while SIGHUPs keep coming, each with a spec that changed elsewhere (the runbook
/// URL), every scrape sees the counters present and never lower, and at the end each line is
/// counted exactly once. The same with a `state_dir`.
///
/// `FAULT_RELOAD_LINES` (default 4,000, 10 lines every 10 ms) and `FAULT_RELOAD_EVERY_MS`
/// (default 40) scale the campaign (`scripts/fault-reloads`); the figures are printed.
#[test]
fn a_reload_storm_loses_no_line_and_never_lowers_a_counter() {
    let var = |name: &str, default: usize| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let lines = var("FAULT_RELOAD_LINES", 4000) / 10 * 10;
    let every = Duration::from_millis(var("FAULT_RELOAD_EVERY_MS", 40) as u64);
    for state_dir in [false, true] {
        reload_storm(state_dir, lines, every);
    }
}

fn reload_storm(state_dir: bool, lines: usize, every: Duration) {
    use support::wait::Worker;

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    append(d, "");
    let port = free_port();
    let spec = d.join("spec.yaml");
    let log = d.join("app.log");
    let state = if state_dir { format!("state_dir: {}\n", d.join("state").display()) } else { String::new() };
    let write = |round: usize| {
        let text = format!(
            "listen: 127.0.0.1:{port}\n{state}runbook_base_url: https://runbooks{}.example.com\n{}",
            round % 2,
            support::ticks_spec(&log.display().to_string())
        );
        std::fs::write(d.join("spec.yaml.tmp"), text).unwrap();
        std::fs::rename(d.join("spec.yaml.tmp"), &spec).unwrap();
    };
    write(0);
    let exporter = Exporter::serve(&spec, port).env("RUST_LOG", "info").start();
    // The file is followed from its end: only a line written once it is open is new.
    exporter.wait_for("the file open", |m| m.get("integration_exporter_log_files{log=\"app\"}") == Some(1.0));
    append(d, "tick\n");
    exporter.wait_for("the first tick", |m| m.get("app_ticks_total") == Some(1.0));

    let path = log.clone();
    let writer = Worker::spawn("writer", move |stop| {
        let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        let mut written = 0;
        while written < lines && !stop.load(std::sync::atomic::Ordering::SeqCst) {
            file.write_all("tick\n".repeat(10).as_bytes()).unwrap();
            written += 10;
            std::thread::sleep(Duration::from_millis(10));
        }
        written
    });
    let per_file = format!("integration_exporter_log_lines_total{{log=\"app\",path=\"{}\"}}", log.display());
    let series = ["app_ticks_total", per_file.as_str()];
    let mut last = [1.0; 2];
    let mut hups = 0;
    while !writer.finished() {
        writer.check();
        hups += 1;
        write(hups);
        exporter.signal("HUP");
        std::thread::sleep(every);
        let m = exporter.metrics();
        for (i, name) in series.iter().enumerate() {
            let now =
                m.get(name).unwrap_or_else(|| panic!("`{name}` missing from a scrape after {hups} SIGHUPs:\n{m:?}"));
            assert!(now >= last[i], "`{name}` went from {} to {now} after {hups} SIGHUPs", last[i]);
            last[i] = now;
        }
    }
    let written = writer.join();
    assert_eq!(written, lines);
    let total = (lines + 1) as f64;
    let counted = support::wait::poll(
        Duration::from_secs(30),
        support::wait::POLL,
        || exporter.metrics(),
        |m| (m.get("app_ticks_total") == Some(total)).then_some(total),
    )
    .unwrap_or_else(|m| m.get("app_ticks_total").unwrap_or(0.0));
    let reloads = exporter.output().matches("configuration reloaded").count();
    let lost = (total - counted).max(0.0);
    let twice = (counted - total).max(0.0);
    println!(
        "FIGURE reload storm, {}: {hups} SIGHUPs ({reloads} reloads), lines written {}, counted {}, lost {lost}, twice {twice}",
        if state_dir { "with a state_dir" } else { "no state_dir" },
        lines + 1,
        counted
    );
    assert_eq!(counted, total, "{}", exporter.output());
    assert!(hups >= 20 && reloads >= 10, "{hups} SIGHUPs sent, {reloads} reloads done");
    std::thread::sleep(Duration::from_millis(1500));
    let m = exporter.metrics();
    assert_eq!(m.get("app_ticks_total"), Some(total), "{m:?}");
    drop(exporter);
}
