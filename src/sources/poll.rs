//! The loop every polled source kind (a query, an endpoint) shares: first runs spread apart, one
//! poll at a time on the signal's interval (a slow poll delays the next instead of queueing a
//! burst), readiness after the first poll, values kept through a short blip and no longer, one
//! log line per failure streak, and the producer named `<kind>:<signal id>`. A kind only says
//! how to poll once ([`Poll`]).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::spec::{ResolvedSignal, Schedule};
use crate::state::{Family, State};

/// Values are served through failures this many intervals long; past that they would be lies.
pub const KEEP_VALUES_FOR_INTERVALS: u32 = 3;

/// Shortest wait any timer here accepts: a zero duration (which the spec rejects) would make a
/// timer that never waits or, for tokio's interval, a panic.
pub const MIN_WAIT: Duration = Duration::from_millis(10);

/// Gap between the first polls of consecutive signals of one kind: the database or the API sees
/// a trickle, not a burst every interval.
pub const START_SPREAD: Duration = Duration::from_millis(250);

/// One polled source of one signal.
pub trait Poll: Send + 'static {
    /// Polls once: the values to serve (kept ones included) and the source's health families.
    fn poll(&mut self) -> impl Future<Output = Vec<Family>> + Send;
    /// What is served before the first poll ends: the health families at zero, so a source that
    /// never answers is visible from the start.
    fn initial(&self) -> Vec<Family>;
}

/// The producer name of a signal's polled source in [`State`].
pub fn producer(kind: &str, signal: &ResolvedSignal) -> String {
    format!("{kind}:{}", signal.signal.id)
}

/// Starts polling `poller` for `signal`: its `n`-th signal of the kind starts `n` spreads late.
/// Readiness is registered before the task starts, so `/ready` cannot answer before the first
/// poll.
pub fn spawn<P: Poll>(
    kind: &str,
    signal: &ResolvedSignal,
    schedule: Schedule,
    n: usize,
    state: Arc<State>,
    poller: P,
) -> tokio::task::JoinHandle<()> {
    spawn_as(producer(kind, signal), schedule, n, state, poller)
}

/// [`spawn`] under a producer name of the caller's (a signal polled on several databases is
/// one producer per database).
pub fn spawn_as<P: Poll>(
    producer: String,
    schedule: Schedule,
    n: usize,
    state: Arc<State>,
    mut poller: P,
) -> tokio::task::JoinHandle<()> {
    state.readiness.expect(&producer);
    let interval = schedule.interval.0.max(MIN_WAIT);
    let offset = (START_SPREAD * n as u32).min(interval);
    tokio::spawn(async move {
        state.publish(&producer, poller.initial());
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + offset, interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let families = poller.poll().await;
            state.publish(&producer, families);
            state.readiness.done(&producer);
        }
    })
}

/// One poll whose answer feeds several signals (a shared scan): one producer per signal, so each
/// keeps its own series, health and readiness.
pub trait PollMany: Send + 'static {
    /// Polls once: per producer, in the order given to [`spawn_many`], what [`Poll::poll`] gives.
    fn poll(&mut self) -> impl Future<Output = Vec<Vec<Family>>> + Send;
    /// Per producer, what [`Poll::initial`] gives.
    fn initial(&self) -> Vec<Vec<Family>>;
}

/// [`spawn_as`] for a poller that feeds `producers`.
pub fn spawn_many<P: PollMany>(
    producers: Vec<String>,
    schedule: Schedule,
    n: usize,
    state: Arc<State>,
    mut poller: P,
) -> tokio::task::JoinHandle<()> {
    for producer in &producers {
        state.readiness.expect(producer);
    }
    let interval = schedule.interval.0.max(MIN_WAIT);
    let offset = (START_SPREAD * n as u32).min(interval);
    tokio::spawn(async move {
        for (producer, families) in producers.iter().zip(poller.initial()) {
            state.publish(producer, families);
        }
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + offset, interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            for (producer, families) in producers.iter().zip(poller.poll().await) {
                state.publish(producer, families);
                state.readiness.done(producer);
            }
        }
    })
}

/// Values served through failures for [`KEEP_VALUES_FOR_INTERVALS`] intervals; past that they
/// would be lies, so they are dropped.
#[derive(Debug)]
pub struct Kept<V> {
    value: Option<(V, Instant)>,
    keep: Duration,
}

/// How long a reading of a source polled every `interval` is served through failures.
pub fn kept_for(interval: Duration) -> Duration {
    interval * KEEP_VALUES_FOR_INTERVALS
}

impl<V> Kept<V> {
    pub fn new(interval: Duration) -> Kept<V> {
        Kept { value: None, keep: kept_for(interval) }
    }

    /// A fresh reading.
    pub fn set(&mut self, value: V) {
        self.value = Some((value, Instant::now()));
    }

    /// The last reading, if it is young enough to serve; an older one is forgotten.
    pub fn get(&mut self) -> Option<&V> {
        let keep = self.keep;
        self.value = self.value.take().filter(|(_, at)| at.elapsed() <= keep);
        self.value.as_ref().map(|(v, _)| v)
    }
}

/// One warning per failure streak and one note when it ends, so a source failing every interval
/// does not flood the log (its counters say how often).
#[derive(Debug, Default, Clone)]
pub struct FailureLog {
    failing: bool,
}

impl FailureLog {
    /// Whether this failure starts a streak (log it).
    pub fn failed(&mut self) -> bool {
        !std::mem::replace(&mut self.failing, true)
    }

    /// Whether this success ends a streak (say so).
    pub fn succeeded(&mut self) -> bool {
        std::mem::replace(&mut self.failing, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_log_speaks_once_per_streak() {
        let mut log = FailureLog::default();
        assert!(!log.succeeded());
        assert!(log.failed());
        assert!(!log.failed());
        assert!(log.succeeded());
        assert!(!log.succeeded());
        assert!(log.failed());
    }

    #[test]
    fn kept_values_expire_after_three_intervals() {
        let mut kept = Kept::new(Duration::from_millis(5));
        assert!(kept.get().is_none());
        kept.set(1);
        assert_eq!(kept.get(), Some(&1));
        std::thread::sleep(Duration::from_millis(20));
        assert!(kept.get().is_none());
        assert!(kept.get().is_none(), "an expired value never comes back");
    }
}
