//! Log source: follows files with the `tailer` crate, applies the signals' rules to each line and
//! saves offsets together with the counters they produced, so a restart neither skips nor
//! recounts a line.

mod batch;
pub mod checkpoint;
pub mod handover;
pub mod rules;
mod seed;
mod settings;
pub mod state_dir;
pub mod timestamp;
pub mod wake;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tailer::{Checkpoint, Event, Tailer, TailerConfig};

use crate::self_metrics;
use crate::sources::{StartError, unix_now};
use crate::spec::{LogFiles, Model};
use crate::state::{Family, State};
use batch::LineBatch;
use checkpoint::{Loaded, SaveHealth};
use handover::{Handover, RunnerSpec};
use rules::{LineClock, LineCounts, ResetReason, RuleEngine, SavedMetrics};
use state_dir::{LockCheck, StateDirLock};
use timestamp::TimestampParser;

/// How often files are checked for new bytes when inotify cannot be used (see [`wake`]; with
/// inotify, a change is read within milliseconds and files are polled every second regardless).
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Longest wait for the first read of old content before its counters are served anyway.
/// The kind's name: producers are `log:<log source id>`.
pub const KIND: &str = "log";

const CATCH_UP_LIMIT: Duration = Duration::from_secs(60);
/// Checkpoints are written at most this often (and on shutdown), never per read: a backlog read
/// in many polls is saved once a second, offsets and counters together as always.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// While a backlog is read (the tailer is [`Tailer::behind`]), what is served is brought up to
/// date this often, and when the backlog is read, rather than after each of the many polls it
/// takes: building every family per poll would cost more than the lines.
const CATCH_UP_PUBLISH_EVERY: Duration = Duration::from_millis(200);

#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
struct PathCounters {
    /// Complete lines, saved with `matched` so their ratio survives a restart (the tailer's
    /// own count starts at zero).
    #[serde(default)]
    lines: u64,
    matched: u64,
    unparsable: u64,
}

/// The checkpoint format this exporter writes and reads. Fields added since have defaults.
const CHECKPOINT_VERSION: u32 = 1;

/// Offsets and the values they produced, written atomically in one file.
#[derive(Debug, Serialize, Deserialize)]
struct SavedState {
    version: u32,
    tailer: Checkpoint,
    metrics: SavedMetrics,
    paths: BTreeMap<String, PathCounters>,
}

