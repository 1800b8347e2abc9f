//! One followed file: an open handle, identified by (dev, inode), its read
//! offset, the partial line carried between reads and a head fingerprint
//! used to recognise copytruncate.

use crate::fnv::fnv1a;
pub(crate) use crate::fnv::prefix_hashes;
use crate::lines::LineSplitter;
use crate::{DropReason, Event, FileStats, IoCounts};
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::time::{Instant, UNIX_EPOCH};

/// How many head bytes the fingerprint covers. 1 KiB spans several log lines,
/// so a file regrown after truncation almost never reproduces it.
pub(crate) const FP_MAX: usize = 1024;
/// Read size of a file that is keeping up; one syscall moves many lines.
pub(crate) const CHUNK: usize = 64 * 1024;
/// Read size while a file is more than a [`CHUNK`] behind: a backlog is read in
/// blocks, so the head check and the syscall done per read cost nothing.
pub(crate) const BLOCK: usize = 1024 * 1024;
/// A file's share of one poll: the other files get their turn after this many
/// bytes. It is not a budget between waits: a file stopped here is
/// [`Follower::more`], and the caller polls again without waiting
/// (see [`crate::Tailer::behind`]).
pub(crate) const SLICE: u64 = 16 * 1024 * 1024;

/// Identity of a file, independent of its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct FileId {
    pub dev: u64,
    pub ino: u64,
}

/// What one `metadata()`/`fstat()` tells us.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stat {
    pub id: FileId,
    pub size: u64,
    /// (seconds, nanoseconds): catches a same-size rewrite.
    pub mtime: (i64, i64),
    /// 0 once the file is deleted: its inode may then be reused.
    pub nlink: u64,
    /// Birth time, where the file system records one (statx).
    pub born_ns: Option<u64>,
}

impl Stat {
    pub(crate) fn of(m: &std::fs::Metadata) -> Stat {
        let born_ns = m.created().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_nanos() as u64);
        Stat {
            id: FileId { dev: m.dev(), ino: m.ino() },
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            nlink: m.nlink(),
            born_ns,
        }
    }
}

/// Hash of the first `len` bytes of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    pub len: u32,
    pub hash: u64,
}

impl Default for Fingerprint {
    /// Covers nothing yet, so it matches any head.
    fn default() -> Self {
        Fingerprint::of(&[])
    }
}

impl Fingerprint {
    pub(crate) fn of(bytes: &[u8]) -> Fingerprint {
        let bytes = &bytes[..bytes.len().min(FP_MAX)];
        Fingerprint { len: bytes.len() as u32, hash: fnv1a(bytes) }
    }

    /// Whether `head` (the file's current first bytes) still begins with
    /// what we fingerprinted. A shorter head means the file shrank.
    pub(crate) fn matches(&self, head: &[u8]) -> bool {
        let n = self.len as usize;
        head.len() >= n && fnv1a(&head[..n]) == self.hash
    }
}

impl Fingerprint {
    /// [`Fingerprint::matches`] against the output of [`prefix_hashes`].
    pub(crate) fn matches_prefixes(&self, prefixes: &[u64]) -> bool {
        prefixes.get(self.len as usize).is_some_and(|&h| h == self.hash)
    }
}

