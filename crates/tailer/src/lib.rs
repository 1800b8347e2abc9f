//! Follows log files by path or glob and hands every complete line to a
//! sink exactly once, across logrotate's rename, delete+recreate and
//! copytruncate schemes and across restarts (via [`Checkpoint`]).
//!
//! The model: a file we follow is identified by (dev, inode), never by
//! name. Each poll expands the watched paths (one `metadata()` per path,
//! one `read_dir()` per glob directory); a file reachable through a watched
//! path is *live*. A file that stops being reachable (renamed away, deleted)
//! is *retired*: we keep reading its open handle until it has produced no
//! new bytes for `rotate_wait`, then close it. A new inode at a path is read
//! from offset 0. Events and stats carry the path a file was opened under,
//! so labels stay stable after a rename.
//!
//! Copytruncate keeps the inode, so it is recognised by the file shrinking
//! below our offset, or — if it has regrown past our offset by the next
//! poll — by a fingerprint (FNV-1a of the first up to 1 KiB) no longer
//! matching the head. The head is checked whenever size or mtime changed,
//! and again after every read before its lines are emitted.
//!
//! Content decides only for files new to us (see `copies`): when the glob
//! also matches logrotate's copy, a new file whose head hashes like the head
//! a followed file had before it was truncated is that file's old content
//! and continues from the offset we had reached. Followed files are checked
//! before new ones in every poll, so the truncation is known before the copy
//! is judged whatever the names' order; a new file that looks like a file we
//! still follow (the copy made before the truncation) waits up to
//! `rotate_wait` for that truncation, then is read from 0. A new file is
//! opened at once (so a rename or delete before it is judged loses nothing)
//! and judged on its first bytes. Compressed files are never read.
//!
//! # What can be lost
//! * **copytruncate**: lines the tailer had not read when the file was
//!   truncated exist only in the copy. That is logrotate's own race (lines
//!   written between its copy and its truncate are lost for everybody).
//!   A truncate-and-regrow that reproduces the first 1 KiB byte for byte, or
//!   restores the same size within one mtime tick, is not detected.
//! * **lookalikes**: a new file whose first up to 1 KiB equal those of a
//!   file we follow is read only after `rotate_wait` (it may be a copy); one
//!   equal to a truncated file's old head, appearing within 10 minutes of the
//!   truncation, is taken for its copy. A copy of a file that was renamed or
//!   deleted (not a logrotate scheme) is read from 0.
//! * **retired files**: bytes appended to a renamed/deleted file after it
//!   was idle for `rotate_wait` (we have closed it by then), unless it comes
//!   back (see `closed`: a file closed while still linked somewhere, a
//!   symlink pointed back at it, continues where we were).
//! * **reused inodes**: without birth times (statx), a new file reusing the
//!   inode of a file we closed, as long as our offset in it and with the
//!   same first up to 1 KiB, continues at that offset.
//! * **restart**: a file that was created *and* rotated away while the
//!   tailer was down (or after the last saved checkpoint) is never seen; a
//!   checkpointed file that was rotated out of its directory or deleted
//!   while down cannot be drained (an `Error` event says so).
//! * Non-UTF-8 file names under a glob are skipped (labels are `&str`).
//! * **over `max_files`**: files beyond it are not read until a followed one
//!   closes (one left out at a `start_at: End` start then opens at its end).
//!
//! Lines longer than `max_line_bytes` (counting a trailing `\r`) and lines
//! that are not UTF-8 are reported as [`Event::Dropped`], never emitted.
//! I/O errors become [`Event::Error`], reported when an error starts or
//! changes kind (not on every poll), and the tailer keeps going.

mod checkpoint;
mod closed;
mod copies;
mod file;
mod fnv;
mod glob;
mod lines;

pub use checkpoint::{Checkpoint, ClosedFile, FileCheckpoint, TruncatedHead, write_atomic};
pub use fnv::fnv1a;
pub use glob::files_matching;
pub use lines::{Cut, LineSplitter};

