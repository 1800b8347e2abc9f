//! Every check the five runbooks give an operator is accounted for: watched by a
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

const TOKEN_REFRESH: &[(&str, Cover)] = &[
    ("00000000000021_phase4_email_transport_layer.sql", Action("a migration file: where the tables come from")),
    ("00000000000023_email_watcher_enhancements.sql", Action("a migration file: where the tables come from")),
    ("20260206000000_worker_locks_table.sql", Action("a migration file: where the tables come from")),
    ("apps/api/integrations/graph_client.py:119", Action("a source location the runbook points a developer to")),
    ("apps/api/integrations/graph_client.py:170", Action("a source location the runbook points a developer to")),
    ("apps/api/integrations/graph_client.py:296", Action("a source location the runbook points a developer to")),
    ("apps/api/integrations/graph_client.py:648", Action("a source location the runbook points a developer to")),
    ("apps/api/integrations/graph_client.py:671", Action("a source location the runbook points a developer to")),
    ("apps/api/integrations/graph_client.py:695", Action("a source location the runbook points a developer to")),
    ("apps/api/integrations/graph_client.py:739", Action("a source location the runbook points a developer to")),
    ("apps/api/integrations/graph_client.py:960", Action("a source location the runbook points a developer to")),
    ("apps/api/workers/email_watcher_worker.py:207", Action("a source location the runbook points a developer to")),
    ("apps/api/workers/email_watcher_worker.py:66", Action("a source location the runbook points a developer to")),
    ("apps/web/src/components/email/EmailSurface.tsx:361", Listed("the degraded banner")),
    ("3. User Stuck in Degraded State: -- Check backoff status", Listed("seconds_until_retry")),
    ("3. User Stuck in Degraded State: -- Check watcher status", Listed("WHERE user_id = '<USER_ID>'")),
    ("3. User Stuck in Degraded State: -- Manually clear degraded status", Action("recovery: an UPDATE")),
    ("4. Multiple Workers Fighting for Lock: -- Check for stuck lease", Signal("token_refresh.heartbeat_lock")),
    ("Force Token Refresh (Ad-hoc): -- Trigger immediate refresh by clearing retry state", Action("an UPDATE")),
    ("Key Queries: -- Check watcher selection RPC", Listed("get_email_watchers_due_for_sync()")),
    (
        "SELECT count(*) FROM auth_microsoft_tokens WHERE expires_at < now() + interval '10 minutes'",
        Signal("token_refresh.expiring_tokens"),
    ),
    ("SELECT count(*) FROM email_watchers WHERE sync_status = 'degraded'", Signal("token_refresh.degraded_watchers")),
    ("SELECT count(*) as degraded", Signal("token_refresh.degraded_watchers")),
    ("SELECT count(*) as expiring_soon", Signal("token_refresh.expiring_tokens")),
    ("SELECT count(*) as in_backoff", Signal("token_refresh.tokens_in_backoff")),
    ("429", Signal("token_refresh.rate_limited_failures")),
    ("500/503", Signal("token_refresh.error_classes")),
    ("consent_required", Signal("token_refresh.error_classes")),
    ("invalid_grant", Signal("token_refresh.error_classes")),
    ("is_revoked = true", Signal("token_refresh.revoked_tokens")),
    ("next_retry_at", Signal("token_refresh.tokens_in_backoff")),
    ("sync_status = 'degraded'", Signal("token_refresh.degraded_watchers")),
    ("auth_microsoft_tokens", Signal("token_refresh.expiring_tokens")),
    ("email_watchers", Signal("token_refresh.degraded_watchers")),
    ("worker_locks", Signal("token_refresh.heartbeat_lock")),
    ("TOKEN_REFRESH_BATCH_LIMIT", Listed("TOKEN_REFRESH_BATCH_LIMIT")),
    ("export TOKEN_REFRESH_BATCH_LIMIT=0", Action("pausing the worker: a setting to choose")),
    ("export TOKEN_REFRESH_BATCH_LIMIT=25", Action("recovery: a setting to choose")),
    ("export TOKEN_REFRESH_BATCH_LIMIT=50", Action("resuming the worker: a setting to choose")),
    ("export TOKEN_REFRESH_HEARTBEAT_ENABLED=false", Action("pausing the worker: a setting to choose")),
    ("export TOKEN_REFRESH_HEARTBEAT_ENABLED=true", Action("recovery: a setting to choose")),
    ("export TOKEN_REFRESH_RATE_LIMIT_REQUESTS=150", Action("recovery: a setting to choose")),
    ("grep \"M6:RateLimit\" /var/log/email_watcher.log | tail -20", Signal("token_refresh.rate_limit_usage")),
    ("grep \"ProactiveRefresh ✗\" /var/log/email_watcher.log | tail -50", Signal("token_refresh.success_rate")),
    ("grep \"ProactiveRefresh\" /var/log/email_watcher.log | tail -5", Signal("token_refresh.heartbeat_lag")),
    (
        "grep \"ProactiveRefresh.*Cycle complete\" /var/log/email_watcher.log | tail -5",
        Signal("token_refresh.heartbeat_lag"),
    ),
    ("grep \"ProactiveRefresh.*failed\" /var/log/email_watcher.log | wc -l", Signal("token_refresh.success_rate")),
    ("grep \"ProactiveRefresh.*refreshed\" /var/log/email_watcher.log | wc -l", Signal("token_refresh.success_rate")),
    ("grep \"acquire lock\" /var/log/email_watcher.log | tail -20", Signal("token_refresh.lock_contention")),
    ("grep \"rate_limit_budget\" /var/log/email_watcher.log | tail -1", Signal("token_refresh.rate_limit_usage")),
    ("grep \"rate_limit_budget\" logs", Signal("token_refresh.rate_limit_usage")),
    ("grep \"total_attempts.*max_requests\" logs | tail -1", Signal("token_refresh.rate_limit_usage")),
    ("rate_limit_budget.total_attempts / rate_limit_budget.max_requests", Signal("token_refresh.rate_limit_usage")),
    ("ps aux | grep email_watcher_worker", Listed("ps aux | grep email_watcher_worker")),
    ("psql -c \"DELETE FROM worker_locks WHERE lock_name = 'token_refresh_heartbeat';\"", Action("recovery: a DELETE")),
    (
        "psql -c \"SELECT * FROM worker_locks WHERE lock_name = 'token_refresh_heartbeat';\"",
        Signal("token_refresh.heartbeat_lock"),
    ),
    ("psql -c \"SELECT *,", Signal("token_refresh.heartbeat_lock")),
    (
        "psql -c \"SELECT count(*) FROM auth_microsoft_tokens WHERE next_retry_at > now();\"",
        Signal("token_refresh.tokens_in_backoff"),
    ),
    ("psql -c \"SELECT last_refresh_error, count(*) FROM auth_microsoft_tokens", Signal("token_refresh.error_classes")),
    ("psql <<EOF", Signal("token_refresh.expiring_tokens")),
];

