//! Checkpoint files of the log sources in `state_dir`: reading them (a damaged file is set aside
//! for a human, never overwritten), writing them (owner-only), counting failed saves without
//! flooding the log, and the lock that keeps two exporters out of one directory.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustix::fs::{FlockOperation, Mode, OFlags, flock};

/// The lock file inside `state_dir`.
pub const LOCK_FILE: &str = "integration-exporter.lock";
/// A save that keeps failing the same way is logged again after this long.
const LOG_AGAIN_AFTER: Duration = Duration::from_secs(600);

/// The bytes of a checkpoint, or `None` when there is none yet. A path under a regular file
/// (`ENOTDIR`) holds no checkpoint either; saving there fails and is counted.
pub fn read(path: &Path) -> Result<Option<Vec<u8>>, String> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => Ok(None),
        // Starting fresh here would recount every line and then overwrite the file.
        Err(e) => Err(format!("cannot read checkpoint {}: {e}", path.display())),
    }
}

/// Renames an unreadable checkpoint to `<name>.corrupt-<unix seconds>` beside it, so the next
/// save does not destroy what a human may want to recover. Returns the new path.
pub fn set_aside(path: &Path) -> io::Result<PathBuf> {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".corrupt-{secs}"));
    let aside = path.with_file_name(name);
    std::fs::rename(path, &aside)?;
    // Older versions wrote checkpoints with the umask's mode; what lingers is private too.
    let _ = std::fs::set_permissions(&aside, std::fs::Permissions::from_mode(0o600));
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

/// Writes a checkpoint atomically, readable by the owner only. Missing directories are created
/// 0700; an existing `state_dir` keeps the mode its owner gave it (the files in it are 0600
/// whatever the directory allows).
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        create_private_dir(dir)?;
    }
    tailer::write_atomic(path, bytes)
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
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

/// An exclusive `flock` on `state_dir`'s lock file, held while the log threads run. The kernel
/// drops it when the process dies, so a crashed exporter never blocks the next one.
#[derive(Debug)]
pub struct StateDirLock {
    _file: File,
}

impl StateDirLock {
    /// Takes the lock, or says which process holds it. A directory that cannot be created or
    /// written is no reason to stop serving: that is logged, and every save then fails visibly.
    pub fn acquire(dir: &Path) -> Result<Option<Self>, String> {
        if let Err(e) = create_private_dir(dir) {
            tracing::warn!(state_dir = %dir.display(), error = %e, "cannot create state_dir; checkpoints will not be saved");
            return Ok(None);
        }
        let path = dir.join(LOCK_FILE);
        // Held read-only, so the lock never keeps the file system from being remounted read-only
        // and works in a read-only directory that has the file; flock needs no write access.
        let flags = OFlags::RDONLY | OFlags::CREATE | OFlags::CLOEXEC;
        let mut file = match rustix::fs::open(&path, flags, Mode::from_raw_mode(0o600)) {
            Ok(fd) => File::from(fd),
            Err(e) => {
                tracing::warn!(lock = %path.display(), error = %e, "cannot create the state_dir lock file; not locked");
                return Ok(None);
            }
        };
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let pid = match holder.trim().parse::<u32>() {
                    Ok(pid) => format!(" (pid {pid})"),
                    Err(_) => String::new(),
                };
                return Err(format!(
                    "state_dir {} is in use by another integration-exporter{pid}; give each exporter its own state_dir",
                    dir.display()
                ));
            }
            Err(e) => {
                tracing::warn!(lock = %path.display(), error = %e, "cannot lock state_dir; not locked");
                return Ok(None);
            }
        }
        // Only for the error message of a second exporter; the flock is what excludes. Closing
        // this second descriptor leaves the lock alone (flock belongs to the first one).
        let _ = std::fs::write(&path, std::process::id().to_string());
        Ok(Some(Self { _file: file }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_names_the_holder_and_a_dead_holder_blocks_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        // A lock file left by a process that died: its pid is there, its flock is not.
        std::fs::create_dir(&state).unwrap();
        std::fs::write(state.join(LOCK_FILE), b"999999999").unwrap();
        let first = StateDirLock::acquire(&state).unwrap().expect("locked");
        let err = StateDirLock::acquire(&state).unwrap_err();
        assert!(err.contains(&state.display().to_string()), "{err}");
        assert!(err.contains(&format!("pid {}", std::process::id())), "{err}");
        drop(first);
        assert!(StateDirLock::acquire(&state).unwrap().is_some());
    }

    #[test]
    fn an_unusable_state_dir_is_not_locked_but_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
        assert!(StateDirLock::acquire(&file.join("state")).unwrap().is_none());
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