use closed::{Closed, ClosedFiles};
use copies::Copies;
use file::{FileId, Fingerprint, Follower, Start, Stat};
use glob::Pattern;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::DirEntryExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What to follow and how.
#[derive(Clone, Debug)]
pub struct TailerConfig {
    /// Paths or globs (`*`, `?`, `[...]` in the file-name part only).
    pub paths: Vec<String>,
    /// Keep reading a renamed/deleted file's old handle until it has been
    /// idle this long.
    pub rotate_wait: Duration,
    /// Longer lines are dropped with [`DropReason::TooLong`].
    pub max_line_bytes: usize,
    /// Where to start in files that exist at the first poll of a tailer
    /// created without a checkpoint. Later files are read from offset 0.
    pub start_at: StartAt,
    /// Most files held open at once, retired ones included: each is a file
    /// descriptor. New files beyond it are not opened (newest first when
    /// there is room for some; see [`Tailer::skipped_files`]) until a
    /// followed one is closed.
    pub max_files: usize,
}

impl Default for TailerConfig {
    fn default() -> Self {
        TailerConfig {
            paths: Vec::new(),
            rotate_wait: Duration::from_secs(10),
            max_line_bytes: 1024 * 1024,
            start_at: StartAt::End,
            max_files: usize::MAX,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    Beginning,
    #[default]
    End,
}

#[derive(Debug)]
pub enum Event<'a> {
    /// A complete line without its `\n` (and without a trailing `\r`).
    Line {
        path: &'a str,
        line: &'a str,
    },
    Dropped {
        path: &'a str,
        reason: DropReason,
    },
    /// `path` now names a different file, or none (rename or delete).
    Rotated {
        path: &'a str,
    },
    /// copytruncate detected; the file is read again from offset 0.
    Truncated {
        path: &'a str,
    },
    Error {
        path: &'a str,
        error: &'a io::Error,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    TooLong,
    InvalidUtf8,
    /// A partial line left when a retired file was closed or a file truncated.
    Unterminated,
}

impl DropReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::TooLong => "too_long",
            DropReason::InvalidUtf8 => "invalid_utf8",
            DropReason::Unterminated => "unterminated",
        }
    }
}

/// Counters per path label (the path a file was opened under). `size` and
/// `offset` describe the file currently at that path, 0 if none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileStats {
    pub path: String,
    pub bytes_read: u64,
    pub lines: u64,
    pub size: u64,
    pub offset: u64,
    pub rotations: u64,
    pub truncations: u64,
    pub dropped: u64,
    /// Whether a file is at this path now and open for reading (an empty one too).
    pub followed: bool,
}

/// Syscalls issued so far; lets callers and tests check what a poll costs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoCounts {
    /// `metadata()` on paths.
    pub metadata: u64,
    pub read_dir: u64,
    pub open: u64,
    /// `fstat()` on held handles (retired files only).
    pub fstat: u64,
    pub reads: u64,
}

struct PathState {
    /// File at this path as of the latest poll.
    current: Option<FileId>,
    stats: FileStats,
}

/// What one poll learned about a path.
enum Seen {
    File(Stat),
    Missing,
    /// Could not tell (error); keep the previous state.
    Unknown,
}

/// What to do with a new file this poll (see `Tailer::judge`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Read,
    Wait,
    /// Compressed: close it and never look again.
    Drop,
}

