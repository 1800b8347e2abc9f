//! Fidelity of the Salesforce incidents pack: API usage equals `jq` on the same `limits` answer of
//! a real local HTTP server (sent with the token from the environment); the health probe is down
//! on an error, a hang past the timeout and a refused connection; log counters and the latency
//! histogram equal the greps (and an awk over `duration_ms`) on the same file.

use crate::support;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use integration_exporter::sources::http::HttpPoller;
use integration_exporter::sources::logs::LogRunner;
use integration_exporter::spec::{Model, ResolvedSignal};
use integration_exporter::state::SampleValue;
use support::fidelity::*;
use support::{HttpServer, Reply, jq};

fn spec(params: &str, signals: &str) -> String {
    format!("packs:\n  salesforce_incidents:\n    params:\n{params}{signals}")
}

fn signal<'a>(model: &'a Model, id: &str) -> &'a ResolvedSignal {
    model.enabled_signals().find(|s| s.signal.id == id).unwrap_or_else(|| panic!("no {id}"))
}

/// An abridged `GET /services/data/v62.0/limits` answer.
const LIMITS: &str = r#"{
  "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
  "DailyApiRequests": {"Max": 100000, "Remaining": 14250, "Ant Migration Tool": {"Max": 0, "Remaining": 0}},
  "DailyAsyncApexExecutions": {"Max": 250000, "Remaining": 250000},
  "DataStorageMB": {"Max": 5, "Remaining": 5}
}"#;

