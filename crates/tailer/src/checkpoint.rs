//! Persistable reading positions, and an atomic file writer to store them.
//!
//! A checkpoint names every open file by identity (dev, inode, head
//! fingerprint) *and* by the path it was opened under, so a restart can tell
//! "same file, continue" from "rotated while we were down, go find it" from
//! "truncated or replaced, start over".

use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Everything needed to resume exactly where a [`crate::Tailer`] was.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Format version, for future migrations.
    #[serde(default)]
    pub version: u32,
    pub files: Vec<FileCheckpoint>,
    /// Files seen truncated in place (copytruncate) whose copy has not been
    /// seen yet, so a copy that shows up after a restart is still continued
    /// rather than read again. Few and short-lived (see [`crate::Tailer`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub truncated: Vec<TruncatedHead>,
    /// Files we stopped reading while they still existed (a symlink
    /// retargeted away from them, a rename our paths no longer match), so
    /// one that is back continues where we were instead of from byte 0.
    /// The newest few only (see [`crate::Tailer`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub closed: Vec<ClosedFile>,
}

/// Where we were in a file that we closed while it still existed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosedFile {
    /// Label it was read under.
    pub path: String,
    pub dev: u64,
    pub ino: u64,
    /// First byte not yet emitted.
    pub offset: u64,
    #[serde(default)]
    pub skipping: bool,
    pub fingerprint_len: u32,
    pub fingerprint_hash: u64,
    /// Birth time (nanoseconds since the epoch) where the file system
    /// records one: tells the file from a new one that reused its inode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub born_ns: Option<u64>,
}

/// What a file held before it was truncated in place: a copy whose head
/// matches continues from `offset`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TruncatedHead {
    /// Label of the truncated file.
    pub path: String,
    /// First byte not yet emitted when the truncation was seen.
    pub offset: u64,
    #[serde(default)]
    pub skipping: bool,
    pub fingerprint_len: u32,
    pub fingerprint_hash: u64,
    /// Unix time (seconds) the truncation was seen; old records are dropped.
    pub seen_unix: u64,
}

/// One followed file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileCheckpoint {
    /// The path the file was opened under (its label).
    pub path: String,
    pub dev: u64,
    pub ino: u64,
    /// First byte not yet emitted: the start of any partial line, so a
    /// resumed tailer re-reads that line whole.
    pub offset: u64,
    /// `true` if we were inside an over-long line (already reported as
    /// dropped) or a partial line at start-at-end: discard up to the next `\n`.
    #[serde(default)]
    pub skipping: bool,
    /// Number of head bytes covered by `fingerprint_hash`.
    pub fingerprint_len: u32,
    /// FNV-1a 64 of the first `fingerprint_len` bytes of the file.
    pub fingerprint_hash: u64,
    /// `true` if the file no longer sat at `path` (renamed or deleted and
    /// still being drained); restore does not report it as rotated again.
    #[serde(default)]
    pub retired: bool,
    /// `true` for a new file not judged yet (empty, or looking like a copy
    /// of a file we follow): restored as such, judged on its first bytes.
    #[serde(default)]
    pub unjudged: bool,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// Replaces `path` with `bytes` so that a crash leaves either the old or the
/// new content, never a mix: write a temp file in the same directory, fsync
/// it, rename it over `path`, then fsync the directory so the rename itself
/// is durable. The file is readable by its owner only: checkpoints carry values
/// taken from logs, and the rename replaces a looser older file too.
///
/// Nothing is written through a link: the temp file is always a new one
/// (`O_EXCL`, so a link or file planted under its name is never opened; the
/// next name is tried), and the rename replaces a link at `path` itself.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let mut attempts = 0;
    let (tmp, mut f) = loop {
        // Unique per process and call, so concurrent writers never share a temp.
        let tmp = dir.join(format!(
            ".{}.tmp.{}.{}",
            name.to_string_lossy(),
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        match OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp) {
            Ok(f) => break (tmp, f),
            // Left by a crash before a pid was reused, or planted: never ours to open.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 16 => attempts += 1,
            Err(e) => return Err(e),
        }
    };
    let result = (|| {
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        // Best effort: don't leave temp files behind; the error that matters
        // is the original one.
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    #[test]
    fn links_planted_at_the_temp_names_or_the_path_are_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "victim\n").unwrap();
        let path = dir.path().join("state.json");
        // The next temp names this process will use, each a link to the victim.
        let next = SEQ.load(Ordering::Relaxed);
        for seq in next..next + 8 {
            symlink(&victim, dir.path().join(format!(".state.json.tmp.{}.{seq}", std::process::id()))).unwrap();
        }
        symlink(&victim, &path).unwrap();
        write_atomic(&path, b"saved").unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "victim\n");
        let meta = fs::symlink_metadata(&path).unwrap();
        assert!(meta.is_file() && meta.permissions().mode() & 0o777 == 0o600);
        assert_eq!(fs::read(&path).unwrap(), b"saved");
    }
}
