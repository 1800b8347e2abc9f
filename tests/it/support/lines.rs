//! Realistic log lines, shared by tests and benchmarks.

/// Realistic worker lines, deterministic for a seed.
pub fn worker_line(i: u64) -> String {
    // One line a second from 2026-02-06 12:00:00 UTC, so timestamps only ever move forward.
    let ts = format!("2026-02-06 {:02}:{:02}:{:02},{:03}", 12 + i / 3600, (i / 60) % 60, i % 60, i % 1000);
    match i % 11 {
        0..=3 => {
            format!("{ts} INFO [graph_client] ProactiveRefresh ✓ user=u{i} refreshed token expires_in=3599s")
        }
        4 => format!(
            "{ts} WARNING [graph_client] ProactiveRefresh ✗ user=u{i} failed error=invalid_grant consecutive_failures=3"
        ),
        5 => format!(
            "{ts} INFO [graph_client] M6:RateLimit rate_limit_budget={{'total_attempts': {}, 'max_requests': 100, 'window_seconds': 60}}",
            i % 97
        ),
        6 => format!(
            "{ts} INFO [email_watcher_worker] ProactiveRefresh Cycle complete: refreshed=4 failed=1 skipped=0 duration=1.20s"
        ),
        7 => format!("{ts} INFO [graph_client] Acquired lock token_refresh_heartbeat lease=120s"),
        8 => format!("{ts} WARNING [graph_client] Failed to acquire lock token_refresh_heartbeat: held by worker-2"),
        9 => format!("{ts} WARNING [graph_client] M6:RateLimit budget exhausted, deferring 3 refreshes"),
        _ => format!("{ts} DEBUG [email_watcher_worker] polling mailbox for user=u{i} delta=ok"),
    }
}