const CALENDAR: &[(&str, Cover)] = &[
    (
        "Adapter Failures: SELECT provider FROM external_calendar_connections WHERE id = '<connection_id>';",
        Listed("'<connection_id>'"),
    ),
    (
        "Add Provider to Allowlist: SELECT id, email FROM profiles WHERE email = '<provider_email>';",
        Listed("`profiles` by email"),
    ),
    ("CALENDAR_ALLOWLIST_CONNECTION_IDS", Listed("CALENDAR_ALLOWLIST_CONNECTION_IDS")),
    ("CALENDAR_ALLOWLIST_PROVIDER_IDS", Listed("CALENDAR_ALLOWLIST_PROVIDER_IDS")),
    ("CALENDAR_JOBS_ENABLED=false", Action("the kill switch: a setting to choose")),
    ("CALENDAR_JOBS_ENABLED=true", Action("rollout: a setting to choose")),
    ("CALENDAR_OAUTH_ENABLED=false", Action("the kill switch: a setting to choose")),
    ("CALENDAR_OAUTH_ENABLED=true", Action("rollout: a setting to choose")),
    ("CALENDAR_SYNC_ENABLED=false", Action("the kill switch: a setting to choose")),
    ("CALENDAR_SYNC_ENABLED=true", Action("rollout: a setting to choose")),
    ("CALENDAR_WEBHOOK_ENABLED=false", Action("the kill switch: a setting to choose")),
    ("CALENDAR_WEBHOOK_ENABLED=true", Action("rollout: a setting to choose")),
    ("Check Error Logs: SELECT", Signal("calendar_sync.connection_errors")),
    ("Check Sync Status: SELECT", Signal("calendar_sync.freshness")),
    ("Data Recovery: UPDATE external_calendar_connections", Action("recovery: an UPDATE")),
    ("Data Recovery: UPDATE external_calendar_events", Action("recovery: an UPDATE")),
    ("Database Errors: \\d external_calendar_connections", Listed("Verify table schema is up to date")),
    (
        "Enable Backoff for Specific Connection: UPDATE external_calendar_connections",
        Action("a kill switch: an UPDATE"),
    ),
    ("GOOGLE_CLIENT_ID", Listed("GOOGLE_CLIENT_ID")),
    ("GOOGLE_CLIENT_SECRET", Listed("GOOGLE_CLIENT_SECRET")),
    ("GOOGLE_REDIRECT_URI", Listed("GOOGLE_REDIRECT_URI")),
    ("Identify Stuck Syncs: SELECT", Signal("calendar_sync.stuck_syncs")),
    (
        "OAuth Token Expired: SELECT id, provider_id, token_expiry, NOW() as current_time",
        Signal("calendar_sync.expired_tokens"),
    ),
    ("OAuth Token Expired: UPDATE external_calendar_connections", Action("recovery: an UPDATE")),
    ("POST /api/admin/calendar/jobs/run", Listed("POST /api/admin/calendar/jobs/run")),
    ("Rate Limiting: SELECT id, provider_id, backoff_until, error_count", Signal("calendar_sync.backoff")),
    ("backoff_until", Signal("calendar_sync.backoff")),
    ("calendar_sync", Signal("calendar_sync.error_logs")),
    ("connections_failed", Listed("connections_failed")),
    ("error", Signal("calendar_sync.error_logs")),
    ("error_code", Signal("calendar_sync.error_logs")),
    ("error_count", Signal("calendar_sync.connection_errors")),
    ("errors", Listed("`errors`")),
    ("existing_id,new_provider_id", Action("an allowlist value to write: a setting to choose")),
    ("last_error", Signal("calendar_sync.connection_errors")),
    ("last_synced_at", Signal("calendar_sync.freshness")),
    ("level: 'error'", Signal("calendar_sync.error_logs")),
    ("metadata", Listed("`metadata`")),
    ("summary", Listed("the job runner's summary")),
    ("sync_needed", Signal("calendar_sync.sync_needed")),
];

