//! The `state_dir` itself: who may write it, and the lock that keeps a second exporter out of
//! it for as long as this one runs, also when the directory is removed or replaced meanwhile.
//!
//! The lock is an exclusive `flock` on a lock file, held while the log threads run; the kernel
//! drops it when the process dies, so a crashed exporter never blocks the next one. A lock belongs
//! to an inode, not to a path: if the directory is removed (`rm -rf`) or the lock file replaced,
//! a second exporter would lock a new file at the same path. So the lock file at the path is
//! compared with the one we hold before every checkpoint save and at most a second apart
//! otherwise; when they differ the directory is set up and locked again, and the checkpoints
//! saved anew. Locking the directory itself would not help (a new directory is a new inode), nor
//! would holding its descriptor open (a removed directory takes no new entries). If another
//! exporter took the new lock first, this one stops saving and says so: the directory is the
//! other's now.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rustix::fs::{FlockOperation, Mode, OFlags, flock};
use rustix::io::Errno;

/// The lock file inside `state_dir`.
pub const LOCK_FILE: &str = "integration-exporter.lock";
/// How often, at most, a log thread looks whether the lock file is still the one it holds.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Creates `dir` (and missing parents) owner-only; an existing one keeps the mode its owner gave it.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Why `state_dir` may not be used: another exporter holds it, or it or its lock file is unsafe.
/// A reason that is no ground to stop (a directory that cannot be created) is only logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateDirError {
    #[error("state_dir {} is not a directory", dir.display())]
    NotADirectory { dir: PathBuf },
    #[error(
        "state_dir {} is writable by every user (mode {mode:04o}): anyone could plant links in it, replace \
         its checkpoints or take its lock; give it to the exporter's user alone (e.g. chmod 0700)",
        dir.display()
    )]
    WorldWritable { dir: PathBuf, mode: u32 },
    #[error(
        "state_dir {} belongs to uid {owner}, not to the exporter's user (uid {me}) or root: that user \
         could replace its checkpoints; chown it to the exporter's user",
        dir.display()
    )]
    ForeignOwner { dir: PathBuf, owner: u32, me: u32 },
    #[error(
        "state_dir lock file {} is a symbolic link; links in state_dir are never followed: remove it",
        path.display()
    )]
    LockIsLink { path: PathBuf },
    #[error("state_dir lock file {} is not a regular file; remove it", path.display())]
    LockNotAFile { path: PathBuf },
    /// `pid` is what the lock file says, when it says one.
    #[error(
        "state_dir {} is in use by another integration-exporter{}; give each exporter its own state_dir",
        dir.display(),
        pid.map(|pid| format!(" (pid {pid})")).unwrap_or_default()
    )]
    Held { dir: PathBuf, pid: Option<u32> },
}

/// Refuses a `state_dir` that users other than the exporter's (and root) can write: they could
/// plant links, replace a checkpoint (counters start from what it says) or take the lock first.
/// The path itself may be a symlink to the directory: that is the administrator's choice.
pub fn check_owner_and_mode(dir: &Path) -> Result<(), StateDirError> {
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        // Saving will fail and say so; no reason to refuse here.
        Err(_) => return Ok(()),
    };
    if !meta.is_dir() {
        return Err(StateDirError::NotADirectory { dir: dir.to_path_buf() });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o002 != 0 {
        return Err(StateDirError::WorldWritable { dir: dir.to_path_buf(), mode });
    }
    let (owner, me) = (meta.uid(), rustix::process::geteuid().as_raw());
    if owner != me && owner != 0 {
        return Err(StateDirError::ForeignOwner { dir: dir.to_path_buf(), owner, me });
    }
    Ok(())
}

/// Opens the lock file without following a link, creating it owner-only. Held read-only, so the
/// lock never keeps the file system from being remounted read-only and works in a read-only
/// directory that has the file; `flock` needs no write access.
fn open_lock(path: &Path) -> Result<File, Refused> {
    let flags = OFlags::RDONLY | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let not_a_file = || Refused::Refused(StateDirError::LockNotAFile { path: path.to_path_buf() });
    let file = match rustix::fs::open(path, flags, Mode::from_raw_mode(0o600)) {
        Ok(fd) => File::from(fd),
        Err(Errno::LOOP) => return Err(Refused::Refused(StateDirError::LockIsLink { path: path.to_path_buf() })),
        Err(Errno::ISDIR | Errno::NXIO) => return Err(not_a_file()),
        Err(e) => {
            return Err(Refused::Unusable(format!("cannot open the state_dir lock file {}: {e}", path.display())));
        }
    };
    match file.metadata() {
        Ok(m) if m.is_file() => Ok(file),
        Ok(_) => Err(not_a_file()),
        Err(e) => Err(Refused::Unusable(format!("cannot stat the state_dir lock file {}: {e}", path.display()))),
    }
}

