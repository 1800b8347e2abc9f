//! Log runners handed from the sources a reload stops to the ones it starts. Without it, every
//! SIGHUP started each log source over: without a `state_dir` its counters went back to zero and
//! the lines written while it restarted were never read (it starts at the end of the files); 40
//! reloads while 38,500 lines were written lost 2,500. A source whose spec did not change now goes
//! on where it was, files still open at their positions and counters as they were; one whose spec
//! changed starts as at a first start (from its checkpoint, with a `state_dir`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use super::LogRunner;
use crate::spec::{LogFiles, LogRule, MetricDef, Model, Source};

/// Everything a log source's runner is built from: two equal ones build the same runner.
#[derive(Clone, Debug, PartialEq)]
pub struct RunnerSpec {
    pub log: LogFiles,
    /// Every enabled signal's rules on the source, with the metric each updates, in order.
    pub rules: Vec<(LogRule, MetricDef)>,
    pub state_dir: Option<PathBuf>,
}

impl RunnerSpec {
    pub fn of(model: &Model, id: &str, log: &LogFiles) -> RunnerSpec {
        let mut rules = Vec::new();
        for resolved in model.enabled_signals() {
            if let Source::Log(r) = &resolved.signal.source
                && r.log == id
            {
                for rule in &r.rules {
                    if let Some(def) = resolved.signal.metrics.iter().find(|m| m.name == rule.metric) {
                        rules.push((rule.clone(), def.clone()));
                    }
                }
            }
        }
        RunnerSpec { log: log.clone(), rules, state_dir: model.config.state_dir.clone() }
    }
}

/// The runners of stopped log threads, by source id, until the next start takes or drops them.
/// Shared by the threads (they park their runner when they stop) and whoever starts them again.
#[derive(Clone, Default)]
pub struct Handover(Arc<Mutex<BTreeMap<String, (RunnerSpec, LogRunner)>>>);

impl Handover {
    /// A stopped thread's runner, with what it was built from.
    pub fn park(&self, id: &str, spec: RunnerSpec, runner: LogRunner) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).insert(id.to_string(), (spec, runner));
    }

    /// The runner parked for `id`, if it was built from `spec`.
    pub fn take(&self, id: &str, spec: &RunnerSpec) -> Option<LogRunner> {
        let mut parked = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match parked.get(id) {
            Some((was, _)) if was == spec => parked.remove(id).map(|(_, runner)| runner),
            _ => None,
        }
    }

    /// Drops what no start took: its files are closed.
    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }
}
