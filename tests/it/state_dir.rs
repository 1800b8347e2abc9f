//! A hostile or damaged `state_dir`, through the real binary: symlinks planted in it are never
//! followed, a checkpoint that is not a small regular file is set aside without being read, a
//! directory other users can write is refused, and removing the directory while the exporter
//! runs does not let a second exporter in.

use crate::support;

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::exporter::{Exporter, Launch};
use support::{free_port, program, ticks_spec};

const TICKS: &str = "app_ticks_total";
const SAVED: &str = "integration_exporter_checkpoint_last_success_timestamp_seconds{log=\"app\"}";
const CORRUPT: &str = "integration_exporter_checkpoint_corrupt_total{log=\"app\"}";
const FILES: &str = "integration_exporter_log_files{log=\"app\"}";
const LOCK: &str = "integration-exporter.lock";
const CHECKPOINT: &str = "app.checkpoint.json";

struct Setup {
    dir: tempfile::TempDir,
    state: PathBuf,
    log: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let (state, log) = (dir.path().join("state"), dir.path().join("app.log"));
        append(&log, 2);
        Setup { dir, state, log }
    }

    /// `serve` of a spec with this state_dir, listening on a port of its own.
    fn launch(&self) -> Launch {
        let port = free_port();
        let spec = self.dir.path().join(format!("spec-{port}.yaml"));
        let body = ticks_spec(&self.log.display().to_string());
        std::fs::write(&spec, format!("listen: 127.0.0.1:{port}\nstate_dir: {}\n{body}", self.state.display()))
            .unwrap();
        Exporter::serve(&spec, port).env("RUST_LOG", "info")
    }

    fn victim(&self, name: &str) -> PathBuf {
        let victim = self.dir.path().join(name);
        std::fs::write(&victim, "the victim's own content\n").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
        victim
    }

    fn set_aside(&self) -> Vec<PathBuf> {
        std::fs::read_dir(&self.state)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("app.checkpoint.json.corrupt-"))
            .collect()
    }
}

fn append(log: &Path, n: usize) {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    for _ in 0..n {
        writeln!(f, "tick").unwrap();
    }
}

fn assert_untouched(victim: &Path) {
    assert_eq!(std::fs::read_to_string(victim).unwrap(), "the victim's own content\n", "{}", victim.display());
    let mode = std::fs::metadata(victim).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o644, "{}", victim.display());
}

#[test]
fn symlinks_planted_in_the_state_dir_are_never_followed() {
    let s = Setup::new();
    std::fs::create_dir(&s.state).unwrap();

    // A checkpoint that links elsewhere is set aside as the link it is, never read through.
    let victim = s.victim("victim-checkpoint");
    symlink(&victim, s.state.join(CHECKPOINT)).unwrap();
    let exporter = s.launch().start();
    let m = exporter.wait_for("a checkpoint saved", |m| m.get(SAVED).is_some());
    assert_eq!(m.get(CORRUPT), Some(1.0));
    assert_untouched(&victim);
    let aside = s.set_aside();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(aside[0].symlink_metadata().unwrap().file_type().is_symlink());
    let saved = s.state.join(CHECKPOINT).symlink_metadata().unwrap();
    assert!(saved.file_type().is_file() && saved.mode() & 0o777 == 0o600);
    let said = exporter.output();
    assert!(said.contains(&s.state.join(CHECKPOINT).display().to_string()) && said.contains("symbolic link"), "{said}");
    drop(exporter);

    // A lock file that links elsewhere: refused, naming it; the target keeps its content.
    let victim = s.victim("victim-lock");
    std::fs::remove_file(s.state.join(LOCK)).unwrap();
    symlink(&victim, s.state.join(LOCK)).unwrap();
    let (status, said) = s.launch().exit();
    assert!(!status.success(), "{said}");
    assert!(said.contains(&s.state.join(LOCK).display().to_string()) && said.contains("symbolic link"), "{said}");
    assert_untouched(&victim);

    // A dangling one is not created through either.
    std::fs::remove_file(s.state.join(LOCK)).unwrap();
    let missing = s.dir.path().join("created-through-a-link");
    symlink(&missing, s.state.join(LOCK)).unwrap();
    let (status, _) = s.launch().exit();
    assert!(!status.success());
    assert!(!missing.exists());
}