const MICROSOFT: &[(&str, Cover)] = &[
    ("curl -X GET http://localhost:3000/api/queue/dead-letter \\", Listed("GET /api/queue/dead-letter")),
    ("curl -X GET https://graph.microsoft.com/v1.0/subscriptions \\", Listed("GET /v1.0/subscriptions")),
    ("curl -X POST http://localhost:3000/api/queue/retry-all \\", Action("recovery: a POST")),
    ("curl -X POST http://localhost:3000/api/queue/retry/JOB_ID \\", Action("recovery: a POST")),
    ("curl -X POST http://localhost:3000/api/sync/delta \\", Action("recovery: a POST")),
    ("curl -X POST http://localhost:3000/api/sync/full \\", Action("recovery: a POST")),
    ("curl -X POST http://localhost:3000/api/sync/reset \\", Action("recovery: a POST")),
    (
        "curl -X POST https://login.microsoftonline.com/YOUR_TENANT_ID/oauth2/v2.0/token \\",
        Listed("getting and decoding a token by hand"),
    ),
    ("curl -X POST https://your-domain.com/api/webhooks/teams \\", Listed("the webhook endpoint test")),
    ("curl http://localhost:3000/api/metrics/queue | jq '.pending'", Signal("microsoft_integration.job_queue")),
    ("curl http://localhost:3000/api/metrics/sync | jq", Listed("/api/metrics/sync")),
    ("curl http://localhost:3000/api/sync/state/user@example.com/messages \\", Listed("/api/sync/state/USER/RESOURCE")),
    (
        "kubectl create secret generic microsoft-graph-secret \\",
        Action("recovery: rotating the client secret, a write"),
    ),
    ("kubectl exec -it postgres-0 -- psql -U fleetadmin -d fleetdb \\", Action("recovery: TRUNCATE of the sync state")),
    (
        "kubectl logs -f deployment/fleet-api -n fleet-management | grep -i microsoft",
        Signal("microsoft_integration.graph_api_requests"),
    ),
    ("kubectl logs deployment/fleet-api | grep \"429\"", Signal("microsoft_integration.rate_limit_hits")),
    ("kubectl logs deployment/fleet-api | grep \"429\" | wc -l", Signal("microsoft_integration.rate_limit_hits")),
    ("kubectl logs deployment/fleet-api | grep \"Graph API\" | \\", Signal("microsoft_integration.graph_api_requests")),
    (
        "kubectl logs deployment/fleet-api | grep \"Graph API\" | tail -20",
        Signal("microsoft_integration.graph_api_requests"),
    ),
    (
        "kubectl logs deployment/fleet-api | grep \"Webhook\" | tail -20",
        Signal("microsoft_integration.webhook_notifications"),
    ),
    ("kubectl logs deployment/fleet-api | grep \"webhook\" -i", Signal("microsoft_integration.webhook_notifications")),
    ("kubectl rollout restart deployment/fleet-api -n fleet-management", Action("recovery: a restart")),
    ("kubectl scale deployment/fleet-api --replicas=0", Action("recovery: a write")),
    ("kubectl scale deployment/fleet-api --replicas=3", Action("recovery: a write")),
    ("kubectl scale deployment/sync-worker --replicas=0", Action("recovery: a write")),
    ("kubectl scale deployment/sync-worker --replicas=1", Action("recovery: a write")),
    ("kubectl scale deployment/sync-worker --replicas=1 -n fleet-management", Action("recovery: a write")),
    ("kubectl set env deployment/fleet-api ENABLE_REALTIME_SYNC=false", Action("a setting to choose")),
    ("kubectl set env deployment/fleet-api ENABLE_REALTIME_SYNC=true", Action("a setting to choose")),
    ("kubectl set env deployment/sync-worker SYNC_INTERVAL_MINUTES=30", Action("a setting to choose")),
    ("npm run setup:webhooks", Action("recovery: creates subscriptions")),
    ("npm run verify:integration", Listed("npm run verify:integration")),
    ("npm run webhooks:cleanup", Action("recovery: deletes subscriptions")),
];

/// The checks a runbook gives: inline code outside code blocks, each command of a shell block
/// (a line starting with a program the runbook runs, or a SQL statement typed into one), and each
/// query block (SQL, KQL) as `<heading>: <its first line>`.
fn checks(markdown: &str) -> BTreeSet<String> {
    let inline = regex::Regex::new(r"`([^`]+)`").unwrap();
    let programs = [
        "gh ", "az ", "curl ", "python ", "ps ", "SELECT ", "UPDATE ", "kubectl ", "npm ", "psql ", "grep ", "export ",
    ];
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
    check_runbook("token_refresh", TOKEN_REFRESH, &doc, &mut problems);
    check_runbook("calendar_sync", CALENDAR, &doc, &mut problems);
    check_runbook("microsoft_integration", MICROSOFT, &doc, &mut problems);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
