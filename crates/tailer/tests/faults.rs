//! Rotation fault campaign, tailer level: each rotation kind many times
//! while a writer appends fast (lines written in two pieces now and then,
//! the old handle kept after rename/delete), and a crash/restore variant
//! of each. Prints written, counted, lost and counted twice per kind; the
//! goal is 0 and 0.
//!
//! `FAULT_ROTATIONS` (default 40) sets rotations per kind; the long run is
//! `scripts/fault-rotations`.

mod common;

use common::*;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};
use tailer::{Checkpoint, Tailer};

const WAIT: Duration = Duration::from_millis(500);

fn rotations() -> usize {
    std::env::var("FAULT_ROTATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(40)
}

fn glob_of(scheme: Scheme) -> &'static str {
    match scheme {
        Scheme::Rename | Scheme::RenameUnique | Scheme::Delete | Scheme::SymlinkFlip => "app.log",
        // The glob matches the copies: each must continue, not restart.
        Scheme::CopyTruncate | Scheme::DateextCompress => "app.log*",
        Scheme::CopyTruncateCompress => "*.log*",
    }
}

fn plan(dir: &std::path::Path, scheme: Scheme, rotations: usize, seed: u64) -> WriterPlan {
    WriterPlan {
        dir: dir.to_path_buf(),
        scheme,
        rotations,
        delays: [0u64, 0, 1, 3, 0, 10].iter().map(|&m| Duration::from_millis(m)).collect(),
        lines_per_file: 30,
        seed,
    }
}

fn report(kind: &str, rotations: usize, extra: &str, total: u64, lines: &[String]) -> (u64, u64) {
    let (lost, twice) = tally(lines, total);
    println!(
        "tailer   {kind:<22} rotations {rotations:>5}{extra}  written {total:>8}  counted {:>8}  lost {lost}  twice {twice}",
        lines.len()
    );
    (lost, twice)
}

fn steady(scheme: Scheme, name: &str, seed: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = rotations();
    let mut t = Tailer::new(config(&[&dir.path().join(glob_of(scheme))], WAIT), None);
    let shared = Arc::new(Shared::default());
    let writer = spawn_writer(plan(dir.path(), scheme, n, seed), &shared);
    let mut c = Collected::default();
    poll_until_done(&mut t, &mut c, &shared, &writer, WAIT + Duration::from_millis(300), seed + 1);
    let total = writer.join().expect("writer");
    assert_eq!(report(name, n, "", total, &c.line_texts()), (0, 0));
}

/// Crashes (state lost since the last save) at random points, down for a
/// random while as the writer goes on rotating.
fn crashing(scheme: Scheme, name: &str, seed: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = rotations();
    let cfg = config(&[&dir.path().join(glob_of(scheme))], WAIT);
    let shared = Arc::new(Shared::default());
    // Files deleted or compressed while down cannot be drained (documented):
    // rotate only what a saved checkpoint has seen.
    shared.use_saved_gate.store(true, Ordering::SeqCst);
    let writer = spawn_writer(plan(dir.path(), scheme, n, seed), &shared);
    let mut rng = Rng::new(seed + 1);
    let mut t = Tailer::new(cfg.clone(), None);
    let mut c = Collected::default();
    let mut saved: (Checkpoint, usize) = (t.checkpoint(), 0);
    let mut crashes = 0;
    while !writer.is_finished() {
        c.poll(&mut t);
        shared.polls.fetch_add(1, Ordering::SeqCst);
        if rng.below(3) == 0 {
            // Saved through JSON, as the exporter does.
            let cp = serde_json::from_slice(&serde_json::to_vec(&t.checkpoint()).expect("ser")).expect("de");
            saved = (cp, c.lines.len());
            shared.saved.fetch_add(1, Ordering::SeqCst);
        } else if rng.below(8) == 0 {
            crashes += 1;
            thread::sleep(Duration::from_millis(rng.below(20)));
            c.lines.truncate(saved.1);
            t = Tailer::new(cfg.clone(), Some(saved.0.clone()));
        }
        thread::sleep(Duration::from_micros(rng.below(1500)));
    }
    let end = Instant::now() + WAIT + Duration::from_millis(300);
    while Instant::now() < end {
        c.poll(&mut t);
        thread::sleep(Duration::from_millis(5));
    }
    let total = writer.join().expect("writer");
    let extra = format!("  crashes {crashes:>5}");
    assert_eq!(report(name, n, &extra, total, &c.line_texts()), (0, 0));
    // Records of truncated files stay bounded.
    assert!(t.checkpoint().truncated.len() <= 64);
}

#[test]
fn rename() {
    steady(Scheme::Rename, "rename", 101);
}

#[test]
fn copytruncate_under_glob() {
    steady(Scheme::CopyTruncate, "copytruncate(glob)", 102);
}

#[test]
fn delete_recreate() {
    steady(Scheme::Delete, "delete/recreate", 103);
}

#[test]
fn dateext_compress() {
    steady(Scheme::DateextCompress, "dateext+compress(glob)", 104);
}

#[test]
fn crash_rename() {
    crashing(Scheme::RenameUnique, "rename, crashing", 105);
}

#[test]
fn crash_copytruncate_under_glob() {
    crashing(Scheme::CopyTruncate, "copytruncate, crashing", 106);
}

#[test]
fn crash_dateext_compress() {
    crashing(Scheme::DateextCompress, "dateext+gz, crashing", 107);
}

#[test]
fn symlink_flip() {
    steady(Scheme::SymlinkFlip, "symlink switched back", 108);
}

#[test]
fn crash_symlink_flip() {
    crashing(Scheme::SymlinkFlip, "symlink, crashing", 109);
}
