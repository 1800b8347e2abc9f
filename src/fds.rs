//! File descriptors, which log files, HTTP connections and everything else share. At start the
//! soft open-file limit is raised to the hard one (as Go programs such as Prometheus do), and what
//! is left after a fixed reserve is split: half for followed log files (an even share per log
//! source, unless a source sets `max_files`), at most half for connections. A glob matching more
//! files than that leaves files unread (counted, and alerted on) instead of leaving `accept`
//! without a descriptor and the endpoint dead.

use crate::spec::Model;

/// Descriptors kept for everything that is neither a log file nor a connection: standard
/// streams, the runtime's epoll and wake-ups, signals, the listener, inotify, the `state_dir`
/// lock, checkpoint writes, reads of `/proc`, of the spec, web config and certificates, DNS.
const RESERVED: u64 = 64;

/// The open-file limit (`RLIMIT_NOFILE`); `None` is unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenFileLimit {
    pub soft: Option<u64>,
    pub hard: Option<u64>,
}

/// The limit in force now.
pub fn open_file_limit() -> OpenFileLimit {
    #[cfg(unix)]
    {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        OpenFileLimit { soft: limit.current, hard: limit.maximum }
    }
    #[cfg(not(unix))]
    OpenFileLimit { soft: None, hard: None }
}

/// Raises the soft limit to the hard one; returns the limit before and after. An unlimited hard
/// limit is taken as the kernel's ceiling (`fs.nr_open`), which is what Linux accepts.
pub fn raise_open_file_limit() -> (OpenFileLimit, OpenFileLimit) {
    let before = open_file_limit();
    #[cfg(unix)]
    {
        let target = before
            .hard
            .or_else(|| std::fs::read_to_string("/proc/sys/fs/nr_open").ok().and_then(|v| v.trim().parse().ok()));
        if let Some(target) = target
            && before.soft.is_some_and(|soft| soft < target)
        {
            let raised = rustix::process::Rlimit { current: Some(target), maximum: before.hard };
            if let Err(e) = rustix::process::setrlimit(rustix::process::Resource::Nofile, raised) {
                tracing::warn!(error = %e, "cannot raise the open-file limit");
            }
        }
    }
    (before, open_file_limit())
}

/// What the spec needs besides log files and connections: the reserve, the database pool, a
/// connection or two per HTTP signal, an inotify descriptor and a transient read per log source.
fn reserved(model: &Model) -> u64 {
    let database: u64 = if model.enabled_signals().any(|s| s.signal.source.settings().needs_database()) {
        model.config.databases().iter().map(|(_, db)| u64::from(db.max_connections)).sum()
    } else {
        0
    };
    let http =
        model.enabled_signals().filter(|s| s.signal.source.settings().kind() == crate::sources::http::KIND).count();
    let logs = crate::sources::logs::used_logs(model).len();
    RESERVED + database + 2 * http as u64 + 2 * logs as u64
}

/// Half of what the reserve leaves of `limit`: the most log files, and the most connections.
fn half(limit: Option<u64>, model: &Model) -> usize {
    match limit {
        Some(limit) => usize::try_from(limit.saturating_sub(reserved(model)) / 2).unwrap_or(usize::MAX).max(1),
        None => usize::MAX,
    }
}

/// The connections the endpoint may hold: `requested` (0: no limit) unless half of what the
/// open-file limit leaves is less.
pub fn connections(limit: OpenFileLimit, requested: usize, model: &Model) -> usize {
    let requested = if requested == 0 { usize::MAX } else { requested };
    requested.min(half(limit.soft, model))
}

/// How many log files all log sources together may hold open: half of what the open-file limit
/// leaves.
pub fn log_files(model: &Model) -> usize {
    half(open_file_limit().soft, model)
}

/// A log source's `max_files` when it sets none: an even share of [`log_files`] among the log
/// sources the spec reads.
pub fn default_max_files(model: &Model) -> usize {
    let sources = crate::sources::logs::used_logs(model).len().max(1);
    (log_files(model) / sources).max(1)
}

/// The log sources whose `max_files` together exceed [`log_files`], with their sum: those set
/// in the spec count as set, the others at their default.
pub fn over_committed(model: &Model) -> Option<usize> {
    let default = default_max_files(model);
    let used = crate::sources::logs::used_logs(model);
    let total = model
        .logs
        .iter()
        .filter(|(id, _)| used.contains(id.as_str()))
        .map(|(_, log)| log.max_files.unwrap_or(default))
        .fold(0usize, usize::saturating_add);
    (total > log_files(model)).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(logs: usize) -> Model {
        let mut text = String::from("logs:\n");
        for i in 0..logs {
            text.push_str(&format!("  l{i}: {{paths: [/var/log/l{i}.log]}}\n"));
        }
        text.push_str("signals:\n");
        for i in 0..logs {
            text.push_str(&format!(
                "  - id: s.l{i}\n    title: T\n    runbook_section: https://example.com/r#l\n    metrics: \
                 [{{name: l{i}_total, type: counter, help: H.}}]\n    source: {{log: {{log: l{i}, rules: \
                 [{{match: x, metric: l{i}_total, action: inc}}]}}}}\n"
            ));
        }
        let source = crate::spec::SourceText { name: "test.yaml".into(), text };
        Model::from_text(&source).unwrap_or_else(|e| panic!("{e}\n{}", source.text))
    }

    #[test]
    fn the_limit_is_split_between_files_and_connections_after_the_reserve() {
        let two = model(2);
        let limit = |soft| OpenFileLimit { soft: Some(soft), hard: Some(soft) };
        // 1024: 64 + 2 × 2 reserved, 478 each for files and connections.
        assert_eq!(connections(limit(1024), 512, &two), 478);
        assert_eq!(connections(limit(65_536), 512, &two), 512);
        assert_eq!(connections(limit(65_536), 0, &two), 32_734);
        assert_eq!(connections(OpenFileLimit { soft: None, hard: None }, 0, &two), usize::MAX);
        // Never zero, however low the limit.
        assert_eq!(connections(limit(10), 512, &two), 1);
        // Files and connections together stay within the limit.
        for soft in [64, 256, 1024, 4096] {
            let files = half(Some(soft), &two);
            assert!(reserved(&two) + files as u64 + connections(limit(soft), 0, &two) as u64 <= soft.max(70));
        }
        assert!(default_max_files(&two) >= 1);
    }
}