#[tokio::test]
async fn api_usage_equals_jq_on_the_limits_answer() {
    let server = HttpServer::start(Reply::json(LIMITS));
    let model = model(&spec(&format!("      instance_url: http://{}\n", server.addr), ""));
    let env = |name: &str| (name == "SF_ACCESS_TOKEN").then(|| "00Dxx!AQ4AQ".to_string());
    let mut poller =
        HttpPoller::with_env(signal(&model, "salesforce_incidents.api_usage"), env).expect("an HTTP signal");
    let mut exported = Exported::new();
    collect(&mut exported, poller.poll().await);
    // `curl -H "Authorization: Bearer $SF_ACCESS_TOKEN" "$SF_INSTANCE_URL/services/data/v62.0/limits"`
    let head = server.requests().pop().unwrap().head;
    assert!(head.starts_with("GET /services/data/v62.0/limits HTTP/1.1\r\n"), "{head}");
    assert!(head.to_lowercase().contains("authorization: bearer 00dxx!aq4aq\r\n"), "{head}");
    let (max, remaining) = (jq(LIMITS, ".DailyApiRequests.Max"), jq(LIMITS, ".DailyApiRequests.Remaining"));
    assert_eq!(value(&exported, "integration_salesforce_api_requests_limit", &[]), max);
    assert_eq!(value(&exported, "integration_salesforce_api_requests_used", &[]), max - remaining);
    assert!((max - remaining) / max > 0.8, "the alert's ratio is over 80% on this answer");

    // An expired token: 401, no usage numbers are invented, the error is counted.
    server.set(Reply { status: 401, body: r#"[{"errorCode":"INVALID_SESSION_ID"}]"#.into(), delay: Duration::ZERO });
    let mut exported = Exported::new();
    collect(&mut exported, poller.poll().await);
    let errors = &exported["integration_exporter_http_errors_total"];
    let auth_errors: Vec<(&Vec<(String, String)>, &f64)> =
        errors.iter().filter(|(l, _)| l.iter().any(|(k, v)| k == "kind" && v == "auth")).collect();
    assert_eq!(*auth_errors[0].1, 1.0);
}

#[tokio::test]
async fn health_probe_is_down_on_errors_hangs_and_refusals() {
    let server = HttpServer::start(Reply { status: 200, body: "OK".into(), delay: Duration::ZERO });
    let signals = "    signals:\n      salesforce_incidents.server_health: {timeout: 300ms}\n";
    let up_model = model(&spec(&format!("      health_url: {}\n", server.url("/health")), signals));
    let mut poller = HttpPoller::new(signal(&up_model, "salesforce_incidents.server_health")).expect("an HTTP signal");
    let mut poll = async || {
        let mut exported = Exported::new();
        collect(&mut exported, poller.poll().await);
        (
            value(&exported, "integration_salesforce_mcp_server_up", &[]),
            value(&exported, "integration_salesforce_mcp_server_response_seconds", &[]),
        )
    };
    // A plain-text health answer is fine: a probe does not need JSON.
    assert_eq!(poll().await.0, 1.0);
    server.set(Reply { status: 503, body: "Service Unavailable".into(), delay: Duration::ZERO });
    assert_eq!(poll().await.0, 0.0);
    server.set(Reply { status: 200, body: "OK".into(), delay: Duration::from_secs(2) });
    let (up, seconds) = poll().await;
    assert_eq!(up, 0.0);
    assert!((0.25..1.5).contains(&seconds), "bounded by the timeout: {seconds}");
    server.set(Reply { status: 200, body: "OK".into(), delay: Duration::ZERO });
    assert_eq!(poll().await.0, 1.0, "recovers");

    let port = support::free_port();
    let down = model(&spec(&format!("      health_url: http://127.0.0.1:{port}/health\n"), signals));
    let mut refused = HttpPoller::new(signal(&down, "salesforce_incidents.server_health")).expect("an HTTP signal");
    let mut exported = Exported::new();
    collect(&mut exported, refused.poll().await);
    assert_eq!(value(&exported, "integration_salesforce_mcp_server_up", &[]), 0.0);
}

/// The Python service's lines (`%(asctime)s %(levelname)s %(name)s: %(message)s`).
fn service_line(i: u64) -> String {
    let ts = format!("2026-02-06 {:02}:{:02}:{:02},{:03}", 12 + i / 3600, (i / 60) % 60, i % 60, i % 1000);
    let duration_ms = (i * 7919) % 14000 + 50;
    match i % 10 {
        0 => format!("{ts} ERROR shared.auth: SalesforceAuthError: invalid_grant expired access/refresh token"),
        1 if i % 20 == 1 => {
            format!("{ts} ERROR shared.auth: SalesforceAuthError: INVALID_SESSION_ID Session expired or invalid")
        }
        1 => format!("{ts} ERROR shared.auth: SalesforceAuthError: token endpoint returned HTTP 503"),
        2..=5 => format!("{ts} INFO agent.openai: openai request model=gpt-4o status=200 duration_ms={duration_ms}"),
        6 => format!(
            "{ts} WARNING agent.openai: openai request model=gpt-4o status=429 duration_ms={}",
            duration_ms / 10
        ),
        7 if i % 30 == 7 => {
            format!("{ts} ERROR agent.openai: openai request model=gpt-4o-mini status=error duration_ms=30001")
        }
        7 => format!(
            "{ts} INFO agent.openai: openai request model=gpt-4o-mini status=200 duration_ms={}.5",
            duration_ms / 3
        ),
        // Tools called as unevenly as real ones: a few hot, most cold.
        8 => {
            let tool = TOOLS[((i / 10) % 13).min(6) as usize];
            format!(
                "{ts} INFO mcp_servers.salesforce_crm.server: mcp.tool.call mcp.tool.name={tool} duration_ms={duration_ms}"
            )
        }
        _ => match i % 80 {
            9 | 49 => format!(
                "{ts} ERROR mcp_servers.salesforce_crm.server: tool list_opportunities ErrorResponse: REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded."
            ),
            // The HTTP client's line of a 429, which the agent's request line reports too.
            19 | 59 => format!(
                "{ts} INFO httpx: HTTP Request: POST https://fleet-ai.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21 \"HTTP/1.1 429 Too Many Requests\""
            ),
            29 => format!(
                "{ts} INFO httpx: HTTP Request: POST https://fleet-ai.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21 \"HTTP/1.1 200 OK\""
            ),
            // The runbook's first symptom of a failed refresh: tools answering with the code.
            39 => format!(
                "{ts} ERROR mcp_servers.salesforce_crm.server: tool search_accounts ErrorResponse: INVALID_SESSION_ID: Session expired or invalid"
            ),
            // A tool that passes the exception on: one line, one failure.
            79 => format!(
                "{ts} ERROR mcp_servers.salesforce_crm.server: tool run_soql ErrorResponse: SalesforceAuthError: invalid_grant: expired access/refresh token"
            ),
            // Neither a tool call nor a limit: the words alone, in other places.
            _ => format!(
                "{ts} INFO mcp_servers.salesforce_crm.server: tool registry loaded (mcp.tool handlers: 7) limit=REQUEST_LIMIT"
            ),
        },
    }
}

const TOOLS: [&str; 7] = [
    "get_pipeline_summary",
    "get_case_queue_summary",
    "search_accounts",
    "list_opportunities",
    "get_account.details",
    "run_soql",
    "knowledge_sync:batch",
];

fn sh(script: &str) -> f64 {
    let out = support::program("sh").arg("-c").arg(script).output().expect("sh");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or_else(|_| panic!("{script}: {out:?}"))
}

/// 3000 service lines in a real file, read by the pack's log rules: the file (kept while the
/// directory lives), the runner that read it and what it exported.
fn service_log_exported() -> (tempfile::TempDir, std::path::PathBuf, LogRunner, Exported) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.log");
    let mut file = std::fs::File::create(&path).unwrap();
    for i in 0..3000 {
        writeln!(file, "{}", service_line(i)).unwrap();
    }
    file.flush().unwrap();
    let model = model(&spec(&format!("      server_log: {}\n", path.display()), ""));
    let mut runner = log_runner(&model, "salesforce_incidents.server");
    drain(&mut runner);
    let exported = exported_logs(&runner);
    (dir, path, runner, exported)
}

#[test]
fn log_counters_and_latency_histogram_equal_the_greps() {
    let (_dir, path, runner, exported) = service_log_exported();
    let files: [&Path; 1] = [&path];
    let p = path.display();

    // The runbook's symptoms: SalesforceAuthError, and tools answering ErrorResponse with
    // INVALID_SESSION_ID or invalid_grant; a line with both is one failure.
    let failures = "integration_salesforce_oauth_refresh_failures_total";
    let auth_lines = "grep -E 'SalesforceAuthError|ErrorResponse.*(INVALID_SESSION_ID|invalid_grant)'";
    let grep_auth = |then: &str| sh(&format!("{auth_lines} '{p}' | {then}"));
    assert_eq!(value(&exported, failures, &[("error", "invalid_grant")]), grep_auth("grep -c invalid_grant"));
    assert_eq!(value(&exported, failures, &[("error", "INVALID_SESSION_ID")]), grep_auth("grep -c INVALID_SESSION_ID"));
    assert_eq!(
        value(&exported, failures, &[("error", "other")]),
        grep_auth("grep -v invalid_grant | grep -vc INVALID_SESSION_ID")
    );
    assert_eq!(exported[failures].values().sum::<f64>(), grep_auth("wc -l"));
    let tool_errors = sh(&format!("grep ErrorResponse '{p}' | grep -cE 'INVALID_SESSION_ID|invalid_grant'"));
    assert!(tool_errors > 0.0, "tool answers with the codes are in the file");
    assert!(
        exported[failures].values().sum::<f64>() > grep_count("SalesforceAuthError", &files),
        "tool ErrorResponses without SalesforceAuthError count too"
    );
    assert!(
        sh(&format!("grep ErrorResponse '{p}' | grep -c REQUEST_LIMIT_EXCEEDED")) > 0.0,
        "tool errors of another kind are in the file, and are no auth failure"
    );

    let requests = "integration_salesforce_model_requests_total";
    let success = sh(&format!("grep 'openai request' '{p}' | grep -c 'status=2[0-9][0-9] '"));
    let all = grep_count("openai request", &files);
    assert_eq!(value(&exported, requests, &[("result", "success")]), success);
    assert_eq!(value(&exported, requests, &[("result", "error")]), all - success);

    // The histogram: every request observed once, in seconds, bucketed as awk counts them.
    let families = runner.families();
    let hist = families.iter().find(|f| f.name == "integration_salesforce_model_request_duration_seconds").unwrap();
    let SampleValue::Histogram { buckets, sum, count } = &hist.samples[0].value else { panic!("histogram") };
    assert_eq!(*count as f64, all);
    let durations = format!("grep 'openai request' '{p}' | sed 's/.*duration_ms=//'");
    for (bound, n) in buckets {
        let expected = sh(&format!("{durations} | awk '$1 / 1000 <= {bound} {{c++}} END {{print c+0}}'"));
        assert_eq!(*n as f64, expected, "le={bound}");
    }
    let total_ms = sh(&format!("{durations} | awk '{{s += $1}} END {{printf \"%.3f\", s}}'"));
    assert!((sum - total_ms / 1000.0).abs() < 1e-6, "{sum} vs {total_ms}");
    assert!(buckets.iter().any(|(b, _)| *b == 10.0), "10 s is a bucket bound");
    let over_10s = sh(&format!("{durations} | awk '$1 > 10000 {{c++}} END {{print c+0}}'"));
    assert!(over_10s > 0.0 && over_10s < all, "both sides of 10 s are exercised");
}

#[test]
fn limit_errors_tool_calls_and_model_429s_equal_the_greps() {
    let (_dir, path, _runner, exported) = service_log_exported();
    let p = path.display();

    // "MCP tools return `ErrorResponse` with message containing "REQUEST_LIMIT_EXCEEDED"".
    let limit = sh(&format!("grep -cw REQUEST_LIMIT_EXCEEDED '{p}'"));
    assert_eq!(value(&exported, "integration_salesforce_request_limit_exceeded_total", &[]), limit);
    assert!(limit > 0.0 && limit < sh(&format!("grep -c REQUEST_LIMIT '{p}'")), "a near miss is in the file");

    // "Identify hot tools": `summarize count() by mcp.tool.name`, as grep | sort | uniq -c.
    let out = support::program("sh")
        .arg("-c")
        .arg(format!("grep -o 'mcp.tool.name=[^ ]*' '{p}' | cut -d= -f2 | sort | uniq -c"))
        .output()
        .unwrap();
    let by_tool: Vec<(String, f64)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let (n, tool) = l.trim().split_once(' ').unwrap();
            (tool.to_string(), n.parse().unwrap())
        })
        .collect();
    let calls = "integration_salesforce_mcp_tool_calls_total";
    assert_eq!(by_tool.len(), TOOLS.len(), "{by_tool:?}");
    assert_eq!(exported[calls].len(), TOOLS.len(), "one series per tool: {:?}", exported[calls]);
    for (tool, n) in &by_tool {
        assert_eq!(value(&exported, calls, &[("tool", tool)]), *n, "{tool}");
    }
    let counts: Vec<f64> = by_tool.iter().map(|(_, n)| *n).collect();
    let (hot, cold) = (counts.iter().cloned().fold(0.0, f64::max), counts.iter().cloned().fold(f64::MAX, f64::min));
    assert!(hot > 2.0 * cold, "the top tools stand out: {by_tool:?}");

    // "`429 Too Many Requests` errors in logs": the agent's requests answered 429, each once;
    // the HTTP client's line of the same answer is not a second one.
    let model_429 = sh(&format!("grep 'openai request' '{p}' | grep -c 'status=429 '"));
    assert_eq!(value(&exported, "integration_salesforce_model_rate_limited_total", &[]), model_429);
    let httpx_429 = sh(&format!("grep -c '429 Too Many Requests' '{p}'"));
    assert!(httpx_429 > 0.0 && model_429 > 0.0, "both line shapes are in the file");
    // The HTTP client's lines are no model requests of their own: the error rate is unchanged.
    let requests = "integration_salesforce_model_requests_total";
    assert_eq!(exported[requests].values().sum::<f64>(), sh(&format!("grep -c 'openai request' '{p}'")));
}