/// Reads up to `FP_MAX` bytes from offset 0.
pub(crate) fn read_head(file: &File, io: &mut IoCounts) -> io::Result<Vec<u8>> {
    let mut head = vec![0u8; FP_MAX];
    let mut got = 0;
    while got < FP_MAX {
        io.reads += 1;
        match file.read_at(&mut head[got..], got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    head.truncate(got);
    Ok(head)
}

pub(crate) struct Follower {
    /// Path the file was opened under; stays its label after rename.
    pub label: String,
    pub id: FileId,
    file: File,
    /// Next byte to read.
    pub offset: u64,
    /// The line being read, carried between reads.
    lines: LineSplitter,
    pub fp: Fingerprint,
    pub last_size: u64,
    last_mtime: (i64, i64),
    /// Last time bytes arrived, or the file was retired; drives `rotate_wait`.
    pub last_active: Instant,
    /// Reachable through a watched path as of the latest poll.
    pub live: bool,
    /// Poll generation that last processed this file (process once per poll).
    pub seen_gen: u64,
    /// Set by the first truncation seen: what the file was before it (head
    /// fingerprint, committed offset, skipping), so a copy of it can be
    /// recognised and continued. Taken by the tailer after each `process`.
    pub truncated_from: Option<(Fingerprint, u64, bool)>,
    /// A file new to us whose first bytes have not been judged yet (may it
    /// be a copy of a file we read?): nothing is read from it until then.
    /// Its handle is held meanwhile, so a rename or delete loses nothing.
    pub unjudged: bool,
    /// When we opened it; bounds how long a lookalike waits.
    pub born: Instant,
    /// The latest `process` stopped at its [`SLICE`] with bytes left to read.
    pub more: bool,
}

/// Where a newly opened follower starts.
pub(crate) enum Start {
    Zero,
    /// At the current end; a trailing partial line is skipped silently, it
    /// was written before we started.
    End,
    /// Resume from a checkpoint.
    At {
        offset: u64,
        skipping: bool,
        fp: Fingerprint,
    },
}

impl Follower {
    pub(crate) fn open(
        label: String,
        file: File,
        stat: Stat,
        start: Start,
        now: Instant,
        io: &mut IoCounts,
    ) -> io::Result<Follower> {
        let (offset, skipping, fp) = match start {
            Start::Zero => (0, false, Fingerprint::default()),
            Start::End => {
                let head = read_head(&file, io)?;
                let mut skipping = false;
                if stat.size > 0 {
                    let mut last = [0u8; 1];
                    io.reads += 1;
                    let n = file.read_at(&mut last, stat.size - 1)?;
                    skipping = n == 1 && last[0] != b'\n';
                }
                (stat.size, skipping, Fingerprint::of(&head))
            }
            Start::At { offset, skipping, fp } => (offset, skipping, fp),
        };
        Ok(Follower {
            label,
            id: stat.id,
            file,
            offset,
            lines: LineSplitter::new(skipping),
            fp,
            // Force the first process() to look at the file.
            last_size: u64::MAX,
            last_mtime: (i64::MIN, 0),
            last_active: now,
            live: true,
            seen_gen: 0,
            truncated_from: None,
            unjudged: false,
            born: now,
            more: false,
        })
    }

    /// The file's first bytes (up to `FP_MAX`).
    pub(crate) fn head(&self, io: &mut IoCounts) -> io::Result<Vec<u8>> {
        read_head(&self.file, io)
    }

    /// Continues a file judged to be a copy where its original was.
    pub(crate) fn resume(&mut self, offset: u64, skipping: bool, fp: Fingerprint) {
        self.offset = offset;
        self.lines.restart(skipping);
        self.fp = fp;
    }

    /// Whether the byte before `offset` is not a newline (reading from
    /// `offset` starts inside a line). Errors count as "no".
    pub(crate) fn mid_line(&self, offset: u64, io: &mut IoCounts) -> bool {
        if offset == 0 {
            return false;
        }
        let mut b = [0u8; 1];
        io.reads += 1;
        matches!(self.file.read_at(&mut b, offset - 1), Ok(1) if b[0] != b'\n')
    }

    pub(crate) fn fstat(&self, io: &mut IoCounts) -> io::Result<Stat> {
        io.fstat += 1;
        self.file.metadata().map(|m| Stat::of(&m))
    }

    /// Offset a restarted tailer should resume at (start of a partial line).
    pub(crate) fn committed_offset(&self) -> u64 {
        self.offset - self.lines.pending_len() as u64
    }

    pub(crate) fn skipping(&self) -> bool {
        self.lines.skipping()
    }

    /// Brings the file up to date given a fresh stat of it: detects
    /// truncation, reads everything new and emits complete lines.
    /// Returns whether any bytes were read.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn process(
        &mut self,
        stat: Stat,
        now: Instant,
        max_line: usize,
        buf: &mut Vec<u8>,
        stats: &mut FileStats,
        io: &mut IoCounts,
        sink: &mut dyn FnMut(Event<'_>),
    ) -> io::Result<bool> {
        self.more = false;
        let changed = stat.size != self.last_size || stat.mtime != self.last_mtime;
        if !changed && self.offset >= stat.size {
            return Ok(false);
        }
        self.last_size = stat.size;
        self.last_mtime = stat.mtime;
        // Files only shrink by truncation. A file that was truncated and has
        // since regrown past our offset is caught by the head check below.
        let mut truncated = stat.size < self.offset;
        if !truncated && self.offset >= stat.size {
            // Changed but nothing to read (e.g. rewritten to the same size).
            truncated = !self.fp.matches(&read_head(&self.file, io)?);
        }
        if stat.size.saturating_sub(self.offset) > CHUNK as u64 && buf.len() < BLOCK {
            buf.resize(BLOCK, 0);
        }
        let mut read_any = false;
        let mut read_this_poll = 0u64;
        let mut resets = 0;
        loop {
            if truncated {
                // A file rewritten faster than we can read it could loop
                // forever; leave the rest to the next poll.
                if resets == 2 {
                    break;
                }
                resets += 1;
                truncated = false;
                self.reset(stats, sink);
            }
            io.reads += 1;
            let n = match self.file.read_at(buf, self.offset) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            // Verify the head *after* reading and *before* emitting: if the
            // file was truncated and regrown between our stat and this read,
            // the chunk is from the middle of new content and must not be
            // emitted (it will be re-read from offset 0).
            if !self.verify_head(&buf[..n], io)? {
                truncated = true;
                continue;
            }
            self.emit_chunk(&buf[..n], max_line, stats, sink);
            self.offset += n as u64;
            stats.bytes_read += n as u64;
            read_this_poll += n as u64;
            read_any = true;
            self.last_active = now;
            if read_this_poll >= SLICE {
                self.more = true;
                break;
            }
        }
        Ok(read_any)
    }

    /// Checks the fingerprint against the current head and extends it while
    /// it covers fewer than `FP_MAX` bytes. `chunk` was just read at
    /// `self.offset`; when that is 0 it *is* the head and saves a read.
    fn verify_head(&mut self, chunk: &[u8], io: &mut IoCounts) -> io::Result<bool> {
        let owned;
        let head = if self.offset == 0 {
            chunk
        } else {
            owned = read_head(&self.file, io)?;
            &owned[..]
        };
        if !self.fp.matches(head) {
            return Ok(false);
        }
        if (self.fp.len as usize) < FP_MAX && head.len() > self.fp.len as usize {
            self.fp = Fingerprint::of(head);
        }
        Ok(true)
    }

    fn reset(&mut self, stats: &mut FileStats, sink: &mut dyn FnMut(Event<'_>)) {
        if self.truncated_from.is_none() {
            self.truncated_from = Some((self.fp, self.committed_offset(), self.lines.skipping()));
        }
        sink(Event::Truncated { path: &self.label });
        stats.truncations += 1;
        // The rest of a partial line went with the truncated content.
        self.drop_partial(stats, sink);
        self.lines.restart(false);
        self.offset = 0;
        self.fp = Fingerprint::default();
    }

    /// Reports a partial line that can never be completed (file closed or
    /// truncated).
    pub(crate) fn drop_partial(&mut self, stats: &mut FileStats, sink: &mut dyn FnMut(Event<'_>)) {
        if self.lines.take_partial() {
            stats.dropped += 1;
            sink(Event::Dropped { path: &self.label, reason: DropReason::Unterminated });
        }
    }

    fn emit_chunk(&mut self, chunk: &[u8], max_line: usize, stats: &mut FileStats, sink: &mut dyn FnMut(Event<'_>)) {
        let label = &self.label;
        self.lines.feed(chunk, max_line, &mut |cut| match cut {
            Ok(line) => {
                stats.lines += 1;
                sink(Event::Line { path: label, line });
            }
            Err(reason) => {
                stats.dropped += 1;
                sink(Event::Dropped { path: label, reason });
            }
        });
    }
}
