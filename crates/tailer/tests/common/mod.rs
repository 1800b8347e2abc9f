//! Shared helpers for the integration tests: an event collector, a tiny
//! PRNG (no extra dependency), a numbered-line writer that rotates files the
//! way logrotate does, and exactly-once checks.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};
use tailer::{DropReason, Event, Tailer, TailerConfig};

#[path = "../../../../tests/shared/programs.rs"]
mod programs;

/// A command for a program the tests start, failing at once, with the Debian package that
/// provides it (the table in `scripts/test`, which installs them), when it is not on `PATH`.
pub fn program(name: &str) -> std::process::Command {
    let package =
        programs::package_of(name).unwrap_or_else(|| panic!("{name}: not in the table of programs in scripts/test"));
    let on_path =
        std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()));
    assert!(on_path, "{name} not found on PATH: install Debian package `{package}` (scripts/test does)");
    std::process::Command::new(name)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ev {
    Dropped(String, DropReason),
    Rotated(String),
    Truncated(String),
    Error(String, String),
}

/// Owned copy of everything a tailer emitted.
#[derive(Default, Debug)]
pub struct Collected {
    pub lines: Vec<(String, String)>,
    pub events: Vec<Ev>,
}

impl Collected {
    pub fn poll(&mut self, t: &mut Tailer) {
        t.poll(Instant::now(), &mut |e| self.push(e));
    }

    pub fn push(&mut self, e: Event<'_>) {
        match e {
            Event::Line { path, line } => self.lines.push((path.to_string(), line.to_string())),
            Event::Dropped { path, reason } => self.events.push(Ev::Dropped(path.into(), reason)),
            Event::Rotated { path } => self.events.push(Ev::Rotated(path.into())),
            Event::Truncated { path } => self.events.push(Ev::Truncated(path.into())),
            Event::Error { path, error } => self.events.push(Ev::Error(path.into(), error.to_string())),
        }
    }

    pub fn line_texts(&self) -> Vec<String> {
        self.lines.iter().map(|(_, l)| l.clone()).collect()
    }

    pub fn count(&self, pred: impl Fn(&Ev) -> bool) -> usize {
        self.events.iter().filter(|e| pred(e)).count()
    }
}

pub fn config(paths: &[&Path], rotate_wait: Duration) -> TailerConfig {
    TailerConfig {
        paths: paths.iter().map(|p| p.to_string_lossy().into_owned()).collect(),
        rotate_wait,
        max_line_bytes: 1 << 20,
        start_at: tailer::StartAt::Beginning,
        max_files: usize::MAX,
    }
}

/// xorshift64*: deterministic randomness without a dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Numbered line with variable padding so lines straddle read chunks.
pub fn numbered(n: u64, rng: &mut Rng) -> String {
    let pad = rng.below(120) as usize;
    format!("{n:09} {}\n", "x".repeat(pad))
}

/// (lost, counted twice) among `lines` for numbers 0..total.
pub fn tally(lines: &[String], total: u64) -> (u64, u64) {
    let mut seen: BTreeMap<u64, u64> = BTreeMap::new();
    for l in lines {
        let n: u64 = l.split(' ').next().and_then(|t| t.parse().ok()).unwrap_or_else(|| panic!("malformed line {l:?}"));
        *seen.entry(n).or_default() += 1;
    }
    let lost = (0..total).filter(|n| !seen.contains_key(n)).count() as u64;
    let twice = seen.values().map(|c| c - 1).sum::<u64>() + seen.keys().filter(|n| **n >= total).count() as u64;
    (lost, twice)
}

/// Asserts that numbers 0..total each appear exactly once among `lines`.
pub fn assert_exactly_once(lines: &[String], total: u64) {
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    for l in lines {
        let n: u64 = l.split(' ').next().and_then(|t| t.parse().ok()).unwrap_or_else(|| panic!("malformed line {l:?}"));
        *seen.entry(n).or_default() += 1;
    }
    let dups: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).map(|(n, _)| *n).collect();
    let missing: Vec<_> = (0..total).filter(|n| !seen.contains_key(n)).collect();
    let extra: Vec<_> = seen.keys().filter(|n| **n >= total).copied().collect();
    assert!(
        dups.is_empty() && missing.is_empty() && extra.is_empty(),
        "total {total}, emitted {}; duplicates {:?}, missing {} {:?}, extra {:?}",
        lines.len(),
        &dups[..dups.len().min(20)],
        missing.len(),
        &missing[..missing.len().min(20)],
        &extra[..extra.len().min(20)]
    );
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// rename(app.log, app.log.1), overwriting the previous app.log.1.
    Rename,
    /// rename(app.log, app.log.<k>) with a fresh k each time (nothing deleted).
    RenameUnique,
    /// unlink(app.log).
    Delete,
    /// logrotate `copytruncate`: copy app.log to app.log.<k>, truncate
    /// app.log in place; the writer keeps its handle (O_APPEND).
    CopyTruncate,
    /// `copytruncate` + `extension .log` + `delaycompress` + `compress`:
    /// copy to app.<k>.log (sorts before app.log), truncate, then compress
    /// the previous copy to app.<k-1>.log.gz and delete it.
    CopyTruncateCompress,
    /// `copytruncate` + `dateext` + `compress` (no delay): copy to
    /// app.log-<date><k>, truncate, then `gzip` the copy at once.
    DateextCompress,
    /// app.log is a symlink, switched among release-0.log .. release-2.log
    /// (a deploy switching releases), often back to a file it pointed at
    /// before; every few switches the writer pauses past the tailer's
    /// rotate_wait, so the old file's handle is closed before it comes back.
    SymlinkFlip,
}