/// Error de-duplication key: (operation, path).
type ErrKey = (&'static str, String);

pub struct Tailer {
    config: TailerConfig,
    patterns: Vec<Pattern>,
    followers: Vec<Follower>,
    paths: BTreeMap<String, PathState>,
    restored: Option<Checkpoint>,
    polls: u64,
    buf: Vec<u8>,
    errors: HashMap<ErrKey, io::ErrorKind>,
    io: IoCounts,
    /// Heads of files truncated in place, for recognising their copies.
    copies: Copies,
    /// Compressed files (by magic number): never read.
    ignored: HashSet<FileId>,
    /// Where we were in files closed while they still existed.
    closed: ClosedFiles,
    /// Files the latest poll found but did not open: `max_files` are open.
    capped: HashSet<FileId>,
    /// Files capped at the first poll of a `start_at: End` start: when there
    /// is room for them later, they too start at their end.
    capped_at_start: HashSet<FileId>,
}

impl Tailer {
    pub fn new(config: TailerConfig, restored: Option<Checkpoint>) -> Self {
        let patterns = config.paths.iter().map(|p| Pattern::parse(p)).collect();
        Tailer {
            config,
            patterns,
            followers: Vec::new(),
            paths: BTreeMap::new(),
            restored,
            polls: 0,
            buf: vec![0; file::CHUNK],
            errors: HashMap::new(),
            io: IoCounts::default(),
            copies: Copies::default(),
            ignored: HashSet::new(),
            closed: ClosedFiles::default(),
            capped: HashSet::new(),
            capped_at_start: HashSet::new(),
        }
    }

    /// Whether the latest poll left bytes unread in a file (it stopped at the
    /// file's share of a poll, so the other files get their turn): poll again
    /// at once rather than waiting for a change.
    pub fn behind(&self) -> bool {
        self.followers.iter().any(|f| f.more && f.seen_gen == self.polls)
    }

    /// Files the paths matched at the latest poll that are not open because
    /// `max_files` are: their lines are not read.
    pub fn skipped_files(&self) -> usize {
        self.capped.len()
    }

    /// One pass: expand globs, detect rotation/truncation/deletion/new files,
    /// read all new bytes, emit complete lines.
    pub fn poll(&mut self, now: Instant, sink: &mut dyn FnMut(Event<'_>)) {
        self.polls += 1;
        let generation = self.polls;
        let start_at_end = generation == 1 && self.restored.is_none() && self.config.start_at == StartAt::End;
        if let Some(cp) = self.restored.take() {
            self.restore(cp, now, sink);
        }

        let seen = self.expand(sink);

        // Who is where now; emit Rotated for paths whose file changed.
        let mut live = HashSet::new();
        for (path, s) in &seen {
            match s {
                Seen::File(st) => {
                    let ps = path_state(&mut self.paths, path);
                    if ps.current.is_some_and(|prev| prev != st.id) {
                        ps.stats.rotations += 1;
                        sink(Event::Rotated { path });
                    }
                    ps.current = Some(st.id);
                    live.insert(st.id);
                }
                Seen::Missing => {
                    if let Some(ps) = self.paths.get_mut(path)
                        && ps.current.take().is_some()
                    {
                        ps.stats.rotations += 1;
                        sink(Event::Rotated { path });
                    }
                }
                Seen::Unknown => {
                    if let Some(id) = self.paths.get(path).and_then(|ps| ps.current) {
                        live.insert(id);
                    }
                }
            }
        }
        for f in &mut self.followers {
            let was_live = f.live;
            f.live = live.contains(&f.id);
            if was_live && !f.live {
                // The idle clock starts at retirement: a quiet file that is
                // renamed may still get writes through its old handle.
                f.last_active = now;
            }
        }

        // Drain retired files first, so an old file's last lines come before
        // the new file's first ones.
        self.drain_retired(now, generation, sink);

        // Files we follow before new ones: a truncation must be seen before
        // the copy it explains is judged, whatever the names' order.
        let known: HashSet<FileId> = self.followers.iter().filter(|f| !f.unjudged).map(|f| f.id).collect();
        for (path, s) in &seen {
            if let Seen::File(st) = s
                && known.contains(&st.id)
            {
                self.follow(path, *st, start_at_end, now, generation, sink);
            }
        }
        self.capped.clear();
        for (path, st) in self.by_priority(&seen, &known) {
            self.follow(path, st, start_at_end, now, generation, sink);
        }
        if start_at_end {
            self.capped_at_start.clone_from(&self.capped);
        }
        self.ignored.retain(|id| live.contains(id));
        self.capped_at_start.retain(|id| live.contains(id));
        self.copies.expire(now);
        if !self.behind() && self.buf.len() > file::CHUNK {
            // Caught up: the block buffer of a backlog is not held while idle.
            self.buf = vec![0; file::CHUNK];
        }

        // Forget glob matches that are gone for good, so churn in a
        // directory does not grow memory forever. Literal paths keep stats.
        let patterns = &self.patterns;
        let followers = &self.followers;
        self.paths.retain(|path, ps| {
            ps.current.is_some()
                || followers.iter().any(|f| &f.label == path)
                || patterns.iter().any(|p| matches!(p, Pattern::Literal(l) if l == path))
        });
    }

    /// The files of `seen` not among `known`, in the order they get the
    /// room left under `max_files`: by name while all fit, else the most
    /// recently modified first (the ones being written to).
    fn by_priority<'s>(&self, seen: &'s BTreeMap<String, Seen>, known: &HashSet<FileId>) -> Vec<(&'s str, Stat)> {
        let mut new: Vec<(&str, Stat)> = seen
            .iter()
            .filter_map(|(path, s)| match s {
                Seen::File(st) if !known.contains(&st.id) => Some((path.as_str(), *st)),
                _ => None,
            })
            .collect();
        let room = self.config.max_files.saturating_sub(self.followers.len());
        if new.len() > room {
            let open: HashSet<FileId> = self.followers.iter().map(|f| f.id).collect();
            // Stable: equal times keep the names' order.
            new.sort_by_key(|(_, st)| (!open.contains(&st.id), std::cmp::Reverse(st.mtime)));
        }
        new
    }

    /// Positions and identities of every open file.
    pub fn checkpoint(&self) -> Checkpoint {
        // Not applied yet (no poll since `new`): it is still the whole truth.
        // Saving an empty one instead would re-read every file on the next start.
        if let Some(cp) = &self.restored {
            return cp.clone();
        }
        Checkpoint {
            version: 1,
            files: self
                .followers
                .iter()
                .map(|f| FileCheckpoint {
                    path: f.label.clone(),
                    dev: f.id.dev,
                    ino: f.id.ino,
                    offset: f.committed_offset(),
                    skipping: f.skipping(),
                    fingerprint_len: f.fp.len,
                    fingerprint_hash: f.fp.hash,
                    retired: !f.live,
                    unjudged: f.unjudged,
                })
                .collect(),
            truncated: self.copies.to_checkpoint(),
            closed: self.closed.to_checkpoint(),
        }
    }

    /// One entry per path label, sorted by path. A path whose file was
    /// never opened for lack of room under `max_files` has none.
    pub fn file_stats(&self) -> Vec<FileStats> {
        self.paths
            .iter()
            .filter(|(_, ps)| {
                !(ps.current.is_some_and(|id| self.capped.contains(&id)) && ps.stats == FileStats::default())
            })
            .map(|(path, ps)| {
                let mut s = ps.stats.clone();
                s.path.clone_from(path);
                let cur = ps.current.and_then(|id| self.followers.iter().find(|f| f.id == id));
                s.followed = cur.is_some();
                (s.size, s.offset) = match cur {
                    Some(f) if f.last_size != u64::MAX => (f.last_size, f.offset),
                    Some(f) => (0, f.offset),
                    None => (0, 0),
                };
                s
            })
            .collect()
    }

    /// Files held open now, those still drained after a rotation included.
    /// A change means the checkpoint changed even if no line was read.
    pub fn handles(&self) -> usize {
        self.followers.len()
    }

    /// Syscalls issued so far.
    pub fn io_counts(&self) -> IoCounts {
        self.io
    }

    /// Lists every watched path with what `metadata()` says about it, plus
    /// previously seen paths that a glob no longer produces (`Missing`).
    fn expand(&mut self, sink: &mut dyn FnMut(Event<'_>)) -> BTreeMap<String, Seen> {
        let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
        for pat in &self.patterns {
            match pat {
                Pattern::Literal(path) => {
                    if seen.contains_key(path) {
                        continue;
                    }
                    self.io.metadata += 1;
                    let s = match fs::metadata(path) {
                        Ok(m) if m.is_file() => {
                            ok(&mut self.errors, "stat", path);
                            Seen::File(Stat::of(&m))
                        }
                        Ok(_) => {
                            let e = io::Error::new(io::ErrorKind::InvalidInput, "not a regular file");
                            report(&mut self.errors, "stat", path, &e, sink);
                            Seen::Missing
                        }
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {
                            ok(&mut self.errors, "stat", path);
                            Seen::Missing
                        }
                        Err(e) => {
                            report(&mut self.errors, "stat", path, &e, sink);
                            Seen::Unknown
                        }
                    };
                    seen.insert(path.clone(), s);
                }
                Pattern::Glob { raw, dir, prefix, name } => {
                    self.io.read_dir += 1;
                    let entries = match fs::read_dir(dir) {
                        Ok(rd) => {
                            ok(&mut self.errors, "read_dir", raw);
                            rd
                        }
                        // No directory, no matches: known paths become Missing.
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {
                            ok(&mut self.errors, "read_dir", raw);
                            continue;
                        }
                        Err(e) => {
                            report(&mut self.errors, "read_dir", raw, &e, sink);
                            for known in self.paths.keys() {
                                if pat.covers(known) && !seen.contains_key(known) {
                                    seen.insert(known.clone(), Seen::Unknown);
                                }
                            }
                            continue;
                        }
                    };
                    for entry in entries.flatten() {
                        let fname = entry.file_name();
                        let Some(fname) = fname.to_str() else {
                            continue;
                        };
                        // A compressed rotation (`app.log.2.gz`) is never text.
                        if !glob::matches(name, fname) || copies::compressed_name(fname) {
                            continue;
                        }
                        let label = format!("{prefix}{fname}");
                        if seen.contains_key(&label) {
                            continue;
                        }
                        self.io.metadata += 1;
                        let s = match fs::metadata(entry.path()) {
                            Ok(m) if m.is_file() => {
                                ok(&mut self.errors, "stat", &label);
                                Seen::File(Stat::of(&m))
                            }
                            // Directories and the like are not logs.
                            Ok(_) => continue,
                            Err(e) if e.kind() == io::ErrorKind::NotFound => Seen::Missing,
                            Err(e) => {
                                report(&mut self.errors, "stat", &label, &e, sink);
                                Seen::Unknown
                            }
                        };
                        seen.insert(label, s);
                    }
                }
            }
        }
        for (path, ps) in &self.paths {
            if ps.current.is_some() && !seen.contains_key(path) {
                seen.insert(path.clone(), Seen::Missing);
            }
        }
        seen
    }

    /// Reads retired files; closes those idle for `rotate_wait`.
    fn drain_retired(&mut self, now: Instant, generation: u64, sink: &mut dyn FnMut(Event<'_>)) {
        let mut i = 0;
        while i < self.followers.len() {
            let f = &mut self.followers[i];
            if f.live {
                i += 1;
                continue;
            }
            f.seen_gen = generation;
            let verdict = match f.fstat(&mut self.io) {
                Ok(st) if f.unjudged => self.judge(i, st, now),
                _ => Verdict::Read,
            };
            if verdict == Verdict::Drop {
                self.followers.swap_remove(i);
                continue;
            }
            let f = &mut self.followers[i];
            let ps = path_state(&mut self.paths, &f.label);
            let res = if verdict == Verdict::Wait {
                Ok(false)
            } else {
                f.fstat(&mut self.io).and_then(|st| {
                    f.process(st, now, self.config.max_line_bytes, &mut self.buf, &mut ps.stats, &mut self.io, sink)
                })
            };
            if let Some((fp, offset, skipping)) = f.truncated_from.take() {
                self.copies.record(&f.label, fp, offset, skipping, now);
            }
            let read = match res {
                Ok(read) => {
                    ok(&mut self.errors, "read", &f.label);
                    read
                }
                Err(e) => {
                    report(&mut self.errors, "read", &f.label, &e, sink);
                    false
                }
            };
            if !read && now.saturating_duration_since(f.last_active) >= self.config.rotate_wait {
                // Still linked somewhere (a symlink pointed elsewhere, a rename out of our
                // paths): it may come back, and must then continue here, not at byte 0.
                let offset = f.committed_offset();
                if !f.unjudged
                    && offset > 0
                    && let Ok(st) = f.fstat(&mut self.io)
                    && st.nlink > 0
                {
                    let (label, id, skipping, fp) = (f.label.clone(), f.id, f.skipping(), f.fp);
                    self.closed.remember(Closed { label, id, offset, skipping, fp, born_ns: st.born_ns });
                }
                f.drop_partial(&mut ps.stats, sink);
                self.followers.swap_remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// Reads the live file at `path`, opening it if it is new to us.
    fn follow(
        &mut self,
        path: &str,
        st: Stat,
        start_at_end: bool,
        now: Instant,
        generation: u64,
        sink: &mut dyn FnMut(Event<'_>),
    ) {
        let idx = match self.followers.iter().position(|f| f.id == st.id) {
            Some(i) => i,
            None => match self.open(path, st, start_at_end, now, sink) {
                Some(i) => i,
                None => return,
            },
        };
        let f = &mut self.followers[idx];
        // A file reachable through several paths is read once per poll.
        if f.seen_gen == generation {
            return;
        }
        f.seen_gen = generation;
        if f.unjudged {
            match self.judge(idx, st, now) {
                Verdict::Read => {}
                Verdict::Wait => return,
                Verdict::Drop => {
                    self.followers.swap_remove(idx);
                    return;
                }
            }
        }
        let f = &mut self.followers[idx];
        let ps = path_state(&mut self.paths, &f.label);
        let res = f.process(st, now, self.config.max_line_bytes, &mut self.buf, &mut ps.stats, &mut self.io, sink);
        if let Some((fp, offset, skipping)) = f.truncated_from.take() {
            self.copies.record(&f.label, fp, offset, skipping, now);
        }
        match res {
            Ok(_) => ok(&mut self.errors, "read", &f.label),
            Err(e) => report(&mut self.errors, "read", &f.label, &e, sink),
        }
    }

    fn open(
        &mut self,
        path: &str,
        st: Stat,
        start_at_end: bool,
        now: Instant,
        sink: &mut dyn FnMut(Event<'_>),
    ) -> Option<usize> {
        if self.ignored.contains(&st.id) {
            return None;
        }
        if self.followers.len() >= self.config.max_files {
            self.capped.insert(st.id);
            return None;
        }
        // A file left unopened at the start opens where `start_at: End` would have.
        let start_at_end = start_at_end || self.capped_at_start.remove(&st.id);
        self.io.open += 1;
        let opened = File::open(path).and_then(|file| {
            self.io.fstat += 1;
            let m = file.metadata()?;
            Ok((file, Stat::of(&m)))
        });
        let (file, real) = match opened {
            Ok(x) => x,
            // Gone between metadata() and open(): next poll sees it.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            Err(e) => {
                report(&mut self.errors, "open", path, &e, sink);
                return None;
            }
        };
        ok(&mut self.errors, "open", path);
        // Replaced between metadata() and open(): identify by the handle;
        // next poll sorts out the path bookkeeping.
        if real.id != st.id && self.followers.iter().any(|f| f.id == real.id) {
            return None;
        }
        let start = if start_at_end { Start::End } else { Start::Zero };
        match Follower::open(path.to_string(), file, real, start, now, &mut self.io) {
            Ok(mut f) => {
                f.unjudged = !start_at_end;
                path_state(&mut self.paths, path);
                self.followers.push(f);
                Some(self.followers.len() - 1)
            }
            Err(e) => {
                report(&mut self.errors, "open", path, &e, sink);
                None
            }
        }
    }

    /// Decides where to start reading the new file `followers[idx]` once it
    /// has bytes: a copy of a truncated file continues where that file was;
    /// a file that looks like one we follow waits (up to `rotate_wait`) for
    /// that file's truncation; a compressed file is dropped, never read.
    fn judge(&mut self, idx: usize, st: Stat, now: Instant) -> Verdict {
        if st.size == 0 {
            return Verdict::Wait;
        }
        let f = &self.followers[idx];
        let head = match f.head(&mut self.io) {
            Ok(h) if !h.is_empty() => h,
            // Emptied meanwhile, or unreadable (process() will say why).
            Ok(_) => return Verdict::Wait,
            Err(_) => return Verdict::Read,
        };
        if copies::compressed_head(&head) {
            self.ignored.insert(f.id);
            return Verdict::Drop;
        }
        let prefixes = file::prefix_hashes(&head);
        if let Some(r) = self.closed.take(&st, &prefixes) {
            // A file we read before and closed (a symlink pointed back at it): where we were.
            let f = &mut self.followers[idx];
            f.resume(r.offset, r.skipping, r.fp);
            f.unjudged = false;
            return Verdict::Read;
        }
        if let Some(r) = self.copies.take_match(&prefixes) {
            // We may have read past the end of the copy (lines written between
            // the copy and the truncation): then it holds nothing new.
            let offset = r.offset.min(st.size);
            let skipping = if offset < r.offset { f.mid_line(offset, &mut self.io) } else { r.skipping };
            let f = &mut self.followers[idx];
            f.resume(offset, skipping, r.fp);
            f.unjudged = false;
            return Verdict::Read;
        }
        let lookalike = self
            .followers
            .iter()
            .any(|o| o.id != f.id && !o.unjudged && o.fp.len > 0 && o.fp.matches_prefixes(&prefixes));
        if lookalike && now.saturating_duration_since(f.born) < self.config.rotate_wait {
            return Verdict::Wait;
        }
        self.followers[idx].unjudged = false;
        Verdict::Read
    }

    /// Re-opens checkpointed files: at their path if the inode is still
    /// there, else by inode in the same directory (rotated while we were
    /// down). Runs at the first poll, so its events reach the sink.
    fn restore(&mut self, cp: Checkpoint, now: Instant, sink: &mut dyn FnMut(Event<'_>)) {
        self.copies.restore(cp.truncated, now);
        self.closed.restore(cp.closed);
        let mut listings: HashMap<PathBuf, Vec<(u64, PathBuf)>> = HashMap::new();
        for entry in cp.files {
            let id = FileId { dev: entry.dev, ino: entry.ino };
            if self.followers.iter().any(|f| f.id == id) {
                continue;
            }
            let fp = Fingerprint { len: entry.fingerprint_len, hash: entry.fingerprint_hash };
            let resume = Start::At { offset: entry.offset, skipping: entry.skipping, fp };
            self.io.metadata += 1;
            let at_path = fs::metadata(&entry.path).ok().map(|m| Stat::of(&m));
            if at_path.is_some_and(|s| s.id == id) {
                // Same inode at the same path: continue, unless its head or
                // size says it was truncated (or the inode reused) meanwhile.
                let Some((file, st, intact)) = self.open_checked(Path::new(&entry.path), id, &entry) else {
                    continue;
                };
                let start = if intact {
                    resume
                } else {
                    // Truncated while we were down: its copy may be here.
                    self.copies.record(&entry.path, fp, entry.offset, entry.skipping, now);
                    let ps = path_state(&mut self.paths, &entry.path);
                    ps.stats.truncations += 1;
                    sink(Event::Truncated { path: &entry.path });
                    Start::Zero
                };
                if let Ok(mut f) = Follower::open(entry.path.clone(), file, st, start, now, &mut self.io) {
                    f.unjudged = entry.unjudged && intact;
                    path_state(&mut self.paths, &entry.path).current = Some(id);
                    self.followers.push(f);
                }
                continue;
            }

            // Rotated while we were down: look for the inode next to the path.
            let ps = path_state(&mut self.paths, &entry.path);
            if !entry.retired {
                ps.stats.rotations += 1;
                sink(Event::Rotated { path: &entry.path });
            }
            let dir = match Path::new(&entry.path).parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let io = &mut self.io;
            let listing = listings.entry(dir.clone()).or_insert_with(|| {
                io.read_dir += 1;
                fs::read_dir(&dir).map(|rd| rd.flatten().map(|e| (e.ino(), e.path())).collect()).unwrap_or_default()
            });
            let candidates: Vec<PathBuf> =
                listing.iter().filter(|(ino, _)| *ino == entry.ino).map(|(_, p)| p.clone()).collect();
            let found = candidates.iter().find_map(|p| self.open_checked(p, id, &entry).filter(|x| x.2));
            match found {
                Some((file, st, _)) => {
                    if let Ok(mut f) = Follower::open(entry.path.clone(), file, st, resume, now, &mut self.io) {
                        f.live = false;
                        f.unjudged = entry.unjudged;
                        self.followers.push(f);
                    }
                }
                None => {
                    let e = io::Error::new(
                        io::ErrorKind::NotFound,
                        format!(
                            "checkpointed file (dev {} inode {}) is gone; lines after offset {} lost",
                            entry.dev, entry.ino, entry.offset
                        ),
                    );
                    sink(Event::Error { path: &entry.path, error: &e });
                }
            }
        }
    }

    /// Opens `path`, checks it is inode `id`, and whether the checkpointed
    /// fingerprint and offset still fit (`true`) or it was truncated.
    fn open_checked(&mut self, path: &Path, id: FileId, entry: &FileCheckpoint) -> Option<(File, Stat, bool)> {
        self.io.open += 1;
        let file = File::open(path).ok()?;
        self.io.fstat += 1;
        let st = Stat::of(&file.metadata().ok()?);
        if st.id != id {
            return None;
        }
        let head = file::read_head(&file, &mut self.io).ok()?;
        let fp = Fingerprint { len: entry.fingerprint_len, hash: entry.fingerprint_hash };
        let intact = fp.matches(&head) && st.size >= entry.offset;
        Some((file, st, intact))
    }
}

fn path_state<'a>(paths: &'a mut BTreeMap<String, PathState>, path: &str) -> &'a mut PathState {
    if !paths.contains_key(path) {
        paths.insert(path.to_string(), PathState { current: None, stats: FileStats::default() });
    }
    match paths.get_mut(path) {
        Some(ps) => ps,
        None => unreachable!("inserted above"),
    }
}

/// Emits an error unless the same kind was already reported for this
/// (operation, path) and has not cleared since.
fn report(
    errors: &mut HashMap<ErrKey, io::ErrorKind>,
    op: &'static str,
    path: &str,
    e: &io::Error,
    sink: &mut dyn FnMut(Event<'_>),
) {
    let prev = errors.insert((op, path.to_string()), e.kind());
    if prev != Some(e.kind()) {
        sink(Event::Error { path, error: e });
    }
}

fn ok(errors: &mut HashMap<ErrKey, io::ErrorKind>, op: &'static str, path: &str) {
    if !errors.is_empty() {
        errors.remove(&(op, path.to_string()));
    }
}
