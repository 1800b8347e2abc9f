//! Recognising copies. logrotate's `copytruncate` copies `app.log` to
//! `app.log.1` (or `app.log-DATE`, `app.1.log`, ...) and truncates `app.log`
//! in place. When the watched glob also matches the copy, the copy is not a
//! new stream but the old content of a file we were reading: continue it at
//! the offset we had reached, so its lines are not counted a second time and
//! the lines written between our last read and the copy are still counted.
//!
//! A copy is recognised by content: its head hashes like the truncated
//! file's head did. Records of truncated files are few (a bounded queue) and
//! short-lived (a copy appears right before its original is truncated), so a
//! file with the same head that appears much later is read as a new file.
//!
//! Compressed files (`compress`) are never read as text: names with a
//! compression suffix are skipped before any syscall, other files when their
//! first bytes are a compression format's magic number.

use crate::checkpoint::TruncatedHead;
use crate::file::Fingerprint;
use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Records kept at most; the oldest goes first. One per truncation, and a
/// copy consumes its record, so this only fills up with copies that never
/// show (glob not matching them, `compress` without `delaycompress`).
pub(crate) const MAX_RECORDS: usize = 64;
/// Records older than this are dropped: logrotate makes the copy before it
/// truncates, so a copy seen much later is not one.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(600);

#[derive(Clone, Debug)]
pub(crate) struct Record {
    pub path: String,
    pub fp: Fingerprint,
    pub offset: u64,
    pub skipping: bool,
    at: Instant,
    unix: u64,
}

#[derive(Default)]
pub(crate) struct Copies {
    records: VecDeque<Record>,
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Copies {
    /// Remembers a file that was truncated. An empty head identifies
    /// nothing (it would match every file), so it is not kept.
    pub(crate) fn record(&mut self, path: &str, fp: Fingerprint, offset: u64, skipping: bool, now: Instant) {
        if fp.len == 0 {
            return;
        }
        if self.records.len() == MAX_RECORDS {
            self.records.pop_front();
        }
        self.records.push_back(Record { path: path.to_string(), fp, offset, skipping, at: now, unix: unix_now() });
    }

    pub(crate) fn expire(&mut self, now: Instant) {
        self.records.retain(|r| now.saturating_duration_since(r.at) < MAX_AGE);
    }

    /// Takes the newest record whose head the file with these head prefix
    /// hashes (see [`crate::file::prefix_hashes`]) starts with. One copy per
    /// truncation: a second file with the same head is a new file.
    pub(crate) fn take_match(&mut self, prefixes: &[u64]) -> Option<Record> {
        let i = self.records.iter().rposition(|r| r.fp.matches_prefixes(prefixes))?;
        self.records.remove(i)
    }

    pub(crate) fn to_checkpoint(&self) -> Vec<TruncatedHead> {
        self.records
            .iter()
            .map(|r| TruncatedHead {
                path: r.path.clone(),
                offset: r.offset,
                skipping: r.skipping,
                fingerprint_len: r.fp.len,
                fingerprint_hash: r.fp.hash,
                seen_unix: r.unix,
            })
            .collect()
    }

    /// Loads checkpointed records, ageing them by the wall-clock time that
    /// passed while we were down.
    pub(crate) fn restore(&mut self, saved: Vec<TruncatedHead>, now: Instant) {
        let wall = unix_now();
        for t in saved.into_iter().rev().take(MAX_RECORDS).rev() {
            let age = Duration::from_secs(wall.saturating_sub(t.seen_unix));
            if age >= MAX_AGE || t.fingerprint_len == 0 {
                continue;
            }
            self.records.push_back(Record {
                path: t.path,
                fp: Fingerprint { len: t.fingerprint_len, hash: t.fingerprint_hash },
                offset: t.offset,
                skipping: t.skipping,
                at: now.checked_sub(age).unwrap_or(now),
                unix: t.seen_unix,
            });
        }
        while self.records.len() > MAX_RECORDS {
            self.records.pop_front();
        }
    }
}

/// Suffixes of the compressors logrotate can be told to use (`compresscmd`).
const COMPRESSED_SUFFIXES: &[&str] =
    &[".gz", ".bz2", ".xz", ".zst", ".lz4", ".lzma", ".lz", ".Z", ".zip", ".7z", ".br"];

/// Magic numbers: gzip, xz, zstd, lz4 frame, zip, 7z, compress (.Z); bzip2
/// is checked apart (`BZh` and a block-size digit, so a line starting with
/// "BZh" is still text).
const MAGICS: &[&[u8]] = &[
    b"\x1f\x8b",
    b"\xfd7zXZ\x00",
    b"\x28\xb5\x2f\xfd",
    b"\x04\x22\x4d\x18",
    b"PK\x03\x04",
    b"7z\xbc\xaf\x27\x1c",
    b"\x1f\x9d",
];

pub(crate) fn compressed_name(name: &str) -> bool {
    COMPRESSED_SUFFIXES.iter().any(|s| name.ends_with(s))
}

pub(crate) fn compressed_head(head: &[u8]) -> bool {
    MAGICS.iter().any(|m| head.starts_with(m))
        || (head.starts_with(b"BZh") && head.get(3).is_some_and(|d| (b'1'..=b'9').contains(d)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::prefix_hashes;

    #[test]
    fn bounded_by_count_and_age() {
        let now = Instant::now();
        let mut c = Copies::default();
        for i in 0..(MAX_RECORDS as u64 + 10) {
            c.record("a", Fingerprint::of(format!("head {i}\n").as_bytes()), i, false, now);
        }
        assert_eq!(c.records.len(), MAX_RECORDS);
        assert!(c.take_match(&prefix_hashes(b"head 0\n")).is_none(), "oldest dropped");
        let r = c.take_match(&prefix_hashes(b"head 70\nmore\n")).expect("newest kept");
        assert_eq!(r.offset, 70);
        assert!(c.take_match(&prefix_hashes(b"head 70\n")).is_none(), "taken once");
        c.expire(now + MAX_AGE);
        assert!(c.records.is_empty());
        c.record("a", Fingerprint::of(b""), 0, false, now);
        assert!(c.records.is_empty(), "an empty head identifies nothing");
    }

    #[test]
    fn checkpointed_records_age_while_down() {
        let now = Instant::now();
        let mut c = Copies::default();
        c.record("a", Fingerprint::of(b"x\n"), 2, false, now);
        let mut saved = c.to_checkpoint();
        saved.push(TruncatedHead { seen_unix: unix_now() - MAX_AGE.as_secs() - 1, ..saved[0].clone() });
        let mut d = Copies::default();
        d.restore(saved, now);
        assert_eq!(d.records.len(), 1);
    }

    #[test]
    fn compression_by_name_and_magic() {
        assert!(compressed_name("app.log.2.gz"));
        assert!(compressed_name("app-20260101.log.zst"));
        assert!(!compressed_name("app.log.1"));
        assert!(!compressed_name("app.log"));
        assert!(compressed_head(b"\x1f\x8b\x08\x00"));
        assert!(compressed_head(b"\xfd7zXZ\x00\x00"));
        assert!(!compressed_head(b"2026-01-01 INFO started\n"));
        assert!(!compressed_head(b""));
        assert!(compressed_head(b"BZh91AY&SY"));
        assert!(!compressed_head(b"BZhello\n"));
    }
}
