//! Guarantee 1 (rename rotation) and 2 (deletion): with a real writer
//! thread rotating under the tailer, every line is emitted exactly once.

mod common;

use common::*;
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_millis(1000);

fn run(scheme: Scheme, rotations: usize, delays: Vec<Duration>, lines: u64, glob: Option<&str>, seed: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let watched = match glob {
        Some(g) => dir.path().join(g),
        None => dir.path().join("app.log"),
    };
    let mut t = new_tailer(config(&[&watched], WAIT));
    let shared = Arc::new(Shared::default());
    let plan = WriterPlan { dir: dir.path().to_path_buf(), scheme, rotations, delays, lines_per_file: lines, seed };
    let writer = spawn_writer(plan, &shared);
    let mut c = Collected::default();
    poll_until_done(&mut t, &mut c, &shared, &writer, WAIT + Duration::from_millis(500), seed + 1);
    let total = writer.join().expect("writer");
    assert_exactly_once(&c.line_texts(), total);
    // Labels stay the live name, whatever the file is called now.
    let label = dir.path().join("app.log").to_string_lossy().into_owned();
    if glob.is_none() {
        assert!(c.lines.iter().all(|(p, _)| *p == label));
    }
    if scheme.in_place() {
        // A truncation of content we had not read yet goes unseen (and
        // needs no notice: that content is read from the copy, from 0).
        assert!(c.count(|e| matches!(e, Ev::Truncated(_))) > 0);
    } else {
        assert!(c.count(|e| matches!(e, Ev::Rotated(_))) >= rotations);
    }
    // A truncation may cut a line the writer wrote in two pieces: its start
    // is then reported as dropped (unterminated) and the whole line comes
    // from the copy, so only that reason is allowed for in-place schemes.
    let bad = |e: &Ev| match e {
        Ev::Error(..) => true,
        Ev::Dropped(_, r) => !(scheme.in_place() && *r == tailer::DropReason::Unterminated),
        _ => false,
    };
    assert_eq!(c.count(bad), 0, "{:?}", c.events);
    // Everything retired has been closed again.
    assert!(t.checkpoint().files.iter().all(|f| !f.retired));
    let stats = t.file_stats();
    let st = stats.iter().find(|s| s.path == label).expect("stats for app.log");
    assert!(st.rotations + st.truncations > 0);
}

fn ms(v: &[u64]) -> Vec<Duration> {
    v.iter().map(|&m| Duration::from_millis(m)).collect()
}

#[test]
fn rename_rotation_hundreds_of_times() {
    run(Scheme::Rename, 300, ms(&[0, 0, 1, 3, 0, 10]), 30, None, 1);
}

#[test]
fn rename_rotation_slow_reopen() {
    // The writer keeps using the renamed file for 0, 50 ms, 300 ms and 1 s.
    run(Scheme::Rename, 4, ms(&[0, 50, 300, 1000]), 200, None, 2);
}

#[test]
fn rename_rotation_under_glob_that_also_matches_rotated_names() {
    // app.log.1 is matched by the glob too: it must be recognised as the
    // file we are already reading (same inode), not read again from 0.
    run(Scheme::Rename, 200, ms(&[0, 2, 0, 20]), 30, Some("app.log*"), 3);
}

#[test]
fn rename_rotation_under_glob_not_matching_rotated_names() {
    run(Scheme::Rename, 200, ms(&[0, 2, 0, 20]), 30, Some("*.log"), 4);
}

#[test]
fn deletion_while_writing_then_recreate() {
    // Lines appended to the deleted-but-open file still count; the
    // recreated file is read from 0 whatever the delay.
    run(Scheme::Delete, 200, ms(&[0, 1, 5, 0, 50]), 30, None, 5);
}

#[test]
fn deletion_slow_recreate() {
    run(Scheme::Delete, 4, ms(&[0, 50, 300, 1000]), 200, None, 6);
}

#[test]
fn copytruncate_under_a_glob_that_matches_the_copies() {
    // app.log.<k> copies appear while app.log is truncated and written to.
    run(Scheme::CopyTruncate, 200, ms(&[0]), 30, Some("app.log*"), 7);
}

#[test]
fn copytruncate_with_extension_and_delaycompress_under_star_log() {
    // Copies are app.<k>.log (sorting before app.log), then app.<k>.log.gz.
    run(Scheme::CopyTruncateCompress, 200, ms(&[0]), 30, Some("*.log*"), 8);
}