pub struct LogRunner {
    id: String,
    tailer: Tailer,
    engine: RuleEngine,
    paths: BTreeMap<String, PathCounters>,
    dropped: BTreeMap<(String, &'static str), u64>,
    read_errors: BTreeMap<String, u64>,
    checkpoint: Option<PathBuf>,
    saves: SaveHealth,
    /// Saved metrics that did not fit the current spec and started over.
    resets: Vec<(String, ResetReason)>,
    /// Whether the checkpoint found at start could not be read (and was set aside).
    corrupt: bool,
    /// The unreadable checkpoint could not be set aside: never write over it.
    keep_away: bool,
    /// Started at the end of files without a checkpoint: after the first poll, their old
    /// content is read once by this engine for its gauges (see [`seed`]).
    seed: Option<RuleEngine>,
    max_line_bytes: usize,
    /// Counting the lines already in the files, until the first poll has read them: the
    /// metrics they feed are not served meanwhile, or a scrape could see the counters at zero
    /// and then all those lines as one `increase()`.
    catching_up: Option<Instant>,
    /// The configured paths: a literal one keeps its counters while its file is missing.
    watched: Vec<String>,
    /// The state_dir lock, checked before each save; and the generation of it last seen.
    lock: Option<(Arc<StateDirLock>, u64)>,
    /// Lines read in this poll and not yet applied: always empty between polls.
    batch: LineBatch,
}

/// Adds a batch's counts to its file's counters (saturating: a checkpoint may carry anything up
/// to u64::MAX).
fn count_lines(paths: &mut BTreeMap<String, PathCounters>, path: &str, counts: LineCounts) {
    // The path is known after its first batch: no String made per batch.
    let counters = match paths.get_mut(path) {
        Some(counters) => counters,
        None => paths.entry(path.to_string()).or_default(),
    };
    counters.lines = counters.lines.saturating_add(counts.lines);
    counters.matched = counters.matched.saturating_add(counts.matched);
    counters.unparsable = counters.unparsable.saturating_add(counts.unparsable);
}

/// Why a log source could not be built.
#[derive(Debug, thiserror::Error)]
pub enum LogSourceError {
    /// Its timestamp settings: the parser's own message.
    #[error("{0}")]
    Timestamp(String),
    /// Its rules: the compiler's own message, naming the rule.
    #[error("{0}")]
    Rules(String),
    #[error(transparent)]
    Checkpoint(#[from] checkpoint::ReadError),
    /// Its follower thread did not start.
    #[error("cannot start thread: {0}")]
    Thread(std::io::Error),
}

/// The rule engine of one log source: every enabled signal's rules for log `id`, compiled, with
/// the source's format and timestamp parser. `LogRunner::new` and `replay` both start from it.
pub fn rule_engine(model: &Model, id: &str, log: &LogFiles) -> Result<RuleEngine, LogSourceError> {
    let rules = RunnerSpec::of(model, id, log).rules;
    let parser = TimestampParser::new(&log.timestamp).map_err(LogSourceError::Timestamp)?;
    Ok(RuleEngine::new(rules, log.format, parser)
        .map_err(LogSourceError::Rules)?
        .with_max_label_bytes(log.max_label_bytes)
        .with_message_field(&log.message_field)
        .with_ages(log.max_age.0.as_secs_f64(), log.future_tolerance.0.as_secs_f64()))
}

/// Ids of the log sources some enabled signal reads, in order; the others are never followed.
pub fn used_logs(model: &Model) -> std::collections::BTreeSet<&str> {
    model.enabled_signals().filter_map(|s| s.log_id()).collect()
}

/// What a log source's checkpoint gave back at start.
#[derive(Default)]
struct Restored {
    tailer: Option<Checkpoint>,
    paths: BTreeMap<String, PathCounters>,
    resets: Vec<(String, ResetReason)>,
    corrupt: bool,
    keep_away: bool,
}

/// Loads the checkpoint at `path` into `engine`. Only a file that exists but cannot be read is an
/// error; an unparsable one is set aside and the source starts fresh.
fn restore(
    id: &str,
    path: &std::path::Path,
    engine: &mut RuleEngine,
    start_at: Option<tailer::StartAt>,
) -> Result<Restored, checkpoint::ReadError> {
    let mut restored = Restored::default();
    let bytes = match checkpoint::read(path)? {
        Loaded::Missing => return Ok(restored),
        Loaded::Bytes(bytes) => Ok(bytes),
        Loaded::Refused(reason) => Err(reason.to_string()),
    };
    let parsed = bytes.and_then(|bytes| match serde_json::from_slice::<SavedState>(&bytes) {
        Ok(saved) if saved.version == CHECKPOINT_VERSION => Ok(saved),
        Ok(saved) => Err(format!("version {} is not one this exporter reads", saved.version)),
        Err(e) => Err(checkpoint::describe(&e)),
    });
    // Where a fresh start begins (see `LogRunner::new`), said with the error.
    let starts = match start_at {
        Some(tailer::StartAt::Beginning) => "this log source starts over at the beginning of its files",
        _ => "this log source starts at the end of its files: lines written while it was down are not counted",
    };
    match parsed {
        Ok(saved) => {
            restored.resets = engine.restore(&saved.metrics);
            for (metric, reason) in &restored.resets {
                tracing::warn!(
                    log = id,
                    metric,
                    reason = reason.as_str(),
                    "saved values do not fit the spec any more; this metric starts over"
                );
            }
            restored.tailer = Some(saved.tailer);
            restored.paths = saved.paths;
            for c in restored.paths.values_mut() {
                // Checkpoints older than the line count: at least the lines counted.
                c.lines = c.lines.max(c.matched.saturating_add(c.unparsable));
            }
        }
        Err(reason) => {
            restored.corrupt = true;
            match checkpoint::set_aside(path) {
                Ok(aside) => tracing::error!(
                    log = id,
                    checkpoint = %path.display(),
                    set_aside = %aside.display(),
                    %reason,
                    "unreadable checkpoint set aside; {starts}"
                ),
                Err(e) => {
                    restored.keep_away = true;
                    tracing::error!(
                        log = id,
                        checkpoint = %path.display(),
                        %reason,
                        error = %e,
                        "unreadable checkpoint cannot be set aside and is never written over; {starts}"
                    );
                }
            }
        }
    }
    Ok(restored)
}

impl LogRunner {
    /// Builds the runner of one log source, restoring its checkpoint when there is one.
    pub fn new(model: &Model, id: &str, log: &LogFiles) -> Result<Self, LogSourceError> {
        let mut engine = rule_engine(model, id, log)?;
        let checkpoint = model.config.state_dir.as_ref().map(|d| d.join(format!("{id}.checkpoint.json")));
        let restored = match &checkpoint {
            Some(path) => restore(id, path, &mut engine, log.start_at)?,
            None => Restored::default(),
        };
        let start_at = log.start_at.unwrap_or(match &checkpoint {
            Some(_) if !restored.corrupt => tailer::StartAt::Beginning,
            _ => tailer::StartAt::End,
        });
        if log.start_at == Some(tailer::StartAt::Beginning) && checkpoint.is_none() {
            tracing::warn!(
                log = id,
                "start_at: beginning without a state_dir counts every line of the files again at each start; \
                 after a rotation, increase() takes them for new ones"
            );
        }
        let fresh = restored.tailer.is_none();
        let seed = (fresh && start_at == tailer::StartAt::End).then(|| engine.seeding());
        let config = TailerConfig {
            paths: log.paths.clone(),
            rotate_wait: log.rotate_wait.0,
            max_line_bytes: log.max_line_bytes,
            start_at,
            max_files: log.max_files.unwrap_or_else(|| crate::fds::default_max_files(model)),
        };
        Ok(Self {
            id: id.to_string(),
            tailer: Tailer::new(config, restored.tailer),
            engine,
            paths: restored.paths,
            dropped: BTreeMap::new(),
            read_errors: BTreeMap::new(),
            checkpoint,
            saves: SaveHealth::default(),
            resets: restored.resets,
            corrupt: restored.corrupt,
            keep_away: restored.keep_away,
            seed,
            max_line_bytes: log.max_line_bytes,
            catching_up: (fresh && start_at == tailer::StartAt::Beginning).then(Instant::now),
            watched: log.paths.clone(),
            lock: None,
            batch: LineBatch::default(),
        })
    }

