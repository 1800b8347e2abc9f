#!/usr/bin/env python3
"""Plays the applications behind the demo: writes realistic log lines for every pack, answers
the HTTP endpoints the packs poll, and moves the demo database, so the exporter's metrics move
within a minute.

Phases repeat every DEMO_CYCLE seconds (default 240, 4 minutes): two healthy quarters, a quarter
of trouble (refresh failures and
rate limiting, degraded watchers, a stuck calendar connection, a backed-up queue, a slow model,
Salesforce tools answering INVALID_SESSION_ID, the ETL's token refresh workflow disabled on GitHub
and its runs failing),
then a quarter of recovery. The worker log is rotated by rename every minute, as logrotate does,
and the worker reopens it a moment later."""

import json
import os
import random
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log_dir, database_url, http_port = sys.argv[1], sys.argv[2], int(sys.argv[3])
random.seed(7)
started = time.time()
CYCLE = float(os.environ.get("DEMO_CYCLE", "240"))
# The database moves 16 times a cycle (every 15 s in the 4-minute one): often enough for a trouble
# quarter to be seen by several polls.
DB_EVERY = CYCLE / 16
# Where the cycle starts, for whoever lines up what they see with the phases (the demo's test).
print(f"cycle of {CYCLE:g} s from Unix time {started:.3f}", flush=True)


