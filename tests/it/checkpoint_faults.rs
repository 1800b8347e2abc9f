//! The exporter binary when its `state_dir` misbehaves: shared by a second exporter, full, read-only.
//! It keeps serving `/metrics`; the failure is a metric and a log line, not a crash.

use crate::support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use support::exporter::{Exporter, Launch};
use support::{free_port, program, ticks_spec};

/// `serve` of a spec listening on `port` with this state_dir and log.
fn launch(dir: &Path, port: u16, state: &Path, log: &Path) -> Launch {
    let spec = dir.join(format!("spec-{port}.yaml"));
    let text =
        format!("listen: 127.0.0.1:{port}\nstate_dir: {}\n{}", state.display(), ticks_spec(&log.display().to_string()));
    std::fs::write(&spec, text).unwrap();
    Exporter::serve(&spec, port).env("RUST_LOG", "info")
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
    let first = launch(dir.path(), port, &state, &log).start();
    first.wait_for("the first save", |m| m.get(SAVED).is_some());

    let port2 = free_port();
    let (status, said) = launch(dir.path(), port2, &state, &log).exit();
    assert!(!status.success());
    assert!(said.contains(&state.display().to_string()), "{said}");
    assert!(said.contains(&format!("pid {}", first.pid())), "{said}");

    // kill -9 leaves the lock file behind, but not the lock.
    drop(first);
    let third = launch(dir.path(), port2, &state, &log).start();
    append(&log, "tick");
    third.wait_for("the restored count plus one", |m| m.get(TICKS) == Some(2.0));
}

/// Whether this machine lets us give one process a small tmpfs of its own (root in CI).
fn private_tmpfs_works() -> bool {
    program("unshare")
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
        let exporter = launch(dir.path(), port, &state, &log).start();
        let m = exporter.wait_for("failed saves", |m| m.get(&failures("not_a_directory")).is_some_and(|n| n >= 2.0));
        assert_eq!(m.get(TICKS), Some(1.0));
        return;
    }
    std::fs::create_dir(&state).unwrap();
    let script = "mount -t tmpfs -o size=256k,mode=0700 tmpfs \"$0\" && exec \"$@\"";
    let state_arg = state.to_str().unwrap();
    let prefix = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, state_arg];
    let exporter = launch(dir.path(), port, &state, &log).prefix(&prefix).start();
    let first_save = exporter.wait_for("the first save", |m| m.get(SAVED).is_some())[SAVED];
    // The exporter's own view of the state_dir: the tmpfs in its mount namespace.
    let inside = PathBuf::from(format!("/proc/{}/root{}", exporter.pid(), state.display()));
    assert!(inside.join("app.checkpoint.json").exists());

    // Full.
    let fill = inside.join("fill");
    let mut f = std::fs::File::create(&fill).unwrap();
    while f.write_all(&[0; 4096]).is_ok() {}
    drop(f);
    append(&log, "tick");
    let m = exporter.wait_for("three failed saves", |m| m.get(&failures("no_space")).is_some_and(|n| n >= 3.0));
    assert_eq!(m.get(TICKS), Some(2.0), "lines are still read and exported");
    assert_eq!(
        exporter.output().matches(SAVE_WARNING).count(),
        1,
        "one line, not one a second:\n{}",
        exporter.output()
    );

    // Space again: the next retry saves.
    std::fs::remove_file(&fill).unwrap();
    exporter.wait_for("a save after the failures", |m| m.get(SAVED).is_some_and(|t| t > first_save));
    assert!(exporter.output().contains("checkpoint saved again"), "{}", exporter.output());

    // Read-only: a new kind of failure is logged again.
    let remount = program("nsenter")
        .args(["-t", &exporter.pid().to_string(), "-m", "mount", "-o", "remount,ro", state_arg])
        .status()
        .unwrap();
    assert!(remount.success());
    append(&log, "tick");
    let m = exporter.wait_for("a read-only failure", |m| m.get(&failures("read_only")).is_some());
    assert_eq!(m.get(TICKS), Some(3.0));
    assert_eq!(exporter.output().matches(SAVE_WARNING).count(), 2, "{}", exporter.output());
}