    /// Whether the latest poll left a backlog unread: poll again without waiting.
    pub fn behind(&self) -> bool {
        self.tailer.behind()
    }

    /// The files the tailer has open now: `integration_exporter_log_files`.
    fn open_files(&self) -> usize {
        self.tailer.file_stats().iter().filter(|s| s.followed).count()
    }

    /// One pass over the files. Returns whether anything was read, or which files are open
    /// changed.
    pub fn poll(&mut self) -> bool {
        // A file opened or lost without a line (an empty file, or one resumed from the
        // checkpoint with nothing new in it) changes what is served: without this, a quiet log
        // counted as no file after every restart, and its source-health alert paged.
        let open_before = self.open_files();
        // A rotated file closed without a line: it is remembered in the checkpoint (it may
        // come back), so that must be saved as well.
        let handles_before = self.tailer.handles();
        let skipped_before = self.tailer.skipped_files();
        let mut changed = false;
        let engine = &mut self.engine;
        let paths = &mut self.paths;
        let dropped = &mut self.dropped;
        let read_errors = &mut self.read_errors;
        let clock = LineClock::at(unix_now());
        let batch = &mut self.batch;
        self.tailer.poll(Instant::now(), &mut |event| {
            changed = true;
            match event {
                Event::Line { path, line } => {
                    if let Some((path, counts)) = batch.push(engine, clock, path, line) {
                        count_lines(paths, &path, counts);
                    }
                }
                Event::Dropped { path, reason } => {
                    *dropped.entry((path.to_string(), reason.as_str())).or_default() += 1
                }
                Event::Error { path, error } => {
                    let count = read_errors.entry(path.to_string()).or_default();
                    // Log the first error of a path and then every 100th, not every poll.
                    if count.is_multiple_of(100) {
                        tracing::warn!(path, %error, "cannot read log file");
                    }
                    *count += 1;
                }
                Event::Rotated { .. } | Event::Truncated { .. } => {}
            }
        });
        if let Some((path, counts)) = self.batch.flush(&mut self.engine, clock) {
            count_lines(&mut self.paths, &path, counts);
        }
        changed |= self.open_files() != open_before
            || self.tailer.handles() != handles_before
            || self.tailer.skipped_files() != skipped_before;
        if changed {
            self.forget_gone_paths();
        }
        // A backlog takes several polls (a file's share of one is 16 MiB): the counters are
        // served once the content from before the start is read (or after CATCH_UP_LIMIT,
        // should a file grow faster).
        if let Some(since) = self.catching_up {
            let read = self.tailer.file_stats().iter().all(|s| s.offset >= s.size);
            if read || since.elapsed() >= CATCH_UP_LIMIT {
                self.catching_up = None;
                changed = true;
            }
        }
        if let Some(mut seed) = self.seed.take() {
            // After the first poll: the tailer has opened the files at their end, so `offset`
            // is where the old content ends (or later, if lines came meanwhile: the live ones
            // win, see `adopt_seed`).
            for stats in self.tailer.file_stats() {
                if stats.offset == 0 {
                    continue;
                }
                if let Err(error) =
                    seed::read_head(&mut seed, Path::new(&stats.path), stats.offset, self.max_line_bytes)
                {
                    tracing::warn!(log = self.id, path = stats.path, %error, "cannot read the old content for gauges");
                }
            }
            self.engine.adopt_seed(seed);
            changed = true;
        }
        changed
    }

