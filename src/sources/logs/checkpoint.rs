//! Checkpoint files of the log sources in `state_dir`: reading them (bounded, never through a
//! link; a damaged file is set aside for a human, never overwritten), writing them (owner-only,
//! a new file renamed into place), and counting failed saves without flooding the log. The
//! directory and its lock are [`super::state_dir`]'s.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

pub use super::state_dir::{LOCK_FILE, StateDirLock};

/// A save that keeps failing the same way is logged again after this long.
const LOG_AGAIN_AFTER: Duration = Duration::from_secs(600);
/// The largest checkpoint read back, and so the largest written. A log source's checkpoint holds
/// its followed files and at most 200 series per metric: even many metrics with long labels stay
/// far below this, while a file that is not a checkpoint (or a damaged one) cannot take memory.
pub const MAX_BYTES: u64 = 16 << 20;

/// What was found at a checkpoint's path.
#[derive(Debug)]
pub enum Loaded {
    /// No checkpoint yet. A path under a regular file (`ENOTDIR`) holds none either; saving
    /// there fails and is counted.
    Missing,
    Bytes(Vec<u8>),
    /// Something that is not a checkpoint and was not read: why.
    Refused(NotACheckpoint),
}

/// Why what is at a checkpoint's path was not read: it is set aside and the source starts fresh.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotACheckpoint {
    #[error("a symbolic link, never followed in state_dir")]
    Link,
    #[error("not a regular file")]
    NotAFile,
    #[error("{size} bytes, larger than the {MAX_BYTES} a checkpoint may have")]
    TooBig { size: u64 },
}

/// A checkpoint that exists but cannot be read: starting fresh would recount every line and then
/// overwrite it, so the source does not start.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read checkpoint {}: {errno}", path.display())]
    Open { path: PathBuf, errno: Errno },
    #[error("cannot read checkpoint {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
}

/// Reads a checkpoint: only a regular file, never through a symbolic link (state_dir is no place
/// for one: it could point at any file, or at `/dev/zero`), and at most [`MAX_BYTES`].
pub fn read(path: &Path) -> Result<Loaded, ReadError> {
    // Non-blocking: opening a FIFO nobody writes would otherwise wait forever.
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let file = match rustix::fs::open(path, flags, Mode::empty()) {
        Ok(fd) => File::from(fd),
        Err(Errno::NOENT | Errno::NOTDIR) => return Ok(Loaded::Missing),
        Err(Errno::LOOP) => return Ok(Loaded::Refused(NotACheckpoint::Link)),
        // A socket cannot be opened at all.
        Err(Errno::NXIO) => return Ok(Loaded::Refused(NotACheckpoint::NotAFile)),
        // Starting fresh here would recount every line and then overwrite the file.
        Err(errno) => return Err(ReadError::Open { path: path.to_path_buf(), errno }),
    };
    let read_error = |source| ReadError::Read { path: path.to_path_buf(), source };
    let meta = file.metadata().map_err(read_error)?;
    if !meta.is_file() {
        return Ok(Loaded::Refused(NotACheckpoint::NotAFile));
    }
    let too_big = |size: u64| Loaded::Refused(NotACheckpoint::TooBig { size });
    if meta.len() > MAX_BYTES {
        return Ok(too_big(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // One more byte than allowed: a file growing while read is caught too.
    match file.take(MAX_BYTES + 1).read_to_end(&mut bytes) {
        Ok(n) if n as u64 > MAX_BYTES => Ok(too_big(n as u64)),
        Ok(_) => Ok(Loaded::Bytes(bytes)),
        Err(e) => Err(read_error(e)),
    }
}

/// Renames an unreadable checkpoint to `<name>.corrupt-<unix seconds>` beside it, so the next
/// save does not destroy what a human may want to recover (a link is moved as the link it is).
/// Returns the new path.
pub fn set_aside(path: &Path) -> io::Result<PathBuf> {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".corrupt-{secs}"));
    let aside = path.with_file_name(name);
    std::fs::rename(path, &aside)?;
    // Older versions wrote checkpoints with the umask's mode; what lingers is private too. Through
    // a descriptor of the file itself (a chmod of the path would follow a link to its target), and
    // only a file of ours with no other name (a hard link shares its mode with the other name).
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    if let Ok(fd) = rustix::fs::open(&aside, flags, Mode::empty()) {
        let file = File::from(fd);
        let me = rustix::process::geteuid().as_raw();
        if file.metadata().is_ok_and(|m| m.is_file() && m.nlink() == 1 && m.uid() == me) {
            let _ = file.set_permissions(std::fs::Permissions::from_mode(0o600));
        }
    }
    Ok(aside)
}

/// Why a checkpoint did not parse, without quoting its content (label values come from logs).
pub fn describe(e: &serde_json::Error) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "not JSON",
        serde_json::error::Category::Data => "unexpected value",
        serde_json::error::Category::Eof => "cut short",
    };
    format!("{what} at line {} column {}", e.line(), e.column())
}

