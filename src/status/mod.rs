//! The live status page (`/`) and `/status.json`: every signal's current value, its threshold,
//! the verdict [`crate::verdict`] reaches on the exporter's own state, its source's health and
//! its last hour, grouped by pack, worst first. The board keeps the hour in bounded memory
//! ([`history`]), reading the state every [`history::EVERY`].

pub mod health;
pub mod history;
pub mod page;
mod sparkline;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;

use crate::sources::unix_now;
use crate::spec::{Model, ResolvedSignal, ValueUnit};
use crate::state::State;
use crate::verdict::{self, Finding, Level};
use health::{SourceHealth, Tracked};
use history::{History, Live, row_key};

/// Everything the page shows.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    /// Unix seconds the state was read at.
    pub at: f64,
    /// The worst verdict of all.
    pub verdict: Level,
    /// Checks by verdict.
    pub counts: BTreeMap<&'static str, usize>,
    /// Worst pack first.
    pub packs: Vec<PackStatus>,
}

/// One pack's checks, worst first.
#[derive(Clone, Debug, Serialize)]
pub struct PackStatus {
    /// `None` for the user's own signals.
    pub pack: Option<String>,
    pub title: String,
    /// The runbook file the pack's links point into.
    pub runbook: Option<String>,
    pub verdict: Level,
    pub rows: Vec<Row>,
}

/// One check (an alert, or a signal without alerts) as the page shows it.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    #[serde(flatten)]
    pub finding: Finding,
    /// The threshold the sparkline draws, in the value's unit.
    pub threshold_value: Option<f64>,
    /// How the value is written (`count`, `percent`, `duration` ...).
    pub unit: ValueUnit,
    /// The runbook heading the link points at.
    pub runbook_section: Option<String>,
    pub source: SourceHealth,
    /// The last hour of the value: `[unix seconds, value]`, oldest first.
    pub history: Vec<[f64; 2]>,
}

/// The page's memory: the model it judges by, the state it reads, the hour it keeps.
pub struct StatusBoard {
    model: RwLock<Arc<Model>>,
    state: Arc<State>,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    history: History,
    tracked: Tracked,
}

/// A check judged, with what the page needs beside the finding.
struct Judged {
    key: String,
    finding: Finding,
    threshold: Option<f64>,
    unit: ValueUnit,
    section: Option<String>,
    source: SourceHealth,
}

impl StatusBoard {
    pub fn new(model: Model, state: Arc<State>) -> Arc<StatusBoard> {
        Arc::new(StatusBoard { model: RwLock::new(Arc::new(model)), state, inner: Mutex::default() })
    }

    /// Judges by `model` from now on (a reload); the history of checks it keeps stays.
    pub fn set_model(&self, model: Model) {
        *self.model.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(model);
    }

