//! The HTTP JSON source against a real local HTTP server: values picked by path (and `minus`),
//! `up` 0 on a 500, a timeout and a refused connection, recovery, errors by kind, headers sent
//! (also from the environment), last values kept for three intervals, never a panic on a bad body.

use crate::support;

use std::time::Duration;

use integration_exporter::sources::http::HttpPoller;
use integration_exporter::sources::poll::Poll;
use integration_exporter::spec::{Model, ResolvedSignal, SourceText};
use integration_exporter::state::{Family, SampleValue};
use support::{HttpServer, Reply, jq};

const BODY: &str = r#"{"pending": 1234, "failed": 17, "limits": {"Max": 100000, "Remaining": 18250}, "extra": [1, 2]}"#;

fn signal(url: &str, interval: &str, timeout: &str) -> ResolvedSignal {
    let text = format!(
        r#"signals:
  - id: test.queue
    title: Queue
    metrics:
      - {{name: test_pending, type: gauge, help: Pending jobs.}}
      - {{name: test_used, type: gauge, help: Used requests.}}
      - {{name: test_up, type: gauge, help: Endpoint up.}}
      - {{name: test_seconds, type: gauge, help: Answer time.}}
    source:
      http:
        url: {url}
        headers: {{Authorization: "Bearer env:IE_TEST_TOKEN", X-Static: abc, X-Missing: "env:IE_TEST_MISSING"}}
        interval: {interval}
        timeout: {timeout}
        values:
          - {{metric: test_pending, path: .pending}}
          - {{metric: test_used, path: .limits.Max, minus: .limits.Remaining}}
          - {{metric: test_up, path: up}}
          - {{metric: test_seconds, path: duration}}
"#
    );
    let model = Model::from_text(&SourceText { name: "test.yaml".into(), text }).unwrap_or_else(|e| panic!("{e}"));
    model.signals[0].clone()
}

fn poller(url: &str, interval: &str, timeout: &str) -> HttpPoller {
    let env = |name: &str| (name == "IE_TEST_TOKEN").then(|| "tok-123".to_string());
    HttpPoller::with_env(&signal(url, interval, timeout), env).expect("an HTTP signal")
}

fn get(families: &[Family], metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let family = families.iter().find(|f| f.name == metric)?;
    family.samples.iter().find(|s| s.label_pairs() == labels).map(|s| match s.value {
        SampleValue::Scalar(v) => v,
        _ => panic!("not scalar"),
    })
}

fn errors(families: &[Family], kind: &str) -> f64 {
    get(families, "integration_exporter_http_errors_total", &[("signal", "test.queue"), ("kind", kind)])
        .expect("error counter")
}

fn up(families: &[Family]) -> f64 {
    get(families, "integration_exporter_http_up", &[("signal", "test.queue")]).expect("self up")
}

#[tokio::test]
async fn values_are_picked_by_path_and_equal_jq() {
    let server = HttpServer::start(Reply::json(BODY));
    let mut p = poller(&server.url("/api/metrics/queue"), "30s", "2s");
    let f = p.poll().await;
    assert_eq!(get(&f, "test_pending", &[]), Some(jq(BODY, ".pending")));
    // `.limits.Max - .limits.Remaining`, as jq computes it.
    assert_eq!(get(&f, "test_used", &[]), Some(jq(BODY, ".limits.Max") - jq(BODY, ".limits.Remaining")));
    assert_eq!(get(&f, "test_up", &[]), Some(1.0));
    assert!(get(&f, "test_seconds", &[]).is_some_and(|d| d > 0.0 && d < 2.0));
    assert_eq!(up(&f), 1.0);
    for kind in ["connect", "timeout", "auth", "status", "body", "path", "limit"] {
        assert_eq!(errors(&f, kind), 0.0, "{kind} exported and zero");
    }
    assert!(get(&f, "integration_exporter_http_last_success_timestamp_seconds", &[("signal", "test.queue")]).is_some());
}

