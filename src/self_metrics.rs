//! The exporter's own metrics (`integration_exporter_*`): name, type and help declared once here.
//! The sources, the state, `replay`, the source-health alerts and the dashboards take them from
//! this catalog, so a rename cannot leave an alert watching a metric nobody exports.

use crate::spec::MetricType;
use crate::state::Family;

/// One metric of the exporter itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelfMetric {
    pub name: &'static str,
    pub kind: MetricType,
    pub help: &'static str,
}

impl SelfMetric {
    /// An empty family of this metric, to push samples into.
    pub fn family(&self) -> Family {
        Family::new(self.name, self.help, self.kind)
    }
}

const fn gauge(name: &'static str, help: &'static str) -> SelfMetric {
    SelfMetric { name, kind: MetricType::Gauge, help }
}

const fn counter(name: &'static str, help: &'static str) -> SelfMetric {
    SelfMetric { name, kind: MetricType::Counter, help }
}

pub const BUILD_INFO: SelfMetric = gauge(
    "integration_exporter_build_info",
    "A metric with a constant '1' value labeled by version, revision, branch, and rustc from which integration_exporter was built.",
);
pub const START_TIME: SelfMetric =
    gauge("integration_exporter_start_time_seconds", "When the exporter started, in unix seconds.");
pub const CONFIG_RELOAD_SUCCESSFUL: SelfMetric = gauge(
    "integration_exporter_config_last_reload_successful",
    "Whether the last configuration reload attempt was successful.",
);
pub const CONFIG_RELOAD_SUCCESS_TIMESTAMP: SelfMetric = gauge(
    "integration_exporter_config_last_reload_success_timestamp_seconds",
    "Timestamp of the last successful configuration reload (or of the start).",
);

pub const QUERY_SUCCESS: SelfMetric =
    gauge("integration_exporter_query_success", "1 if the last run of the query succeeded.");
pub const QUERY_DURATION: SelfMetric =
    gauge("integration_exporter_query_duration_seconds", "Duration of the last run of the query.");
pub const QUERY_LAST_SUCCESS: SelfMetric = gauge(
    "integration_exporter_query_last_success_timestamp_seconds",
    "When the query last succeeded, in unix seconds.",
);
pub const QUERY_ERRORS: SelfMetric = counter(
    "integration_exporter_query_errors_total",
    "Failed query runs, by kind (connect, timeout, schema, sql, decode).",
);
pub const QUERY_TRUNCATED: SelfMetric = counter(
    "integration_exporter_query_truncated_total",
    "Query runs whose result had more series than the cap; the rows past it were not read.",
);

pub const HTTP_UP: SelfMetric =
    gauge("integration_exporter_http_up", "1 if the endpoint answered 2xx within the timeout at the last poll.");
pub const HTTP_DURATION: SelfMetric =
    gauge("integration_exporter_http_duration_seconds", "Duration of the last poll of the endpoint.");
pub const HTTP_LAST_SUCCESS: SelfMetric = gauge(
    "integration_exporter_http_last_success_timestamp_seconds",
    "When a poll of the endpoint last answered 2xx and every value was read, in unix seconds.",
);
pub const HTTP_ERRORS: SelfMetric = counter(
    "integration_exporter_http_errors_total",
    "Failed HTTP polls, by kind (connect, timeout, auth, status, body, path, limit).",
);
/// The health metrics of one polled kind: the same four shapes for every kind.
#[derive(Debug)]
pub struct PollHealthMetrics {
    /// Gauge: 1 when the last poll worked (`{signal}`).
    pub ok: SelfMetric,
    /// Gauge: how long the last poll took (`{signal}`).
    pub duration: SelfMetric,
    /// Gauge: when a poll last fully worked, in unix seconds (`{signal}`).
    pub last_success: SelfMetric,
    /// Counter of failed polls (`{signal, kind}`).
    pub errors: SelfMetric,
}

pub const QUERY_HEALTH: PollHealthMetrics = PollHealthMetrics {
    ok: QUERY_SUCCESS,
    duration: QUERY_DURATION,
    last_success: QUERY_LAST_SUCCESS,
    errors: QUERY_ERRORS,
};
pub const HTTP_HEALTH: PollHealthMetrics =
    PollHealthMetrics { ok: HTTP_UP, duration: HTTP_DURATION, last_success: HTTP_LAST_SUCCESS, errors: HTTP_ERRORS };

pub const HTTP_TOKEN_REFRESHES: SelfMetric = counter(
    "integration_exporter_http_token_refreshes_total",
    "OAuth access-token refreshes of the signal's endpoint, by result (ok, failed).",
);

pub const LOG_BYTES_READ: SelfMetric =
    counter("integration_exporter_log_bytes_read_total", "Bytes read from the log file.");
pub const LOG_FILE_SIZE: SelfMetric =
    gauge("integration_exporter_log_file_size_bytes", "Size of the log file (size minus offset is the backlog).");
pub const LOG_FILE_OFFSET: SelfMetric =
    gauge("integration_exporter_log_file_offset_bytes", "Read offset in the log file.");
pub const LOG_LINES: SelfMetric =
    counter("integration_exporter_log_lines_total", "Complete lines read from the log file.");
pub const LOG_LINES_MATCHED: SelfMetric =
    counter("integration_exporter_log_lines_matched_total", "Lines that matched at least one rule.");