/// How many targets `Scheme::SymlinkFlip` switches among.
pub const RELEASES: u64 = 3;
/// `Scheme::SymlinkFlip` pauses this long every 8th switch: past the
/// rotate_wait of the tests that use it.
pub const FLIP_PAUSE: Duration = Duration::from_millis(700);

/// Points `link` at `target` in one step, as `ln -sfn` through a rename does.
pub fn retarget(link: &Path, target: &Path) {
    let tmp = link.with_extension("new-link");
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).expect("symlink");
    fs::rename(&tmp, link).expect("rename link");
}

impl Scheme {
    /// Whether the writer's file keeps its inode across a rotation.
    pub fn in_place(self) -> bool {
        matches!(self, Scheme::CopyTruncate | Scheme::CopyTruncateCompress | Scheme::DateextCompress)
    }
}

/// A stand-in for gzip: the magic number, then the bytes (never read).
pub fn fake_gzip(src: &Path, dst: &Path) {
    let mut out = b"\x1f\x8b\x08\x00".to_vec();
    out.extend(fs::read(src).expect("read copy"));
    fs::write(dst, out).expect("write .gz");
}

/// copytruncate as logrotate does it: copy, then truncate the original.
pub fn copy_truncate(live: &Path, copy: &Path) {
    fs::copy(live, copy).expect("copy");
    OpenOptions::new().write(true).open(live).expect("open").set_len(0).expect("truncate");
}

/// Shared between the writer thread and the polling test thread.
#[derive(Default)]
pub struct Shared {
    /// Completed polls of the tailer.
    pub polls: AtomicU64,
    /// Checkpoints saved (crash test); gates rotation, see `may_rotate`.
    pub saved: AtomicU64,
    pub use_saved_gate: AtomicBool,
}

pub struct WriterPlan {
    pub dir: PathBuf,
    pub scheme: Scheme,
    pub rotations: usize,
    /// Cycled: how long the writer keeps using the old handle after a rotation.
    pub delays: Vec<Duration>,
    pub lines_per_file: u64,
    pub seed: u64,
}

fn open_append(p: &Path) -> File {
    OpenOptions::new().create(true).append(true).open(p).expect("open log for append")
}

/// Writes one line, sometimes in two pieces so a poll may see half of it.
fn write_line(f: &mut File, n: u64, rng: &mut Rng) {
    let line = numbered(n, rng);
    if rng.below(4) == 0 {
        let cut = 1 + rng.below(line.len() as u64 - 1) as usize;
        f.write_all(&line.as_bytes()[..cut]).expect("write");
        thread::yield_now();
        f.write_all(&line.as_bytes()[cut..]).expect("write");
    } else {
        f.write_all(line.as_bytes()).expect("write");
    }
}

/// Waits until the tailer has surely seen the file created now: a poll that
/// *started* after creation has completed (two completions after now).
fn wait_seen(shared: &Shared, gate_from_polls: u64, gate_from_saved: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let polls_ok = shared.polls.load(Ordering::SeqCst) >= gate_from_polls + 2;
        let saved_ok =
            !shared.use_saved_gate.load(Ordering::SeqCst) || shared.saved.load(Ordering::SeqCst) >= gate_from_saved + 2;
        if polls_ok && saved_ok {
            return;
        }
        assert!(Instant::now() < deadline, "tailer stopped polling");
        thread::sleep(Duration::from_micros(200));
    }
}

