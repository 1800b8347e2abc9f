//! A backlog larger than a file's share of one poll: `behind()` tells the caller to poll again at
//! once, the other files are read in the same polls, and every line still comes exactly once.

mod common;

use common::*;
use std::fmt::Write as _;
use std::fs;
use std::thread;
use std::time::Duration;
use tailer::Tailer;

/// More than two shares of a poll (16 MiB each), so the backlog takes three polls.
const BACKLOG_BYTES: usize = 40 << 20;

#[test]
fn a_backlog_is_read_in_polls_that_say_they_are_behind_and_other_files_keep_their_turn() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut t = Tailer::new(config(&[&dir.path().join("*.log")], Duration::from_millis(50)), None);
    let mut c = Collected::default();
    c.poll(&mut t);
    assert!(!t.behind(), "nothing to read");

    let mut big = String::with_capacity(BACKLOG_BYTES + 100);
    let mut total = 0u64;
    while big.len() < BACKLOG_BYTES {
        let _ = writeln!(big, "{total:09} a backlog line padded to about a hundred bytes, like an application log's");
        total += 1;
    }
    fs::write(dir.path().join("big.log"), &big).expect("write");
    fs::write(dir.path().join("small.log"), "one\ntwo\n").expect("write");

    let mut polls = 0;
    loop {
        c.poll(&mut t);
        polls += 1;
        if polls == 1 {
            let small = c.lines.iter().filter(|(p, _)| p.ends_with("small.log")).count();
            assert_eq!(small, 2, "the small file is read in the same poll as the first share of the backlog");
            assert!(t.behind(), "the first poll leaves most of the backlog");
        }
        if !t.behind() {
            break;
        }
        assert!(polls < 10, "still behind after {polls} polls");
    }
    assert_eq!(polls, 3, "16 MiB of a file per poll: 40 MiB take three");
    let big_lines: Vec<String> =
        c.lines.iter().filter(|(p, _)| p.ends_with("big.log")).map(|(_, l)| l.clone()).collect();
    assert_exactly_once(&big_lines, total);
    let stats = t.file_stats();
    assert!(stats.iter().all(|s| s.offset == s.size), "{stats:?}");
}

#[test]
fn a_file_waiting_to_be_judged_is_not_a_backlog() {
    // b.log looks like a copy of a.log made before a copytruncate: it waits for rotate_wait, and
    // a caller polling again at once while it waits would spin.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut t = Tailer::new(config(&[&dir.path().join("*.log")], Duration::from_millis(200)), None);
    let mut c = Collected::default();
    c.poll(&mut t);
    fs::write(dir.path().join("a.log"), "same\nsame\n").expect("write");
    fs::write(dir.path().join("b.log"), "same\nsame\n").expect("write");
    c.poll(&mut t);
    assert_eq!(c.lines.len(), 2, "b.log waits");
    assert!(!t.behind());
    thread::sleep(Duration::from_millis(210));
    c.poll(&mut t);
    assert_eq!(c.lines.len(), 4);
}
