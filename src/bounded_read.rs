//! Reading the small files the exporter is configured with (the spec, the web config and the PEM
//! files it names, `file:` secrets, the database URL file) so that none of them can freeze it.
//!
//! - A FIFO, a device or a socket is refused before a byte is read: the file is opened
//!   non-blocking (opening a FIFO without a writer would otherwise wait for one) and checked with
//!   `fstat`. Reading `/dev/zero` or a named pipe nobody writes is never what a user meant.
//! - The read runs on a thread of its own and is given up after [`READ_TIMEOUT`]: a regular file
//!   on a hung NFS or FUSE mount blocks in the kernel, where nothing can interrupt it. The thread
//!   stays blocked, so while it does, another read of the same path fails at once instead of
//!   leaving one more thread behind.
//! - A file that changes while it is read (its size or modification time moved, or fewer bytes came
//!   than it holds) is read again, a few times, so a file being rewritten is not taken whole.
//! - Reads are capped in size: these files are kilobytes, and a multi-gigabyte one is a mistake.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, SystemTime};

/// How long one read may take before it is given up.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads of a file that keeps changing before the reader gives up.
const ATTEMPTS: u32 = 5;

/// Why a file could not be read. Says nothing of the content, so it can be logged with the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// The system's own error (missing, permission denied, ...).
    Io(String),
    /// Not a regular file: what it is.
    NotRegular(&'static str),
    /// More than the cap.
    TooLarge(u64),
    /// No answer within the time bound.
    TimedOut(Duration),
    /// An earlier read of the same path is still blocked.
    StillBlocked,
    /// It changed under every attempt.
    KeptChanging,
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io(e) => f.write_str(e),
            ReadError::NotRegular(kind) => write!(f, "it is a {kind}, not a regular file"),
            ReadError::TooLarge(max) => write!(f, "it is larger than {max} bytes"),
            ReadError::TimedOut(after) => {
                write!(f, "no answer after {} s (a hung network or FUSE mount?)", after.as_secs())
            }
            ReadError::StillBlocked => f.write_str("an earlier read of it has not returned yet (a hung mount?)"),
            ReadError::KeptChanging => f.write_str("it kept changing while being read; try again once it is written"),
        }
    }
}

impl std::error::Error for ReadError {}

impl ReadError {
    /// Whether the read did not answer: nothing is known of the file, not even that it is wrong.
    pub fn is_blocked(&self) -> bool {
        matches!(self, ReadError::TimedOut(_) | ReadError::StillBlocked)
    }
}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> Self {
        ReadError::Io(e.to_string())
    }
}

/// Paths whose read was given up while its thread is still blocked.
static BLOCKED: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

fn blocked() -> std::sync::MutexGuard<'static, Option<HashSet<PathBuf>>> {
    BLOCKED.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The whole file, at most `max_bytes`, within [`READ_TIMEOUT`]. Blocks the calling thread for
/// that long at most: from async code use [`read_async`].
pub fn read(path: &Path, max_bytes: u64) -> Result<Vec<u8>, ReadError> {
    read_within(path, READ_TIMEOUT, move |p| read_regular(p, max_bytes))
}

/// [`read`], then UTF-8.
pub fn read_to_string(path: &Path, max_bytes: u64) -> Result<String, ReadError> {
    String::from_utf8(read(path, max_bytes)?).map_err(|_| ReadError::Io("it is not UTF-8 text".into()))
}

/// [`read`] from async code: the waiting happens on the blocking pool, never on the runtime.
pub async fn read_async(path: PathBuf, max_bytes: u64) -> Result<Vec<u8>, ReadError> {
    tokio::task::spawn_blocking(move || read(&path, max_bytes))
        .await
        .unwrap_or_else(|e| Err(ReadError::Io(format!("the reading task failed: {e}"))))
}

/// Runs `reader` on a thread of its own and waits at most `timeout` for it.
fn read_within<T: Send + 'static>(
    path: &Path,
    timeout: Duration,
    reader: impl FnOnce(&Path) -> Result<T, ReadError> + Send + 'static,
) -> Result<T, ReadError> {
    let key = path.to_path_buf();
    if blocked().as_ref().is_some_and(|b| b.contains(&key)) {
        return Err(ReadError::StillBlocked);
    }
    let (sender, answer) = mpsc::sync_channel(1);
    let on_thread = key.clone();
    std::thread::Builder::new()
        .name("file-read".into())
        .spawn(move || {
            let _ = sender.send(reader(&on_thread));
            // After the send: the waiter decides, under the lock, whether it still waits or marks
            // the path blocked, so a late answer always clears the mark it left.
            if let Some(set) = blocked().as_mut() {
                set.remove(&on_thread);
            }
        })
        .map_err(|e| ReadError::Io(format!("cannot start a reading thread: {e}")))?;
    match answer.recv_timeout(timeout) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            let mut set = blocked();
            if let Ok(result) = answer.try_recv() {
                return result;
            }
            set.get_or_insert_with(HashSet::new).insert(key);
            Err(ReadError::TimedOut(timeout))
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(ReadError::Io("the reading thread failed".into())),
    }
}