/// Writes a checkpoint atomically, readable by the owner only: a new file (never one that exists,
/// so never through a link planted under its name) renamed over the old one, which replaces a
/// link rather than following it. Missing directories are created 0700; an existing `state_dir`
/// keeps the mode its owner gave it. More than [`MAX_BYTES`] is refused: a start would not read it.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if bytes.len() as u64 > MAX_BYTES {
        let msg = format!("checkpoint of {} bytes, larger than the {MAX_BYTES} a start reads back", bytes.len());
        return Err(io::Error::new(io::ErrorKind::FileTooLarge, msg));
    }
    if let Some(dir) = path.parent() {
        super::state_dir::create_private_dir(dir)?;
    }
    tailer::write_atomic(path, bytes)
}

/// A save error as a small, fixed set of label values.
pub fn reason(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::StorageFull => "no_space",
        io::ErrorKind::QuotaExceeded => "quota",
        io::ErrorKind::ReadOnlyFilesystem => "read_only",
        io::ErrorKind::PermissionDenied => "permission_denied",
        io::ErrorKind::NotADirectory => "not_a_directory",
        io::ErrorKind::NotFound => "not_found",
        io::ErrorKind::FileTooLarge => "too_large",
        // Another exporter took the state_dir after it was removed (see `state_dir`).
        io::ErrorKind::ResourceBusy => "lock_lost",
        _ => "other",
    }
}

/// Outcomes of a log source's saves, for its self-metrics and a sparse log.
#[derive(Debug, Default)]
pub struct SaveHealth {
    pub failures: BTreeMap<&'static str, u64>,
    /// Unix time of the last successful save by this process.
    pub last_success: Option<f64>,
    /// The failure last logged and when: a save is retried every second, its log line is not.
    logged: Option<(&'static str, Instant)>,
}

impl SaveHealth {
    pub fn record(&mut self, log: &str, path: &Path, result: &io::Result<()>) {
        match result {
            Ok(()) => {
                self.last_success = Some(crate::sources::unix_now());
                if self.logged.take().is_some() {
                    tracing::info!(log, checkpoint = %path.display(), "checkpoint saved again");
                }
            }
            Err(e) => {
                let reason = reason(e);
                let count = self.failures.entry(reason).or_default();
                *count += 1;
                let again = match self.logged {
                    Some((last, at)) => last != reason || at.elapsed() >= LOG_AGAIN_AFTER,
                    None => true,
                };
                if again {
                    tracing::warn!(
                        log,
                        checkpoint = %path.display(),
                        error = %e,
                        failures = *count,
                        "cannot save checkpoint; offsets and counters are kept in memory and saved when possible"
                    );
                    self.logged = Some((reason, Instant::now()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_errors_say_what_they_said_as_text() {
        assert_eq!(NotACheckpoint::Link.to_string(), "a symbolic link, never followed in state_dir");
        assert_eq!(NotACheckpoint::NotAFile.to_string(), "not a regular file");
        assert_eq!(
            NotACheckpoint::TooBig { size: 20 << 20 }.to_string(),
            format!("{} bytes, larger than the {MAX_BYTES} a checkpoint may have", 20 << 20)
        );
        let path = PathBuf::from("/s/a.checkpoint.json");
        assert_eq!(
            ReadError::Open { path: path.clone(), errno: Errno::ACCESS }.to_string(),
            format!("cannot read checkpoint /s/a.checkpoint.json: {}", Errno::ACCESS)
        );
        let io = || io::Error::from(io::ErrorKind::PermissionDenied);
        assert_eq!(
            ReadError::Read { path: path.clone(), source: io() }.to_string(),
            format!("cannot read checkpoint /s/a.checkpoint.json: {}", io())
        );
        let in_log = super::super::LogSourceError::from(ReadError::Read { path, source: io() });
        assert_eq!(in_log.to_string(), format!("cannot read checkpoint /s/a.checkpoint.json: {}", io()));
        assert_eq!(super::super::LogSourceError::Thread(io()).to_string(), format!("cannot start thread: {}", io()));
    }

    #[test]
    fn failures_are_counted_by_reason_and_success_is_timed() {
        let mut health = SaveHealth::default();
        let path = Path::new("x");
        for _ in 0..3 {
            health.record("app", path, &Err(io::Error::from(io::ErrorKind::StorageFull)));
        }
        health.record("app", path, &Err(io::Error::from(io::ErrorKind::PermissionDenied)));
        assert_eq!(health.failures, BTreeMap::from([("no_space", 3), ("permission_denied", 1)]));
        assert!(health.last_success.is_none());
        health.record("app", path, &Ok(()));
        assert!(health.last_success.is_some() && health.logged.is_none());
    }
}