    /// Drops the counters of paths the tailer forgot (a glob match gone for `rotate_wait`, a
    /// checkpointed file the paths no longer match): they are not served, and files that come
    /// and go would otherwise grow the checkpoint without end. A configured literal path keeps
    /// them, its file may come back.
    fn forget_gone_paths(&mut self) {
        let stats = self.tailer.file_stats();
        if self.paths.len() <= stats.len() {
            return;
        }
        let known: std::collections::BTreeSet<&str> = stats.iter().map(|s| s.path.as_str()).collect();
        let watched = &self.watched;
        self.paths.retain(|path, _| known.contains(path.as_str()) || watched.contains(path));
    }

    /// The earliest time after `now` at which an exported `set` value goes stale.
    pub fn next_expiry(&self, now: f64) -> Option<f64> {
        self.engine.next_expiry(now)
    }

    /// Saves under `lock` from now on: no save once another exporter holds the state_dir.
    pub fn set_lock(&mut self, lock: Arc<StateDirLock>) {
        self.lock = Some((lock, 0));
    }

    /// Looks (at most every second, or now if `force`) whether the state_dir lock is still ours;
    /// true when it had to be taken again, so the checkpoint must be written anew.
    pub fn check_lock(&mut self, force: bool) -> Result<bool, String> {
        let Some((lock, seen)) = &mut self.lock else { return Ok(false) };
        match lock.check(force) {
            LockCheck::Held { generation } => Ok(std::mem::replace(seen, generation) != generation),
            LockCheck::Lost(msg) => Err(msg),
        }
    }

    /// Saves offsets and counters together. The outcome also feeds the checkpoint self-metrics
    /// and a log line that is not repeated every second.
    pub fn save_checkpoint(&mut self) -> std::io::Result<()> {
        let lock = self.check_lock(true);
        let Some(path) = &self.checkpoint else { return Ok(()) };
        let result = if let Err(msg) = lock {
            Err(std::io::Error::new(std::io::ErrorKind::ResourceBusy, msg))
        } else if self.keep_away {
            Err(std::io::Error::other("an unreadable checkpoint that could not be set aside is in the way"))
        } else {
            let saved = SavedState {
                version: CHECKPOINT_VERSION,
                tailer: self.tailer.checkpoint(),
                metrics: self.engine.save(),
                paths: self.paths.clone(),
            };
            serde_json::to_vec(&saved).map_err(std::io::Error::other).and_then(|bytes| checkpoint::write(path, &bytes))
        };
        self.saves.record(&self.id, path, &result);
        result
    }

    /// What to serve now.
    pub fn families(&self) -> Vec<Family> {
        self.families_at(unix_now())
    }

