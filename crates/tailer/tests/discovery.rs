//! Guarantee 6 (files appearing under a glob, identity by inode), start_at,
//! errors that must not stop the tailer, and guarantee 7's syscall budget.

mod common;

use common::*;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;
use tailer::{StartAt, Tailer, TailerConfig};

#[test]
fn files_appearing_under_a_glob_are_read_from_zero_while_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let glob = dir.path().join("*.log");
    let mut t =
        Tailer::new(TailerConfig { start_at: StartAt::End, ..config(&[&glob], Duration::from_millis(200)) }, None);
    // Exists at the first poll: start_at End skips its old content.
    fs::write(dir.path().join("old.log"), "000000000 before start\n").expect("write");
    fs::write(dir.path().join("ignored.txt"), "not matched\n").expect("write");
    let mut c = Collected::default();
    c.poll(&mut t);
    assert!(c.lines.is_empty());

    let next = Arc::new(AtomicU64::new(0));
    let writer = {
        let (d, next) = (dir.path().to_path_buf(), next.clone());
        thread::spawn(move || {
            let mut rng = Rng::new(31);
            let mut files = vec![OpenOptions::new().append(true).open(d.join("old.log")).expect("open")];
            for i in 0..40u64 {
                if i % 4 == 0 {
                    // Every new file starts with the same first line: only
                    // the inode tells them apart.
                    let mut f =
                        OpenOptions::new().create(true).append(true).open(d.join(format!("f{i}.log"))).expect("create");
                    f.write_all(b"same header\n").expect("write");
                    files.push(f);
                }
                for _ in 0..50 {
                    let k = rng.below(files.len() as u64) as usize;
                    let n = next.fetch_add(1, Ordering::SeqCst) + 1;
                    files[k].write_all(numbered(n, &mut rng).as_bytes()).expect("write");
                }
                thread::sleep(Duration::from_millis(2));
            }
        })
    };
    while !writer.is_finished() {
        c.poll(&mut t);
        thread::sleep(Duration::from_millis(1));
    }
    writer.join().expect("writer");
    c.poll(&mut t);
    let headers = c.lines.iter().filter(|(_, l)| l == "same header").count();
    assert_eq!(headers, 10, "one header per new file");
    let numbered: Vec<String> = c.line_texts().into_iter().filter(|l| l != "same header").collect();
    // Line 0 was written before the first poll and start_at is End.
    let total = next.load(Ordering::SeqCst) + 1;
    let mut with_zero = numbered.clone();
    with_zero.push(format!("{:09} x", 0));
    assert_exactly_once(&with_zero, total);
    assert_eq!(t.file_stats().len(), 11);
    assert!(c.events.is_empty(), "{:?}", c.events);
}

#[test]
fn two_files_with_identical_content_are_both_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut t = Tailer::new(config(&[&dir.path().join("*.log")], Duration::from_millis(50)), None);
    let mut c = Collected::default();
    c.poll(&mut t);
    fs::write(dir.path().join("a.log"), "same\nsame\n").expect("write");
    fs::write(dir.path().join("b.log"), "same\nsame\n").expect("write");
    c.poll(&mut t);
    // b.log looks like a copy of a.log being made before a copytruncate, so
    // it waits up to rotate_wait for a.log's truncation; none comes.
    thread::sleep(Duration::from_millis(60));
    c.poll(&mut t);
    assert_eq!(c.lines.len(), 4);
    let stats = t.file_stats();
    assert_eq!(stats.iter().map(|s| s.lines).collect::<Vec<_>>(), [2, 2]);
}

#[test]
fn start_at_end_skips_a_partial_last_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("a.log");
    fs::write(&p, "old\nhalf of an old li").expect("write");
    let mut t = Tailer::new(TailerConfig { start_at: StartAt::End, ..config(&[&p], Duration::from_millis(50)) }, None);
    let mut c = Collected::default();
    c.poll(&mut t);
    OpenOptions::new().append(true).open(&p).and_then(|mut f| f.write_all(b"ne\nnew\n")).expect("append");
    c.poll(&mut t);
    assert_eq!(c.line_texts(), ["new"]);
}

#[test]
fn start_at_parses_lowercase() {
    let s: StartAt = serde_json::from_str("\"beginning\"").expect("parse");
    assert_eq!(s, StartAt::Beginning);
    let s: StartAt = serde_json::from_str("\"end\"").expect("parse");
    assert_eq!(s, StartAt::End);
    assert!(serde_json::from_str::<StartAt>("\"End\"").is_err());
}