/// What identifies one version of an open file.
fn version(meta: &std::fs::Metadata) -> (u64, Option<SystemTime>) {
    (meta.len(), meta.modified().ok())
}

/// Opens without blocking, refuses what is not a regular file, reads it whole and again while it
/// changes under the read.
fn read_regular(path: &Path, max_bytes: u64) -> Result<Vec<u8>, ReadError> {
    for attempt in 0..ATTEMPTS {
        let mut file = open_nonblocking(path)?;
        let before = file.metadata()?;
        refuse_special(&before)?;
        if before.len() > max_bytes {
            return Err(ReadError::TooLarge(max_bytes));
        }
        let mut bytes = Vec::with_capacity(before.len() as usize);
        (&mut file).take(max_bytes + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > max_bytes {
            return Err(ReadError::TooLarge(max_bytes));
        }
        let after = file.metadata()?;
        if version(&before) == version(&after) && bytes.len() as u64 == after.len() {
            return Ok(bytes);
        }
        // A writer is at work: give it a moment, more each time.
        std::thread::sleep(Duration::from_millis(10 << attempt));
    }
    Err(ReadError::KeptChanging)
}

#[cfg(unix)]
fn open_nonblocking(path: &Path) -> Result<std::fs::File, ReadError> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    let fd = rustix::fs::open(path, flags, Mode::empty()).map_err(std::io::Error::from)?;
    Ok(std::fs::File::from(fd))
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> Result<std::fs::File, ReadError> {
    Ok(std::fs::File::open(path)?)
}

fn refuse_special(meta: &std::fs::Metadata) -> Result<(), ReadError> {
    let kind = meta.file_type();
    if kind.is_file() {
        return Ok(());
    }
    if kind.is_dir() {
        return Err(ReadError::NotRegular("directory"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return Err(ReadError::NotRegular("FIFO (named pipe)"));
        }
        if kind.is_char_device() {
            return Err(ReadError::NotRegular("character device"));
        }
        if kind.is_block_device() {
            return Err(ReadError::NotRegular("block device"));
        }
        if kind.is_socket() {
            return Err(ReadError::NotRegular("socket"));
        }
    }
    Err(ReadError::NotRegular("special file"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn mkfifo(path: &Path) {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            path,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .expect("mkfifo");
    }

    #[test]
    fn special_files_are_refused_at_once_and_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("secret");
        mkfifo(&fifo);
        let started = Instant::now();
        assert_eq!(read(&fifo, 1024), Err(ReadError::NotRegular("FIFO (named pipe)")));
        assert_eq!(read(Path::new("/dev/zero"), 1024), Err(ReadError::NotRegular("character device")));
        assert_eq!(read(dir.path(), 1024), Err(ReadError::NotRegular("directory")));
        assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 2048]).expect("write");
        assert_eq!(read(&big, 1024), Err(ReadError::TooLarge(1024)));
        assert_eq!(read(&big, 4096).expect("read").len(), 2048);
        assert!(matches!(read(&dir.path().join("missing"), 1024), Err(ReadError::Io(_))));
    }

    /// A read that blocks in the kernel (here: a blocking open of a FIFO nobody writes, as a hung
    /// mount does) is given up after the bound, and while it stays blocked the same path fails at
    /// once instead of leaving another thread behind; once it returns, the path reads again.
    #[test]
    fn a_read_that_never_returns_is_given_up_and_not_repeated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("hung");
        mkfifo(&fifo);
        let blocking = |p: &Path| std::fs::read(p).map_err(ReadError::from);
        let started = Instant::now();
        assert_eq!(
            read_within(&fifo, Duration::from_millis(300), blocking),
            Err(ReadError::TimedOut(Duration::from_millis(300)))
        );
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        let started = Instant::now();
        assert_eq!(read_within(&fifo, Duration::from_secs(5), blocking), Err(ReadError::StillBlocked));
        assert!(started.elapsed() < Duration::from_millis(100));
        // A writer unblocks the first reader; the mark goes with it.
        std::fs::write(&fifo, b"late").expect("write the fifo");
        let deadline = Instant::now() + Duration::from_secs(10);
        while blocked().as_ref().is_some_and(|b| b.contains(&fifo)) {
            assert!(Instant::now() < deadline, "the blocked mark stayed");
            std::thread::sleep(Duration::from_millis(10));
        }
        let other = dir.path().join("plain");
        std::fs::write(&other, b"ok").expect("write");
        assert_eq!(read_within(&other, Duration::from_secs(5), blocking), Ok(b"ok".to_vec()));
    }
}