    /// What to serve at `now` (unix seconds): `set` values older than `max_age` are left out.
    pub fn families_at(&self, now: f64) -> Vec<Family> {
        let mut families = if self.catching_up.is_some() { Vec::new() } else { self.engine.fresh_families(now) };
        let log = self.id.as_str();
        let mut bytes = self_metrics::LOG_BYTES_READ.family();
        let mut size = self_metrics::LOG_FILE_SIZE.family();
        let mut offset = self_metrics::LOG_FILE_OFFSET.family();
        let mut lines = self_metrics::LOG_LINES.family();
        let mut matched = self_metrics::LOG_LINES_MATCHED.family();
        let mut unparsable = self_metrics::LOG_LINES_UNPARSABLE.family();
        let mut rotations = self_metrics::LOG_ROTATIONS.family();
        let mut truncations = self_metrics::LOG_TRUNCATIONS.family();
        let mut dropped = self_metrics::LOG_DROPPED_LINES.family();
        let mut errors = self_metrics::LOG_READ_ERRORS.family();
        let stats = self.tailer.file_stats();
        let followed = stats.iter().filter(|s| s.followed).count();
        let files = self_metrics::LOG_FILES.family().with(&[("log", log)], followed as f64);
        let skipped =
            self_metrics::LOG_FILES_SKIPPED.family().with(&[("log", log)], self.tailer.skipped_files() as f64);
        for stats in stats {
            let l = [("log", log), ("path", stats.path.as_str())];
            bytes.push(&l, stats.bytes_read as f64);
            size.push(&l, stats.size as f64);
            offset.push(&l, stats.offset as f64);
            let counters = self.paths.get(&stats.path).cloned().unwrap_or_default();
            lines.push(&l, counters.lines as f64);
            rotations.push(&l, stats.rotations as f64);
            truncations.push(&l, stats.truncations as f64);
            matched.push(&l, counters.matched as f64);
            unparsable.push(&l, counters.unparsable as f64);
        }
        for ((path, reason), n) in &self.dropped {
            dropped.push(&[("log", log), ("path", path), ("reason", reason)], *n as f64);
        }
        for (path, n) in &self.read_errors {
            errors.push(&[("log", log), ("path", path)], *n as f64);
        }
        let mut overflow = self_metrics::LABEL_OVERFLOW.family();
        for (metric, n) in self.engine.overflows() {
            overflow.push(&[("metric", metric)], *n as f64);
        }
        let mut truncated = self_metrics::LABEL_TRUNCATED.family();
        for (metric, n) in self.engine.truncations() {
            truncated.push(&[("metric", metric)], *n as f64);
        }
        families.extend([
            files,
            skipped,
            bytes,
            size,
            offset,
            lines,
            matched,
            unparsable,
            rotations,
            truncations,
            dropped,
            errors,
            overflow,
            truncated,
        ]);
        if self.checkpoint.is_some() {
            families.extend(self.checkpoint_families());
        }
        families
    }

