#!/usr/bin/env python3
"""Writes realistic refresh-worker log lines and moves the demo database, so the exporter's
metrics move within a minute. Phases repeat every 4 minutes: healthy, then a wave of refresh
failures with rate limiting, then recovery. The log is rotated by rename every minute, as
logrotate does, and the writer reopens it a moment later."""

import os
import random
import subprocess
import sys
import time
from datetime import datetime, timezone

log_path, database_url = sys.argv[1], sys.argv[2]
random.seed(7)


def stamp():
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%d %H:%M:%S,") + f"{now.microsecond // 1000:03d}"


def psql(sql):
    subprocess.run(["psql", "-q", "-X", database_url, "-c", sql], check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def line(out, level, logger, message):
    out.write(f"{stamp()} {level} [{logger}] {message}\n")
    out.flush()


out = open(log_path, "a", encoding="utf-8")
started = time.time()
last_rotation = started
last_cycle = 0.0
last_db = 0.0
attempts = 0
while True:
    now = time.time()
    phase = int((now - started) // 60) % 4  # 0, 1 healthy; 2 failing; 3 recovering
    failing = phase == 2
    user = f"{random.getrandbits(32):08x}"
    if random.random() < (0.55 if failing else 0.02):
        error = random.choice(["invalid_grant", "429 Too Many Requests", "503 Service Unavailable"])
        line(out, "WARNING", "graph_client", f"ProactiveRefresh ✗ user={user} failed error={error} consecutive_failures={random.randint(1, 4)}")
    else:
        line(out, "INFO", "graph_client", f"ProactiveRefresh ✓ user={user} refreshed token expires_in=3599s")
    attempts += 1
    if random.random() < 0.2:
        budget = min(100, attempts if failing else attempts // 2)
        line(out, "INFO", "graph_client",
             f"M6:RateLimit rate_limit_budget={{'total_attempts': {budget}, 'max_requests': 100, 'window_seconds': 60}}")
    if random.random() < 0.3:
        line(out, "DEBUG", "email_watcher_worker", f"polling mailbox user={user} delta=ok")
    if now - last_cycle >= 10:
        # The heartbeat: one worker takes the lock, another fails to.
        line(out, "INFO", "graph_client", "Acquired lock token_refresh_heartbeat lease=120s")
        line(out, "WARNING", "graph_client", "Failed to acquire lock token_refresh_heartbeat: held by worker-1")
        line(out, "INFO", "email_watcher_worker",
             f"ProactiveRefresh Cycle complete: refreshed={attempts} failed=0 skipped=0 duration=1.20s")
        last_cycle = now
        attempts = 0
    if now - last_db >= 15:
        degraded = 14 if failing else 3
        psql(f"UPDATE email_watchers SET sync_status = CASE WHEN id <= {degraded} THEN 'degraded'::watcher_status ELSE 'active'::watcher_status END")
        psql("UPDATE auth_microsoft_tokens SET expires_at = now() + interval '5 minutes' WHERE id IN "
             "(SELECT id FROM auth_microsoft_tokens WHERE NOT is_revoked ORDER BY random() LIMIT 3)")
        psql("UPDATE auth_microsoft_tokens SET expires_at = now() + interval '55 minutes' WHERE expires_at < now() + interval '10 minutes' AND random() < 0.3")
        last_db = now
    if now - last_rotation >= 60:
        os.replace(log_path, log_path + ".1")
        line(out, "INFO", "email_watcher_worker", "log rotated, reopening")
        time.sleep(0.3)
        out.close()
        out = open(log_path, "a", encoding="utf-8")
        last_rotation = now
    time.sleep(random.uniform(0.05, 0.25))
