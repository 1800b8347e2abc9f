//! Every check the ETL and Salesforce runbooks give an operator is accounted for: watched by a
//! signal, listed in docs/packs.md's "What the packs cannot observe" with its reason, or an action (a
//! write, a setting to choose) rather than something to look at. The checks are read from the
//! runbooks themselves (inline code, the commands of their shell blocks, each query block by its
//! heading), so a check added to a runbook fails this test until it is placed.

use std::collections::BTreeSet;
use std::path::Path;

use integration_exporter::spec::builtin_pack;

/// Where a runbook check is accounted for.
enum Cover {
    /// The signal (by id) that watches it.
    Signal(&'static str),
    /// Words of its line in docs/packs.md's "cannot observe" list.
    Listed(&'static str),
    /// Why it is no check: something the runbook tells a person to do or to set.
    Action(&'static str),
}
use Cover::*;

const ETL: &[(&str, Cover)] = &[
    (".github/workflows/keep-alive.yml", Signal("etl_token_monitoring.keep_alive_workflow")),
    (".github/workflows/workflow-health-check.yml", Signal("etl_token_monitoring.github_workflows")),
    ("src/auth/token-manager.ts", Action("the source file the runbook's code excerpts come from")),
    ("gh run view [run-id] --log", Listed("gh run view [run-id] --log")),
    ("gh workflow run keep-alive.yml", Action("a manual trigger: a write")),
    ("gh workflow list --all", Signal("etl_token_monitoring.github_workflows")),
    ("gh run list --workflow=\"token-refresh.yml\" --limit 5", Signal("etl_token_monitoring.token_refresh_workflow")),
    ("SELECT platform, expires_at,", Signal("etl_token_monitoring.token_expiry")),
    ("gh run list --limit 20", Listed("gh run list --limit 20")),
    ("gh run list --status failure --limit 10", Signal("etl_token_monitoring.token_refresh_failures")),
    ("gh workflow enable token-refresh.yml", Action("recovery: a write; the state shows in github_workflows")),
    ("gh workflow enable etl-incremental-sync-v2.yml", Action("recovery: a write")),
    ("gh workflow enable etl-daily-full-sync-v2.yml", Action("recovery: a write")),
    ("gh workflow enable keep-alive.yml", Action("recovery: a write")),
    ("gh workflow enable workflow-health-check.yml", Action("recovery: a write")),
    ("gh workflow run token-refresh.yml", Action("recovery: a write")),
    ("gh workflow run etl-incremental-sync-v2.yml", Action("recovery: a write")),
    ("curl -G \"https://graph.facebook.com/oauth/access_token\" \\", Action("recovery: a person exchanging a token")),
    ("If Meta Token Expires: UPDATE marketing.platform_tokens", Action("recovery: the UPDATE with the new token")),
    ("gh workflow run etl-incremental-sync-v2.yml --field platform=meta", Action("recovery: a write")),
    ("Check Current Token Status: SELECT", Signal("etl_token_monitoring.token_expiry")),
    ("Check Recent Sync Activity: SELECT", Signal("etl_token_monitoring.recent_syncs")),
    ("Check Sync Failures: SELECT", Signal("etl_token_monitoring.sync_failures")),
];

const SALESFORCE: &[(&str, Cover)] = &[
    ("salesforce-api-rate-limit", Signal("salesforce_incidents.api_usage")),
    ("ErrorResponse", Signal("salesforce_incidents.request_limit_exceeded")),
    ("ApiUsageTracker", Listed("ApiUsageTracker")),
    ("Immediate Actions: customMetrics", Listed("`salesforce.api_calls`")),
    ("Immediate Actions: customEvents", Listed("`customEvents`")),
    ("MCP_RATE_LIMIT_MODE=restrictive", Listed("MCP_RATE_LIMIT_MODE")),
    ("knowledge_sync", Listed("`knowledge_sync` cron")),
    ("salesforce.api_calls", Listed("salesforce.api_calls")),
    ("LIMIT", Action("per-tool LIMIT defaults: a setting to choose")),
    ("get_pipeline_summary", Signal("salesforce_incidents.mcp_tool_calls")),
    ("get_case_queue_summary", Signal("salesforce_incidents.mcp_tool_calls")),
    ("oauth-refresh-failure", Signal("salesforce_incidents.oauth_refresh_failures")),
    ("shared.auth.refresh_access_token()", Signal("salesforce_incidents.oauth_refresh_failures")),
    ("SalesforceAuthError", Signal("salesforce_incidents.oauth_refresh_failures")),
    ("curl -H \"Authorization: Bearer $SF_ACCESS_TOKEN\" \\", Signal("salesforce_incidents.api_usage")),
    (
        "curl -X POST https://login.salesforce.com/services/oauth2/token \\",
        Signal("salesforce_incidents.api_usage_oauth"),
    ),
    (
        "python -c \"from shared.auth import build_authorization_url; print(build_authorization_url())\"",
        Listed("the authorization URL"),
    ),
    (
        "az keyvault secret set --name sf-access-token --value <new_token> --vault-name <vault>",
        Listed("az keyvault secret set"),
    ),
    ("SF_CLIENT_ID", Listed("SF_CLIENT_ID")),
    ("SF_CLIENT_SECRET", Listed("SF_CLIENT_SECRET")),
    ("oauth.refresh.failure", Listed("oauth.refresh.failure")),
    ("mcp-server-health", Signal("salesforce_incidents.server_health")),
    (
        "python -m mcp_servers.salesforce_crm.server 2>&1 | tail -50",
        Listed("python -m mcp_servers.salesforce_crm.server"),
    ),
    ("az webapp log tail --name <app-name> --resource-group <rg-name>", Listed("az webapp log tail")),
    ("ps aux | grep mcp_servers", Listed("ps aux | grep mcp_servers")),
    ("az webapp show --name <app-name> --resource-group <rg-name> --query state", Listed("az webapp show")),
    ("az webapp restart --name <app-name> --resource-group <rg-name>", Listed("az webapp restart")),
    ("requirements.txt", Listed("requirements.txt")),
    (".env.example", Listed(".env.example")),
    ("MCP_TRANSPORT=sse", Listed("MCP_TRANSPORT")),
    ("performanceCounters", Listed("performanceCounters")),
    ("openai-latency-high", Signal("salesforce_incidents.model_latency")),
    ("429 Too Many Requests", Signal("salesforce_incidents.model_rate_limited")),
    ("Immediate Actions: dependencies", Listed("`dependencies` on openai")),
    ("az cognitiveservices account show \\", Listed("az cognitiveservices account show")),
    ("AZURE_AI_MODEL_CAPACITY", Listed("AZURE_AI_MODEL_CAPACITY")),
    ("max_tokens", Action("a setting to lower, no state")),
    ("AZURE_AI_MODEL_NAME", Listed("AZURE_AI_MODEL_NAME")),
];

/// The checks a runbook gives: inline code outside code blocks, each command of a shell block
/// (a line starting with a program the runbook runs, or a SQL statement typed into one), and each
/// query block (SQL, KQL) as `<heading>: <its first line>`.
fn checks(markdown: &str) -> BTreeSet<String> {
    let inline = regex::Regex::new(r"`([^`]+)`").unwrap();
    let programs = ["gh ", "az ", "curl ", "python ", "ps ", "SELECT ", "UPDATE "];
    let mut out = BTreeSet::new();
    let mut heading = String::new();
    let mut fence: Option<String> = None;
    let mut query_starts = false;
    for line in markdown.lines() {
        let trimmed = line.trim();
        if let Some(lang) = trimmed.strip_prefix("```") {
            fence = match fence {
                Some(_) => None,
                None => {
                    query_starts = matches!(lang, "sql" | "kql");
                    Some(lang.to_string())
                }
            };
            continue;
        }
        match &fence {
            None => {
                if line.starts_with('#') {
                    heading = line.trim_start_matches('#').trim().to_string();
                }
                out.extend(inline.captures_iter(line).map(|c| c[1].to_string()));
            }
            Some(lang) if lang == "bash" => {
                if programs.iter().any(|p| trimmed.starts_with(p)) {
                    out.insert(trimmed.to_string());
                }
            }
            Some(_) => {
                if query_starts && !trimmed.is_empty() {
                    out.insert(format!("{heading}: {trimmed}"));
                    query_starts = false;
                }
            }
        }
    }
    out
}

fn check_runbook(pack: &str, table: &[(&str, Cover)], doc: &str, problems: &mut Vec<String>) {
    let def = builtin_pack(pack).unwrap().unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/runbooks").join(&def.runbook);
    let found = checks(&std::fs::read_to_string(path).unwrap());
    let placed: BTreeSet<String> = table.iter().map(|(c, _)| c.to_string()).collect();
    for check in found.difference(&placed) {
        problems.push(format!("{}: {check:?} is neither a signal, nor listed, nor an action", def.runbook));
    }
    for check in placed.difference(&found) {
        problems.push(format!("{}: {check:?} is no check of the runbook", def.runbook));
    }
    let start = doc.find("## What the packs cannot observe").expect("the cannot-observe section of docs/packs.md");
    let end = doc[start + 3..].find("\n## ").map_or(doc.len(), |e| start + 3 + e);
    // Lines of the list wrap anywhere: words are compared with their spaces folded.
    let fold = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
    let listed = fold(&doc[start..end]);
    for (check, cover) in table {
        match cover {
            Signal(id) if !def.signals.iter().any(|s| s.id == *id) => {
                problems.push(format!("{check:?}: {pack} has no signal {id}"))
            }
            Listed(words) if !listed.contains(&fold(words)) => {
                problems.push(format!("{check:?}: docs/packs.md's cannot-observe list does not name {words:?}"))
            }
            Action(why) if why.trim().is_empty() => problems.push(format!("{check:?}: an action without a reason")),
            _ => {}
        }
    }
}

#[test]
fn every_runbook_check_is_watched_listed_or_an_action() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/packs.md")).unwrap();
    let mut problems = Vec::new();
    check_runbook("etl_token_monitoring", ETL, &doc, &mut problems);
    check_runbook("salesforce_incidents", SALESFORCE, &doc, &mut problems);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