    fn checkpoint_families(&self) -> Vec<Family> {
        let log = self.id.as_str();
        let mut failures = self_metrics::CHECKPOINT_SAVE_FAILURES.family();
        for (reason, n) in &self.saves.failures {
            failures.push(&[("log", log), ("reason", reason)], *n as f64);
        }
        let mut last = self_metrics::CHECKPOINT_LAST_SUCCESS.family();
        if let Some(t) = self.saves.last_success {
            last.push(&[("log", log)], t);
        }
        let corrupt =
            self_metrics::CHECKPOINT_CORRUPT.family().with(&[("log", log)], if self.corrupt { 1.0 } else { 0.0 });
        let mut resets = self_metrics::CHECKPOINT_METRIC_RESETS.family();
        for (metric, reason) in &self.resets {
            resets.push(&[("log", log), ("metric", metric), ("reason", reason.as_str())], 1.0);
        }
        vec![failures, last, corrupt, resets]
    }
}

/// [`spawn_with`] through the kinds' registry, taking over the runners a reload stopped.
pub fn start(start: &super::Start<'_>) -> Result<super::Workers, super::StartError> {
    let threads = spawn_with(start.model, start.state.clone(), start.stop.clone(), start.logs)?;
    Ok(super::Workers { tasks: Vec::new(), threads })
}

/// Starts one thread per log source. Threads stop when `shutdown` is set, saving a last checkpoint;
/// join them to know it is written. They share the `state_dir` lock, released when the last ends:
/// a reload joins the old threads before calling this again, or the lock refuses the new ones.
pub fn spawn_all(
    model: &Model,
    state: Arc<State>,
    shutdown: Arc<AtomicBool>,
) -> Result<Vec<JoinHandle<()>>, StartError> {
    spawn_with(model, state, shutdown, &Handover::default())
}

/// [`spawn_all`], going on with the runners parked in `handover` whose spec did not change; the
/// threads park theirs there when they stop. On an error every runner taken is parked again, for
/// the sources that ran before to go on with.
pub fn spawn_with(
    model: &Model,
    state: Arc<State>,
    shutdown: Arc<AtomicBool>,
    handover: &Handover,
) -> Result<Vec<JoinHandle<()>>, StartError> {
    let mut handles = Vec::new();
    let used = used_logs(model);
    let lock = match &model.config.state_dir {
        Some(dir) if !used.is_empty() => StateDirLock::acquire(dir).map_err(StartError::StateDir)?.map(Arc::new),
        _ => None,
    };
    // Every runner is built before any thread starts, so a source that fails to build leaves no
    // thread behind holding the state_dir lock (a reload then falls back to the old sources).
    let mut runners: Vec<(RunnerSpec, LogRunner, Vec<String>)> = Vec::new();
    for (id, log) in model.logs.iter().filter(|(id, _)| used.contains(id.as_str())) {
        let spec = RunnerSpec::of(model, id, log);
        let runner = match handover.take(id, &spec) {
            Some(runner) => runner,
            None => match LogRunner::new(model, id, log) {
                Ok(runner) => runner,
                Err(e) => {
                    for (spec, runner, _) in runners {
                        handover.park(&runner.id.clone(), spec, runner);
                    }
                    return Err(StartError::Log { id: id.clone(), reason: e });
                }
            },
        };
        runners.push((spec, runner, log.paths.clone()));
    }
    // What was not taken belonged to sources that changed or went: their files close here.
    handover.clear();
    for (spec, mut runner, paths) in runners {
        if let Some(lock) = &lock {
            runner.set_lock(lock.clone());
        }
        let id = runner.id.clone();
        let handover = handover.clone();
        let state = state.clone();
        let shutdown = shutdown.clone();
        let lock = lock.clone();
        let producer = format!("{KIND}:{id}");
        state.publish(&producer, runner.families());
        let handle = std::thread::Builder::new()
            .name(format!("log-{id}"))
            .spawn(move || {
                // Set up here, not before the spawn: the watch lives and dies with this thread.
                let mut wake = wake::Wake::new(&runner.id, &paths, shutdown.clone());
                let mut last_save = Instant::now();
                let mut last_track: Option<Instant> = None;
                let mut dirty = false;
                // Changes not served yet: while behind, publishing waits for CATCH_UP_PUBLISH_EVERY.
                let mut unpublished = false;
                let mut last_publish = Instant::now();
                // Publishing is what drops a `set` value that went stale, even without new lines.
                let mut next_expiry = runner.next_expiry(unix_now());
                while !shutdown.load(Ordering::Relaxed) {
                    let mut changed = runner.poll();
                    let behind = runner.behind();
                    changed |= next_expiry.is_some_and(|t| unix_now() >= t);
                    // The files the tailer follows, so symlinks into other directories get those
                    // watched too: on the first poll, then at most once a second.
                    if last_track.is_none_or(|t| t.elapsed() >= wake::FALLBACK_INTERVAL) {
                        wake.track(runner.tailer.file_stats().iter().map(|s| s.path.as_str()));
                        last_track = Some(Instant::now());
                    }
                    dirty |= changed;
                    // A state_dir removed meanwhile: locked again, and this checkpoint saved anew.
                    dirty |= runner.check_lock(false).unwrap_or(false);
                    let mut saved = false;
                    if dirty && last_save.elapsed() >= CHECKPOINT_EVERY {
                        // A failed save stays dirty and is retried a second later.
                        dirty = runner.save_checkpoint().is_err();
                        last_save = Instant::now();
                        saved = true;
                    }
                    unpublished |= changed;
                    // A save is served at once, backlog or not: what is served never lags
                    // behind the checkpoint a restart would resume from.
                    if saved || (unpublished && (!behind || last_publish.elapsed() >= CATCH_UP_PUBLISH_EVERY)) {
                        let now = unix_now();
                        state.publish(&producer, runner.families_at(now));
                        next_expiry = runner.next_expiry(now);
                        unpublished = false;
                        last_publish = Instant::now();
                    }
                    // Behind: the rest of the backlog is read by the next poll, now; scrapes
                    // are served meanwhile by the HTTP threads from what was published.
                    if !behind {
                        wake.wait();
                    }
                }
                drop(wake);
                let _ = runner.save_checkpoint();
                state.publish(&producer, runner.families());
                // A parked runner holds no share of the lock: the next start takes it anew.
                runner.lock = None;
                drop(lock);
                handover.park(&runner.id.clone(), spec, runner);
            })
            .map_err(|e| StartError::Log { id: id.clone(), reason: LogSourceError::Thread(e) })?;
        handles.push(handle);
    }
    Ok(handles)
}
