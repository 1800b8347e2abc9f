//! The HTTP source against stand-ins of real APIs, through the real exporter binary and `/metrics`:
//! the GitHub REST API (bearer token, workflows filtered and counted, the latest run's time and
//! conclusion per workflow), Salesforce's limits call behind the OAuth refresh-token flow (an
//! expired session is refreshed once and retried) and behind a token file another process rotates.
//! Answers are recorded API shapes (`tests/fixtures/http/`); the specs are the worked examples in
//! `tests/fixtures/`. Secrets never reach `/metrics` or the log.

use crate::support;

use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use integration_exporter::spec::Source;
use support::exporter::Exporter;
use support::http::{Metrics, Request, StandIn};

const WORKFLOWS: &str = include_str!("../fixtures/http/github_workflows.json");
const RUNS: &str = include_str!("../fixtures/http/github_runs.json");
const LIMITS: &str = include_str!("../fixtures/http/salesforce_limits.json");

/// Requests of `method` to paths starting with `path`.
fn count(api: &StandIn, method: &str, path: &str) -> usize {
    api.requests().iter().filter(|r| r.method == method && r.path.starts_with(path)).count()
}

/// The exporter serving `spec` (at debug level) from a directory of its own.
fn serve(spec: &str, env: &[(&str, &str)]) -> (tempfile::TempDir, Exporter) {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let path = dir.path().join("spec.yaml");
    std::fs::write(&path, format!("listen: 127.0.0.1:{port}\n{spec}")).unwrap();
    let launch = Exporter::serve(&path, port).env("RUST_LOG", "debug").env("NO_COLOR", "1");
    (dir, env.iter().fold(launch, |l, &(k, v)| l.env(k, v)).start())
}

fn unix(rfc3339: &str) -> f64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339).unwrap().timestamp() as f64
}

fn errors(m: &Metrics, signal: &str, kind: &str) -> f64 {
    m.get(&format!("integration_exporter_http_errors_total{{signal=\"{signal}\",kind=\"{kind}\"}}")).unwrap_or(-1.0)
}

fn fixture(name: &str, api: &str, stand_in: &str) -> String {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)).unwrap();
    text.replace(api, stand_in).replace("interval: 5m", "interval: 300ms").replace("timeout: 30s", "timeout: 2s")
}

const GITHUB_TOKEN: &str = "ghp_TESTtoken0123456789abcdef";
const REPO: &str = include_str!("../fixtures/http/github_repo.json");