/// Tool names come from the line: a flood of distinct names stays within the log source's
/// series cap, the rest counted in one overflow series, none lost.
#[test]
fn tool_name_label_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.log");
    let mut file = std::fs::File::create(&path).unwrap();
    let names = 500;
    for i in 0..names {
        writeln!(file, "2026-02-06 12:00:00,000 INFO mcp_servers.salesforce_crm.server: mcp.tool.call mcp.tool.name=generated_tool_{i}").unwrap();
    }
    // A name longer than the pattern takes is cut to 64 bytes, never a line's worth of text.
    writeln!(file, "2026-02-06 12:00:01,000 INFO x: mcp.tool.call mcp.tool.name={}", "t".repeat(5000)).unwrap();
    file.flush().unwrap();
    let model = model(&spec(&format!("      server_log: {}\n", path.display()), ""));
    let mut runner = log_runner(&model, "salesforce_incidents.server");
    drain(&mut runner);
    let exported = exported_logs(&runner);
    let series = &exported["integration_salesforce_mcp_tool_calls_total"];
    let cap = integration_exporter::sources::logs::rules::MAX_SERIES_PER_METRIC;
    assert!(series.len() <= cap + 1, "{} series", series.len());
    assert_eq!(series.values().sum::<f64>(), names as f64 + 1.0, "every call is counted");
    assert!(series.keys().all(|l| l[0].1.len() <= 64), "label values are bounded");
}

