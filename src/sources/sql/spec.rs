//! What the SQL kind provides to the spec: its query takes a pack's parameters quoted as SQL, and
//! it is polled on a schedule.

use crate::spec::config::{PollDefaults, SignalOverride};
use crate::spec::pack::render;
use crate::spec::source_kind::{PackParams, Problem, SourceSpec};
use crate::spec::{MetricType, Model, ResolvedSource, Schedule, Signal, SqlSource};

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

    fn resolve(&self, defaults: &PollDefaults, over: &SignalOverride) -> ResolvedSource {
        ResolvedSource::Polled(Schedule {
            interval: over.interval.or(self.interval).unwrap_or(defaults.interval),
            timeout: over.timeout.or(self.timeout).unwrap_or(defaults.timeout),
        })
    }
}
