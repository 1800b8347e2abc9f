//! The exporter binary when its `state_dir` misbehaves: shared by a second exporter, full, read-only.
//! It keeps serving `/metrics`; the failure is a metric and a log line, not a crash.

use crate::support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::exporter::sample;
use support::{exporter_bin, free_port, ticks_spec};

struct Exporter {
    child: Child,
    port: u16,
    stderr: PathBuf,
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Exporter {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn metrics(&self) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("exporter still listening");
        write!(stream, "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
        let mut raw = String::new();
        stream.read_to_string(&mut raw).unwrap();
        raw.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default()
    }

    fn wait_for(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = self.metrics();
            if check(&text) {
                return text;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}:\n{text}\n--- log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn write_spec(dir: &Path, port: u16, state: &Path, log: &Path) -> PathBuf {
    let spec = dir.join(format!("spec-{port}.yaml"));
    let text =
        format!("listen: 127.0.0.1:{port}\nstate_dir: {}\n{}", state.display(), ticks_spec(&log.display().to_string()));
    std::fs::write(&spec, text).unwrap();
    spec
}

/// Starts `prefix... exporter serve --config spec`, with its log in a file.
fn spawn(dir: &Path, port: u16, spec: &Path, prefix: &[&str]) -> Exporter {
    let stderr = dir.join(format!("stderr-{port}.log"));
    let mut cmd = match prefix.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(exporter_bin());
            c
        }
        None => Command::new(exporter_bin()),
    };
    let child = cmd
        .args(["serve", "--config"])
        .arg(spec)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .expect("start exporter");
    Exporter { child, port, stderr }
}

fn listening(mut exporter: Exporter) -> Exporter {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", exporter.port)).is_err() {
        let exited = exporter.child.try_wait().unwrap();
        assert!(exited.is_none() && Instant::now() < deadline, "exporter did not listen: {}", exporter.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    exporter
}

fn append(log: &Path, line: &str) {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    writeln!(f, "{line}").unwrap();
}

const TICKS: &str = "app_ticks_total";
const SAVED: &str = "integration_exporter_checkpoint_last_success_timestamp_seconds{log=\"app\"}";
const SAVE_WARNING: &str = "cannot save checkpoint";

fn failures(reason: &str) -> String {
    format!("integration_exporter_checkpoint_save_failures_total{{log=\"app\",reason=\"{reason}\"}}")
}

#[test]
fn a_second_exporter_on_one_state_dir_exits_naming_the_first_and_a_killed_one_blocks_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (state, log) = (dir.path().join("state"), dir.path().join("app.log"));
    append(&log, "tick");
    let port = free_port();
    let first = listening(spawn(dir.path(), port, &write_spec(dir.path(), port, &state, &log), &[]));
    first.wait_for("the first save", |m| sample(m, SAVED).is_some());

    let port2 = free_port();
    let mut second = spawn(dir.path(), port2, &write_spec(dir.path(), port2, &state, &log), &[]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = second.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the second exporter kept running: {}", second.log());
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());
    let said = second.log();
    assert!(said.contains(&state.display().to_string()), "{said}");
    assert!(said.contains(&format!("pid {}", first.child.id())), "{said}");

    // kill -9 leaves the lock file behind, but not the lock.
    drop(first);
    let third = listening(spawn(dir.path(), port2, &write_spec(dir.path(), port2, &state, &log), &[]));
    append(&log, "tick");
    third.wait_for("the restored count plus one", |m| sample(m, TICKS) == Some(2.0));
}

/// Whether this machine lets us give one process a small tmpfs of its own (root in CI).
fn private_tmpfs_works() -> bool {
    Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn a_full_then_read_only_state_dir_is_a_metric_and_one_log_line_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let (state, log) = (dir.path().join("state"), dir.path().join("app.log"));
    append(&log, "tick");
    let port = free_port();
    if !private_tmpfs_works() {
        // No mount namespace here: a state_dir under a regular file fails every save the same way.
        eprintln!("no private tmpfs: testing a state_dir whose parent is a regular file instead");
        std::fs::write(dir.path().join("file"), b"").unwrap();
        let state = dir.path().join("file/state");
        let exporter = listening(spawn(dir.path(), port, &write_spec(dir.path(), port, &state, &log), &[]));
        let m =
            exporter.wait_for("failed saves", |m| sample(m, &failures("not_a_directory")).is_some_and(|n| n >= 2.0));
        assert_eq!(sample(&m, TICKS), Some(1.0));
        return;
    }
    std::fs::create_dir(&state).unwrap();
    let script = "mount -t tmpfs -o size=256k,mode=0700 tmpfs \"$0\" && exec \"$@\"";
    let state_arg = state.to_str().unwrap();
    let prefix = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, state_arg];
    let exporter = listening(spawn(dir.path(), port, &write_spec(dir.path(), port, &state, &log), &prefix));
    let first_save = sample(&exporter.wait_for("the first save", |m| sample(m, SAVED).is_some()), SAVED).unwrap();
    // The exporter's own view of the state_dir: the tmpfs in its mount namespace.
    let inside = PathBuf::from(format!("/proc/{}/root{}", exporter.child.id(), state.display()));
    assert!(inside.join("app.checkpoint.json").exists());

    // Full.
    let fill = inside.join("fill");
    let mut f = std::fs::File::create(&fill).unwrap();
    while f.write_all(&[0; 4096]).is_ok() {}
    drop(f);
    append(&log, "tick");
    let m = exporter.wait_for("three failed saves", |m| sample(m, &failures("no_space")).is_some_and(|n| n >= 3.0));
    assert_eq!(sample(&m, TICKS), Some(2.0), "lines are still read and exported");
    assert_eq!(exporter.log().matches(SAVE_WARNING).count(), 1, "one line, not one a second:\n{}", exporter.log());

    // Space again: the next retry saves.
    std::fs::remove_file(&fill).unwrap();
    exporter.wait_for("a save after the failures", |m| sample(m, SAVED).is_some_and(|t| t > first_save));
    assert!(exporter.log().contains("checkpoint saved again"), "{}", exporter.log());

    // Read-only: a new kind of failure is logged again.
    let remount = Command::new("nsenter")
        .args(["-t", &exporter.child.id().to_string(), "-m", "mount", "-o", "remount,ro", state_arg])
        .status()
        .unwrap();
    assert!(remount.success());
    append(&log, "tick");
    let m = exporter.wait_for("a read-only failure", |m| sample(m, &failures("read_only")).is_some());
    assert_eq!(sample(&m, TICKS), Some(3.0));
    assert_eq!(exporter.log().matches(SAVE_WARNING).count(), 2, "{}", exporter.log());
}
