//! Files that would block a reader: named pipes nobody writes (what a hung NFS or FUSE secret mount
//! looks like to the exporter) as the spec, the web config, the database URL file and an HTTP
//! source's bearer token, at start, on SIGHUP and at poll time. Each is refused at once with a
//! message naming the path; the endpoint keeps answering and SIGTERM still stops the exporter.
//! `FAULT_FIFO_ROUNDS` repeats the running cases (`scripts/fault-fifos`).

use crate::support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::exporter::Exporter;
use support::{HttpServer, Reply, free_port, http};

/// Replaces `path` (if any) by a FIFO that nothing ever writes.
fn mkfifo(path: &Path) {
    let _ = std::fs::remove_file(path);
    rustix::fs::mknodat(rustix::fs::CWD, path, rustix::fs::FileType::Fifo, rustix::fs::Mode::from_raw_mode(0o600), 0)
        .unwrap_or_else(|e| panic!("mkfifo {}: {e}", path.display()));
}

fn rounds() -> usize {
    std::env::var("FAULT_FIFO_ROUNDS").ok().and_then(|n| n.parse().ok()).unwrap_or(1)
}

fn log_spec(dir: &Path, port: u16, extra: &str) -> PathBuf {
    std::fs::write(dir.join("app.log"), "tick\n").unwrap();
    let path = dir.join("spec.yaml");
    // A state_dir, so the tick already in the file is counted at the first start.
    let text = format!(
        "listen: 127.0.0.1:{port}\nstate_dir: {}\n{extra}{}",
        dir.join("state").display(),
        support::ticks_spec(&dir.join("app.log").display().to_string())
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// A status within a few seconds, or a failure saying what hung.
fn answers_quickly(port: u16, path: &str) -> u16 {
    let started = Instant::now();
    let answer = http::get(port, path).unwrap_or_else(|| panic!("no answer to {path} within 10 s"));
    assert!(started.elapsed() < Duration::from_secs(3), "{path} took {:?}", started.elapsed());
    answer.status
}

/// SIGTERM stops it within a few seconds, cleanly; how long it took.
fn stops_on_sigterm(mut exporter: Exporter) -> Duration {
    let started = Instant::now();
    exporter.signal("TERM");
    let status = exporter.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "{status}: {}", exporter.output());
    let took = started.elapsed();
    assert!(took < Duration::from_secs(8), "SIGTERM took {took:?}");
    took
}

#[test]
fn a_fifo_at_start_is_refused_at_once_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();

    // The spec itself.
    let fifo_spec = d.join("fifo-spec.yaml");
    mkfifo(&fifo_spec);
    // The web config the spec names.
    let with_web = log_spec(d, port, "web_config_file: web.yml\n");
    mkfifo(&d.join("web.yml"));
    // The database URL file of a spec that reads SQL.
    let with_db = d.join("db-spec.yaml");
    mkfifo(&d.join("dsn"));
    std::fs::write(
        &with_db,
        format!(
            "listen: 127.0.0.1:{port}\ndatabase: {{url_file: dsn}}\nsignals:\n  - id: t.one\n    title: One\n    \
             runbook_section: https://example.com/runbook#one\n    metrics:\n      - {{name: t_one, type: gauge, help: One.}}\n    \
             source:\n      sql:\n        query: SELECT 1 AS value\n"
        ),
    )
    .unwrap();

    for (spec, fifo, code) in
        [(&fifo_spec, fifo_spec.clone(), 2), (&with_web, d.join("web.yml"), 1), (&with_db, d.join("dsn"), 1)]
    {
        let started = Instant::now();
        let (status, output) = Exporter::serve(spec, port).exit();
        let took = started.elapsed();
        assert_eq!(status.code(), Some(code), "{}: {output}", fifo.display());
        assert!(output.contains(&fifo.display().to_string()) && output.contains("FIFO"), "names the FIFO: {output}");
        // Refused, not timed out: no read was even tried.
        assert!(took < Duration::from_secs(4), "{}: {took:?}", fifo.display());
        eprintln!("FIGURE fifo at start: {} refused, exit {code} after {} ms", fifo.display(), took.as_millis());
    }
    // `check` says the same.
    let out = std::process::Command::new(support::exporter_bin())
        .args(["check", "--config"])
        .arg(&fifo_spec)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("FIFO"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_sighup_whose_spec_is_a_fifo_keeps_serving_and_sigterm_still_stops() {
    for round in 0..rounds() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let port = free_port();
        let spec = log_spec(d, port, "");
        let exporter = Exporter::serve(&spec, port).start();
        exporter.wait_for("the tick", |m| m.get("app_ticks_total") == Some(1.0));

        mkfifo(&spec);
        exporter.signal("HUP");
        let output = exporter.wait_output("the reload refused", |o| o.contains("reload failed"));
        let failure = output.lines().find(|l| l.contains("reload failed")).unwrap();
        assert!(failure.contains(&spec.display().to_string()) && failure.contains("FIFO"), "round {round}: {failure}");
        assert_eq!(answers_quickly(port, "/healthz"), 200);
        let m = exporter.wait_for("the failed reload", |m| {
            m.get("integration_exporter_config_last_reload_successful") == Some(0.0)
        });
        assert_eq!(m.get("app_ticks_total"), Some(1.0), "the running spec stays");
        // A second SIGHUP on the same FIFO, then SIGTERM right behind it.
        exporter.signal("HUP");
        let took = stops_on_sigterm(exporter);
        eprintln!(
            "FIGURE fifo spec on SIGHUP: round {round}, reload refused, exit {} ms after SIGTERM",
            took.as_millis()
        );
    }
}

#[test]
fn a_web_config_replaced_by_a_fifo_fails_requests_closed_without_freezing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();
    let hash = bcrypt::hash_with_result("pw", 4).unwrap().format_for_version(bcrypt::Version::TwoY);
    std::fs::write(d.join("web.yml"), format!("basic_auth_users:\n  alice: '{hash}'\n")).unwrap();
    let spec = log_spec(d, port, "web_config_file: web.yml\n");
    let exporter = Exporter::serve(&spec, port).start();
    assert_eq!(answers_quickly(port, "/metrics"), 401);

    for _ in 0..rounds() {
        mkfifo(&d.join("web.yml"));
        // Never open: the file cannot be read, so the answer is an error, at once.
        for path in ["/metrics", "/healthz", "/metrics"] {
            assert_eq!(answers_quickly(port, path), 500, "{path}");
        }
        std::fs::remove_file(d.join("web.yml")).unwrap();
        std::fs::write(d.join("web.yml"), format!("basic_auth_users:\n  alice: '{hash}'\n")).unwrap();
        assert_eq!(answers_quickly(port, "/metrics"), 401);
    }
    let output = exporter.output();
    assert!(output.contains("FIFO") && output.contains(&d.join("web.yml").display().to_string()), "{output}");
    let took = stops_on_sigterm(exporter);
    eprintln!(
        "FIGURE fifo web config: {} rounds answered 500 at once, exit {} ms after SIGTERM",
        rounds(),
        took.as_millis()
    );
}