#[test]
fn a_state_dir_other_users_can_write_is_refused() {
    let s = Setup::new();
    std::fs::create_dir(&s.state).unwrap();
    std::fs::set_permissions(&s.state, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let (status, said) = s.launch().exit();
    assert!(!status.success(), "{said}");
    assert!(said.contains(&s.state.display().to_string()) && said.contains("writable by every user"), "{said}");
    assert!(!s.state.join(LOCK).exists(), "nothing created in it");

    // Owned by another user (only root can make one here), even if only that user may write it.
    let uid = program("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() == "0" {
        std::fs::set_permissions(&s.state, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(program("chown").args(["65534", s.state.to_str().unwrap()]).status().unwrap().success());
        let (status, said) = s.launch().exit();
        assert!(!status.success(), "{said}");
        assert!(said.contains(&s.state.display().to_string()) && said.contains("uid 65534"), "{said}");
    }
}

/// A memory limit far above what the exporter needs (~300 MB of address space) and far below a
/// checkpoint read whole, so a regression fails here instead of eating the machine's memory.
const LIMITED: [&str; 4] = ["sh", "-c", "ulimit -v 1000000 && exec \"$@\"", "sh"];

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_checkpoint_that_is_not_a_small_regular_file_is_set_aside_unread() {
    type Plant = fn(&Path);
    let cases: [(&str, Plant, &str); 4] = [
        ("a link to /dev/zero", |p| symlink("/dev/zero", p).unwrap(), "symbolic link"),
        (
            "a FIFO nobody writes",
            |p| assert!(program("sh").args(["-c", "mkfifo \"$0\""]).arg(p).status().unwrap().success()),
            "not a regular file",
        ),
        ("a directory", |p| std::fs::create_dir(p).unwrap(), "not a regular file"),
        ("1.5 GB", |p| std::fs::File::create(p).unwrap().set_len(1_500_000_000).unwrap(), "larger than"),
    ];
    for (what, plant, reason) in cases {
        let s = Setup::new();
        std::fs::create_dir(&s.state).unwrap();
        let path = s.state.join(CHECKPOINT);
        plant(&path);
        let exporter = s.launch().prefix(&LIMITED).start();
        // Started at the end of the file, as after any unreadable checkpoint: the lines already
        // there were counted by the exporter that wrote the checkpoint. Only a line written after
        // the file is open is new: a slow start would otherwise take it for one already there.
        exporter.wait_for(what, |m| m.get(FILES) == Some(1.0));
        append(&s.log, 1);
        let m = exporter.wait_for(what, |m| m.get(TICKS) == Some(1.0) && m.get(SAVED).is_some());
        assert_eq!(m.get(CORRUPT), Some(1.0), "{what}");
        let said = exporter.output();
        assert!(said.contains(&path.display().to_string()) && said.contains(reason), "{what}: {said}");
        assert!(said.contains("starts at the end of its files"), "{what}: {said}");
        assert_eq!(s.set_aside().len(), 1, "{what}");
        assert!(std::fs::symlink_metadata(&path).unwrap().is_file(), "{what}: saved anew");
        let peak = peak_rss_kib(exporter.pid());
        println!("FIGURE set-aside checkpoint, {what}: peak RSS {peak} KiB");
        assert!(peak < 100 * 1024, "{what}: peak RSS {peak} KiB");
    }
}

fn lock_id(state: &Path) -> Option<(u64, u64)> {
    std::fs::symlink_metadata(state.join(LOCK)).ok().map(|m| (m.dev(), m.ino()))
}

#[test]
fn removing_the_state_dir_while_running_keeps_a_second_exporter_out() {
    let s = Setup::new();
    let first = s.launch().start();
    first.wait_for("the lines", |m| m.get(TICKS) == Some(2.0) && m.get(SAVED).is_some());
    let before = lock_id(&s.state).unwrap();

    // Removed while running, nothing new to save: the lock is taken again within a second or so.
    std::fs::remove_dir_all(&s.state).unwrap();
    let removed = std::time::Instant::now();
    let within = Duration::from_secs(10);
    support::wait::until("the lock taken again", within, || lock_id(&s.state), |id| id.filter(|id| *id != before));
    println!("FIGURE state_dir removed while running: lock taken again after {} ms", removed.elapsed().as_millis());
    first.wait_for("the checkpoint written anew", |_| s.state.join(CHECKPOINT).is_file());
    let (status, said) = s.launch().exit();
    assert!(!status.success(), "{said}");
    assert!(said.contains(&format!("pid {}", first.pid())), "{said}");
    let said = first.output();
    assert!(said.contains("lock taken again"), "{said}");

    // The counts survive: a restart reads what was saved in the new directory.
    append(&s.log, 1);
    first.wait_for("the new line", |m| m.get(TICKS) == Some(3.0));
    let mut first = first;
    first.wait_for("it saved", |_| {
        std::fs::read_to_string(s.state.join(CHECKPOINT)).is_ok_and(|c| c.contains("\"matched\":3"))
    });
    first.restart();
    append(&s.log, 1);
    first.wait_for("restored and one more", |m| m.get(TICKS) == Some(4.0));
}

#[test]
fn an_exporter_that_lost_its_removed_state_dir_to_another_stops_saving() {
    let s = Setup::new();
    let first = s.launch().start();
    first.wait_for("the first save", |m| m.get(TICKS) == Some(2.0) && m.get(SAVED).is_some());
    // Frozen while its directory is removed and a second exporter takes it.
    first.signal("STOP");
    std::fs::remove_dir_all(&s.state).unwrap();
    let second = s.launch().start();
    second.wait_for("the second's save", |m| m.get(SAVED).is_some());
    first.signal("CONT");
    let lost = "integration_exporter_checkpoint_save_failures_total{log=\"app\",reason=\"lock_lost\"}";
    append(&s.log, 1);
    let m = first.wait_for("saves refused", |m| m.get(lost).is_some_and(|n| n >= 1.0));
    assert_eq!(m.get(TICKS), Some(3.0), "still counting and serving");
    let said = first.output();
    assert!(said.contains(&format!("pid {}", second.pid())) && said.contains(&s.state.display().to_string()), "{said}");
    // The directory is the second's: its checkpoint, its lock.
    second.wait_for("the second's count", |m| m.get(TICKS) == Some(3.0));
    let pid = std::fs::read_to_string(s.state.join(LOCK)).unwrap();
    assert_eq!(pid.trim(), second.pid().to_string());
}

/// A log name is part of its checkpoint's file name: one that would put it elsewhere is a spec
/// error at its place, for `check` and `serve` alike.
#[test]
fn a_log_name_that_leads_out_of_the_state_dir_is_refused_at_its_place() {
    let s = Setup::new();
    for name in ["../escaped", "sub/dir", ".hidden"] {
        let body = ticks_spec(&s.log.display().to_string()).replace("  app:\n", &format!("  \"{name}\":\n"));
        let body = body.replace("log: app\n", &format!("log: \"{name}\"\n"));
        let spec = s.dir.path().join("spec.yaml");
        std::fs::write(&spec, format!("state_dir: {}\n{body}", s.state.display())).unwrap();
        let out = std::process::Command::new(support::exporter_bin())
            .args(["check", "--config"])
            .arg(&spec)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {said}");
        assert!(
            said.starts_with(&format!("{}:3:", spec.display())) && said.contains("file name in state_dir"),
            "{name}: {said}"
        );
    }
    assert!(!s.dir.path().join("escaped.checkpoint.json").exists());
}

/// Whatever is planted in a state_dir (links to a victim, to `/dev/zero` or to nowhere, FIFOs,
/// directories, oversized or random files, under the checkpoint's and the lock's names, with any
/// directory mode), starting and saving a log source never writes, chmods or creates anything
/// outside it, never hangs, and either refuses naming the path or saves a private regular file.
/// `scripts/fuzz` runs thousands of cases.
mod planted {
    use super::*;
    use integration_exporter::sources::logs::LogRunner;
    use integration_exporter::sources::logs::state_dir::StateDirLock;
    use proptest::prelude::*;

    #[derive(Clone, Copy, Debug)]
    enum Plant {
        Nothing,
        LinkToVictim,
        LinkToDevZero,
        Dangling,
        Fifo,
        Dir,
        HardLinkToVictim,
        Big,
        Bytes(u8),
    }

    fn plant() -> impl Strategy<Value = Plant> {
        prop_oneof![
            Just(Plant::Nothing),
            Just(Plant::LinkToVictim),
            Just(Plant::LinkToDevZero),
            Just(Plant::Dangling),
            Just(Plant::Fifo),
            Just(Plant::Dir),
            Just(Plant::HardLinkToVictim),
            Just(Plant::Big),
            any::<u8>().prop_map(Plant::Bytes),
        ]
    }

    fn put(plant: Plant, at: &Path, victim: &Path, nowhere: &Path) {
        match plant {
            Plant::Nothing => {}
            Plant::LinkToVictim => symlink(victim, at).unwrap(),
            Plant::LinkToDevZero => symlink("/dev/zero", at).unwrap(),
            Plant::Dangling => symlink(nowhere, at).unwrap(),
            Plant::Fifo => {
                assert!(program("sh").args(["-c", "mkfifo \"$0\""]).arg(at).status().unwrap().success())
            }
            Plant::Dir => std::fs::create_dir(at).unwrap(),
            Plant::HardLinkToVictim => std::fs::hard_link(victim, at).unwrap(),
            // Sparse: no disk, and 4 MiB over the limit.
            Plant::Big => std::fs::File::create(at).unwrap().set_len(20 << 20).unwrap(),
            Plant::Bytes(seed) => std::fs::write(at, vec![seed; usize::from(seed) * 7]).unwrap(),
        }
    }

    fn case(checkpoint: Plant, lock: Plant, aside: Plant, mode: u32) {
        let s = Setup::new();
        std::fs::create_dir(&s.state).unwrap();
        let victim = s.victim("victim");
        let nowhere = s.dir.path().join("nowhere");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        put(checkpoint, &s.state.join(CHECKPOINT), &victim, &nowhere);
        put(lock, &s.state.join(LOCK), &victim, &nowhere);
        // Where an unreadable checkpoint is moved to, this second or the next.
        for secs in [now, now + 1] {
            put(aside, &s.state.join(format!("{CHECKPOINT}.corrupt-{secs}")), &victim, &nowhere);
        }
        std::fs::set_permissions(&s.state, std::fs::Permissions::from_mode(mode)).unwrap();
        let m = support::fidelity::model(&format!(
            "state_dir: {}\n{}",
            s.state.display(),
            ticks_spec(&s.log.display().to_string())
        ));
        match StateDirLock::acquire(&s.state) {
            Err(e) => assert!(e.to_string().contains(&s.state.display().to_string()), "{e}"),
            Ok(_lock) => {
                // A checkpoint that exists but cannot be read (only if it could not be opened
                // for a reason other than being the wrong kind of file) stops the source.
                match LogRunner::new(&m, "app", &m.logs["app"]) {
                    Err(e) => assert!(e.to_string().contains(CHECKPOINT), "{e}"),
                    Ok(mut r) => {
                        r.poll();
                        if r.save_checkpoint().is_ok() {
                            let saved = std::fs::symlink_metadata(s.state.join(CHECKPOINT)).unwrap();
                            assert!(saved.is_file() && saved.mode() & 0o777 == 0o600 && saved.nlink() == 1);
                        }
                    }
                }
            }
        }
        assert_untouched(&victim);
        assert!(!nowhere.exists(), "created through a dangling link");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(32)
        ))]

        #[test]
        fn nothing_planted_in_a_state_dir_reaches_outside_it(
            checkpoint in plant(),
            lock in plant(),
            aside in plant(),
            mode in prop::sample::select(vec![0o700u32, 0o755, 0o770, 0o777, 0o1777, 0o500]),
        ) {
            case(checkpoint, lock, aside, mode);
        }
    }
}
