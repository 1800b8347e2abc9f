//! Guarantee 4: restart from a checkpoint, including a crash at any point
//! and rotation while the tailer is down.

mod common;

use common::*;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::Duration;
use tailer::{Checkpoint, Tailer, write_atomic};

/// The caller's durable state: checkpoint and its counters, saved together.
#[derive(serde::Serialize, serde::Deserialize)]
struct Saved {
    checkpoint: Checkpoint,
    emitted: usize,
}

#[test]
fn crash_at_random_points_loses_and_repeats_nothing() {
    crash_run(Scheme::RenameUnique, None, 21);
}

#[test]
fn crash_at_random_points_with_copytruncate_under_a_glob() {
    // Copies app.log.<k> are matched by the glob; a crash may fall between
    // the truncation being seen and the copy being seen.
    crash_run(Scheme::CopyTruncate, Some("app.log*"), 23);
}

#[test]
fn crash_at_random_points_with_copytruncate_extension_and_compress() {
    crash_run(Scheme::CopyTruncateCompress, Some("*.log*"), 25);
}

fn crash_run(scheme: Scheme, glob: Option<&str>, seed: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let state_dir = tempfile::tempdir().expect("tempdir");
    let state = state_dir.path().join("state.json");
    let p = match glob {
        Some(g) => dir.path().join(g),
        None => dir.path().join("app.log"),
    };
    let cfg = config(&[&p], Duration::from_millis(800));
    let shared = Arc::new(Shared::default());
    // A file must be in a saved checkpoint before it may be rotated away:
    // a file created and rotated while we are down is never seen (documented).
    shared.use_saved_gate.store(true, Ordering::SeqCst);
    let writer = spawn_writer(
        WriterPlan {
            dir: dir.path().to_path_buf(),
            scheme,
            rotations: 60,
            delays: [0u64, 3, 30, 0, 100].iter().map(|&m| Duration::from_millis(m)).collect(),
            lines_per_file: 60,
            seed,
        },
        &shared,
    );
    let mut rng = Rng::new(seed + 1);
    let mut t = Tailer::new(cfg.clone(), None);
    let mut c = Collected::default();
    let (mut crashes, mut restored_rotations) = (0, 0);
    let save = |t: &Tailer, c: &Collected| {
        let saved = Saved { checkpoint: t.checkpoint(), emitted: c.lines.len() };
        write_atomic(&state, &serde_json::to_vec(&saved).expect("json")).expect("save");
        shared.saved.fetch_add(1, Ordering::SeqCst);
    };
    save(&t, &c);
    let tick = |shared: &Shared| shared.polls.fetch_add(1, Ordering::SeqCst);
    while !writer.is_finished() {
        c.poll(&mut t);
        tick(&shared);
        match rng.below(10) {
            0..=5 => save(&t, &c),
            6 => {
                // Crash: lose everything since the last save, stay down a
                // while (the writer keeps writing and may rotate), restart.
                crashes += 1;
                thread::sleep(Duration::from_millis(rng.below(40)));
                let saved: Saved = serde_json::from_slice(&fs::read(&state).expect("read state")).expect("parse");
                c.lines.truncate(saved.emitted);
                t = Tailer::new(cfg.clone(), Some(saved.checkpoint));
                c.poll(&mut t);
                tick(&shared);
                restored_rotations += t.file_stats().iter().map(|s| s.rotations).sum::<u64>();
                save(&t, &c);
            }
            _ => {}
        }
        thread::sleep(Duration::from_micros(rng.below(2000)));
    }
    for _ in 0..200 {
        c.poll(&mut t);
        thread::sleep(Duration::from_millis(5));
    }
    let total = writer.join().expect("writer");
    assert!(crashes > 10, "only {crashes} crashes");
    if !scheme.in_place() {
        assert!(restored_rotations > 0, "no rotation happened while down");
    }
    assert_exactly_once(&c.line_texts(), total);
    let bad = |e: &Ev| match e {
        // A checkpointed copy compressed and deleted while we were down is
        // reported as gone (we cannot tell it had nothing more); exactly-once
        // above shows nothing was lost.
        Ev::Error(_, m) => !(scheme == Scheme::CopyTruncateCompress && m.contains("is gone")),
        Ev::Dropped(_, r) => !(scheme.in_place() && *r == tailer::DropReason::Unterminated),
        _ => false,
    };
    assert_eq!(c.count(bad), 0, "{:?}", c.events);
}

#[test]
fn restore_continues_same_file_at_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("app.log");
    fs::write(&p, "000000000 a\n000000001 b\n000000002 par").expect("write");
    let cfg = config(&[&p], Duration::from_millis(50));
    let mut t = Tailer::new(cfg.clone(), None);
    let mut c = Collected::default();
    c.poll(&mut t);
    let cp = t.checkpoint();
    // The partial line is not committed: resume at its start.
    assert_eq!(cp.files[0].offset, 24);
    let cp: Checkpoint = serde_json::from_str(&serde_json::to_string(&cp).expect("ser")).expect("de");
    drop(t);
    OpenOptions::new().append(true).open(&p).and_then(|mut f| f.write_all(b"tial\n000000003 d\n")).expect("append");
    let mut t = Tailer::new(cfg, Some(cp));
    c.poll(&mut t);
    assert_eq!(c.line_texts(), ["000000000 a", "000000001 b", "000000002 partial", "000000003 d"]);
    assert!(c.events.is_empty(), "{:?}", c.events);
}