/// The PID in a lock file, for the message to the second exporter.
fn holder(file: &File) -> Option<u32> {
    let mut text = String::new();
    let _ = file.take(32).read_to_string(&mut text);
    text.trim().parse::<u32>().ok()
}

/// Writes our PID into the lock file, only for the error message of a second exporter (the
/// flock is what excludes): through a descriptor opened without following a link, closed at
/// once, and only if it is the very file we locked, ours, with no other name (a hard link
/// planted by someone else is left alone).
fn write_pid(path: &Path, id: (u64, u64)) {
    let flags = OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let Ok(fd) = rustix::fs::open(path, flags, Mode::empty()) else { return };
    let file = File::from(fd);
    let mine = file
        .metadata()
        .is_ok_and(|m| (m.dev(), m.ino()) == id && m.nlink() == 1 && m.uid() == rustix::process::geteuid().as_raw());
    if mine {
        let pid = std::process::id().to_string();
        let _ = file.set_len(0).and_then(|()| file.write_all_at(pid.as_bytes(), 0));
    }
}

/// Why taking the lock failed.
enum Refused {
    /// Another exporter holds it, or the directory or lock file may not be used.
    Refused(StateDirError),
    /// Cannot lock for a reason that is no ground to stop (logged; saves fail visibly).
    Unusable(String),
}

/// Creates and checks the directory, opens the lock file and locks it without waiting.
fn take(dir: &Path) -> Result<(File, (u64, u64)), Refused> {
    if let Err(e) = create_private_dir(dir) {
        return Err(Refused::Unusable(format!("cannot create state_dir {}: {e}", dir.display())));
    }
    check_owner_and_mode(dir).map_err(Refused::Refused)?;
    let path = dir.join(LOCK_FILE);
    let file = open_lock(&path)?;
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(Errno::WOULDBLOCK) => {
            return Err(Refused::Refused(StateDirError::Held { dir: dir.to_path_buf(), pid: holder(&file) }));
        }
        Err(e) => return Err(Refused::Unusable(format!("cannot lock state_dir {}: {e}", dir.display()))),
    }
    let id = file.metadata().map(|m| (m.dev(), m.ino())).unwrap_or_default();
    write_pid(&path, id);
    Ok((file, id))
}

/// What [`StateDirLock::check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockCheck {
    /// Still ours. The generation changes each time the lock had to be taken again: a log
    /// source that saw another one saves its checkpoint anew (the old one went with the directory).
    Held { generation: u64 },
    /// Another exporter holds the state_dir now; this one must not write in it.
    Lost(String),
}

/// An exclusive `flock` on `state_dir`'s lock file (see the module's doc).
#[derive(Debug)]
pub struct StateDirLock {
    dir: PathBuf,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    _file: File,
    /// (dev, inode) of the locked file.
    id: (u64, u64),
    generation: u64,
    checked: Instant,
    lost: Option<String>,
    /// The last reason the lock could not be taken again, logged once.
    unusable: Option<String>,
}

impl StateDirLock {
    /// Takes the lock, or says which process holds it or why the directory may not be used. A
    /// directory that cannot be created or locked is no reason to stop serving: that is logged,
    /// and every save then fails visibly.
    pub fn acquire(dir: &Path) -> Result<Option<Self>, StateDirError> {
        match take(dir) {
            Ok((file, id)) => {
                let inner =
                    Inner { _file: file, id, generation: 0, checked: Instant::now(), lost: None, unusable: None };
                Ok(Some(Self { dir: dir.to_path_buf(), inner: Mutex::new(inner) }))
            }
            Err(Refused::Refused(e)) => Err(e),
            Err(Refused::Unusable(msg)) => {
                tracing::warn!(state_dir = %dir.display(), error = %msg, "state_dir not locked; checkpoints may not be saved");
                Ok(None)
            }
        }
    }