#[test]
fn errors_are_reported_once_and_polling_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let not_a_file = dir.path().join("adir");
    fs::create_dir(&not_a_file).expect("mkdir");
    let good = dir.path().join("good.log");
    // A glob whose "directory" is a regular file cannot be listed.
    let bad_glob = good.join("*.log");
    fs::write(&good, "line\n").expect("write");
    let mut t = Tailer::new(config(&[&not_a_file, &bad_glob, &good], Duration::from_millis(50)), None);
    let mut c = Collected::default();
    for _ in 0..3 {
        c.poll(&mut t);
    }
    assert_eq!(c.line_texts(), ["line"]);
    let errors: Vec<_> = c.events.iter().filter(|e| matches!(e, Ev::Error(..))).collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
}

#[test]
fn unchanged_poll_costs_one_metadata_per_path_and_one_read_dir_per_glob() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sub = dir.path().join("sub");
    fs::create_dir(&sub).expect("mkdir");
    for name in ["a.log", "b.log", "c.log"] {
        fs::write(sub.join(name), format!("{name}\n")).expect("write");
    }
    let lit = dir.path().join("lit.log");
    fs::write(&lit, "y\n").expect("write");
    let mut t = Tailer::new(config(&[&sub.join("*.log"), &lit], Duration::from_millis(50)), None);
    let mut c = Collected::default();
    c.poll(&mut t);
    c.poll(&mut t);
    let before = t.io_counts();
    for _ in 0..10 {
        c.poll(&mut t);
    }
    let after = t.io_counts();
    assert_eq!(after.metadata - before.metadata, 10 * 4);
    assert_eq!(after.read_dir - before.read_dir, 10);
    assert_eq!(after.reads, before.reads);
    assert_eq!(after.open, before.open);
    assert_eq!(after.fstat, before.fstat);
    assert_eq!(c.lines.len(), 4);
}

/// Writes `text` to `dir/name`, modified `age` seconds ago.
fn aged(dir: &std::path::Path, name: &str, text: &str, age: u64) {
    let path = dir.join(name);
    fs::write(&path, text).expect("write");
    let when = std::time::SystemTime::now() - Duration::from_secs(age);
    fs::File::options().append(true).open(&path).and_then(|f| f.set_modified(when)).expect("set mtime");
}

#[test]
fn max_files_opens_the_newest_and_the_rest_when_room_is_made() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (i, age) in [500, 100, 400, 200, 300].into_iter().enumerate() {
        aged(dir.path(), &format!("f{i}.log"), &format!("f{i} line\n"), age);
    }
    let mut t = Tailer::new(
        TailerConfig { max_files: 3, ..config(&[&dir.path().join("*.log")], Duration::from_millis(50)) },
        None,
    );
    let mut c = Collected::default();
    c.poll(&mut t);
    // The three most recently written, never more open than allowed.
    let mut read = c.line_texts();
    read.sort();
    assert_eq!(read, ["f1 line", "f3 line", "f4 line"]);
    assert_eq!(t.skipped_files(), 2);
    let stats = t.file_stats();
    assert_eq!(stats.iter().filter(|s| s.followed).count(), 3);
    assert_eq!(stats.len(), 3, "no series for files never opened: {stats:?}");

    // A followed file deleted: closed after rotate_wait, and its place goes to the next newest.
    fs::remove_file(dir.path().join("f1.log")).expect("remove");
    c.poll(&mut t);
    assert_eq!(t.skipped_files(), 2, "still open until it has been idle for rotate_wait");
    thread::sleep(Duration::from_millis(80));
    c.poll(&mut t);
    c.poll(&mut t);
    assert_eq!(t.skipped_files(), 1);
    assert!(c.line_texts().contains(&"f2 line".to_string()), "{:?}", c.line_texts());
    assert!(!c.line_texts().contains(&"f0 line".to_string()));
}

#[test]
fn max_files_skipped_at_a_start_at_end_start_open_at_their_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    aged(dir.path(), "old.log", "old content\n", 100);
    aged(dir.path(), "new.log", "new content\n", 10);
    let config = TailerConfig {
        max_files: 1,
        start_at: StartAt::End,
        ..config(&[&dir.path().join("*.log")], Duration::from_millis(50))
    };
    let mut t = Tailer::new(config, None);
    let mut c = Collected::default();
    c.poll(&mut t);
    assert_eq!(t.skipped_files(), 1);
    fs::remove_file(dir.path().join("new.log")).expect("remove");
    c.poll(&mut t);
    thread::sleep(Duration::from_millis(80));
    c.poll(&mut t);
    c.poll(&mut t);
    assert_eq!(t.skipped_files(), 0);
    OpenOptions::new()
        .append(true)
        .open(dir.path().join("old.log"))
        .and_then(|mut f| f.write_all(b"later\n"))
        .expect("append");
    c.poll(&mut t);
    // What was there at the start is left out, as for the files opened then.
    assert_eq!(c.line_texts(), ["later"]);
}