/// The MCP server's memory where its health endpoint reports it, at the path the user names.
#[tokio::test]
async fn server_memory_equals_jq_on_the_health_answer() {
    let body = r#"{"status": "ok", "transport": "sse", "memory": {"rss_bytes": 512753664, "vms_bytes": 1409286144},
                   "process": {"pid": 41, "memory_rss": 488000000}}"#;
    let server = HttpServer::start(Reply::json(body));
    let on = "    signals:\n      salesforce_incidents.server_memory: {enabled: true}\n";
    let url = server.url("/health");
    for (params, path) in [
        (format!("      health_url: {url}\n"), ".memory.rss_bytes"),
        (format!("      health_url: {url}\n      memory_path: .process.memory_rss\n"), ".process.memory_rss"),
    ] {
        let model = model(&spec(&params, on));
        let mut memory = HttpPoller::new(signal(&model, "salesforce_incidents.server_memory")).expect("an HTTP signal");
        let mut exported = Exported::new();
        collect(&mut exported, memory.poll().await);
        // `curl $HEALTH_URL | jq PATH`
        assert_eq!(value(&exported, "integration_salesforce_mcp_server_memory_bytes", &[]), jq(body, path), "{path}");
        // The health probe reads the same answer.
        let mut health = HttpPoller::new(signal(&model, "salesforce_incidents.server_health")).expect("an HTTP signal");
        let mut exported = Exported::new();
        collect(&mut exported, health.poll().await);
        assert_eq!(value(&exported, "integration_salesforce_mcp_server_up", &[]), 1.0);
    }
    // Off by default: a plain `OK` health answer must not make a path error of a default spec.
    let model = model(&spec("      {}\n", ""));
    assert!(model.enabled_signals().all(|s| s.signal.id != "salesforce_incidents.server_memory"));
}
