//! Files we stopped reading while they still existed. A watched symlink
//! retargeted away from a file and back later (`app.log` -> a.log -> b.log
//! -> a.log), or a rotated file renamed back under a watched name, is the
//! same file as before: it continues at the offset we had reached, so its
//! lines are neither read twice nor skipped.
//!
//! A file is recognised by (dev, inode), and only if its head still hashes
//! like it did, it is not shorter than that offset, and its birth time (where
//! the file system records one) is unchanged: an inode freed by a delete and
//! reused by a new file is then read from 0. A file deleted before it was
//! closed is not remembered at all (its inode is free for reuse).

use crate::checkpoint::ClosedFile;
use crate::file::{FileId, Fingerprint, Stat};
use std::collections::VecDeque;

/// Entries kept at most; the oldest goes first. A file is forgotten once it
/// is followed again, so only files that never come back fill this up (each
/// rename rotation under a literal path adds one).
pub(crate) const MAX_CLOSED: usize = 64;

#[derive(Clone, Debug)]
pub(crate) struct Closed {
    pub label: String,
    pub id: FileId,
    pub offset: u64,
    pub skipping: bool,
    pub fp: Fingerprint,
    pub born_ns: Option<u64>,
}

#[derive(Default)]
pub(crate) struct ClosedFiles {
    entries: VecDeque<Closed>,
}

impl ClosedFiles {
    pub(crate) fn remember(&mut self, entry: Closed) {
        self.entries.retain(|e| e.id != entry.id);
        if self.entries.len() == MAX_CLOSED {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
    }

    /// The entry of file `st` if it is the file we closed, judged on its
    /// head's prefix hashes (see [`crate::file::prefix_hashes`]). An entry
    /// for the same inode that does not fit is dropped: that file is gone.
    pub(crate) fn take(&mut self, st: &Stat, prefixes: &[u64]) -> Option<Closed> {
        let i = self.entries.iter().position(|e| e.id == st.id)?;
        let e = self.entries.remove(i)?;
        let same_birth = match (e.born_ns, st.born_ns) {
            (Some(then), Some(now)) => then == now,
            _ => true,
        };
        (same_birth && st.size >= e.offset && e.fp.matches_prefixes(prefixes)).then_some(e)
    }

    pub(crate) fn to_checkpoint(&self) -> Vec<ClosedFile> {
        self.entries
            .iter()
            .map(|e| ClosedFile {
                path: e.label.clone(),
                dev: e.id.dev,
                ino: e.id.ino,
                offset: e.offset,
                skipping: e.skipping,
                fingerprint_len: e.fp.len,
                fingerprint_hash: e.fp.hash,
                born_ns: e.born_ns,
            })
            .collect()
    }

    pub(crate) fn restore(&mut self, saved: Vec<ClosedFile>) {
        for c in saved.into_iter().rev().take(MAX_CLOSED).rev() {
            self.remember(Closed {
                label: c.path,
                id: FileId { dev: c.dev, ino: c.ino },
                offset: c.offset,
                skipping: c.skipping,
                fp: Fingerprint { len: c.fingerprint_len, hash: c.fingerprint_hash },
                born_ns: c.born_ns,
            });
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::prefix_hashes;

    fn stat(ino: u64, size: u64, born_ns: Option<u64>) -> Stat {
        Stat { id: FileId { dev: 1, ino }, size, mtime: (0, 0), nlink: 1, born_ns }
    }

    fn closed(ino: u64, head: &[u8], offset: u64, born_ns: Option<u64>) -> Closed {
        Closed {
            label: "app.log".into(),
            id: FileId { dev: 1, ino },
            offset,
            skipping: false,
            fp: Fingerprint::of(head),
            born_ns,
        }
    }

    #[test]
    fn a_file_is_taken_back_only_if_it_is_the_same_one() {
        let mut c = ClosedFiles::default();
        let head = b"first line\n";
        c.remember(closed(7, head, 11, Some(5)));
        assert!(c.take(&stat(8, 20, Some(5)), &prefix_hashes(head)).is_none(), "other inode");
        assert_eq!(c.len(), 1);
        assert_eq!(c.take(&stat(7, 20, Some(5)), &prefix_hashes(b"first line\nmore\n")).map(|e| e.offset), Some(11));
        assert_eq!(c.len(), 0, "taken once");

        for (st, head) in [
            (stat(7, 20, Some(6)), &b"first line\n"[..]),
            (stat(7, 5, Some(5)), &b"first"[..]),
            (stat(7, 20, Some(5)), &b"other line\n"[..]),
        ] {
            c.remember(closed(7, b"first line\n", 11, Some(5)));
            assert!(c.take(&st, &prefix_hashes(head)).is_none(), "{st:?}");
            assert_eq!(c.len(), 0, "a reused inode forgets the old file");
        }
        c.remember(closed(7, head, 11, None));
        assert!(c.take(&stat(7, 20, Some(9)), &prefix_hashes(head)).is_some(), "no birth time: head decides");
    }

    #[test]
    fn bounded_oldest_first() {
        let mut c = ClosedFiles::default();
        for ino in 0..(MAX_CLOSED as u64 + 10) {
            c.remember(closed(ino, b"x\n", 2, None));
        }
        assert_eq!(c.len(), MAX_CLOSED);
        assert!(c.take(&stat(0, 2, None), &prefix_hashes(b"x\n")).is_none());
        let mut d = ClosedFiles::default();
        d.restore(c.to_checkpoint());
        assert_eq!(d.len(), MAX_CLOSED);
        assert!(d.take(&stat(MAX_CLOSED as u64 + 9, 2, None), &prefix_hashes(b"x\n")).is_some());
    }
}
