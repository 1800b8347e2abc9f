//! Cutting bytes into lines, the one set of rules for everything that reads a log: the tailer
//! and `replay` hand their chunks to a [`LineSplitter`], so a rule tried on a file with `replay`
//! sees the lines the exporter would see.
//!
//! * A line ends at `\n`; a trailing `\r` is removed after the length check.
//! * A line longer than the limit (counting its `\r`) is dropped as
//!   [`DropReason::TooLong`]; it is reported as soon as it is known to be too long, and the
//!   rest of it is skipped up to its `\n`, so memory stays bounded by the limit.
//! * A line that is not UTF-8 is dropped as [`DropReason::InvalidUtf8`].
//! * Bytes after the last `\n` wait for the next chunk; what to do with them when no chunk
//!   comes is the caller's choice ([`LineSplitter::finish`] or [`LineSplitter::take_partial`]).

use crate::DropReason;

/// What one line became: its text, or why it was dropped.
pub type Cut<'a> = Result<&'a str, DropReason>;

/// Carries a partial line from one chunk to the next. Lines wholly inside a chunk are handed
/// out as slices of the chunk, without a copy.
#[derive(Debug, Default)]
pub struct LineSplitter {
    /// Bytes of the current line read so far (no `\n` yet).
    pending: Vec<u8>,
    /// Discarding up to the next `\n` (rest of an over-long line).
    skipping: bool,
}

impl LineSplitter {
    /// A splitter at the start of a line, or inside one to skip when `skipping`.
    pub fn new(skipping: bool) -> Self {
        Self { pending: Vec::new(), skipping }
    }

    /// Cuts `chunk`, the bytes that follow the previous chunk, into lines of at most
    /// `max_line` bytes; `out` gets each complete line or drop, in order.
    pub fn feed(&mut self, chunk: &[u8], max_line: usize, out: &mut dyn FnMut(Cut<'_>)) {
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', chunk) {
            let piece = &chunk[start..nl];
            start = nl + 1;
            if self.skipping {
                self.skipping = false;
            } else if self.pending.is_empty() {
                out(cut(piece, max_line));
            } else if self.pending.len() + piece.len() > max_line {
                self.pending.clear();
                out(Err(DropReason::TooLong));
            } else {
                self.pending.extend_from_slice(piece);
                out(cut(&self.pending, max_line));
                self.pending.clear();
            }
        }
        let rest = &chunk[start..];
        if rest.is_empty() || self.skipping {
            return;
        }
        if self.pending.len() + rest.len() > max_line {
            self.pending.clear();
            self.skipping = true;
            out(Err(DropReason::TooLong));
        } else {
            self.pending.extend_from_slice(rest);
        }
    }

    /// Feeds everything `reader` gives, `buffer` bytes at a time (see [`LineSplitter::feed`]);
    /// what follows the last newline stays pending. Returns the bytes read.
    pub fn feed_reader(
        &mut self,
        mut reader: impl std::io::Read,
        buffer: usize,
        max_line: usize,
        out: &mut dyn FnMut(Cut<'_>),
    ) -> std::io::Result<u64> {
        let mut buf = vec![0u8; buffer.max(1)];
        let mut bytes = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => return Ok(bytes),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            bytes += n as u64;
            self.feed(&buf[..n], max_line, out);
        }
    }

    /// The input ended: a partial last line counts as a line (as `grep -c` counts it).
    pub fn finish(&mut self, max_line: usize, out: &mut dyn FnMut(Cut<'_>)) {
        if !self.pending.is_empty() {
            out(cut(&self.pending, max_line));
        }
        self.restart(false);
    }

    /// Forgets a partial line that can never be completed; whether there was one.
    pub fn take_partial(&mut self) -> bool {
        let had = !self.pending.is_empty();
        self.pending.clear();
        had
    }

    /// Starts over at a line boundary, or inside a line to skip when `skipping`.
    pub fn restart(&mut self, skipping: bool) {
        self.pending.clear();
        self.skipping = skipping;
    }

    /// Bytes held of a line not yet complete.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Whether the rest of an over-long line is being skipped.
    pub fn skipping(&self) -> bool {
        self.skipping
    }
}

/// `line` excludes the `\n`; the length limit counts a trailing `\r`.
fn cut(line: &[u8], max_line: usize) -> Cut<'_> {
    if line.len() > max_line {
        return Err(DropReason::TooLong);
    }
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    std::str::from_utf8(line).map_err(|_| DropReason::InvalidUtf8)
}