#[test]
fn a_bearer_token_file_that_is_a_fifo_fails_the_poll_not_the_exporter() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();
    let api = HttpServer::start(Reply::json(r#"{"pending": 3}"#));
    let token = d.join("token");
    mkfifo(&token);
    let spec = d.join("spec.yaml");
    std::fs::write(
        &spec,
        format!(
            "listen: 127.0.0.1:{port}\nsignals:\n  - id: t.queue\n    title: Queue\n    \
             runbook_section: https://example.com/runbook#queue\n    metrics:\n      \
             - {{name: t_pending, type: gauge, help: Pending.}}\n    source:\n      http:\n        url: {}\n        \
             auth: {{bearer: 'file:{}'}}\n        interval: 200ms\n        timeout: 2s\n        values:\n          \
             - {{metric: t_pending, path: .pending}}\n",
            api.url("/queue"),
            token.display()
        ),
    )
    .unwrap();
    let exporter = Exporter::serve(&spec, port).start();
    let auth_errors = r#"integration_exporter_http_errors_total{signal="t.queue",kind="auth"}"#;
    let m = exporter.wait_for("polls failing with auth", |m| m.get(auth_errors).is_some_and(|n| n >= 3.0));
    assert_eq!(m.get(r#"integration_exporter_http_up{signal="t.queue"}"#), Some(0.0));
    assert!(api.requests().is_empty(), "no request without the token");
    for _ in 0..rounds() {
        assert_eq!(answers_quickly(port, "/healthz"), 200);
        assert_eq!(answers_quickly(port, "/metrics"), 200);
    }
    let output = exporter.output();
    assert!(output.contains("FIFO") && output.contains(&token.display().to_string()), "{output}");

    // A real token: the same poller recovers.
    std::fs::remove_file(&token).unwrap();
    std::fs::write(&token, "tok\n").unwrap();
    exporter.wait_for("the value", |m| m.get("t_pending") == Some(3.0));
    let took = stops_on_sigterm(exporter);
    eprintln!(
        "FIGURE fifo bearer token: polls failed as auth, endpoint answered, exit {} ms after SIGTERM",
        took.as_millis()
    );
}