def trouble():
    return int((time.time() - started) // (CYCLE / 4)) % 4 == 2


def python_stamp():
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%d %H:%M:%S,") + f"{now.microsecond // 1000:03d}"


def iso_stamp():
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def psql(sql):
    subprocess.run(["psql", "-q", "-X", database_url, "-c", sql], check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# Recorded GitHub REST API answers (the tests' fixtures), made live: the ETL's workflows (the five
# the runbook names, and CI, a deleted one and one switched off on purpose), each workflow's latest
# runs a few minutes ago (the daily full sync's this morning, the keep-alive's last Monday), and the
# repository pushed to a few days ago.
fixtures = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "http")
with open(os.path.join(fixtures, "github_workflows.json"), encoding="utf-8") as f:
    github_workflows = json.load(f)
with open(os.path.join(fixtures, "github_runs.json"), encoding="utf-8") as f:
    github_runs = json.load(f)["workflow_runs"]
with open(os.path.join(fixtures, "github_repo.json"), encoding="utf-8") as f:
    github_repo = json.load(f)
GITHUB_TOKEN = os.environ.get("DEMO_GITHUB_TOKEN", "")
WATCHED = ["token-refresh.yml", "etl-incremental-sync-v2.yml", "etl-daily-full-sync-v2.yml", "keep-alive.yml",
           "workflow-health-check.yml"]
# How long ago each workflow's latest run was, in seconds.
RUN_AGO = {"token-refresh.yml": 180, "etl-incremental-sync-v2.yml": 600, "etl-daily-full-sync-v2.yml": 6 * 3600,
           "keep-alive.yml": 3 * 86400}


def github_time(ago):
    return datetime.fromtimestamp(time.time() - ago, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def github(path):
    """What GitHub answers for the ETL repository; None for a path it does not serve here."""
    if path == "/repos/acme/etl":
        return dict(github_repo, pushed_at=github_time(4 * 86400))
    if path == "/repos/acme/etl/actions/workflows?per_page=100":
        # In trouble, the token refresh workflow is disabled, as GitHub did in the incident; the
        # workflows the runbook does not name keep their recorded states.
        body = json.loads(json.dumps(github_workflows))
        for workflow in body["workflows"]:
            file = workflow["path"].rsplit("/", 1)[-1]
            if file in WATCHED:
                off = trouble() and file == "token-refresh.yml"
                workflow["state"] = "disabled_inactivity" if off else "active"
        return body
    prefix = "/repos/acme/etl/actions/workflows/"
    if path.startswith(prefix) and "/runs?" in path:
        file, query = path[len(prefix):].split("/runs?", 1)
        status = dict(p.split("=", 1) for p in query.split("&")).get("status")
        template = next((r for r in github_runs if r["path"].endswith("/" + file) and r["conclusion"] == "success"), None)
        if template is None:
            return {"total_count": 0, "workflow_runs": []}
        # In trouble, the token refresh runs fail.
        conclusion = "failure" if trouble() and file == "token-refresh.yml" else "success"
        if status == "success" and conclusion != "success":
            at = github_time(RUN_AGO[file] + 1800)
            conclusion = "success"
        else:
            at = github_time(RUN_AGO[file])
        run = dict(template, status="completed", conclusion=conclusion, created_at=at, updated_at=at, run_started_at=at)
        return {"total_count": 1, "workflow_runs": [run]}
    return None


class Endpoints(BaseHTTPRequestHandler):
    """The queue metrics of the Microsoft integration, Salesforce's limits, the MCP health check,
    the GitHub Actions API of the ETL."""

    def do_GET(self):
        if self.path.startswith("/repos/"):
            if self.headers.get("Authorization") != f"Bearer {GITHUB_TOKEN}":
                self.send_response(401)
                self.end_headers()
                return
            body = github(self.path)
            if body is None:
                self.send_response(404)
                self.end_headers()
                return
        elif self.path.startswith("/api/metrics/queue"):
            body = {"pending": random.randint(1200, 1600) if trouble() else random.randint(5, 40),
                    "active": 3, "failed": random.randint(0, 5)}
        elif self.path.startswith("/services/data/"):
            remaining = 2000 if trouble() else 12000
            body = {"DailyApiRequests": {"Max": 15000, "Remaining": remaining}}
        elif self.path.startswith("/health"):
            rss = (900 if trouble() else 300) * 2**20 + random.randint(0, 50 * 2**20)
            body = {"status": "ok", "memory": {"rss_bytes": rss}}
        else:
            self.send_response(404)
            self.end_headers()
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


threading.Thread(target=ThreadingHTTPServer(("127.0.0.1", http_port), Endpoints).serve_forever, daemon=True).start()

paths = {name: os.path.join(log_dir, name) for name in
         ["email_watcher.log", "app.log", "fleet-api.log", "salesforce-mcp.log"]}
files = {name: open(path, "a", encoding="utf-8") for name, path in paths.items()}


def write(name, line):
    files[name].write(line + "\n")
    files[name].flush()


last_rotation = last_cycle = last_db = last_failure = 0.0
last_rotation = started
# No healthy failure before the first window is full: one failure among a few refreshes is a low rate.
last_failure = started
# The same for a healthy Graph call's 404: two in one short window would be a 5% error rate.
last_not_found = started
attempts = 0
while True:
    now = time.time()
    bad = trouble()
    user = f"{random.getrandbits(32):08x}"

    # Token refresh worker (Python logging, plain text).
    # Healthy, a refresh fails now and then, at most once per alert window (an eighth of the
    # cycle), so the success rate of a window of a hundred-odd refreshes never dips below 95%.
    healthy_failure = now - last_failure >= CYCLE / 8 and random.random() < 0.02
    if (bad and random.random() < 0.55) or (not bad and healthy_failure):
        last_failure = now
        error = random.choice(["invalid_grant", "429 Too Many Requests", "503 Service Unavailable"])
        write("email_watcher.log", f"{python_stamp()} WARNING [graph_client] ProactiveRefresh ✗ user={user} failed error={error}")
    else:
        write("email_watcher.log", f"{python_stamp()} INFO [graph_client] ProactiveRefresh ✓ user={user} refreshed token expires_in=3599s")
    attempts += 1
    if random.random() < 0.2:
        # In trouble the worker runs at its rate limit; healthy, at a third of it at most.
        budget = random.randint(92, 100) if bad else min(100, attempts // 2)
        write("email_watcher.log", f"{python_stamp()} INFO [graph_client] M6:RateLimit rate_limit_budget="
              f"{{'total_attempts': {budget}, 'max_requests': 100, 'window_seconds': 60}}")
    if now - last_cycle >= 10:
        write("email_watcher.log", f"{python_stamp()} INFO [graph_client] Acquired lock token_refresh_heartbeat lease=120s")
        write("email_watcher.log", f"{python_stamp()} WARNING [graph_client] Failed to acquire lock token_refresh_heartbeat: held by worker-1")
        write("email_watcher.log", f"{python_stamp()} INFO [email_watcher_worker] ProactiveRefresh Cycle complete: "
              f"refreshed={attempts} failed=0 skipped=0 duration=1.20s")
        last_cycle, attempts = now, 0

    # Calendar sync (JSON lines, category calendar_sync).
    level = "error" if random.random() < (0.3 if bad else 0.01) else "info"
    code = random.choice(["token_expired", "rate_limited", "adapter_error"]) if level == "error" else None
    entry = {"timestamp": iso_stamp(), "level": level, "category": "calendar_sync", "message": "sync step",
             "connection_id": user}
    if code:
        entry["error_code"] = code
    write("app.log", json.dumps(entry))

    # Microsoft Graph API calls (Node, plain text; the status is the last field).
    # In trouble a third of the calls are rate limited: well over the demo window's ten 429s.
    not_found = now - last_not_found >= CYCLE / 8 and random.random() < 1 / 200
    if not bad and not_found:
        last_not_found = now
    status = random.choice([200, 200, 401, 429, 429, 503]) if bad else (404 if not_found else 200)
    write("fleet-api.log", f"{iso_stamp()} info: Graph API GET /v1.0/users/{user}/messages {status}")
    if random.random() < 0.1:
        write("fleet-api.log", f"{iso_stamp()} info: Webhook notification processed for subscription {user}")

    # The Salesforce MCP server's model calls (Python logging).
    duration = random.randint(8000, 16000) if bad else random.randint(400, 3000)
    model_status = 429 if bad and random.random() < 0.2 else 200
    write("salesforce-mcp.log", f"{python_stamp()} INFO agent.openai: openai request model=gpt-4o status={model_status} duration_ms={duration}")
    if model_status == 429:
        write("salesforce-mcp.log", f"{python_stamp()} INFO httpx: HTTP Request: POST https://demo.openai.azure.com/openai/"
              'deployments/gpt-4o/chat/completions "HTTP/1.1 429 Too Many Requests"')
    # MCP tool calls, a few tools hot; past the daily limit Salesforce refuses them.
    tool = random.choice(["get_pipeline_summary"] * 5 + ["get_case_queue_summary"] * 3 + ["search_accounts", "run_soql"])
    write("salesforce-mcp.log", f"{python_stamp()} INFO mcp_servers.salesforce_crm.server: mcp.tool.call mcp.tool.name={tool}")
    if bad and random.random() < 0.05:
        write("salesforce-mcp.log", f"{python_stamp()} ERROR mcp_servers.salesforce_crm.server: tool {tool} "
              "ErrorResponse: REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded.")
    # An expired session: the tools answer with the code before anything tries to refresh.
    if bad and random.random() < 0.03:
        write("salesforce-mcp.log", f"{python_stamp()} ERROR mcp_servers.salesforce_crm.server: tool {tool} "
              "ErrorResponse: INVALID_SESSION_ID: Session expired or invalid")

    if now - last_db >= DB_EVERY:
        degraded = 14 if bad else 3
        psql(f"UPDATE email_watchers SET sync_status = CASE WHEN id <= {degraded} THEN 'degraded'::watcher_status ELSE 'active'::watcher_status END")
        psql("UPDATE auth_microsoft_tokens SET expires_at = now() + interval '5 minutes' WHERE id IN "
             "(SELECT id FROM auth_microsoft_tokens WHERE NOT is_revoked ORDER BY random() LIMIT 3)")
        psql("UPDATE auth_microsoft_tokens SET expires_at = now() + interval '55 minutes' WHERE expires_at < now() + interval '10 minutes' AND random() < 0.3")
        stale = "now() - interval '2 hours'" if bad else "now() - interval '1 minute'"
        psql(f"UPDATE external_calendar_connections SET last_synced_at = {stale} WHERE sync_enabled AND provider = 'microsoft' AND backoff_until IS NULL")
        # The seeded rows hold states that would fire an alert for ever (stuck, expired, expiring,
        # failing): the applications heal them while healthy, and the trouble brings some back, so
        # every alert the demo shows resolves within its cycle.
        psql("UPDATE external_calendar_connections SET last_synced_at = now() WHERE sync_enabled AND provider = 'google' "
             "AND (backoff_until IS NULL OR backoff_until < now())")
        psql("UPDATE external_calendar_connections SET sync_needed = false WHERE sync_enabled AND sync_needed")
        # The connections whose provider token expired: their last error says so only in trouble
        # (the error count stays, so no error count rises).
        auth_error = "token expired" if bad else "adapter error: 500"
        psql(f"UPDATE external_calendar_connections SET last_error = '{auth_error}' WHERE sync_enabled AND token_expiry < now()")
        # Microsoft sync: healthy, some users of every resource sync (user1 always, so each
        # resource's newest sync stays fresh for as long as the demo runs); in trouble none has
        # synced for 90 minutes. Never-synced states stay NULL.
        if bad:
            psql("UPDATE microsoft_sync_state SET last_sync_at = now() - interval '90 minutes' WHERE last_sync_at IS NOT NULL")
        else:
            psql("UPDATE microsoft_sync_state SET last_sync_at = now() WHERE last_sync_at IS NOT NULL "
                 "AND (user_id = 'user1@example.com' OR random() < 0.5)")
        # Every platform syncs; the ETL's tokens are refreshed, meta's only to its 14-day warning
        # window in trouble.
        psql("INSERT INTO marketing.etl_sync_log (platform, entity_type, status, start_time, records_processed) "
             "VALUES ('google', 'campaigns', 'success', now(), 120), ('meta', 'campaigns', 'success', now(), 80), "
             "('meta', 'ads', 'success', now(), 40), ('tiktok', 'ads', 'success', now(), 60)")
        meta_expires = "now() + interval '9 days'" if bad else "now() + interval '50 days'"
        psql(f"UPDATE marketing.platform_tokens SET expires_at = CASE WHEN platform = 'meta' THEN {meta_expires} "
             "ELSE now() + interval '50 days' END")
        # Graph subscriptions are renewed two days ahead; in trouble the renewal of the inbox ones lags.
        psql("UPDATE graph_subscriptions SET expiration_date_time = now() + interval '2 days' "
             "WHERE expiration_date_time < now() + interval '1 day'")
        if bad:
            psql("UPDATE graph_subscriptions SET expiration_date_time = now() + interval '3 hours' "
                 "WHERE resource LIKE 'me/mailFolders%'")
        # The heartbeat lock is renewed by a live worker; in trouble its lease lapsed ten minutes ago.
        lease = "now() - interval '10 minutes'" if bad else "now() + interval '2 minutes'"
        psql(f"UPDATE worker_locks SET lease_expires_at = {lease} WHERE lock_name = 'token_refresh_heartbeat'")
        # Failed tokens wait five minutes before their retry; in trouble the 503 ones are retried
        # after 20 seconds, the runbook's backoff that does not work.
        psql("UPDATE auth_microsoft_tokens SET next_retry_at = updated_at + interval '5 minutes' "
             "WHERE consecutive_failures > 0 AND NOT is_revoked")
        if bad:
            psql("UPDATE auth_microsoft_tokens SET next_retry_at = updated_at + interval '20 seconds' "
                 "WHERE last_refresh_error LIKE '503%' AND NOT is_revoked")
        last_db = now

    if now - last_rotation >= 60:
        os.replace(paths["email_watcher.log"], paths["email_watcher.log"] + ".1")
        write("email_watcher.log", f"{python_stamp()} INFO [email_watcher_worker] log rotated, reopening")
        time.sleep(0.3)
        files["email_watcher.log"].close()
        files["email_watcher.log"] = open(paths["email_watcher.log"], "a", encoding="utf-8")
        last_rotation = now
    time.sleep(random.uniform(0.05, 0.25))