    fn model(&self) -> Arc<Model> {
        self.model.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps one reading of the state: what the windows need, and each check's value.
    pub fn sample(&self) {
        let model = self.model();
        let now = unix_now();
        let families = self.state.gather();
        let index = history::index(&families);
        let mut inner = self.lock();
        let signals: Vec<&ResolvedSignal> = model.enabled_signals().collect();
        inner.tracked.observe(&signals, &index, now);
        let names: Vec<String> = signals
            .iter()
            .flat_map(|s| [Some(s.signal.id.clone()), s.log_id().map(str::to_string)])
            .flatten()
            .collect();
        inner.tracked.keep(&names);
        inner.history.record(&model, &index, now);
        let judged = judge(&model, &index, &inner, &self.state.readiness.pending(), now);
        let keys: Vec<String> = judged.iter().map(|j| j.key.clone()).collect();
        for j in judged {
            if let Some(v) = j.finding.value.filter(|v| v.is_finite()) {
                inner.history.rows.entry(j.key).or_default().push(now, v);
            }
        }
        inner.history.keep_rows(&keys);
    }

    /// Reads the state every [`history::EVERY`], for ever (the server aborts it).
    pub async fn run(self: Arc<Self>) {
        let mut ticker = tokio::time::interval(history::EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let board = self.clone();
            // Judging every check takes the blocking pool's time, not a request worker's.
            let _ = tokio::task::spawn_blocking(move || board.sample()).await;
        }
    }

    /// What the page shows now.
    pub fn status(&self) -> Status {
        let model = self.model();
        let now = unix_now();
        let families = self.state.gather();
        let index = history::index(&families);
        let inner = self.lock();
        let judged = judge(&model, &index, &inner, &self.state.readiness.pending(), now);
        let mut packs: Vec<PackStatus> = verdict::pack_order(&model)
            .into_iter()
            .map(|pack| {
                let info = model.packs.iter().find(|p| Some(&p.name) == pack.as_ref());
                PackStatus {
                    title: info.map_or_else(|| "Your own signals".to_string(), |p| p.title.clone()),
                    runbook: info.map(|p| p.runbook.clone()),
                    pack,
                    verdict: Level::Ok,
                    rows: Vec::new(),
                }
            })
            .collect();
        let mut counts: BTreeMap<&'static str, usize> =
            [Level::Critical, Level::Warning, Level::Unknown, Level::Ok].iter().map(|l| (l.as_str(), 0)).collect();
        for j in judged {
            *counts.entry(j.finding.verdict.as_str()).or_default() += 1;
            let mut history: Vec<[f64; 2]> = inner
                .history
                .rows
                .get(&j.key)
                .map(|ring| ring.iter().map(|(t, v)| [*t, *v]).collect())
                .unwrap_or_default();
            if let Some(v) = j.finding.value.filter(|v| v.is_finite()) {
                history.push([now, v]);
            }
            let Some(pack) = packs.iter_mut().find(|p| p.pack == j.finding.pack) else { continue };
            pack.rows.push(Row {
                finding: j.finding,
                threshold_value: j.threshold,
                unit: j.unit,
                runbook_section: j.section,
                source: j.source,
                history,
            });
        }
        packs.retain(|p| !p.rows.is_empty());
        for pack in &mut packs {
            // Stable: within a verdict, the runbook's order.
            pack.rows.sort_by_key(|r| std::cmp::Reverse(r.finding.verdict));
            pack.verdict = pack.rows.iter().map(|r| r.finding.verdict).max().unwrap_or(Level::Ok);
        }
        packs.sort_by_key(|p| std::cmp::Reverse(p.verdict));
        let verdict = packs.iter().map(|p| p.verdict).max().unwrap_or(Level::Ok);
        Status { at: now, verdict, counts, packs }
    }
}

/// Every check of `model` judged at `now`: the alerts in the runbook's order, then the signals
/// without alerts.
fn judge(
    model: &Model,
    families: &HashMap<&str, &crate::state::Family>,
    inner: &Inner,
    pending: &[String],
    now: f64,
) -> Vec<Judged> {
    let sources: HashMap<&str, SourceHealth> = model
        .enabled_signals()
        .map(|s| (s.signal.id.as_str(), health::of(s, families, &inner.tracked, pending)))
        .collect();
    let failing: HashMap<String, String> = model
        .metrics()
        .filter_map(|(s, m)| Some((m.name.clone(), sources.get(s.signal.id.as_str())?.failing()?)))
        .collect();
    let live = Live { families, history: &inner.history, now, failing: &failing };
    let source = |s: &ResolvedSignal| {
        sources.get(s.signal.id.as_str()).cloned().unwrap_or_else(|| health::of(s, families, &inner.tracked, pending))
    };
    let mut out: Vec<Judged> = verdict::checks(model)
        .into_iter()
        .map(|(s, a)| Judged {
            key: row_key(&s.signal.id, Some((&a.name, a.severity.as_str()))),
            finding: verdict::evaluate(model, s, a, &live, now),
            threshold: (!matches!(a.condition, crate::spec::Condition::Absent(_))).then_some(a.threshold),
            unit: a.unit,
            section: s.signal.runbook_section.clone(),
            source: source(s),
        })
        .collect();
    for s in model.enabled_signals().filter(|s| !s.signal.alerts.iter().any(|a| a.enabled)) {
        out.push(Judged {
            key: row_key(&s.signal.id, None),
            finding: verdict::observe(s, &live),
            threshold: None,
            unit: ValueUnit::Number,
            section: s.signal.runbook_section.clone(),
            source: source(s),
        });
    }
    out
}
