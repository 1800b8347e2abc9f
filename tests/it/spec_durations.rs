//! Durations: a zero or absurd one stops `check` and `serve` with exit 2 and its place in the file
//! (a zero SQL interval used to pass `check` and panic the query task in `serve`, leaving `/ready`
//! at 503 for ever), and the SQL and HTTP tasks survive a zero that gets past the spec anyway.

use crate::support;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use integration_exporter::sources::{http, sql};
use integration_exporter::spec::{Model, PromDuration, ResolvedSource, SourceText};
use integration_exporter::state::State;
use support::exporter::Exporter;
use support::{exporter_bin, free_port};

fn write_spec(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("spec.yaml");
    std::fs::write(&path, text).expect("spec");
    path
}

const SQL_SIGNAL: &str = "signals:
  - id: t.one
    title: One
    runbook_section: https://example.com/runbook#one
    metrics:
      - {name: t_one, type: gauge, help: One.}
    source:
      sql:
        query: SELECT 1 AS value
";

#[test]
fn zero_durations_stop_check_and_serve_with_their_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    for (field, line, column) in [
        ("sql_defaults: {interval: 0s}\n", 3, 16),
        ("sql_defaults: {timeout: 0ms}\n", 3, 16),
        ("poll_defaults: {timeout: 0ms}\n", 3, 17),
        ("logs:\n  app: {paths: [x.log], rotate_wait: '0'}\n", 4, 25),
        ("generate:\n  alertmanager:\n    group_interval: 0s\n", 5, 5),
    ] {
        let text = format!("listen: 127.0.0.1:{port}\ndatabase: {{url_env: IE_TEST_DSN}}\n{field}{SQL_SIGNAL}");
        let spec = write_spec(dir.path(), &text);
        let place = format!("{}:{line}:{column}: ", spec.display());
        let out = Command::new(exporter_bin()).args(["check", "--config"]).arg(&spec).output().expect("check");
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{field}: {said}");
        assert!(said.starts_with(&place) && said.contains(" is 0s; "), "{field}: want {place}, got {said}");

        let (status, said) = Exporter::serve(&spec, port).env("IE_TEST_DSN", "postgres://u@127.0.0.1:1/x").exit();
        assert_eq!(status.code(), Some(2), "{field}: serve must refuse the spec: {said}");
        assert!(said.contains(&place), "{field}: {said}");
    }
}

fn model_with_zero_intervals() -> Model {
    let text = format!(
        "database: {{url_env: IE_TEST_DSN}}\n{SQL_SIGNAL}  - id: t.http
    title: Http
    runbook_section: https://example.com/runbook#http
    metrics:
      - {{name: t_http_up, type: gauge, help: Up.}}
    source:
      http:
        url: http://127.0.0.1:1/q
        values: [{{metric: t_http_up, path: up}}]
"
    );
    let mut model = Model::from_text(&SourceText { name: "t.yaml".into(), text }).unwrap_or_else(|e| panic!("{e}"));
    // What the spec now refuses, forced in after validation.
    for signal in &mut model.signals {
        if let ResolvedSource::Polled(schedule) = &mut signal.source {
            schedule.interval = PromDuration(Duration::ZERO);
            schedule.timeout = PromDuration(Duration::ZERO);
        }
    }
    model
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_and_http_tasks_survive_a_zero_interval() {
    let model = model_with_zero_intervals();
    let state = Arc::new(State::default());
    let options = sql::dsn::parse(&format!("postgres://u@127.0.0.1:{}/x", free_port())).expect("dsn");
    let pool = sql::pool(options, 1, Duration::ZERO);
    let mut handles = sql::spawn_all(&model, pool, state.clone());
    handles.extend(http::spawn_all(&model, state.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    for handle in &handles {
        assert!(!handle.is_finished(), "a source task ended (panicked) on a zero interval");
    }
    assert!(state.readiness.pending().is_empty(), "every task ran: {:?}", state.readiness.pending());
    let names: Vec<String> = state.gather().into_iter().map(|f| f.name).collect();
    for family in ["integration_exporter_query_success", "integration_exporter_http_up"] {
        assert!(names.iter().any(|n| n == family), "{family} in {names:?}");
    }
    for handle in handles {
        handle.abort();
    }
}
