//! Waiting without hanging: every wait has a deadline and fails naming what it waited for and
//! what it saw last, and a thread beside the test is stopped and joined in bounded time, its
//! panic failing the test at the next wait instead of leaving the test to wait for it.

use std::cell::RefCell;
use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often [`until`] looks again.
pub const POLL: Duration = Duration::from_millis(50);

/// Observes every [`POLL`] until `done` takes the observation; fails after `within`, naming
/// `what` and the last observation.
pub fn until<V: Debug, T>(
    what: &str,
    within: Duration,
    observe: impl FnMut() -> V,
    done: impl FnMut(&V) -> Option<T>,
) -> T {
    poll(within, POLL, observe, done).unwrap_or_else(|last| {
        let mut seen = format!("{last:?}");
        if seen.len() > 8000 {
            let cut = (0..=8000).rev().find(|i| seen.is_char_boundary(*i)).unwrap_or(0);
            seen = format!("{}… ({} bytes more)", &seen[..cut], seen.len() - cut);
        }
        panic!("timed out after {within:?} waiting for {what}; last seen:\n{seen}")
    })
}

/// [`until`] looking every `every`, returning the last observation instead of failing: for waits
/// whose failure the caller reports itself.
pub fn poll<V, T>(
    within: Duration,
    every: Duration,
    mut observe: impl FnMut() -> V,
    mut done: impl FnMut(&V) -> Option<T>,
) -> Result<T, V> {
    let deadline = Instant::now() + within;
    loop {
        check_workers();
        let seen = observe();
        if let Some(value) = done(&seen) {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            return Err(seen);
        }
        std::thread::sleep(every);
    }
}

thread_local! {
    /// The workers this thread (a test) started, by name, with whether each has panicked.
    static WORKERS: RefCell<Vec<(String, Arc<AtomicBool>)>> = const { RefCell::new(Vec::new()) };
}

fn check_workers() {
    WORKERS.with_borrow(|workers| {
        if let Some((name, _)) = workers.iter().find(|(_, died)| died.load(Ordering::SeqCst)) {
            panic!("the {name} thread panicked (its message is above)");
        }
    });
}

/// A thread beside the test, handed a flag that asks it to stop: stopped and joined within 30 s
/// when dropped or joined; if it panics, the test fails at its next wait or join.
pub struct Worker<T> {
    name: String,
    stop: Arc<AtomicBool>,
    died: Arc<AtomicBool>,
    handle: Option<JoinHandle<T>>,
}

/// Sets its flag when the thread unwinds.
struct DiesWith(Arc<AtomicBool>);

impl Drop for DiesWith {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::SeqCst);
        }
    }
}

impl<T: Send + 'static> Worker<T> {
    pub fn spawn(name: &str, body: impl FnOnce(&AtomicBool) -> T + Send + 'static) -> Worker<T> {
        let (stop, died) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        WORKERS.with_borrow_mut(|w| w.push((name.to_string(), died.clone())));
        let (flag, guard) = (stop.clone(), DiesWith(died.clone()));
        let handle = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let _guard = guard;
                body(&flag)
            })
            .expect("spawn a thread");
        Worker { name: name.to_string(), stop, died, handle: Some(handle) }
    }

    /// Asks the thread to stop, without waiting for it.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    pub fn finished(&self) -> bool {
        self.handle.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Fails the test if the thread ended before it was asked to stop.
    pub fn check(&self) {
        check_workers();
        assert!(!self.finished() || self.stop.load(Ordering::SeqCst), "the {} thread ended early", self.name);
    }

    /// Stops the thread and returns what it returned.
    pub fn join(self) -> T {
        Worker::join_all(vec![self], Duration::from_secs(30)).pop().expect("one result")
    }

    /// Stops every thread and returns what each returned; fails as soon as one has panicked, or
    /// after `within`.
    pub fn join_all(mut workers: Vec<Worker<T>>, within: Duration) -> Vec<T> {
        workers.iter().for_each(Worker::stop);
        let running = |workers: &[Worker<T>]| {
            workers.iter().filter(|w| !w.finished()).map(|w| w.name.clone()).collect::<Vec<_>>()
        };
        until("threads to finish", within, || running(&workers), |left| left.is_empty().then_some(()));
        workers.iter_mut().map(Worker::take).collect()
    }

    fn take(&mut self) -> T {
        let handle = self.handle.take().expect("joined once");
        handle.join().unwrap_or_else(|_| panic!("the {} thread panicked (its message is above)", self.name))
    }
}

impl<T> Drop for Worker<T> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        WORKERS.with_borrow_mut(|w| w.retain(|(_, died)| !Arc::ptr_eq(died, &self.died)));
        // A failing test does not wait for its helpers; a passing one must not leave one running.
        let Some(handle) = self.handle.take().filter(|_| !std::thread::panicking()) else { return };
        let stopped =
            poll(Duration::from_secs(30), Duration::from_millis(10), || handle.is_finished(), |f| f.then_some(()));
        assert!(stopped.is_ok(), "the {} thread did not stop within 30 s", self.name);
        assert!(handle.join().is_ok(), "the {} thread panicked (its message is above)", self.name);
    }
}