#[test]
fn restore_drains_file_rotated_while_down_then_reads_new_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("app.log");
    fs::write(&p, "000000000 a\n").expect("write");
    let cfg = config(&[&p], Duration::from_millis(50));
    let mut t = Tailer::new(cfg.clone(), None);
    let mut c = Collected::default();
    c.poll(&mut t);
    let cp = t.checkpoint();
    drop(t);
    // Down: more lines, rotation, a new file with the same first line shape.
    OpenOptions::new().append(true).open(&p).and_then(|mut f| f.write_all(b"000000001 b\n")).expect("append");
    fs::rename(&p, dir.path().join("app.log.1")).expect("rename");
    fs::write(&p, "000000002 c\n").expect("write");
    let mut t = Tailer::new(cfg, Some(cp));
    c.poll(&mut t);
    assert_exactly_once(&c.line_texts(), 3);
    let label: String = p.to_string_lossy().into();
    assert_eq!(c.events, [Ev::Rotated(label.clone())]);
    assert!(c.lines.iter().all(|(l, _)| *l == label));
}

#[test]
fn restore_after_truncation_while_down_reads_from_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("app.log");
    fs::write(&p, "000000000 a\n000000001 b\n").expect("write");
    let cfg = config(&[&p], Duration::from_millis(50));
    let mut t = Tailer::new(cfg.clone(), None);
    let mut c = Collected::default();
    c.poll(&mut t);
    let cp = t.checkpoint();
    drop(t);
    // Truncated in place and regrown past the old offset.
    fs::write(&p, "000000002 c\n000000003 d\n000000004 e\n").expect("rewrite");
    let mut t = Tailer::new(cfg, Some(cp));
    c.poll(&mut t);
    assert_exactly_once(&c.line_texts(), 5);
    assert_eq!(c.events, [Ev::Truncated(p.to_string_lossy().into())]);
}

#[test]
fn restore_reports_a_file_that_vanished_while_down() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("app.log");
    fs::write(&p, "000000000 a\n").expect("write");
    let cfg = config(&[&p], Duration::from_millis(50));
    let mut t = Tailer::new(cfg.clone(), None);
    let mut c = Collected::default();
    c.poll(&mut t);
    let cp = t.checkpoint();
    drop(t);
    fs::remove_file(&p).expect("rm");
    let mut t = Tailer::new(cfg, Some(cp));
    c.poll(&mut t);
    assert!(c.count(|e| matches!(e, Ev::Error(..))) == 1, "{:?}", c.events);
}

#[test]
fn write_atomic_replaces_whole_content() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("state.json");
    write_atomic(&p, b"first, longer content").expect("write");
    write_atomic(&p, b"second").expect("write");
    assert_eq!(fs::read(&p).expect("read"), b"second");
    // No temp files left behind.
    assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 1);
    assert!(write_atomic(&dir.path().join("missing/x"), b"x").is_err());
}

#[test]
fn checkpoint_before_the_first_poll_is_the_restored_one() {
    // A runner stopped right after starting saves what it was given, not an
    // empty checkpoint that would make the next start read everything again.
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("app.log");
    fs::write(&p, "000000000 a\n").expect("write");
    let cfg = config(&[&p], Duration::from_millis(50));
    let mut t = Tailer::new(cfg.clone(), None);
    let mut c = Collected::default();
    c.poll(&mut t);
    let cp = t.checkpoint();
    let t = Tailer::new(cfg.clone(), Some(cp.clone()));
    assert_eq!(t.checkpoint(), cp);
    let mut t = Tailer::new(cfg, Some(t.checkpoint()));
    c.poll(&mut t);
    assert_exactly_once(&c.line_texts(), 1);
}

/// A checkpoint as the previous version wrote it, fingerprint hash and all (only the file's
/// identity is filled in for this machine): the file's head still matches it, so reading goes on
/// at the saved offset. A changed fingerprint hash would take the file for truncated or replaced
/// and read it again from 0 after every upgrade.
#[test]
fn a_checkpoint_written_by_the_previous_version_still_matches_its_files() {
    use std::os::unix::fs::MetadataExt;
    const HEAD: &str = "2024-05-01T10:00:00Z INFO first line\n2024-05-01T10:00:01Z INFO second line\n";
    const WRITTEN: &str = r#"{"version":1,"files":[{"path":"","dev":0,"ino":0,"offset":75,"skipping":false,
        "fingerprint_len":75,"fingerprint_hash":5865164894692052830,"retired":false,"unjudged":false}]}"#;
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("app.log");
    fs::write(&p, HEAD).expect("write");
    let m = fs::metadata(&p).expect("stat");
    let mut saved: serde_json::Value = serde_json::from_str(WRITTEN).expect("json");
    saved["files"][0]["path"] = p.to_str().expect("utf-8 path").into();
    saved["files"][0]["dev"] = m.dev().into();
    saved["files"][0]["ino"] = m.ino().into();
    let cp: Checkpoint = serde_json::from_value(saved).expect("checkpoint");
    let mut t = Tailer::new(config(&[&p], Duration::from_millis(50)), Some(cp));
    OpenOptions::new().append(true).open(&p).expect("open").write_all(b"third line\n").expect("append");
    let mut c = Collected::default();
    c.poll(&mut t);
    assert_eq!(c.line_texts(), ["third line"]);
    assert_eq!(c.count(|e| matches!(e, Ev::Truncated(_))), 0, "{:?}", c.events);
}
