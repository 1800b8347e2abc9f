//! What the SQL kind provides to the spec: its query takes a pack's parameters quoted as SQL, and
//! it is polled on a schedule.

use crate::self_metrics;
use crate::spec::pack::render_traced;
use crate::spec::source_kind::{PackParams, PolledKind, Problem, SourceSettings};
use crate::spec::{MetricType, Model, PromDuration, Signal, SqlSource};

/// How generated alerts and panels watch a query.
static POLLED: PolledKind = PolledKind {
    health: &self_metrics::QUERY_HEALTH,
    ok_on_partial_answer: false,
    values: None,
    failing_alert: "IntegrationSourceQueryFailing",
    what: "query",
    summary: "A signal's query is failing, so its alerts cannot see.",
    checks: &[
        (
            "connect",
            "no connection for this query while others get one: every connection of the pool busy with slow \
             queries (raise `database.max_connections` or the slow signals' intervals), or a flapping network; \
             when no query gets one, IntegrationDatabaseUnreachable fires instead and this alert is held back",
        ),
        (
            "timeout",
            "the query ran past its timeout: its plan (`EXPLAIN` it), missing indexes, locks, or a timeout too \
             short for the table's size (the signal's `timeout`)",
        ),
        (
            "schema",
            "a table or column the query names does not exist: the pack's table and column parameters must match \
             the database (`integration-exporter check --database` names the first one missing); a migration may \
             have renamed it",
        ),
        (
            "sql, decode",
            "the server refused the query or a column has a type the exporter cannot read: the exporter's log \
             for this signal has the server's message or the column",
        ),
    ],
    panel: (
        "SQL query success",
        "1 when the last run of the signal's query succeeded, by signal (the worst instance). A 0 means the signal's panel below shows stale or no data; see `integration_exporter_query_errors_total` for why.",
    ),
};

impl SourceSettings for SqlSource {
    fn kind(&self) -> &'static str {
        super::KIND
    }

    fn render(&mut self, pack: &PackParams<'_>) -> Vec<String> {
        if let Some(name) = &self.scan {
            let Some(scan) = pack.scans.get(name) else {
                let known: Vec<&str> = pack.scans.keys().map(String::as_str).collect();
                return vec![format!("no scan `{name}` in the pack (scans: {})", known.join(", "))];
            };
            if !self.query.trim().is_empty() {
                return vec![format!("both `query` and `scan: {name}`; a reader of a scan has no query of its own")];
            }
            // Qualified by the pack, as signal ids are: readers share a scan only within a pack.
            self.scan = Some(format!("{}.{name}", pack.pack));
            self.query = scan.query.clone();
        }
        match render_traced(&self.query, pack.params) {
            Ok((query, origins)) => {
                self.query = query;
                self.origins = origins;
                Vec::new()
            }
            Err(e) => vec![format!("query: {e}")],
        }
    }

    fn validate(&self, signal: &Signal, _model: &Model) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.query.trim().is_empty() {
            problems.push(Problem::new(signal.id.clone(), format!("signal `{}`: empty query", signal.id)));
        }
        for metric in signal.metrics.iter().filter(|m| m.kind == MetricType::Histogram) {
            problems.push(Problem::new(
                metric.name.clone(),
                format!("metric `{}`: SQL signals export counters or gauges", metric.name),
            ));
        }
        problems
    }

    fn polled(&self) -> Option<&'static PolledKind> {
        Some(&POLLED)
    }

    fn own_schedule(&self) -> Option<(Option<PromDuration>, Option<PromDuration>)> {
        Some((self.interval, self.timeout))
    }

    fn needs_database(&self) -> bool {
        true
    }
}
