//! What the log kind provides to the spec: a pack's rules read the pack's own log sources (ids
//! prefixed with the pack's name) and take its parameters as field names; every rule fits its
//! metric, compiles, and matches its own sample lines; every log source's timestamp parses.

use std::collections::BTreeSet;

use crate::spec::config::{PollDefaults, SignalOverride};
use crate::spec::pack::render_pack_rule;
use crate::spec::source_kind::{PackParams, Problem, SourceSettings};
use crate::spec::{LabelDef, LogAction, LogFiles, LogFormat, LogRules, MetricType, Model, ResolvedSource, Signal};

use super::rules::CompiledRule;
use super::timestamp::{self, TimestampParser};

impl SourceSettings for LogRules {
    fn kind(&self) -> &'static str {
        super::KIND
    }

    fn render(&mut self, pack: &PackParams<'_>) -> Vec<String> {
        let shape_is_default = pack.default_shapes.get(self.log.as_str()).copied().unwrap_or(false);
        self.log = format!("{}.{}", pack.pack, self.log);
        self.rules
            .iter_mut()
            .filter_map(|rule| render_pack_rule(rule, pack.params, pack.defaults, shape_is_default).err())
            .map(|e| e.to_string())
            .collect()
    }

    fn validate(&self, signal: &Signal, model: &Model) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut err = |at: &str, message: String| problems.push(Problem::new(at, message));
        let Some(log) = model.logs.get(&self.log) else {
            err(
                &self.log,
                format!("signal `{}` reads log `{}`, which is not defined under `logs:`", signal.id, self.log),
            );
            return problems;
        };
        for rule in &self.rules {
            let Some(metric) = signal.metrics.iter().find(|m| m.name == rule.metric) else {
                err(
                    &rule.metric,
                    format!("rule updates `{}`, which signal `{}` does not declare", rule.metric, signal.id),
                );
                continue;
            };
            let compatible = match rule.action {
                LogAction::Inc | LogAction::Add => metric.kind == MetricType::Counter,
                LogAction::Set | LogAction::Timestamp => metric.kind == MetricType::Gauge,
                LogAction::Observe => metric.kind == MetricType::Histogram,
            };
            if !compatible {
                err(
                    &rule.metric,
                    format!("rule on `{}`: action {:?} does not fit a {:?}", rule.metric, rule.action, metric.kind),
                );
            }
            let needs_value = matches!(rule.action, LogAction::Add | LogAction::Set | LogAction::Observe);
            if needs_value != rule.value.is_some() {
                err(
                    &rule.metric,
                    format!("rule on `{}`: `value` is needed exactly for add, set and observe", rule.metric),
                );
            }
            let declared: BTreeSet<&str> = metric.labels.iter().map(LabelDef::name).collect();
            let given: BTreeSet<&str> = rule.labels.keys().map(String::as_str).collect();
            if declared != given {
                err(
                    &rule.metric,
                    format!("rule on `{}` sets labels {:?} but the metric has {:?}", rule.metric, given, declared),
                );
            }
            if rule.scale.is_some_and(|scale| !scale.is_finite()) {
                err(&rule.metric, format!("rule on `{}`: `scale` must be a finite number", rule.metric));
            }
            if log.format == LogFormat::Text && rule.pattern.is_none() {
                err(&rule.metric, format!("rule on `{}`: text rules need `match`", rule.metric));
            }
            match CompiledRule::compile(rule, metric, log.format).map(|c| c.with_message_field(&log.message_field)) {
                Err(e) => {
                    err(rule.pattern.as_deref().unwrap_or(&rule.metric), format!("rule on `{}`: {e}", rule.metric))
                }
                Ok(compiled) => {
                    for sample in &rule.samples {
                        if !compiled.matches_line(sample) {
                            err(sample, format!("rule on `{}` does not match its own sample line", rule.metric));
                        }
                    }
                }
            }
        }
        problems
    }

    fn resolve(&self, _defaults: &PollDefaults, _over: &SignalOverride) -> ResolvedSource {
        ResolvedSource::Log { log: self.log.clone() }
    }
}

/// Longest log name: `<name>.checkpoint.json` and its temp and set-aside names fit in the 255
/// bytes of a file name.
const MAX_NAME_BYTES: usize = 200;

impl LogFiles {
    /// What is wrong with log source `name` on its own: no paths, a timestamp that cannot parse.
    pub fn problems(&self, name: &str) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.paths.is_empty() {
            problems.push(Problem::new(name.to_string(), format!("log `{name}` has no paths")));
        }
        // Its checkpoint is `<state_dir>/<name>.checkpoint.json`: a name must not lead elsewhere.
        if name.is_empty() || name.starts_with('.') || name.contains(['/', '\0']) || name.len() > MAX_NAME_BYTES {
            problems.push(Problem::new(
                name.to_string(),
                format!(
                    "log `{name}`: a log name is part of a file name in state_dir: no `/`, no leading `.`, \
                     at most {MAX_NAME_BYTES} bytes"
                ),
            ));
        }
        if self.max_files == Some(0) {
            problems.push(Problem::new("max_files".to_string(), format!("log `{name}`: max_files must be at least 1")));
        }
        if let Err(e) = regex::Regex::new(&self.timestamp.pattern) {
            problems
                .push(Problem::new(self.timestamp.pattern.clone(), format!("log `{name}`: timestamp pattern: {e}")));
        }
        if let Err(e) = timestamp::check_format(&self.timestamp.format) {
            problems.push(Problem::new(self.timestamp.format.clone(), format!("log `{name}`: {e}")));
        } else if let Err(e) = TimestampParser::new(&self.timestamp) {
            problems.push(Problem::new(self.timestamp.timezone.clone(), format!("log `{name}`: {e}")));
        }
        problems
    }
}