pub const LOG_LINES_UNPARSABLE: SelfMetric = counter(
    "integration_exporter_log_lines_unparsable_total",
    "Lines a rule took but could not use (bad JSON, number or timestamp).",
);
pub const LOG_ROTATIONS: SelfMetric =
    counter("integration_exporter_log_rotations_total", "Times the path started naming a new file.");
pub const LOG_TRUNCATIONS: SelfMetric =
    counter("integration_exporter_log_truncations_total", "Times the file was truncated in place (copytruncate).");
pub const LOG_DROPPED_LINES: SelfMetric = counter(
    "integration_exporter_log_dropped_lines_total",
    "Lines dropped, by reason (too_long, invalid_utf8, unterminated).",
);
pub const LOG_READ_ERRORS: SelfMetric =
    counter("integration_exporter_log_read_errors_total", "Errors opening or reading the log file.");
/// 0 while a log source's paths match no file, or only files it cannot open: the source-health
/// alert reads it.
pub const LOG_FILES: SelfMetric = gauge(
    "integration_exporter_log_files",
    "Files of the log source present and open for reading now (an empty file counts; 0: nothing to read).",
);
pub const LABEL_OVERFLOW: SelfMetric = counter(
    "integration_exporter_label_overflow_total",
    "Updates folded into the overflow series because a metric reached its series limit.",
);
pub const LABEL_TRUNCATED: SelfMetric = counter(
    "integration_exporter_label_truncated_total",
    "Updates whose label values taken from a line were cut to the log source's max_label_bytes.",
);

pub const CHECKPOINT_SAVE_FAILURES: SelfMetric = counter(
    "integration_exporter_checkpoint_save_failures_total",
    "Failed checkpoint saves, by reason (no_space, read_only, permission_denied, ...); retried every second.",
);
pub const CHECKPOINT_LAST_SUCCESS: SelfMetric = gauge(
    "integration_exporter_checkpoint_last_success_timestamp_seconds",
    "When this process last saved the checkpoint (only done after new lines were read).",
);
pub const CHECKPOINT_CORRUPT: SelfMetric = counter(
    "integration_exporter_checkpoint_corrupt_total",
    "Unreadable checkpoints found at start and set aside as <file>.corrupt-<unix time>.",
);
pub const CHECKPOINT_METRIC_RESETS: SelfMetric = counter(
    "integration_exporter_checkpoint_metric_resets_total",
    "Saved metrics that did not fit the spec (type, labels or buckets changed, removed, damaged) and started over.",
);

/// Every metric of the exporter itself, in the order the README lists them.
pub const ALL: &[SelfMetric] = &[
    BUILD_INFO,
    START_TIME,
    CONFIG_RELOAD_SUCCESSFUL,
    CONFIG_RELOAD_SUCCESS_TIMESTAMP,
    QUERY_SUCCESS,
    QUERY_DURATION,
    QUERY_LAST_SUCCESS,
    QUERY_ERRORS,
    QUERY_TRUNCATED,
    HTTP_UP,
    HTTP_DURATION,
    HTTP_LAST_SUCCESS,
    HTTP_ERRORS,
    HTTP_TOKEN_REFRESHES,
    LOG_BYTES_READ,
    LOG_FILE_SIZE,
    LOG_FILE_OFFSET,
    LOG_LINES,
    LOG_LINES_MATCHED,
    LOG_LINES_UNPARSABLE,
    LOG_ROTATIONS,
    LOG_TRUNCATIONS,
    LOG_DROPPED_LINES,
    LOG_READ_ERRORS,
    LOG_FILES,
    LABEL_OVERFLOW,
    LABEL_TRUNCATED,
    CHECKPOINT_SAVE_FAILURES,
    CHECKPOINT_LAST_SUCCESS,
    CHECKPOINT_CORRUPT,
    CHECKPOINT_METRIC_RESETS,
];

/// The catalog entry of `name`.
pub fn find(name: &str) -> Option<&'static SelfMetric> {
    ALL.iter().find(|m| m.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// README's "What the exporter reports about itself" names every self-metric, and only those
    /// (a name there may drop the `integration_exporter` prefix: `_query_duration_seconds`).
    #[test]
    fn readme_lists_the_catalog() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
        let start = readme.find("## What the exporter reports about itself").expect("the section");
        let section = &readme[start..];
        let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
        let mut listed = std::collections::BTreeSet::new();
        for code in section.split('`').skip(1).step_by(2) {
            let name = code.split(['{', ' ']).next().unwrap_or_default();
            if let Some(rest) = name.strip_prefix("integration_exporter_") {
                listed.insert(format!("integration_exporter_{rest}"));
            } else if name.starts_with('_') && name[1..].starts_with(|c: char| c.is_ascii_lowercase()) {
                listed.insert(format!("integration_exporter{name}"));
            }
        }
        let catalog: std::collections::BTreeSet<String> = ALL.iter().map(|m| m.name.to_string()).collect();
        assert_eq!(listed, catalog, "README lists {listed:#?}");
    }

    #[test]
    fn names_are_unique_and_prefixed() {
        let names: std::collections::BTreeSet<&str> = ALL.iter().map(|m| m.name).collect();
        assert_eq!(names.len(), ALL.len());
        assert!(ALL.iter().all(|m| m.name.starts_with("integration_exporter_") && !m.help.is_empty()));
    }
}
