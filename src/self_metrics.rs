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
/// The web config as followed while running (see `exposition::web_config`).
pub const WEB_CONFIG_RELOAD_SUCCESSFUL: SelfMetric = gauge(
    "integration_exporter_web_config_last_reload_successful",
    "Whether the web config file as it is now is in force: 0 while it does not load or a change that would lower protection was refused.",
);
pub const TLS_CERTIFICATE_EXPIRY: SelfMetric = gauge(
    "integration_exporter_tls_certificate_expiry_timestamp_seconds",
    "When the certificate the endpoint serves expires (its notAfter), in unix seconds.",
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
pub const QUERY_MERGED_ROWS: SelfMetric = counter(
    "integration_exporter_query_merged_rows_total",
    "Result rows whose label values repeated an earlier row's in the same run; their values were summed into one series, by metric.",
);

/// The database itself, apart from any one query: what tells "the database is unreachable" (one
/// cause, one alert) from "this query fails" (its own alert). `{database}` is `host:port/db`.
pub const DATABASE_UP: SelfMetric = gauge(
    "integration_exporter_database_up",
    "1 if the last query run that reached a verdict got an answer from the database, 0 if it could not connect or got no answer.",
);
pub const DATABASE_LAST_SUCCESS: SelfMetric = gauge(
    "integration_exporter_database_last_success_timestamp_seconds",
    "When a query run last got an answer from the database, in unix seconds.",
);
pub const DATABASE_ERRORS: SelfMetric = counter(
    "integration_exporter_database_errors_total",
    "Query runs that could not reach the database, by kind (connect: no connection; timeout: no answer on a connection).",
);
/// With `ha` on: which replica runs the database's queries (see `sources::sql::leader`).
pub const LEADER: SelfMetric = gauge(
    "integration_exporter_leader",
    "With ha enabled, 1 if this replica holds the database's leader lock and runs its SQL queries, 0 if it stands by (it then exports no SQL series for the database).",
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
/// One value of an endpoint's answer, apart from the others: a path gone from the answer blinds
/// that value's alerts only, while the values still read keep theirs.
pub const HTTP_VALUE_ERRORS: SelfMetric = counter(
    "integration_exporter_http_value_errors_total",
    "Answers from which a value could not be read, by metric and kind (path: missing or no number; limit: more series than allowed, the rest dropped).",
);
pub const HTTP_VALUE_LAST_READ: SelfMetric = gauge(
    "integration_exporter_http_value_last_read_timestamp_seconds",
    "When the value was last read in full from an answer of the endpoint, in unix seconds, by metric.",
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
/// The per-value health of a polled kind whose answer carries several values.
#[derive(Debug)]
pub struct ValueHealthMetrics {
    /// Counter of answers a value could not be read from (`{signal, metric, kind}`).
    pub errors: SelfMetric,
    /// Gauge: when the value was last read in full, in unix seconds (`{signal, metric}`).
    pub last_read: SelfMetric,
    /// The kinds of `errors`, which the poll's own alert leaves to the value's.
    pub kinds: &'static [&'static str],
    /// The kind that means the value is gone (its alerts cannot see), as opposed to read in part.
    pub blinding: &'static str,
    /// What the on-call engineer checks, by kind.
    pub checks: &'static [(&'static str, &'static str)],
}

pub const HTTP_VALUE_HEALTH: ValueHealthMetrics = ValueHealthMetrics {
    errors: HTTP_VALUE_ERRORS,
    last_read: HTTP_VALUE_LAST_READ,
    kinds: &["path", "limit"],
    blinding: "path",
    checks: &[
        (
            "path",
            "the endpoint's answer no longer has the value's path, or holds no number there (a renamed field, an \
             empty list, a changed API version): compare the answer (`curl ... | jq '<path>'`) with the signal's \
             `values`; the exporter's log names the metric",
        ),
        (
            "limit",
            "the value made more series than allowed per value and the rest were dropped: narrow its `each:` \
             selection or its labels",
        ),
    ],
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
/// Above 0 while a log source's paths match more files than its `max_files`: the lines of those
/// files are not read. The log-files-skipped alert reads it.
pub const LOG_FILES_SKIPPED: SelfMetric = gauge(
    "integration_exporter_log_files_skipped",
    "Files the log source's paths match that are not open because max_files are (their lines are not read).",
);
pub const LABEL_OVERFLOW: SelfMetric = counter(
    "integration_exporter_label_overflow_total",
    "Updates folded into the overflow series because a metric reached its series limit.",
);
pub const LABEL_TRUNCATED: SelfMetric = counter(
    "integration_exporter_label_truncated_total",
    "Updates whose label values were cut: taken from a log line, to the log source's max_label_bytes; from a query row, to 256 bytes.",
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

/// Every metric of the exporter itself, in the order docs/reliability.md lists them.
pub const ALL: &[SelfMetric] = &[
    BUILD_INFO,
    START_TIME,
    CONFIG_RELOAD_SUCCESSFUL,
    CONFIG_RELOAD_SUCCESS_TIMESTAMP,
    WEB_CONFIG_RELOAD_SUCCESSFUL,
    TLS_CERTIFICATE_EXPIRY,
    QUERY_SUCCESS,
    QUERY_DURATION,
    QUERY_LAST_SUCCESS,
    QUERY_ERRORS,
    QUERY_TRUNCATED,
    QUERY_MERGED_ROWS,
    DATABASE_UP,
    DATABASE_LAST_SUCCESS,
    DATABASE_ERRORS,
    LEADER,
    HTTP_UP,
    HTTP_DURATION,
    HTTP_LAST_SUCCESS,
    HTTP_ERRORS,
    HTTP_VALUE_ERRORS,
    HTTP_VALUE_LAST_READ,
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
    LOG_FILES_SKIPPED,
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

    /// docs/reliability.md's "What the exporter reports about itself" names every self-metric, and
    /// only those (a name there may drop the `integration_exporter` prefix: `_query_duration_seconds`).
    #[test]
    fn reliability_doc_lists_the_catalog() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/reliability.md"))
            .expect("docs/reliability.md");
        let start = doc.find("## What the exporter reports about itself").expect("the section in docs/reliability.md");
        let section = &doc[start..];
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
        assert_eq!(listed, catalog, "docs/reliability.md lists {listed:#?}");
    }

    #[test]
    fn names_are_unique_and_prefixed() {
        let names: std::collections::BTreeSet<&str> = ALL.iter().map(|m| m.name).collect();
        assert_eq!(names.len(), ALL.len());
        assert!(ALL.iter().all(|m| m.name.starts_with("integration_exporter_") && !m.help.is_empty()));
    }
}
