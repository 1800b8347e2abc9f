//! Guarantee 3, second half: copytruncate under a glob that also matches the
//! copy. The copy is the same stream as the truncated file (its head is the
//! old head), so it continues from the old offset instead of being read
//! again from 0.

mod common;

use common::*;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::thread;
use std::time::Duration;
use tailer::{Checkpoint, Tailer};

fn append(p: &Path, range: std::ops::Range<u64>, rng: &mut Rng) {
    let mut f = OpenOptions::new().create(true).append(true).open(p).expect("open");
    let mut s = String::new();
    for n in range {
        s.push_str(&numbered(n, rng));
    }
    f.write_all(s.as_bytes()).expect("write");
}

fn truncate(p: &Path) {
    OpenOptions::new().write(true).open(p).expect("open").set_len(0).expect("truncate");
}

fn roundtrip(cp: Checkpoint) -> Checkpoint {
    serde_json::from_slice(&serde_json::to_vec(&cp).expect("ser")).expect("de")
}

/// The reproduction: 100 lines, `cp app.log app.log.1 && : > app.log`,
/// 10 more lines, restart, 10 more: 120 lines in all, each once.
#[test]
fn copy_under_the_glob_is_not_counted_twice_even_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("app.log");
    let cfg = config(&[&dir.path().join("app.log*")], Duration::from_millis(100));
    let mut rng = Rng::new(1);
    append(&p, 0..100, &mut rng);
    let mut t = Tailer::new(cfg.clone(), None);
    let mut c = Collected::default();
    c.poll(&mut t);
    fs::copy(&p, dir.path().join("app.log.1")).expect("copy");
    truncate(&p);
    append(&p, 100..110, &mut rng);
    c.poll(&mut t);
    assert_exactly_once(&c.line_texts(), 110);
    let cp = roundtrip(t.checkpoint());
    drop(t);
    append(&p, 110..120, &mut rng);
    let mut t = Tailer::new(cfg, Some(cp));
    c.poll(&mut t);
    assert_exactly_once(&c.line_texts(), 120);
}

/// Lines written after the last poll and before the copy exist in the
/// original only until the truncation; the copy brings them back.
#[test]
fn copy_recovers_lines_written_between_last_read_and_copy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("app.log");
    let mut t = Tailer::new(config(&[&dir.path().join("app.log*")], Duration::from_millis(100)), None);
    let mut rng = Rng::new(2);
    append(&p, 0..50, &mut rng);
    let mut c = Collected::default();
    c.poll(&mut t);
    append(&p, 50..80, &mut rng);
    fs::copy(&p, dir.path().join("app.log.1")).expect("copy");
    truncate(&p);
    append(&p, 80..90, &mut rng);
    c.poll(&mut t);
    assert_exactly_once(&c.line_texts(), 90);
}

/// The copy may be seen before the truncation (logrotate copies first) and
/// its name may sort before the original's (`extension .log`: `app.1.log`).
#[test]
fn copy_seen_before_the_truncation_and_sorting_first_is_held_then_continued() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("app.log");
    let mut t = Tailer::new(config(&[&dir.path().join("*.log")], Duration::from_secs(5)), None);
    let mut rng = Rng::new(3);
    append(&p, 0..60, &mut rng);
    let mut c = Collected::default();
    c.poll(&mut t);
    append(&p, 60..70, &mut rng);
    fs::copy(&p, dir.path().join("app.1.log")).expect("copy");
    // Seen now, the copy looks like the live file: it waits.
    c.poll(&mut t);
    assert_exactly_once(&c.line_texts(), 70);
    truncate(&p);
    append(&p, 70..75, &mut rng);
    c.poll(&mut t);
    c.poll(&mut t);
    assert_exactly_once(&c.line_texts(), 75);
}

/// Killed after the truncation was seen but before the copy was: the
/// checkpoint keeps the truncated file's head so the copy still matches.
#[test]
fn copy_seen_only_after_a_restart_still_matches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("app.log");
    let glob = dir.path().join("app.log*");
    let cfg = config(&[&glob], Duration::from_millis(100));
    let mut rng = Rng::new(4);
    append(&p, 0..40, &mut rng);
    let mut t = Tailer::new(cfg.clone(), None);
    let mut c = Collected::default();
    c.poll(&mut t);
    let cp = roundtrip(t.checkpoint());
    drop(t);
    // While down: more lines, copy, truncate, more lines.
    append(&p, 40..55, &mut rng);
    fs::copy(&p, dir.path().join("app.log-20260101")).expect("copy");
    truncate(&p);
    append(&p, 55..60, &mut rng);
    let mut t = Tailer::new(cfg.clone(), Some(cp));
    c.poll(&mut t);
    assert_exactly_once(&c.line_texts(), 60);

    // The truncation seen, then a crash before the copy was made visible:
    // here, the copy is hidden under a name the glob does not match yet.
    append(&p, 60..70, &mut rng);
    c.poll(&mut t);
    fs::copy(&p, dir.path().join("hidden")).expect("copy");
    truncate(&p);
    append(&p, 70..72, &mut rng);
    c.poll(&mut t);
    let cp = roundtrip(t.checkpoint());
    assert!(!cp.truncated.is_empty(), "truncated file's head is checkpointed");
    drop(t);
    fs::rename(dir.path().join("hidden"), dir.path().join("app.log-20260102")).expect("rename");
    let mut t = Tailer::new(cfg, Some(cp));
    c.poll(&mut t);
    assert_exactly_once(&c.line_texts(), 72);
}