    /// Whether the lock file at the path is still the one we hold; if not (the directory was
    /// removed or replaced), sets the directory up and locks it again. `force` checks now,
    /// otherwise at most every [`CHECK_EVERY`].
    pub fn check(&self, force: bool) -> LockCheck {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(msg) = &inner.lost {
            return LockCheck::Lost(msg.clone());
        }
        if !force && inner.checked.elapsed() < CHECK_EVERY {
            return LockCheck::Held { generation: inner.generation };
        }
        inner.checked = Instant::now();
        let path = self.dir.join(LOCK_FILE);
        let at_path = std::fs::symlink_metadata(&path).ok().map(|m| (m.dev(), m.ino()));
        if at_path == Some(inner.id) {
            return LockCheck::Held { generation: inner.generation };
        }
        match take(&self.dir) {
            Ok((file, id)) => {
                inner._file = file;
                inner.id = id;
                inner.generation += 1;
                inner.unusable = None;
                tracing::warn!(
                    state_dir = %self.dir.display(),
                    "state_dir was removed or its lock file replaced while running; lock taken again, checkpoints saved anew"
                );
            }
            Err(Refused::Refused(e)) => {
                let msg = format!("lost the state_dir lock after the directory was removed or replaced: {e}");
                tracing::error!(
                    state_dir = %self.dir.display(),
                    error = %msg,
                    "checkpoints are no longer saved by this exporter; offsets and counters are kept in memory"
                );
                inner.lost = Some(msg.clone());
                return LockCheck::Lost(msg);
            }
            Err(Refused::Unusable(msg)) => {
                // Maybe the directory comes back; try again at the next check, log once.
                if inner.unusable.as_ref() != Some(&msg) {
                    tracing::warn!(state_dir = %self.dir.display(), error = %msg, "cannot lock state_dir again");
                    inner.unusable = Some(msg);
                }
            }
        }
        LockCheck::Held { generation: inner.generation }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_dir_errors_say_what_they_said_as_text() {
        let dir = PathBuf::from("/s");
        let path = dir.join(LOCK_FILE);
        let said = |e: StateDirError| e.to_string();
        assert_eq!(said(StateDirError::NotADirectory { dir: dir.clone() }), "state_dir /s is not a directory");
        assert_eq!(
            said(StateDirError::WorldWritable { dir: dir.clone(), mode: 0o777 }),
            "state_dir /s is writable by every user (mode 0777): anyone could plant links in it, replace its \
             checkpoints or take its lock; give it to the exporter's user alone (e.g. chmod 0700)"
        );
        assert_eq!(
            said(StateDirError::ForeignOwner { dir: dir.clone(), owner: 7, me: 8 }),
            "state_dir /s belongs to uid 7, not to the exporter's user (uid 8) or root: that user could replace \
             its checkpoints; chown it to the exporter's user"
        );
        assert_eq!(
            said(StateDirError::LockIsLink { path: path.clone() }),
            format!(
                "state_dir lock file {} is a symbolic link; links in state_dir are never followed: remove it",
                path.display()
            )
        );
        assert_eq!(
            said(StateDirError::LockNotAFile { path: path.clone() }),
            format!("state_dir lock file {} is not a regular file; remove it", path.display())
        );
        assert_eq!(
            said(StateDirError::Held { dir: dir.clone(), pid: Some(42) }),
            "state_dir /s is in use by another integration-exporter (pid 42); give each exporter its own state_dir"
        );
        assert_eq!(
            said(StateDirError::Held { dir, pid: None }),
            "state_dir /s is in use by another integration-exporter; give each exporter its own state_dir"
        );
    }

    #[test]
    fn a_second_lock_names_the_holder_and_a_dead_holder_blocks_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        // A lock file left by a process that died: its pid is there, its flock is not.
        std::fs::create_dir(&state).unwrap();
        std::fs::write(state.join(LOCK_FILE), b"999999999").unwrap();
        let first = StateDirLock::acquire(&state).unwrap().expect("locked");
        let err = StateDirLock::acquire(&state).unwrap_err().to_string();
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
    fn a_removed_directory_is_locked_again_and_a_replaced_lock_file_too() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let lock = StateDirLock::acquire(&state).unwrap().expect("locked");
        assert_eq!(lock.check(true), LockCheck::Held { generation: 0 });
        std::fs::remove_dir_all(&state).unwrap();
        assert_eq!(lock.check(false), LockCheck::Held { generation: 0 }, "not checked again within a second");
        assert_eq!(lock.check(true), LockCheck::Held { generation: 1 });
        assert!(StateDirLock::acquire(&state).is_err(), "a second exporter is kept out");
        std::fs::remove_file(state.join(LOCK_FILE)).unwrap();
        std::fs::write(state.join(LOCK_FILE), b"").unwrap();
        assert_eq!(lock.check(true), LockCheck::Held { generation: 2 });
        assert!(StateDirLock::acquire(&state).is_err());
    }

    #[test]
    fn a_lock_taken_by_another_meanwhile_is_lost_for_good() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let first = StateDirLock::acquire(&state).unwrap().expect("locked");
        std::fs::remove_dir_all(&state).unwrap();
        let second = StateDirLock::acquire(&state).unwrap().expect("the new directory is free");
        let LockCheck::Lost(msg) = first.check(true) else { panic!("still held") };
        assert!(msg.contains(&state.display().to_string()), "{msg}");
        drop(second);
        assert!(matches!(first.check(true), LockCheck::Lost(_)), "no flapping between owners");
    }
}