#[tokio::test]
async fn headers_are_sent_and_env_values_filled_in() {
    let server = HttpServer::start(Reply::json(BODY));
    let mut p = poller(&server.url("/q"), "30s", "2s");
    p.poll().await;
    let head = server.requests().pop().expect("a request").head.to_lowercase();
    assert!(head.starts_with("get /q http/1.1"), "{head}");
    assert!(head.contains("authorization: bearer tok-123\r\n"), "{head}");
    assert!(head.contains("x-static: abc\r\n"), "{head}");
    assert!(head.contains("accept: application/json\r\n"), "{head}");
    // A header whose variable is missing is not sent at all.
    assert!(!head.contains("x-missing"), "{head}");
}

#[tokio::test]
async fn failures_count_by_kind_keep_values_three_intervals_and_recover() {
    let server = HttpServer::start(Reply::json(BODY));
    let mut p = poller(&server.url("/q"), "300ms", "250ms");
    let f = p.poll().await;
    assert_eq!(get(&f, "test_pending", &[]), Some(1234.0));

    // 500: down, the JSON value is still served within three intervals.
    server.set(Reply { status: 500, body: "oops".into(), delay: Duration::ZERO });
    let f = p.poll().await;
    assert_eq!((up(&f), get(&f, "test_up", &[])), (0.0, Some(0.0)));
    assert_eq!(errors(&f, "status"), 1.0);
    assert_eq!(get(&f, "test_pending", &[]), Some(1234.0));

    // Hung endpoint: the whole request is bounded by the timeout.
    server.set(Reply { status: 200, body: BODY.into(), delay: Duration::from_secs(2) });
    let started = std::time::Instant::now();
    let f = p.poll().await;
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    assert_eq!((up(&f), errors(&f, "timeout")), (0.0, 1.0));
    let d = get(&f, "integration_exporter_http_duration_seconds", &[("signal", "test.queue")]).unwrap();
    assert!((0.2..1.0).contains(&d), "{d}");

    // Past three intervals the JSON values are dropped; `up` stays.
    std::thread::sleep(Duration::from_millis(700));
    server.set(Reply { status: 503, body: String::new(), delay: Duration::ZERO });
    let f = p.poll().await;
    assert_eq!(get(&f, "test_pending", &[]), None);
    assert_eq!(get(&f, "test_used", &[]), None);
    assert_eq!(get(&f, "test_up", &[]), Some(0.0));
    assert_eq!(errors(&f, "status"), 2.0);

    // Recovery.
    server.set(Reply::json(r#"{"pending": 5, "limits": {"Max": 10, "Remaining": "4"}}"#));
    let f = p.poll().await;
    assert_eq!((up(&f), get(&f, "test_pending", &[]), get(&f, "test_used", &[])), (1.0, Some(5.0), Some(6.0)));
    assert_eq!((errors(&f, "status"), errors(&f, "timeout")), (2.0, 1.0));
}

#[tokio::test]
async fn unauthorized_and_forbidden_are_auth_errors() {
    let server = HttpServer::start(Reply { status: 401, body: "{}".into(), delay: Duration::ZERO });
    let mut p = poller(&server.url("/q"), "30s", "2s");
    let f = p.poll().await;
    assert_eq!((up(&f), errors(&f, "auth"), errors(&f, "status")), (0.0, 1.0, 0.0));
    server.set(Reply { status: 403, body: "{}".into(), delay: Duration::ZERO });
    let f = p.poll().await;
    assert_eq!((up(&f), errors(&f, "auth"), errors(&f, "status")), (0.0, 2.0, 0.0));
    server.set(Reply { status: 404, body: "{}".into(), delay: Duration::ZERO });
    let f = p.poll().await;
    assert_eq!((errors(&f, "auth"), errors(&f, "status")), (2.0, 1.0));
    assert_eq!(get(&f, "test_pending", &[]), None);
}

/// A value missing from a 2xx answer (the dead-letter count, say) is an error of its signal:
/// counted as `path`, last success does not move, and the other values are still read.
#[tokio::test]
async fn a_missing_value_is_a_visible_error() {
    let server = HttpServer::start(Reply::json(BODY));
    let mut p = poller(&server.url("/q"), "30s", "2s");
    let f = p.poll().await;
    let ok_at = |f: &[Family]| {
        get(f, "integration_exporter_http_last_success_timestamp_seconds", &[("signal", "test.queue")]).unwrap()
    };
    let first = ok_at(&f);
    std::thread::sleep(Duration::from_millis(20));
    server.set(Reply::json(r#"{"pending": 7}"#));
    let f = p.poll().await;
    assert_eq!((up(&f), errors(&f, "path")), (1.0, 1.0));
    assert_eq!(ok_at(&f), first, "a poll that missed a value is not a success");
    assert_eq!(get(&f, "test_pending", &[]), Some(7.0));
}

/// Each value has its own health: the one gone from the answer counts `path` errors and its
/// last read stays put, while the value still in the answer is read and its last read moves. A
/// dead endpoint counts against the endpoint, not against any value.
#[tokio::test]
async fn a_missing_value_is_its_own_error_and_the_others_stay_read() {
    let server = HttpServer::start(Reply::json(BODY));
    let mut p = poller(&server.url("/q"), "30s", "2s");
    let value = |f: &[Family], family: &str, metric: &str, kind: Option<&str>| {
        let mut labels = vec![("signal", "test.queue"), ("metric", metric)];
        labels.extend(kind.map(|k| ("kind", k)));
        get(f, family, &labels)
    };
    let errors_of = |f: &[Family], metric: &str, kind: &str| {
        value(f, "integration_exporter_http_value_errors_total", metric, Some(kind)).expect("value error counter")
    };
    let read_at = |f: &[Family], metric: &str| {
        value(f, "integration_exporter_http_value_last_read_timestamp_seconds", metric, None)
    };
    // Every value of the answer is counted from the start, probes (which need no answer) are not.
    let initial = p.initial();
    for metric in ["test_pending", "test_used"] {
        assert_eq!((errors_of(&initial, metric, "path"), errors_of(&initial, metric, "limit")), (0.0, 0.0));
        assert_eq!(read_at(&initial, metric), None, "never read yet");
    }
    assert_eq!(value(&initial, "integration_exporter_http_value_errors_total", "test_up", Some("path")), None);

    let f = p.poll().await;
    let (pending_read, used_read) = (read_at(&f, "test_pending").unwrap(), read_at(&f, "test_used").unwrap());
    std::thread::sleep(Duration::from_millis(20));
    server.set(Reply::json(r#"{"pending": 7}"#));
    let f = p.poll().await;
    assert_eq!(errors_of(&f, "test_used", "path"), 1.0, "the value gone from the answer");
    assert_eq!(read_at(&f, "test_used"), Some(used_read), "its last read stays put");
    assert_eq!(errors_of(&f, "test_pending", "path"), 0.0, "the value still there");
    assert!(read_at(&f, "test_pending").unwrap() > pending_read, "is read");

    server.set(Reply { status: 503, body: "down".into(), delay: Duration::ZERO });
    let f = p.poll().await;
    assert_eq!(errors(&f, "status"), 1.0);
    assert_eq!(errors_of(&f, "test_pending", "path"), 0.0, "a dead endpoint is no value's error");
    assert_eq!(errors_of(&f, "test_used", "path"), 1.0);
}

/// Two finite numbers whose difference is not (`1.7e308 - -1.7e308`): no `+Inf` reaches the
/// exposition; the value counts as a `path` error of its own, as a value that holds no number.
#[tokio::test]
async fn a_minus_that_overflows_is_a_value_error_not_an_infinity() {
    let server = HttpServer::start(Reply::json(r#"{"pending": 1, "limits": {"Max": 1.7e308, "Remaining": -1.7e308}}"#));
    let mut p = poller(&server.url("/q"), "30s", "2s");
    let value_errors = |f: &[Family], metric: &str| {
        get(
            f,
            "integration_exporter_http_value_errors_total",
            &[("signal", "test.queue"), ("metric", metric), ("kind", "path")],
        )
        .expect("value error counter")
    };
    let f = p.poll().await;
    assert_eq!(get(&f, "test_used", &[]), None, "not exported as +Inf");
    assert_eq!((value_errors(&f, "test_used"), value_errors(&f, "test_pending")), (1.0, 0.0));
    assert_eq!((up(&f), errors(&f, "path"), get(&f, "test_pending", &[])), (1.0, 1.0, Some(1.0)));
    let text =
        integration_exporter::exposition::text::encode(&f, integration_exporter::exposition::text::Format::Prometheus);
    assert!(!text.contains("Inf") && !text.contains("NaN"), "{text}");
    // Back to numbers whose difference is finite: read again.
    server.set(Reply::json(r#"{"pending": 1, "limits": {"Max": 1e308, "Remaining": -1e307}}"#));
    let f = p.poll().await;
    assert_eq!(get(&f, "test_used", &[]), Some(1e308 + 1e307));
    assert_eq!(value_errors(&f, "test_used"), 1.0);
}

#[tokio::test]
async fn refused_connection_is_down_not_a_crash() {
    let port = support::free_port();
    let mut p = poller(&format!("http://127.0.0.1:{port}/q"), "30s", "1s");
    let f = p.poll().await;
    assert_eq!((up(&f), get(&f, "test_up", &[]), errors(&f, "connect")), (0.0, Some(0.0), 1.0));
    assert_eq!(get(&f, "test_pending", &[]), None);
    assert_eq!(get(&f, "integration_exporter_http_last_success_timestamp_seconds", &[("signal", "test.queue")]), None);
}

#[tokio::test]
async fn bad_bodies_and_missing_paths_never_panic() {
    let server = HttpServer::start(Reply::json("<html>not json</html>"));
    let mut p = poller(&server.url("/q"), "30s", "2s");
    let f = p.poll().await;
    // It answered 2xx in time: up, but the body is useless.
    assert_eq!((up(&f), errors(&f, "body")), (1.0, 1.0));
    assert_eq!(get(&f, "test_pending", &[]), None);
    for body in ["", "null", "[1,2]", r#"{"pending": "many"}"#, r#"{"pending": {"x": 1}}"#, "\u{0}\u{1}"] {
        server.set(Reply::json(body));
        p.poll().await;
    }
    server.set(Reply::json(r#"{"pending": 3}"#));
    let f = p.poll().await;
    assert_eq!(get(&f, "test_pending", &[]), Some(3.0));
    assert_eq!(get(&f, "test_used", &[]), None, "`.limits` is missing");
    assert!(errors(&f, "path") >= 4.0);
    assert_eq!(errors(&f, "body"), 3.0, "non-JSON, empty and binary bodies");
}

#[test]
fn invalid_paths_are_spec_errors() {
    let text = "signals:\n  - id: t.x\n    title: X\n    metrics: [{name: t_x, type: gauge, help: X.}]\n    source:\n      http:\n        url: http://localhost/x\n        values: [{metric: t_x, path: \".a[\", minus: .b}]\n";
    let err = Model::from_text(&SourceText { name: "t.yaml".into(), text: text.into() }).unwrap_err();
    assert!(err.to_string().contains("path `.a[`"), "{err}");
    let text = text.replace(".a[", "up");
    let err = Model::from_text(&SourceText { name: "t.yaml".into(), text }).unwrap_err();
    assert!(err.to_string().contains("takes no `each`, `minus` or `labels`"), "{err}");
}

#[test]
fn serve_polls_http_signals_and_reports_down_endpoints() {
    let server = HttpServer::start(Reply::json(BODY));
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let refused = support::free_port();
    let spec = dir.path().join("spec.yaml");
    let signal = |id: &str, metric: &str, url: &str| {
        format!(
            "  - id: {id}\n    title: {id}\n    metrics: [{{name: {metric}, type: gauge, help: X.}}, {{name: {metric}_up, type: gauge, help: Up.}}]\n    source:\n      http:\n        url: {url}\n        interval: 1s\n        timeout: 500ms\n        values: [{{metric: {metric}, path: .pending}}, {{metric: {metric}_up, path: up}}]\n"
        )
    };
    let text = format!(
        "listen: 127.0.0.1:{port}\nsignals:\n{}{}",
        signal("t.queue", "t_pending", &server.url("/q")),
        signal("t.down", "t_down", &format!("http://127.0.0.1:{refused}/q"))
    );
    std::fs::write(&spec, text).unwrap();
    let exporter = support::exporter::Exporter::serve(&spec, port).start();
    let ready = || support::http::get(port, "/ready").is_some_and(|r| r.status == 200);
    let served = |m: &support::http::Metrics| {
        ["t_pending 1234", "t_pending_up 1", "t_down_up 0", "integration_exporter_http_up{signal=\"t.down\"} 0"]
            .iter()
            .all(|l| m.text.lines().any(|line| line == *l))
            && m.text.contains("integration_exporter_http_errors_total{signal=\"t.down\",kind=\"connect\"}")
    };
    let m = exporter.wait_for("the HTTP signals served and /ready", |m| served(m) && ready());
    assert!(!m.text.lines().any(|l| l.starts_with("t_down ")), "no value invented for a down endpoint");
    let served = support::http::catalogued_self_metrics(&m.text);
    assert!(served.contains("integration_exporter_http_errors_total"), "{served:?}");
}

#[test]
fn spec_rejects_literal_secrets_and_unreadable_items() {
    let spec = |source: &str| {
        let text = format!(
            "signals:\n  - id: t.x\n    title: X\n    metrics: [{{name: t_x, type: gauge, help: X., labels: [workflow]}}]\n    source:\n      http:\n        url: http://localhost/x\n{source}"
        );
        Model::from_text(&SourceText { name: "t.yaml".into(), text }).map(|_| ()).map_err(|e| e.to_string())
    };
    let each = "        values: [{metric: t_x, each: '.w[]', path: count, labels: {workflow: .name}}]\n";
    assert_eq!(spec(each), Ok(()));
    let err = spec(&format!("        auth: {{bearer: ghp_literal}}\n{each}")).unwrap_err();
    assert!(err.contains("not the token itself") && err.contains("t.yaml:"), "{err}");
    let oauth = "        auth: {oauth_refresh: {token_url: https://login.example.com/token, client_id: abc, client_secret: s3cret, refresh_token: env:RT}}\n";
    let err = spec(&format!("{oauth}{each}")).unwrap_err();
    assert!(err.contains("OAuth secrets are `env:NAME` or `file:PATH`"), "{err}");
    assert!(spec(&format!("{}{each}", oauth.replace("s3cret", "file:/run/secrets/cs"))).is_ok());
    for (values, want) in [
        ("[{metric: t_x, each: '.w[]', path: count, labels: {flow: .name}}]", "must be the metric's labels"),
        ("[{metric: t_x, path: .a}]", "labels are read from the items of `each`"),
        ("[{metric: t_x, each: '.w[] | select(.s)', path: count, labels: {workflow: .name}}]", "takes a comparison"),
        ("[{metric: t_x, each: '.w[]', path: '.s == active', labels: {workflow: .name}}]", "JSON literal"),
    ] {
        let err = spec(&format!("        values: {values}\n")).unwrap_err();
        assert!(err.contains(want), "{values}: {err}");
    }
}