/// Writes numbered lines to `dir/app.log`, rotating `rotations` times.
/// Returns the number of lines written. Every file is seen by the tailer
/// before it is rotated away (otherwise its lines would not be in W).
pub fn run_writer(plan: WriterPlan, shared: Arc<Shared>) -> u64 {
    let mut rng = Rng::new(plan.seed);
    let live = plan.dir.join("app.log");
    let release = |k: u64| plan.dir.join(format!("release-{k}.log"));
    let mut target = 0;
    if plan.scheme == Scheme::SymlinkFlip {
        retarget(&live, &release(target));
    }
    let mut n = 0u64;
    let mut cur = open_append(&live);
    let mut gate = (shared.polls.load(Ordering::SeqCst), shared.saved.load(Ordering::SeqCst));
    for r in 0..plan.rotations {
        for _ in 0..rng.below(plan.lines_per_file) + 1 {
            write_line(&mut cur, n, &mut rng);
            n += 1;
        }
        if plan.scheme == Scheme::DateextCompress {
            // The copy is compressed at once: what it holds must have been
            // read (and saved, in crash tests) before, not just the file seen.
            gate = (shared.polls.load(Ordering::SeqCst), shared.saved.load(Ordering::SeqCst));
        }
        wait_seen(&shared, gate.0, gate.1);
        match plan.scheme {
            Scheme::Rename => fs::rename(&live, plan.dir.join("app.log.1")).expect("rename"),
            Scheme::RenameUnique => fs::rename(&live, plan.dir.join(format!("app.log.{r}"))).expect("rename"),
            Scheme::Delete => fs::remove_file(&live).expect("unlink"),
            Scheme::CopyTruncate => copy_truncate(&live, &plan.dir.join(format!("app.log.{r}"))),
            Scheme::CopyTruncateCompress => {
                copy_truncate(&live, &plan.dir.join(format!("app.{r}.log")));
                if r > 0 {
                    let prev = plan.dir.join(format!("app.{}.log", r - 1));
                    fake_gzip(&prev, &plan.dir.join(format!("app.{}.log.gz", r - 1)));
                    fs::remove_file(&prev).expect("rm compressed copy");
                }
            }
            Scheme::DateextCompress => {
                let copy = plan.dir.join(format!("app.log-20260101{r:06}"));
                copy_truncate(&live, &copy);
                let st = program("gzip").arg(&copy).status().expect("run gzip");
                assert!(st.success(), "gzip failed");
            }
            Scheme::SymlinkFlip => {
                target = (target + 1 + rng.below(RELEASES - 1)) % RELEASES;
                retarget(&live, &release(target));
            }
        }
        if plan.scheme.in_place() {
            // Same file, same handle: nothing to reopen.
            gate = (shared.polls.load(Ordering::SeqCst), shared.saved.load(Ordering::SeqCst));
            continue;
        }
        // Keep writing to the old handle, like a daemon that has not yet
        // been told to reopen its log.
        let delay = plan.delays[r % plan.delays.len()];
        let until = Instant::now() + delay;
        while Instant::now() < until {
            write_line(&mut cur, n, &mut rng);
            n += 1;
            thread::sleep(Duration::from_micros(300));
        }
        // One more write after the reopen point still goes to the old file.
        write_line(&mut cur, n, &mut rng);
        n += 1;
        cur = open_append(&live);
        if plan.scheme == Scheme::SymlinkFlip && r % 8 == 7 {
            thread::sleep(FLIP_PAUSE);
        }
        gate = (shared.polls.load(Ordering::SeqCst), shared.saved.load(Ordering::SeqCst));
    }
    for _ in 0..plan.lines_per_file {
        write_line(&mut cur, n, &mut rng);
        n += 1;
    }
    n
}

/// Polls until the writer thread has ended (done, or panicked: its join
/// then fails the test) and then for `tail` more, with a short random sleep
/// between polls.
pub fn poll_until_done<T>(
    t: &mut Tailer,
    c: &mut Collected,
    shared: &Shared,
    writer: &thread::JoinHandle<T>,
    tail: Duration,
    seed: u64,
) {
    let mut rng = Rng::new(seed);
    while !writer.is_finished() {
        c.poll(t);
        shared.polls.fetch_add(1, Ordering::SeqCst);
        thread::sleep(Duration::from_micros(rng.below(2000)));
    }
    let end = Instant::now() + tail;
    while Instant::now() < end {
        c.poll(t);
        shared.polls.fetch_add(1, Ordering::SeqCst);
        thread::sleep(Duration::from_millis(5));
    }
    c.poll(t);
}

pub fn spawn_writer(plan: WriterPlan, shared: &Arc<Shared>) -> thread::JoinHandle<u64> {
    let s = Arc::clone(shared);
    thread::spawn(move || run_writer(plan, s))
}

pub fn new_tailer(cfg: TailerConfig) -> Tailer {
    Tailer::new(cfg, None)
}