/// A compressed copy is never read as text, whatever its name.
#[test]
fn compressed_files_are_skipped_by_name_and_by_magic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut t = Tailer::new(config(&[&dir.path().join("app.log*")], Duration::from_millis(50)), None);
    let mut c = Collected::default();
    fs::write(dir.path().join("app.log"), "000000000 a\n").expect("write");
    fs::write(dir.path().join("app.log.2.gz"), b"\x1f\x8b\x08\0binary\n").expect("write");
    fs::write(dir.path().join("app.log.3"), b"\x1f\x8b\x08\0gzip without a suffix\n").expect("write");
    fs::write(dir.path().join("app.log.4"), b"\x28\xb5\x2f\xfdzstd\n").expect("write");
    c.poll(&mut t);
    c.poll(&mut t);
    assert_eq!(c.line_texts(), ["000000000 a"]);
    assert!(c.events.is_empty(), "{:?}", c.events);
}

/// A new file with the same head as a followed file that is never truncated
/// is not a copy being made: after the grace period it is read from 0.
#[test]
fn same_head_without_truncation_is_read_after_the_grace_period() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut t = Tailer::new(config(&[&dir.path().join("*.log")], Duration::from_millis(100)), None);
    let mut c = Collected::default();
    fs::write(dir.path().join("a.log"), "same\nsame\n").expect("write");
    c.poll(&mut t);
    fs::write(dir.path().join("b.log"), "same\nsame\n").expect("write");
    c.poll(&mut t);
    thread::sleep(Duration::from_millis(150));
    c.poll(&mut t);
    assert_eq!(c.lines.len(), 4);
}

/// A file that appears after a truncation with a different head is new.
#[test]
fn unrelated_file_after_truncation_is_read_from_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("app.log");
    let mut t = Tailer::new(config(&[&dir.path().join("app.log*")], Duration::from_millis(100)), None);
    let mut rng = Rng::new(5);
    append(&p, 0..20, &mut rng);
    let mut c = Collected::default();
    c.poll(&mut t);
    truncate(&p);
    append(&p, 20..25, &mut rng);
    c.poll(&mut t);
    append(&dir.path().join("app.log.other"), 25..30, &mut rng);
    c.poll(&mut t);
    assert_exactly_once(&c.line_texts(), 30);
}

#[derive(Clone, Debug)]
enum Op {
    Append(u64),
    Poll,
    /// logrotate's copytruncate to a fresh name; `poll_between` lets the
    /// tailer see the copy before the truncation.
    CopyTruncate {
        poll_between: bool,
    },
    /// Checkpoint through JSON, drop the tailer, start a new one from it.
    Restart,
    /// An unrelated file appears under the glob.
    Other(u64),
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        4 => (1u64..40).prop_map(Op::Append),
        3 => Just(Op::Poll),
        2 => any::<bool>().prop_map(|poll_between| Op::CopyTruncate { poll_between }),
        1 => Just(Op::Restart),
        1 => (1u64..5).prop_map(Op::Other),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 48, ..Default::default() })]
    /// Any interleaving of appends, polls, copytruncates (copy seen before
    /// the truncation or not), restarts and unrelated files: every line once.
    #[test]
    fn any_interleaving_counts_every_line_once(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("app.log");
        fs::write(&p, "").expect("create");
        // Long enough that a held copy is never released by time here.
        let cfg = config(&[&dir.path().join("app.log*")], Duration::from_secs(3600));
        let mut t = Tailer::new(cfg.clone(), None);
        let mut c = Collected::default();
        let mut rng = Rng::new(9);
        let (mut n, mut copies) = (0u64, 0u32);
        for op in ops {
            match op {
                Op::Append(k) => {
                    append(&p, n..n + k, &mut rng);
                    n += k;
                }
                Op::Poll => c.poll(&mut t),
                Op::CopyTruncate { poll_between } => {
                    copies += 1;
                    fs::copy(&p, dir.path().join(format!("app.log.{copies}"))).expect("copy");
                    if poll_between {
                        c.poll(&mut t);
                    }
                    truncate(&p);
                }
                Op::Restart => {
                    let cp = roundtrip(t.checkpoint());
                    t = Tailer::new(cfg.clone(), Some(cp));
                }
                Op::Other(k) => {
                    append(&dir.path().join(format!("app.log.other{n}")), n..n + k, &mut rng);
                    n += k;
                }
            }
        }
        c.poll(&mut t);
        c.poll(&mut t);
        assert_exactly_once(&c.line_texts(), n);
    }
}

/// A new file is judged on its first bytes, but its handle is held from
/// the first poll that sees it: renamed away with its lines before being
/// judged, it is still read.
#[test]
fn empty_new_file_renamed_away_before_its_first_bytes_were_seen_is_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("app.log");
    let mut t = Tailer::new(config(&[&p], Duration::from_millis(200)), None);
    let mut rng = Rng::new(6);
    append(&p, 0..5, &mut rng);
    let mut c = Collected::default();
    c.poll(&mut t);
    fs::rename(&p, dir.path().join("app.log.1")).expect("rename");
    fs::write(&p, "").expect("create");
    c.poll(&mut t);
    append(&p, 5..9, &mut rng);
    fs::rename(&p, dir.path().join("app.log.2")).expect("rename");
    c.poll(&mut t);
    c.poll(&mut t);
    assert_exactly_once(&c.line_texts(), 9);
}
