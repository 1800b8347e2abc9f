//! When a log source's thread polls its files: right after inotify reports a change in one of the
//! watched directories, else every second as a fallback (NFS and other filesystems where inotify
//! says nothing, files reached through a directory nobody watches). Without inotify (not Linux,
//! watch limit reached, a directory missing) the source polls every 100 ms as before.
//!
//! Wake-ups only decide *when* the tailer polls; what it reads, and so exactly-once, is the
//! tailer's alone. A wake-up that is lost or spurious costs latency or one cheap poll, never a line.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use super::POLL_INTERVAL;

/// Poll at least this often while inotify works (it also covers the files it cannot see).
pub const FALLBACK_INTERVAL: Duration = Duration::from_secs(1);
/// Never poll more often than this, however many wake-ups arrive (bursts are coalesced).
pub const MIN_POLL_GAP: Duration = Duration::from_millis(10);

/// Decides when the runner of one log source polls next.
pub struct Wake {
    #[cfg(target_os = "linux")]
    watch: Option<linux::Watch>,
    last_poll: Instant,
}

impl Wake {
    /// Watches the directories of `paths` (paths or globs). Never fails: whatever cannot be set up is
    /// logged once and covered by polling every [`POLL_INTERVAL`].
    pub fn new(log: &str, paths: &[String], shutdown: Arc<AtomicBool>) -> Wake {
        #[cfg(target_os = "linux")]
        {
            Wake { watch: linux::Watch::new(log, paths, shutdown), last_poll: Instant::now() }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (paths, shutdown);
            tracing::info!(log, "no inotify on this system; polling log files every 100 ms");
            Wake { last_poll: Instant::now() }
        }
    }

    /// Whether inotify currently covers every directory, so polls only happen on wake-ups and
    /// every [`FALLBACK_INTERVAL`].
    pub fn is_watching(&self) -> bool {
        #[cfg(target_os = "linux")]
        {
            self.watch.as_ref().is_some_and(linux::Watch::complete)
        }
        #[cfg(not(target_os = "linux"))]
        {
            false
        }
    }

    /// Blocks until the next poll is due: a wake-up (coalesced, at most one poll per
    /// [`MIN_POLL_GAP`]), the fallback interval, or shutdown (within about 250 ms).
    pub fn wait(&mut self) {
        #[cfg(target_os = "linux")]
        if let Some(watch) = &mut self.watch {
            if !watch.wait(self.last_poll) {
                self.watch = None;
            }
            self.last_poll = Instant::now();
            return;
        }
        std::thread::sleep(POLL_INTERVAL);
        self.last_poll = Instant::now();
    }

    /// Directories in the watch table and files remembered as checked (0, 0 without inotify): what
    /// must not grow while directories come and go.
    pub fn table_sizes(&self) -> (usize, usize) {
        #[cfg(target_os = "linux")]
        if let Some(watch) = &self.watch {
            return watch.table_sizes();
        }
        (0, 0)
    }

    /// Tells the watcher which files the tailer follows now, so a file that is a symlink into
    /// another directory (Kubernetes' `/var/log/containers/*.log`) also gets that directory watched.
    /// Cheap to call often: only paths not seen before cost a syscall.
    pub fn track<'a>(&mut self, files: impl IntoIterator<Item = &'a str>) {
        #[cfg(target_os = "linux")]
        if let Some(watch) = &mut self.watch {
            watch.track(files);
        }
        #[cfg(not(target_os = "linux"))]
        let _ = files.into_iter();
    }
}