/// A stand-in of the GitHub REST API for `acme/etl`, answering the recorded shapes.
fn github(runs: Arc<Mutex<String>>) -> StandIn {
    StandIn::start(move |req: &Request| {
        if req.headers.get("authorization").map(String::as_str) != Some(&format!("Bearer {GITHUB_TOKEN}")) {
            return (401, r#"{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest"}"#.into());
        }
        let runs = runs.lock().unwrap().clone();
        match req.path.as_str() {
            "/repos/acme/etl" => (200, REPO.into()),
            "/repos/acme/etl/actions/workflows?per_page=100" => (200, WORKFLOWS.into()),
            "/repos/acme/etl/actions/runs?per_page=100" => (200, runs),
            path => {
                match path.strip_prefix("/repos/acme/etl/actions/workflows/").and_then(|p| p.split_once("/runs?")) {
                    Some((file, query)) => (200, workflow_runs(&runs, file, query)),
                    None => (404, r#"{"message":"Not Found"}"#.into()),
                }
            }
        }
    })
}

/// What GitHub answers for one workflow's runs (newest first): `status=` is a run status
/// (`completed`) or a conclusion (`success`, `failure`), `per_page=` how many; a runs answer
/// without its list stays without it.
fn workflow_runs(all: &str, file: &str, query: &str) -> String {
    let all: serde_json::Value = serde_json::from_str(all).unwrap();
    let Some(runs) = all["workflow_runs"].as_array() else { return all.to_string() };
    let param = |name: &str| query.split('&').find_map(|kv| kv.strip_prefix(&format!("{name}=")));
    let status = param("status");
    let per_page: usize = param("per_page").map_or(30, |n| n.parse().unwrap());
    let picked: Vec<&serde_json::Value> = runs
        .iter()
        .filter(|r| r["path"].as_str().is_some_and(|p| p.ends_with(&format!("/{file}"))))
        .filter(|r| status.is_none_or(|s| r["status"] == s || r["conclusion"] == s))
        .collect();
    serde_json::json!({"total_count": picked.len(), "workflow_runs": picked.into_iter().take(per_page).collect::<Vec<_>>()})
        .to_string()
}

/// `jq -c FILTER` on a JSON text, one compact line per output: the real jq, the tool an operator
/// tries a path with.
fn jq_lines(json: &str, filter: &str) -> Vec<String> {
    use std::io::Write as _;
    let mut jq = support::program("jq")
        .args(["-c", filter])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("jq");
    jq.stdin.take().unwrap().write_all(json.as_bytes()).unwrap();
    let out = jq.wait_with_output().unwrap();
    assert!(out.status.success(), "jq {filter}");
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

#[test]
fn github_workflows_and_runs_become_labelled_series() {
    let runs = Arc::new(Mutex::new(RUNS.to_string()));
    let api = github(runs.clone());
    let spec = fixture("github_actions.yaml", "https://api.github.com", &api.url(""));
    let (_dir, exporter) = serve(&spec, &[("GITHUB_TOKEN", GITHUB_TOKEN)]);
    let model = fixture_model("github_actions.yaml");
    let http = |id: &str| match &model.enabled_signals().find(|s| s.signal.id == id).unwrap().signal.source {
        Source::Http(h) => h.clone(),
        _ => unreachable!(),
    };

    let w = |metric: &str, workflow: &str| format!("{metric}{{workflow=\"{workflow}\"}}");
    let active = "integration_etl_workflow_active";
    let m = exporter.wait_for("the GitHub signals read", |m| {
        m.get(&w(active, "Token Health & Refresh")).is_some()
            && m.get(&w("integration_etl_workflow_last_run_succeeded", "ETL Daily Full Sync")).is_some()
            && m.get("integration_etl_repository_last_push_timestamp_seconds").is_some()
    });
    // Exactly the runbook's workflows, each as `jq` reads the spec's own filter: the disabled
    // token refresh 0, the others 1; the deleted v1 sync, CI and the release workflow someone
    // switched off on purpose are not watched.
    let each = http("etl.github_workflows").values[0].each.clone().unwrap();
    let watched = jq_lines(WORKFLOWS, &format!("{each} | [.name, .state == \"active\"]"));
    assert_eq!(watched.len(), 5, "{watched:?}");
    let served: Vec<&String> = m.series.keys().filter(|k| k.starts_with(&format!("{active}{{"))).collect();
    assert_eq!(served.len(), watched.len(), "{served:?}");
    for line in &watched {
        let (name, up): (String, bool) = serde_json::from_str(line).unwrap();
        assert_eq!(m[&w(active, &name)], if up { 1.0 } else { 0.0 }, "{name}");
    }
    assert_eq!(m[&w(active, "Token Health & Refresh")], 0.0);
    for unwatched in ["CI", "ETL Sync (v1)", "Release"] {
        assert!(m.get(&w(active, unwatched)).is_none(), "{unwatched} is no workflow of the runbook");
    }

    // The latest run per workflow (runs are listed newest first), any status.
    let last_run = "integration_etl_workflow_last_run_timestamp_seconds";
    assert_eq!(m[&w(last_run, "ETL Incremental Data Sync")], unix("2026-01-31T08:00:02Z"), "the run in progress");
    assert_eq!(m[&w(last_run, "CI")], unix("2026-01-31T06:30:00Z"));
    let last_ok = "integration_etl_workflow_last_success_timestamp_seconds";
    assert_eq!(m[&w(last_ok, "ETL Incremental Data Sync")], unix("2026-01-31T04:04:31Z"), "a failure since");
    let succeeded = "integration_etl_workflow_last_run_succeeded";
    assert_eq!(m[&w(succeeded, "ETL Incremental Data Sync")], 0.0, "the latest completed sync failed");
    assert_eq!(m[&w(succeeded, "CI")], 1.0);

    // The pack's alert inputs, one call each: the token refresh workflow's latest run and whether
    // its latest completed run succeeded (`gh run list --workflow=token-refresh.yml`), each sync
    // workflow's and the keep-alive's latest success, the repository's last push.
    let m = exporter.wait_for("per-workflow signals read", |m| {
        [
            "integration_etl_token_refresh_workflow_last_run_timestamp_seconds",
            "integration_etl_token_refresh_workflow_last_run_succeeded",
            "integration_etl_incremental_sync_workflow_last_success_timestamp_seconds",
            "integration_etl_full_sync_workflow_last_success_timestamp_seconds",
            "integration_etl_keep_alive_last_success_timestamp_seconds",
        ]
        .iter()
        .all(|s| m.get(s).is_some())
    });
    assert_eq!(m["integration_etl_token_refresh_workflow_last_run_timestamp_seconds"], unix("2026-01-31T07:30:04Z"));
    assert_eq!(m["integration_etl_token_refresh_workflow_last_run_succeeded"], 0.0, "the 07:30 run failed");
    assert_eq!(
        m["integration_etl_incremental_sync_workflow_last_success_timestamp_seconds"],
        unix("2026-01-31T04:04:31Z")
    );
    // The daily full sync failed at 02:00 behind the incremental syncs: its own last success
    // is yesterday's.
    assert_eq!(m["integration_etl_full_sync_workflow_last_success_timestamp_seconds"], unix("2026-01-30T02:47:12Z"));
    assert_eq!(m["integration_etl_keep_alive_last_success_timestamp_seconds"], unix("2026-01-26T00:00:31Z"));
    assert_eq!(
        m["integration_etl_repository_last_push_timestamp_seconds"],
        unix(&jq_lines(REPO, ".pushed_at")[0].replace('"', ""))
    );
    for signal in model.enabled_signals().map(|s| s.signal.id.as_str()) {
        for kind in ["connect", "timeout", "auth", "status", "body", "path", "limit"] {
            assert_eq!(errors(&m, signal, kind), 0.0, "{signal} {kind}");
        }
        assert_eq!(m[&format!("integration_exporter_http_up{{signal=\"{signal}\"}}")], 1.0);
    }
    // Exactly the GitHub API's headers.
    let req = api.requests()[0].clone();
    assert_eq!(req.headers["accept"], "application/vnd.github+json");
    assert_eq!(req.headers["x-github-api-version"], "2022-11-28");

    // The runs answer loses its list (an error page with 200): a visible `path` error of the
    // signal naming the values in the log, last success stops, values go after three intervals.
    *runs.lock().unwrap() = r#"{"total_count": 0}"#.into();
    let last_run_of = |m: &Metrics| m.get(&w(last_run, "ETL Incremental Data Sync"));
    let m = exporter.wait_for("missing list reported and values dropped", |m| {
        errors(m, "etl.github_runs", "path") >= 1.0 && last_run_of(m).is_none()
    });
    assert_eq!(m["integration_exporter_http_up{signal=\"etl.github_runs\"}"], 1.0, "it answered; up is about that");
    assert_eq!(errors(&m, "etl.github_workflows", "path"), 0.0, "only the signals reading runs are blind");
    assert!(errors(&m, "etl.token_refresh_workflow", "path") >= 1.0, "`.workflow_runs[0]` is missing too");
    let log = exporter.output();
    let warn = log.lines().find(|l| l.contains("HTTP poll failed") && l.contains("etl.github_runs")).expect(&log);
    assert!(warn.contains("kind=path") && warn.contains(last_run) && warn.contains(last_ok), "{warn}");
    // An empty list is not a missing one: zero runs read fine and the signal is healthy again.
    *runs.lock().unwrap() = r#"{"total_count": 0, "workflow_runs": []}"#.into();
    let before = errors(&m, "etl.github_runs", "path");
    std::thread::sleep(Duration::from_millis(900));
    let m = exporter.metrics();
    assert!(errors(&m, "etl.github_runs", "path") <= before + 1.0, "{m:#?}");
    let ok_at = "integration_exporter_http_last_success_timestamp_seconds{signal=\"etl.github_runs\"}";
    let now = chrono::Utc::now().timestamp() as f64;
    assert!(m[ok_at] > now - 2.0, "success again: {}", m[ok_at]);

    assert!(!exporter.metrics().text.contains(GITHUB_TOKEN) && !exporter.output().contains(GITHUB_TOKEN));
}

#[test]
fn wrong_token_is_an_auth_error_not_a_status_one() {
    let api = github(Arc::new(Mutex::new(RUNS.to_string())));
    let spec = fixture("github_actions.yaml", "https://api.github.com", &api.url(""));
    let (_dir, exporter) = serve(&spec, &[("GITHUB_TOKEN", "ghp_revoked")]);
    let m = exporter.wait_for("401 counted as auth", |m| errors(m, "etl.github_workflows", "auth") >= 1.0);
    assert_eq!(errors(&m, "etl.github_workflows", "status"), 0.0);
    assert_eq!(m["integration_exporter_http_up{signal=\"etl.github_workflows\"}"], 0.0);
    assert!(m.get("integration_etl_workflow_active{workflow=\"ETL Daily Full Sync\"}").is_none(), "no value invented");
    let log = exporter.output();
    assert!(log.contains("kind=auth") && log.contains("answered 401"), "{log}");
    assert!(!log.contains("ghp_revoked") && !log.contains("Bad credentials"), "{log}");

    // A header whose variable is unset is not sent; the 401 that follows says why.
    let spec =
        spec.replace("auth: {bearer: \"env:GITHUB_TOKEN\"}", "headers: {Authorization: \"Bearer env:IE_UNSET_TOKEN\"}");
    let spec = spec.replace("}\n        headers: {Accept", ", Accept");
    let (_dir, exporter) = serve(&spec, &[]);
    exporter.wait_for("401 without the header", |m| errors(m, "etl.github_workflows", "auth") >= 1.0);
    let log = exporter.output();
    assert!(log.contains("header authorization not sent: environment variable IE_UNSET_TOKEN is not set"), "{log}");
}

/// A Salesforce stand-in: the token endpoint issues `00D!AT<n>` tokens for the right grant; the
/// limits call takes only the newest token and "expires" it on demand.
struct Salesforce {
    api: StandIn,
    valid: Arc<Mutex<Option<String>>>,
    grant_ok: Arc<Mutex<bool>>,
}

const CLIENT_SECRET: &str = "CS-8f2e1d0c9b8a";
const REFRESH_TOKEN: &str = "5Aep861_refresh!token";

fn salesforce() -> Salesforce {
    let valid: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let grant_ok = Arc::new(Mutex::new(true));
    let issued = Arc::new(Mutex::new(0u32));
    let (v, g) = (valid.clone(), grant_ok.clone());
    let api = StandIn::start(move |req: &Request| match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/services/oauth2/token") => {
            let want = format!(
                "grant_type=refresh_token&refresh_token={}&client_id=3MVG9_client&client_secret={CLIENT_SECRET}",
                REFRESH_TOKEN.replace('!', "%21")
            );
            let form_ok =
                req.headers.get("content-type").map(String::as_str) == Some("application/x-www-form-urlencoded");
            if !*g.lock().unwrap() || req.body != want || !form_ok {
                return (400, r#"{"error":"invalid_grant","error_description":"expired access/refresh token"}"#.into());
            }
            let mut n = issued.lock().unwrap();
            *n += 1;
            let token = format!("00D!AT{n}");
            *v.lock().unwrap() = Some(token.clone());
            (
                200,
                format!(
                    r#"{{"access_token":"{token}","signature":"sig=","scope":"api refresh_token","instance_url":"https://example.my.salesforce.com","id":"https://login.salesforce.com/id/00D/005","token_type":"Bearer","issued_at":"1769846400000"}}"#
                ),
            )
        }
        ("GET", "/services/data/v62.0/limits") => {
            let valid = v.lock().unwrap().clone();
            match (valid, req.headers.get("authorization")) {
                (Some(t), Some(h)) if *h == format!("Bearer {t}") => (200, LIMITS.into()),
                _ => (401, r#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#.into()),
            }
        }
        _ => (404, "[]".into()),
    });
    Salesforce { api, valid, grant_ok }
}

#[test]
fn salesforce_session_expiry_is_refreshed_once_and_retried() {
    let sf = salesforce();
    let spec = fixture("salesforce_limits_oauth.yaml", "https://example.my.salesforce.com", &sf.api.url(""))
        .replace("https://login.salesforce.com", &sf.api.url(""));
    let env =
        [("SF_CLIENT_ID", "3MVG9_client"), ("SF_CLIENT_SECRET", CLIENT_SECRET), ("SF_REFRESH_TOKEN", REFRESH_TOKEN)];
    let (_dir, exporter) = serve(&spec, &env);
    let refreshes = |m: &Metrics, result: &str| token_refreshes(m, "salesforce.api_usage", result);
    let m = exporter
        .wait_for("limits read with a fresh token", |m| m.get("integration_salesforce_api_requests_used").is_some());
    assert_eq!(m["integration_salesforce_api_requests_used"], 100000.0 - 18250.0);
    assert_eq!(refreshes(&m, "ok"), 1.0);
    // The token is kept: several polls, one refresh.
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(count(&sf.api, "POST", "/services/oauth2/token"), 1);
    assert!(count(&sf.api, "GET", "/services/data/v62.0/limits") >= 3);

    // The session expires: the next poll gets 401, refreshes once, retries and reads the limits.
    *sf.valid.lock().unwrap() = None;
    let m = exporter.wait_for("refreshed after the 401", |m| refreshes(m, "ok") == 2.0);
    std::thread::sleep(Duration::from_millis(700));
    let m2 = exporter.metrics();
    assert_eq!(refreshes(&m2, "ok"), 2.0, "one refresh per expiry");
    for m in [&m, &m2] {
        assert_eq!(errors(m, "salesforce.api_usage", "auth"), 0.0, "an expiry handled in the poll is no error");
        assert_eq!(m["integration_exporter_http_up{signal=\"salesforce.api_usage\"}"], 1.0);
    }

    // The refresh token is revoked and the session expires: `auth` errors, down, no tight loop.
    *sf.grant_ok.lock().unwrap() = false;
    *sf.valid.lock().unwrap() = None;
    let m = exporter.wait_for("revoked grant is an auth error", |m| errors(m, "salesforce.api_usage", "auth") >= 2.0);
    assert_eq!(m["integration_exporter_http_up{signal=\"salesforce.api_usage\"}"], 0.0);
    assert!(refreshes(&m, "failed") >= 1.0);
    assert_eq!(errors(&m, "salesforce.api_usage", "status"), 0.0);
    let polls = count(&sf.api, "GET", "/services/data/v62.0/limits");
    let tokens = count(&sf.api, "POST", "/services/oauth2/token");
    assert!(tokens <= polls + 1, "at most one refresh per poll: {tokens} refreshes, {polls} polls");

    let log = exporter.output();
    assert!(log.contains("token endpoint answered 400"), "{log}");
    let text = format!("{}\n{log}", exporter.metrics().text);
    for secret in [CLIENT_SECRET, REFRESH_TOKEN, "00D!AT1", "00D!AT2", "invalid_grant"] {
        assert!(!text.contains(secret), "{secret} leaked:\n{text}");
    }
}

#[test]
fn a_token_file_is_read_again_before_every_request() {
    let sf = salesforce();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("sf_access_token");
    // Another process keeps the file current; here the test does, via the token endpoint.
    let issue = |sf: &Salesforce| {
        let mut s = std::net::TcpStream::connect(sf.api.addr).unwrap();
        let body = format!(
            "grant_type=refresh_token&refresh_token={}&client_id=3MVG9_client&client_secret={CLIENT_SECRET}",
            REFRESH_TOKEN.replace('!', "%21")
        );
        write!(
            s,
            "POST /services/oauth2/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        sf.valid.lock().unwrap().clone().unwrap()
    };
    std::fs::write(&token_file, format!("{}\n", issue(&sf))).unwrap();
    let spec = fixture("salesforce_limits_oauth.yaml", "https://example.my.salesforce.com", &sf.api.url(""));
    let start = spec.find("        auth:").unwrap();
    let end = spec[start..].find("        interval:").unwrap() + start;
    let spec =
        format!("{}        auth: {{bearer: \"file:{}\"}}\n{}", &spec[..start], token_file.display(), &spec[end..]);
    let (_dir, exporter) = serve(&spec, &[]);
    exporter.wait_for("read with the file's token", |m| m.get("integration_salesforce_api_requests_used").is_some());

    // Rotated under the exporter: the old session dies, the file holds the new token.
    std::fs::write(&token_file, issue(&sf)).unwrap();
    let polls = count(&sf.api, "GET", "/services/data/v62.0/limits");
    exporter.wait_for("polls go on with the rotated token", |_| {
        count(&sf.api, "GET", "/services/data/v62.0/limits") >= polls + 3
    });
    // A poll between the rotation and the file write may see the old token once; a token read
    // only at start would fail every poll from here on.
    let m = exporter.metrics();
    assert!(errors(&m, "salesforce.api_usage", "auth") <= 1.0, "{m:#?}");
    assert!(m.get("integration_salesforce_api_requests_used").is_some());

    // The file disappears: `auth` errors naming the file, no request sent without a token.
    std::fs::remove_file(&token_file).unwrap();
    let m = exporter.wait_for("missing token file", |m| errors(m, "salesforce.api_usage", "auth") >= 1.0);
    assert_eq!(m["integration_exporter_http_up{signal=\"salesforce.api_usage\"}"], 0.0);
    let log = exporter.output();
    assert!(log.contains("cannot be read") && log.contains("sf_access_token"), "{log}");
    assert!(!log.contains("00D!AT"), "{log}");
}

/// The salesforce pack's own OAuth variant, picked in the spec: the first poll fetches a token,
/// an expired session (401) is refreshed once and retried, a refresh that fails is an `auth`
/// error of the signal, which the generated source-health alert watches.
#[test]
fn salesforce_pack_oauth_variant_refreshes_and_reports_a_failing_refresh() {
    let sf = salesforce();
    let dir = tempfile::tempdir().unwrap();
    let api = sf.api.url("");
    let spec = format!(
        r#"packs:
  salesforce_incidents:
    params:
      instance_url: "{api}"
      oauth_token_url: "{api}/services/oauth2/token"
      server_log: {log}
    signals:
      salesforce_incidents.api_usage: {{enabled: false}}
      salesforce_incidents.server_health: {{enabled: false}}
      salesforce_incidents.api_usage_oauth: {{enabled: true, interval: 300ms, timeout: 2s}}
"#,
        log = dir.path().join("*.log").display()
    );
    let env =
        [("SF_CLIENT_ID", "3MVG9_client"), ("SF_CLIENT_SECRET", CLIENT_SECRET), ("SF_REFRESH_TOKEN", REFRESH_TOKEN)];
    let (_dir, exporter) = serve(&spec, &env);
    let id = "salesforce_incidents.api_usage_oauth";
    let refreshes = |m: &Metrics, result: &str| token_refreshes(m, id, result);
    let m = exporter
        .wait_for("limits read through the pack", |m| m.get("integration_salesforce_api_requests_used").is_some());
    assert_eq!(m["integration_salesforce_api_requests_used"], 100000.0 - 18250.0);
    assert_eq!(refreshes(&m, "ok"), 1.0);

    // 401 -> refresh -> success, within one poll: no error, up stays 1.
    *sf.valid.lock().unwrap() = None;
    let m = exporter.wait_for("refreshed after the 401", |m| refreshes(m, "ok") == 2.0);
    assert_eq!(errors(&m, id, "auth"), 0.0);
    assert_eq!(m[&format!("integration_exporter_http_up{{signal=\"{id}\"}}")], 1.0);

    // The refresh fails: `auth` errors of this signal, down.
    *sf.grant_ok.lock().unwrap() = false;
    *sf.valid.lock().unwrap() = None;
    let m = exporter.wait_for("failing refresh is an auth error", |m| errors(m, id, "auth") >= 2.0);
    assert_eq!(m[&format!("integration_exporter_http_up{{signal=\"{id}\"}}")], 0.0);
    assert!(refreshes(&m, "failed") >= 1.0);
    assert_eq!(errors(&m, id, "status"), 0.0);
    let text = format!("{}\n{}", exporter.metrics().text, exporter.output());
    for secret in [CLIENT_SECRET, REFRESH_TOKEN, "00D!AT1", "00D!AT2"] {
        assert!(!text.contains(secret), "{secret} leaked");
    }

    // The source-health alert of the same spec watches exactly these `auth` errors; promtool
    // tests of the generated rules show it firing on them (tests/generated.rs).
    let model = integration_exporter::spec::Model::from_text(&integration_exporter::spec::SourceText {
        name: "spec.yaml".into(),
        text: spec,
    })
    .unwrap();
    let plan = integration_exporter::generate::plan::Plan::of(&model).expect("generates");
    let rules = integration_exporter::generate::rule_files::rule_file(
        plan.pack(Some("salesforce_incidents")).expect("the pack's plan"),
    );
    let health = rules.groups[0]
        .rules
        .iter()
        .find(|r| r.alert == "IntegrationSourceHttpFailing" && r.labels.get("signal").map(String::as_str) == Some(id))
        .expect("a source-health alert for the OAuth signal");
    assert!(
        health.expr.contains("integration_exporter_http_errors_total") && health.expr.contains(id),
        "{}",
        health.expr
    );
    assert_eq!(health.labels["severity"], "warning", "as severe as the usage alert it guards");
    assert!(health.annotations["description"].contains("IntegrationSalesforceApiUsageHigh"));
}

/// A signal's OAuth token refreshes by result in a scrape (-1 when the series is missing).
fn token_refreshes(m: &Metrics, signal: &str, result: &str) -> f64 {
    m.get(&format!("integration_exporter_http_token_refreshes_total{{signal=\"{signal}\",result=\"{result}\"}}"))
        .unwrap_or(-1.0)
}

/// The salesforce pack's OAuth signal, at its defaults, is the worked example the stand-in tests
/// above run: same request, same auth, same values and alert.
#[test]
fn salesforce_pack_oauth_signal_is_the_tested_worked_example() {
    let text = "packs:\n  salesforce_incidents:\n    params: {instance_url: \"https://example.my.salesforce.com\"}\n    signals:\n      salesforce_incidents.api_usage: {enabled: false}\n      salesforce_incidents.api_usage_oauth: {enabled: true}\n";
    let model = integration_exporter::spec::Model::from_text(&integration_exporter::spec::SourceText {
        name: "spec.yaml".into(),
        text: text.into(),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let pack = model.enabled_signals().find(|s| s.signal.id == "salesforce_incidents.api_usage_oauth").unwrap();
    let tested = fixture_model("salesforce_limits_oauth.yaml");
    assert_same_signal("salesforce pack", pack, &tested.signals[0]);
}

/// A pack's signal reads and alerts as the worked example the stand-in tests run.
fn assert_same_signal(
    what: &str,
    signal: &integration_exporter::spec::ResolvedSignal,
    twin: &integration_exporter::spec::ResolvedSignal,
) {
    assert_eq!(signal.signal.source, twin.signal.source, "{what}");
    assert_eq!(signal.signal.metrics, twin.signal.metrics, "{what}");
    let alerts = |s: &integration_exporter::spec::ResolvedSignal| {
        s.signal
            .alerts
            .iter()
            .map(|a| (a.name.clone(), a.severity, a.threshold, a.condition.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(alerts(signal), alerts(twin), "{what}");
}

fn fixture_model(name: &str) -> integration_exporter::spec::Model {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)).unwrap();
    integration_exporter::spec::Model::from_text(&integration_exporter::spec::SourceText { name: name.into(), text })
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The ETL pack's GitHub signals are what the stand-in tests above ran: same requests, same
/// values, same alerts (the Salesforce pack's OAuth signal has its own test below).
#[test]
fn pack_signals_are_the_tested_worked_examples() {
    let etl = fixture_model_text(
        "etl pack",
        "database: {url_env: UNUSED}\npacks:\n  etl_token_monitoring:\n    params: {github_repo: acme/etl}\n",
    );
    let github: Vec<integration_exporter::spec::ResolvedSignal> =
        etl.enabled_signals().filter(|s| matches!(s.signal.source, Source::Http(_))).cloned().collect();
    let tested = fixture_model("github_actions.yaml");
    assert_eq!(github.len(), 7, "etl_token_monitoring pack");
    for signal in &github {
        let name = signal.signal.id.split_once('.').unwrap().1;
        let twin = tested
            .signals
            .iter()
            .find(|s| s.signal.id.split_once('.').unwrap().1 == name)
            .unwrap_or_else(|| panic!("github_actions.yaml has no `{name}`"));
        assert_same_signal(&format!("etl_token_monitoring pack: {name}"), signal, twin);
    }
}

/// The GitHub signals of the ETL pack and its log signals, the two variants of where the token
/// refresh is read.
const GITHUB_SIGNALS: [&str; 7] = [
    "github_workflows",
    "token_refresh_workflow",
    "token_refresh_failures",
    "incremental_sync_workflow",
    "full_sync_workflow",
    "keep_alive_workflow",
    "repository_activity",
];
const LOG_SIGNALS: [&str; 3] = ["token_refresh_runs", "refresh_failed_token_valid", "token_expired_log"];

/// `signals:` overrides choosing the log variant: GitHub off, the log signals on.
fn log_variant() -> String {
    let mut out = String::from("    signals:\n");
    for (ids, on) in [(&GITHUB_SIGNALS[..], false), (&LOG_SIGNALS[..], true)] {
        for id in ids {
            out.push_str(&format!("      etl_token_monitoring.{id}: {{enabled: {on}}}\n"));
        }
    }
    out
}

/// The ETL pack reads token refresh runs from GitHub by default; the log-based variant is one
/// `signals:` override away, and then it is the one whose alerts are generated.
#[test]
fn etl_pack_reads_github_by_default_and_the_log_on_request() {
    let enabled = |spec: &str| -> Vec<String> {
        fixture_model_text("etl pack", spec).enabled_signals().map(|s| s.signal.id.clone()).collect()
    };
    let base = "database: {url_env: UNUSED}\npacks:\n  etl_token_monitoring:\n    params: {}\n";
    let default = enabled(base);
    for id in GITHUB_SIGNALS {
        assert!(default.contains(&format!("etl_token_monitoring.{id}")), "{id} on by default: {default:?}");
    }
    for id in LOG_SIGNALS {
        assert!(!default.contains(&format!("etl_token_monitoring.{id}")), "{id} off by default: {default:?}");
    }
    let logs = enabled(&format!("{base}{}", log_variant()));
    for id in LOG_SIGNALS {
        assert!(logs.contains(&format!("etl_token_monitoring.{id}")), "{id} on in the log variant: {logs:?}");
    }
    assert!(!logs.iter().any(|id| id.ends_with("_workflow") || id.ends_with("_workflows")), "{logs:?}");
}

/// With the GitHub variant (the default) the token manager logs into GitHub Actions runs, so the
/// pack's log source does not exist: nothing waits for `/var/log/etl/etl.log` and no "log
/// unreadable" alert is generated for it. Chosen, the log variant brings both back.
#[test]
fn etl_github_variant_waits_for_no_log_file() {
    use integration_exporter::generate::{plan::Plan, rule_files::rule_file};
    let api = github(Arc::new(Mutex::new(RUNS.to_string())));
    // The database signals are off: this is about files, and no database is needed for it.
    let no_sql: String = ["token_expiry", "sync_freshness", "sync_failing", "sync_failures", "recent_syncs"]
        .iter()
        .map(|id| format!("      etl_token_monitoring.{id}: {{enabled: false}}\n"))
        .collect();
    let fast: String = GITHUB_SIGNALS
        .iter()
        .map(|id| format!("      etl_token_monitoring.{id}: {{interval: 300ms, timeout: 2s}}\n"))
        .collect();
    let spec = format!(
        "packs:\n  etl_token_monitoring:\n    params: {{github_api_url: \"{}\", github_repo: acme/etl}}\n    signals:\n{no_sql}{fast}",
        api.url("")
    );
    let unreadable = |model: &integration_exporter::spec::Model| -> Vec<String> {
        rule_file(Plan::of(model).expect("generates").pack(Some("etl_token_monitoring")).expect("the pack's plan"))
            .groups
            .iter()
            .flat_map(|g| &g.rules)
            .filter(|r| r.alert == "IntegrationSourceLogUnreadable")
            .map(|r| r.labels.get("log").cloned().unwrap_or_default())
            .collect()
    };
    let model = fixture_model_text("etl pack", &spec);
    assert!(!model.logs.contains_key("etl_token_monitoring.etl"), "{:?}", model.logs.keys().collect::<Vec<_>>());
    assert_eq!(unreadable(&model), Vec::<String>::new());

    let (_dir, exporter) = serve(&spec, &[("GITHUB_TOKEN", GITHUB_TOKEN)]);
    let m = exporter.wait_for("the GitHub signals read", |m| {
        m.get("integration_etl_repository_last_push_timestamp_seconds").is_some()
            && m.get("integration_etl_token_refresh_workflow_last_run_succeeded").is_some()
    });
    assert!(!m.text.contains("integration_exporter_log_files"), "a log source is followed:\n{}", m.text);
    let output = exporter.output();
    assert!(!output.contains("/var/log/etl"), "{output}");

    // The log variant: the log source exists and its unreadable file is an alert.
    let variant = format!(
        "database: {{url_env: UNUSED}}\npacks:\n  etl_token_monitoring:\n    params: {{etl_log: /var/log/etl/etl.log}}\n{}",
        log_variant()
    );
    let model = fixture_model_text("etl pack", &variant);
    assert!(model.logs.contains_key("etl_token_monitoring.etl"));
    assert_eq!(unreadable(&model), ["etl_token_monitoring.etl"]);
}

fn fixture_model_text(name: &str, text: &str) -> integration_exporter::spec::Model {
    integration_exporter::spec::Model::from_text(&integration_exporter::spec::SourceText {
        name: name.into(),
        text: text.into(),
    })
    .unwrap_or_else(|e| panic!("{e}"))
}
