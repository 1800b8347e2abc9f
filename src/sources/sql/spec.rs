//! What the SQL kind provides to the spec: its query takes a pack's parameters quoted as SQL, and
//! it is polled on a schedule.

use crate::self_metrics;
use crate::spec::pack::render;
use crate::spec::source_kind::{PackParams, PolledKind, Problem, SourceSpec};
use crate::spec::{MetricType, Model, PromDuration, Signal, SqlSource};

/// How generated alerts and panels watch a query.
static POLLED: PolledKind = PolledKind {
    health: &self_metrics::QUERY_HEALTH,
    ok_on_partial_answer: false,
    failing_alert: "IntegrationSourceQueryFailing",
    what: "query",
    summary: "A signal's query is failing, so its alerts cannot see.",
    check: "connect: the database is reachable and the URL secret is current; timeout: the query's plan and \
            the signal's timeout; schema: the pack's table and column parameters match the database \
            (`integration-exporter check --database`); sql or decode: the exporter's log for this signal",
    panel: (
        "SQL query success",
        "1 when the last run of the signal's query succeeded, by signal (the worst instance). A 0 means the signal's panel below shows stale or no data; see `integration_exporter_query_errors_total` for why.",
    ),
};

impl SourceSpec for SqlSource {
    fn kind(&self) -> &'static str {
        super::KIND
    }

    fn render(&mut self, pack: &PackParams<'_>) -> Vec<String> {
        match render(&self.query, pack.params) {
            Ok(query) => {
                self.query = query;
                Vec::new()
            }
            Err(e) => vec![format!("query: {e}")],
        }
    }

    fn validate(&self, signal: &Signal, _model: &Model) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.query.trim().is_empty() {
            problems.push((signal.id.clone(), format!("signal `{}`: empty query", signal.id)));
        }
        for metric in signal.metrics.iter().filter(|m| m.kind == MetricType::Histogram) {
            problems.push((
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
