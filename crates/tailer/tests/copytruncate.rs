//! Guarantee 3: copytruncate (same inode, truncated in place) is detected,
//! even when the file has regrown past the old offset before the next poll.

mod common;

use common::*;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;
use tailer::Tailer;

fn write_lines(p: &Path, range: std::ops::Range<u64>, rng: &mut Rng) {
    let mut f = OpenOptions::new().create(true).append(true).open(p).expect("open");
    let mut s = String::new();
    for n in range {
        s.push_str(&numbered(n, rng));
    }
    f.write_all(s.as_bytes()).expect("write");
}

fn copytruncate(p: &Path, copy: &Path) {
    fs::copy(p, copy).expect("copy");
    OpenOptions::new().write(true).open(p).expect("open").set_len(0).expect("truncate");
}

#[test]
fn truncation_detected_after_regrowth_past_old_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("app.log");
    let mut rng = Rng::new(7);
    write_lines(&p, 0..100, &mut rng);
    let mut t = Tailer::new(config(&[&p], Duration::from_millis(100)), None);
    let mut c = Collected::default();
    c.poll(&mut t);
    let ino = t.checkpoint().files[0].ino;
    copytruncate(&p, &dir.path().join("app.log.1"));
    // Regrow to well past the old offset before the tailer looks again.
    write_lines(&p, 100..400, &mut rng);
    c.poll(&mut t);
    assert_exactly_once(&c.line_texts(), 400);
    assert_eq!(c.events, [Ev::Truncated(p.to_string_lossy().into())]);
    assert_eq!(t.checkpoint().files[0].ino, ino, "still the same inode");
    assert_eq!(t.file_stats()[0].truncations, 1);
}

#[test]
fn truncation_to_the_same_size_is_detected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("app.log");
    fs::write(&p, "000000001 a\n000000002 b\n").expect("write");
    let mut t = Tailer::new(config(&[&p], Duration::from_millis(100)), None);
    let mut c = Collected::default();
    c.poll(&mut t);
    // mtime must tick; coarse timestamps are a documented limit.
    thread::sleep(Duration::from_millis(30));
    copytruncate(&p, &dir.path().join("app.log.1"));
    fs::write(&p, "000000003 c\n000000004 d\n").expect("write");
    c.poll(&mut t);
    assert_eq!(c.line_texts(), ["000000001 a", "000000002 b", "000000003 c", "000000004 d"]);
    assert_eq!(c.count(|e| matches!(e, Ev::Truncated(_))), 1);
}

/// A writer thread appends continuously; a rotator copytruncates while it
/// writes. When the tailer has read everything before each truncation
/// (logrotate's race avoided), C = W exactly. Otherwise the only lines
/// missing are ones that are in a copy, and nothing is duplicated.
fn run(synchronized: bool, seed: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("app.log");
    fs::write(&p, "").expect("create");
    let mut t = Tailer::new(config(&[&p], Duration::from_millis(200)), None);
    let written = Arc::new(AtomicU64::new(0));
    let polls = Arc::new(AtomicU64::new(0));
    // Held by the writer while appending, by the rotator while copying and
    // truncating, and (synchronized mode) by the tailer around a full drain.
    let lock = Arc::new(Mutex::new(()));
    let writer = {
        let (p, written, lock, polls) = (p.clone(), written.clone(), lock.clone(), polls.clone());
        thread::spawn(move || {
            let mut rng = Rng::new(seed);
            let mut f = OpenOptions::new().append(true).open(&p).expect("open");
            for rot in 0..60 {
                for _ in 0..rng.below(200) + 1 {
                    let _g = lock.lock().expect("lock");
                    let n = written.load(Ordering::SeqCst);
                    f.write_all(numbered(n, &mut rng).as_bytes()).expect("write");
                    written.store(n + 1, Ordering::SeqCst);
                    drop(_g);
                    if rng.below(8) == 0 {
                        thread::sleep(Duration::from_micros(300));
                    }
                }
                if synchronized {
                    // Let the tailer read everything before truncating.
                    let seen = polls.load(Ordering::SeqCst);
                    while polls.load(Ordering::SeqCst) < seen + 2 {
                        thread::sleep(Duration::from_micros(100));
                    }
                }
                let _g = lock.lock().expect("lock");
                copytruncate(&p, &dir_of(&p).join(format!("app.log.{rot}")));
            }
        })
    };
    let mut c = Collected::default();
    let mut rng = Rng::new(seed + 1);
    // The writer's end, not a flag it sets: a writer that panics ends the loop too.
    while !writer.is_finished() {
        if synchronized {
            let _g = lock.lock().expect("lock");
            c.poll(&mut t);
        } else {
            c.poll(&mut t);
        }
        polls.fetch_add(1, Ordering::SeqCst);
        thread::sleep(Duration::from_micros(rng.below(1500)));
    }
    writer.join().expect("writer");
    c.poll(&mut t);
    let total = written.load(Ordering::SeqCst);
    if synchronized {
        assert_exactly_once(&c.line_texts(), total);
    } else {
        let mut emitted = std::collections::HashSet::new();
        for l in c.line_texts() {
            assert!(emitted.insert(l.clone()), "duplicate {l}");
        }
        let live = fs::read_to_string(&p).expect("read");
        let mut copies = String::new();
        for e in fs::read_dir(dir.path()).expect("ls").flatten() {
            if e.file_name() != "app.log" {
                copies.push_str(&fs::read_to_string(e.path()).expect("read copy"));
            }
        }
        // Each written line sits in exactly one place: the live file or a
        // copy. Every emitted line was written; every line still in the live
        // file was emitted; so anything missed exists only in a copy.
        let mut placed: Vec<&str> = live.lines().chain(copies.lines()).collect();
        placed.sort_unstable();
        placed.dedup();
        assert_eq!(placed.len() as u64, total);
        for l in &emitted {
            assert!(placed.binary_search(&l.as_str()).is_ok(), "never written: {l}");
        }
        for l in live.lines() {
            assert!(emitted.contains(l), "line in the live file not emitted: {l}");
        }
    }
    assert!(c.count(|e| matches!(e, Ev::Truncated(_))) >= 1);
}

fn dir_of(p: &Path) -> std::path::PathBuf {
    p.parent().expect("parent").to_path_buf()
}

#[test]
fn copytruncate_while_writing_exact_when_drained_before_truncate() {
    run(true, 11);
}

#[test]
fn copytruncate_while_writing_loses_only_lines_left_in_copies() {
    run(false, 12);
}