/// The directory a path or glob lives in (`.` for a bare name). Globs only ever have wildcards in
/// the file-name part (see the tailer), so this is always a literal directory.
pub fn parent_dir(pattern: &str) -> std::path::PathBuf {
    match pattern.rfind('/') {
        Some(0) => "/".into(),
        Some(i) => pattern[..i].into(),
        None => ".".into(),
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::collections::{BTreeMap, BTreeSet};
    use std::mem::MaybeUninit;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
    use std::sync::{Arc, Mutex};
    use std::thread::JoinHandle;
    use std::time::{Duration, Instant};

    use rustix::event::{PollFd, PollFlags, Timespec};
    use rustix::fd::OwnedFd;
    use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
    use rustix::io::Errno;

    use super::{FALLBACK_INTERVAL, MIN_POLL_GAP, POLL_INTERVAL, parent_dir};

    /// How often the inotify thread looks at the shutdown flag while nothing happens.
    const THREAD_TICK: Duration = Duration::from_millis(250);

    fn mask() -> WatchFlags {
        WatchFlags::MODIFY
            | WatchFlags::CREATE
            | WatchFlags::MOVED_TO
            | WatchFlags::MOVED_FROM
            | WatchFlags::DELETE
            | WatchFlags::CLOSE_WRITE
            | WatchFlags::ATTRIB
            | WatchFlags::ONLYDIR
    }

    pub(super) struct Watch {
        log: String,
        fd: Arc<OwnedFd>,
        wake: Receiver<()>,
        /// Watch descriptors the kernel dropped (directory deleted, moved away or unmounted).
        lost: Arc<Mutex<Vec<i32>>>,
        /// Every directory we want watched, with its watch descriptor when it is.
        dirs: BTreeMap<PathBuf, Option<i32>>,
        /// The configured paths' directories: always wanted. The others in `dirs` are wanted only
        /// while a followed file links into them.
        configured: BTreeSet<PathBuf>,
        /// Followed files, with the directory they link into (`None`: not a symlink). Checked once
        /// per file; entries go when the tailer stops following the file, so directories of
        /// vanished Kubernetes pods leave the table (and the kernel's) instead of piling up.
        tracked: BTreeMap<String, Option<PathBuf>>,
        /// Whether the "cannot watch" warning was given (once per source).
        warned: bool,
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<()>>,
    }

    impl Watch {
        pub(super) fn new(log: &str, paths: &[String], shutdown: Arc<AtomicBool>) -> Option<Watch> {
            let fd = match inotify::init(CreateFlags::NONBLOCK | CreateFlags::CLOEXEC) {
                Ok(fd) => Arc::new(fd),
                Err(e) => {
                    tracing::warn!(log, error = %e, "cannot use inotify; polling log files every 100 ms");
                    return None;
                }
            };
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            let lost = Arc::new(Mutex::new(Vec::new()));
            let stop = Arc::new(AtomicBool::new(false));
            let thread = {
                let (fd, lost, stop) = (fd.clone(), lost.clone(), stop.clone());
                let name = log.to_string();
                std::thread::Builder::new()
                    .name(format!("inotify-{log}"))
                    .spawn(move || run(&name, &fd, &tx, &lost, &stop, &shutdown))
            };
            let thread = match thread {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(log, error = %e, "cannot start the inotify thread; polling log files every 100 ms");
                    return None;
                }
            };
            let configured: BTreeSet<PathBuf> = paths.iter().map(|p| parent_dir(p)).collect();
            let mut watch = Watch {
                log: log.to_string(),
                fd,
                wake: rx,
                lost,
                dirs: configured.iter().map(|d| (d.clone(), None)).collect(),
                configured,
                tracked: BTreeMap::new(),
                warned: false,
                stop,
                thread: Some(thread),
            };
            watch.add_missing();
            Some(watch)
        }

        pub(super) fn table_sizes(&self) -> (usize, usize) {
            (self.dirs.len(), self.tracked.len())
        }

        /// Whether every wanted directory is watched.
        pub(super) fn complete(&self) -> bool {
            self.dirs.values().all(Option::is_some)
        }

        /// (Re)adds the watches that are missing; warns once per source about the first failure.
        fn add_missing(&mut self) {
            for (dir, wd) in self.dirs.iter_mut().filter(|(_, wd)| wd.is_none()) {
                match inotify::add_watch(&*self.fd, dir.as_path(), mask()) {
                    Ok(w) => *wd = Some(w),
                    Err(e) => {
                        if !self.warned {
                            self.warned = true;
                            let hint = if e == Errno::NOSPC { " (raise fs.inotify.max_user_watches)" } else { "" };
                            tracing::warn!(
                                log = %self.log,
                                dir = %dir.display(),
                                error = %e,
                                "cannot watch log directory{hint}; polling every 100 ms until it can be watched"
                            );
                        }
                    }
                }
            }
        }

        fn forget_lost(&mut self) {
            let lost = std::mem::take(&mut *self.lost.lock().unwrap_or_else(|p| p.into_inner()));
            if lost.is_empty() {
                return;
            }
            for wd in self.dirs.values_mut() {
                if wd.is_some_and(|w| lost.contains(&w)) {
                    *wd = None;
                }
            }
        }

        /// Returns false when the inotify thread is gone for good (the caller falls back to polling).
        pub(super) fn wait(&mut self, last_poll: Instant) -> bool {
            self.forget_lost();
            if !self.complete() {
                // A directory (re)added here is covered from now on: the poll that follows this
                // wait sees whatever happened in it before.
                self.add_missing();
            }
            let timeout = if self.complete() { FALLBACK_INTERVAL } else { POLL_INTERVAL };
            match self.wake.recv_timeout(timeout) {
                Ok(()) => {
                    let since = last_poll.elapsed();
                    if since < MIN_POLL_GAP {
                        std::thread::sleep(MIN_POLL_GAP - since);
                    }
                    // Coalesce the burst: one poll reads everything written so far.
                    while let Ok(()) = self.wake.try_recv() {}
                    true
                }
                Err(RecvTimeoutError::Timeout) => true,
                // The thread ended: shutdown (the caller's loop ends now) or an inotify error it
                // logged. Either way, plain polling from here on.
                Err(RecvTimeoutError::Disconnected) => false,
            }
        }

        /// `files` is everything the tailer follows now: files not in it are forgotten, and so are
        /// the watches of directories no remaining file links into.
        pub(super) fn track<'a>(&mut self, files: impl IntoIterator<Item = &'a str>) {
            let mut added = false;
            let mut current = BTreeSet::new();
            for file in files {
                current.insert(file);
                if self.tracked.contains_key(file) {
                    continue;
                }
                let is_link = std::fs::symlink_metadata(file).is_ok_and(|m| m.file_type().is_symlink());
                let target = if is_link {
                    std::fs::canonicalize(file).ok().and_then(|p| p.parent().map(PathBuf::from))
                } else {
                    None
                };
                if let Some(dir) = &target
                    && !self.dirs.contains_key(dir)
                {
                    self.dirs.insert(dir.clone(), None);
                    added = true;
                }
                self.tracked.insert(file.to_string(), target);
            }
            if self.tracked.len() > current.len() {
                self.tracked.retain(|f, _| current.contains(f.as_str()));
            }
            let wanted: BTreeSet<&PathBuf> = self.tracked.values().flatten().chain(&self.configured).collect();
            if wanted.len() < self.dirs.len() {
                let fd = &self.fd;
                self.dirs.retain(|dir, wd| {
                    let keep = wanted.contains(dir);
                    if !keep && let Some(w) = wd {
                        // Fails when the kernel already dropped it (directory deleted): fine.
                        let _ = inotify::remove_watch(&**fd, *w);
                    }
                    keep
                });
            }
            if added {
                self.add_missing();
            }
        }
    }

    impl Drop for Watch {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    /// The inotify thread: waits for events (checking the flags every [`THREAD_TICK`]) and turns
    /// each batch into at most one pending wake-up.
    fn run(
        log: &str,
        fd: &OwnedFd,
        wake: &SyncSender<()>,
        lost: &Mutex<Vec<i32>>,
        stop: &AtomicBool,
        shutdown: &AtomicBool,
    ) {
        let tick = Timespec::try_from(THREAD_TICK).unwrap_or(Timespec { tv_sec: 0, tv_nsec: 250_000_000 });
        let mut buf = [MaybeUninit::<u8>::uninit(); 8192];
        while !stop.load(Ordering::Relaxed) && !shutdown.load(Ordering::Relaxed) {
            let mut fds = [PollFd::new(fd, PollFlags::IN)];
            match rustix::event::poll(&mut fds, Some(&tick)) {
                Ok(0) | Err(Errno::INTR) => continue,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(log, error = %e, "inotify failed; polling log files every 100 ms");
                    return;
                }
            }
            let mut reader = inotify::Reader::new(fd, &mut buf);
            let mut any = false;
            loop {
                match reader.next() {
                    Ok(event) => {
                        any = true;
                        if event.events().contains(ReadFlags::IGNORED) {
                            lost.lock().unwrap_or_else(|p| p.into_inner()).push(event.wd());
                        }
                    }
                    Err(Errno::AGAIN) => break,
                    Err(Errno::INTR) => continue,
                    Err(e) => {
                        tracing::warn!(log, error = %e, "cannot read inotify events; polling log files every 100 ms");
                        return;
                    }
                }
            }
            if any && let Err(TrySendError::Disconnected(())) = wake.try_send(()) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_dirs() {
        assert_eq!(parent_dir("/var/log/app/*.log"), std::path::PathBuf::from("/var/log/app"));
        assert_eq!(parent_dir("/app.log"), std::path::PathBuf::from("/"));
        assert_eq!(parent_dir("app.log*"), std::path::PathBuf::from("."));
        assert_eq!(parent_dir("logs/app.log"), std::path::PathBuf::from("logs"));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn wakes_on_append_and_stops_on_shutdown() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.log");
        let shutdown = Arc::new(AtomicBool::new(false));
        let mut wake = Wake::new("t", &[format!("{}/*.log", dir.path().display())], shutdown.clone());
        assert!(wake.is_watching());

        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap().write_all(b"x\n").unwrap();
        });
        let start = Instant::now();
        wake.wait();
        assert!(start.elapsed() < Duration::from_millis(900), "woke after {:?}", start.elapsed());
        writer.join().unwrap();

        // A missing directory degrades to 100 ms polling.
        let missing = Wake::new("t", &[format!("{}/nope/*.log", dir.path().display())], shutdown.clone());
        assert!(!missing.is_watching());

        shutdown.store(true, std::sync::atomic::Ordering::Relaxed);
        let start = Instant::now();
        wake.wait();
        drop(wake);
        drop(missing);
        assert!(start.elapsed() < Duration::from_secs(1), "shutdown took {:?}", start.elapsed());
    }

    /// Kubernetes: `/var/log/containers/*.log` are symlinks into per-pod directories that are
    /// created and deleted as pods come and go. The watch table must follow, not grow.
    #[cfg(target_os = "linux")]
    #[test]
    fn watch_table_forgets_directories_of_files_no_longer_followed() {
        let root = tempfile::tempdir().unwrap();
        let links = root.path().join("containers");
        std::fs::create_dir(&links).unwrap();
        let shutdown = Arc::new(AtomicBool::new(false));
        let mut wake = Wake::new("t", &[format!("{}/*.log", links.display())], shutdown.clone());
        assert_eq!(wake.table_sizes(), (1, 0));
        let mut peak = (0, 0);
        for i in 0..200 {
            let pod = root.path().join(format!("pods/p{i}/c"));
            std::fs::create_dir_all(&pod).unwrap();
            std::fs::write(pod.join("0.log"), "x\n").unwrap();
            let link = links.join(format!("p{i}.log"));
            std::os::unix::fs::symlink(pod.join("0.log"), &link).unwrap();
            // What the runner does: tell the watcher what the tailer follows now.
            let followed = link.to_string_lossy().into_owned();
            wake.track([followed.as_str()]);
            let (dirs, files) = wake.table_sizes();
            peak = (peak.0.max(dirs), peak.1.max(files));
            // The pod goes away; the tailer stops following its file.
            std::fs::remove_file(&link).unwrap();
            std::fs::remove_dir_all(root.path().join(format!("pods/p{i}"))).unwrap();
            wake.track(std::iter::empty());
            // Wake-ups for the deletion (IN_IGNORED included) are handled here.
            wake.wait();
        }
        assert_eq!(peak, (2, 1), "one configured and one pod directory, one file at a time");
        assert_eq!(wake.table_sizes(), (1, 0));
        assert!(wake.is_watching(), "a vanished pod directory must not leave us polling");
        shutdown.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
