//! A watched path that is a symlink, retargeted between files and back
//! (`app.log` -> a.log -> b.log -> a.log, as a deploy that switches
//! releases does): a file we followed before is continued where we left it,
//! whether its handle was still open (within `rotate_wait`) or closed long
//! ago, across a restart too; never read again from byte 0, never skipped.

mod common;

use common::*;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::thread::sleep;
use std::time::Duration;
use tailer::{Checkpoint, Tailer};

const WAIT: Duration = Duration::from_millis(150);

fn append(path: &Path, lines: &[&str]) {
    let mut f = OpenOptions::new().create(true).append(true).open(path).expect("open");
    for l in lines {
        writeln!(f, "{l}").expect("write");
    }
}

/// Points `link` at `target` in one step, as `ln -sfn` through a rename does.
fn retarget(link: &Path, target: &Path) {
    let tmp = link.with_extension("tmp-link");
    let _ = fs::remove_file(&tmp);
    symlink(target, &tmp).expect("symlink");
    fs::rename(&tmp, link).expect("rename");
}

fn texts(c: &mut Collected, t: &mut Tailer) -> Vec<String> {
    let before = c.lines.len();
    c.poll(t);
    c.lines[before..].iter().map(|(_, l)| l.clone()).collect()
}

/// Polls until every handle of a file no longer at a watched path is closed.
fn close_retired(c: &mut Collected, t: &mut Tailer) {
    sleep(WAIT + Duration::from_millis(50));
    c.poll(t);
    assert!(t.checkpoint().files.iter().all(|f| !f.retired), "retired files closed");
}

struct Setup {
    _dir: tempfile::TempDir,
    link: std::path::PathBuf,
    a: std::path::PathBuf,
    b: std::path::PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let (link, a, b) = (dir.path().join("app.log"), dir.path().join("a.log"), dir.path().join("b.log"));
    append(&a, &["a1", "a2", "a3"]);
    append(&b, &[]);
    symlink(&a, &link).expect("symlink");
    Setup { _dir: dir, link, a, b }
}

fn tailer(s: &Setup, restored: Option<Checkpoint>) -> Tailer {
    Tailer::new(config(&[&s.link], WAIT), restored)
}

#[test]
fn retargeting_back_after_the_old_handle_was_closed_continues_where_it_was() {
    let s = setup();
    let (mut t, mut c) = (tailer(&s, None), Collected::default());
    assert_eq!(texts(&mut c, &mut t), ["a1", "a2", "a3"]);

    retarget(&s.link, &s.b);
    append(&s.b, &["b1"]);
    assert_eq!(texts(&mut c, &mut t), ["b1"]);
    close_retired(&mut c, &mut t);

    // Written while nobody pointed at it: still counted once, when it is back.
    append(&s.a, &["a4"]);
    retarget(&s.link, &s.a);
    append(&s.a, &["a5"]);
    assert_eq!(texts(&mut c, &mut t), ["a4", "a5"]);
    close_retired(&mut c, &mut t);

    retarget(&s.link, &s.b);
    append(&s.b, &["b2"]);
    assert_eq!(texts(&mut c, &mut t), ["b2"]);
    close_retired(&mut c, &mut t);
    retarget(&s.link, &s.a);
    assert!(texts(&mut c, &mut t).is_empty());
    assert_eq!(c.line_texts(), ["a1", "a2", "a3", "b1", "a4", "a5", "b2"]);
    assert_eq!(c.count(|e| matches!(e, Ev::Error(..) | Ev::Dropped(..))), 0, "{:?}", c.events);
}

#[test]
fn retargeting_back_within_rotate_wait_continues_the_open_handle() {
    let s = setup();
    let (mut t, mut c) = (tailer(&s, None), Collected::default());
    assert_eq!(texts(&mut c, &mut t), ["a1", "a2", "a3"]);
    for round in 0..20 {
        retarget(&s.link, &s.b);
        append(&s.b, &[&format!("b{round}")]);
        assert_eq!(texts(&mut c, &mut t), [format!("b{round}")]);
        retarget(&s.link, &s.a);
        append(&s.a, &[&format!("a{round}")]);
        assert_eq!(texts(&mut c, &mut t), [format!("a{round}")]);
    }
}

#[test]
fn a_partial_line_left_in_a_closed_file_is_completed_when_it_is_back() {
    let s = setup();
    let (mut t, mut c) = (tailer(&s, None), Collected::default());
    c.poll(&mut t);
    OpenOptions::new().append(true).open(&s.a).unwrap().write_all(b"a4 sta").unwrap();
    c.poll(&mut t);
    retarget(&s.link, &s.b);
    c.poll(&mut t);
    close_retired(&mut c, &mut t);
    retarget(&s.link, &s.a);
    append(&s.a, &["rted"]);
    assert_eq!(texts(&mut c, &mut t), ["a4 started"]);
    // Its start was dropped as unterminated when the handle closed; the whole line came back.
    assert_eq!(c.line_texts(), ["a1", "a2", "a3", "a4 started"]);
}

#[test]
fn a_closed_file_rewritten_meanwhile_is_read_from_the_start() {
    let s = setup();
    let (mut t, mut c) = (tailer(&s, None), Collected::default());
    c.poll(&mut t);
    retarget(&s.link, &s.b);
    c.poll(&mut t);
    close_retired(&mut c, &mut t);
    // Same inode, other content (truncated and rewritten, or the inode reused): not the file
    // we read, so its offset means nothing.
    fs::write(&s.a, "new1\nnew2\nnew3\nnew4\n").unwrap();
    retarget(&s.link, &s.a);
    assert_eq!(texts(&mut c, &mut t), ["new1", "new2", "new3", "new4"]);
    // Shorter than where we were, with the same first line.
    close_retired(&mut c, &mut t);
    retarget(&s.link, &s.b);
    c.poll(&mut t);
    close_retired(&mut c, &mut t);
    fs::write(&s.a, "new1\n").unwrap();
    retarget(&s.link, &s.a);
    assert_eq!(texts(&mut c, &mut t), ["new1"]);
}

#[test]
fn closed_files_are_remembered_across_a_restart() {
    let s = setup();
    let (mut t, mut c) = (tailer(&s, None), Collected::default());
    c.poll(&mut t);
    retarget(&s.link, &s.b);
    append(&s.b, &["b1"]);
    c.poll(&mut t);
    close_retired(&mut c, &mut t);
    let saved: Checkpoint = serde_json::from_slice(&serde_json::to_vec(&t.checkpoint()).unwrap()).unwrap();
    drop(t);

    let mut t = tailer(&s, Some(saved));
    append(&s.a, &["a4"]);
    assert!(texts(&mut c, &mut t).is_empty());
    retarget(&s.link, &s.a);
    assert_eq!(texts(&mut c, &mut t), ["a4"]);
    assert_eq!(c.line_texts(), ["a1", "a2", "a3", "b1", "a4"]);
}

#[test]
fn remembered_files_are_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("app.log");
    let mut t = Tailer::new(config(&[&link], WAIT), None);
    let mut c = Collected::default();
    // Each target is closed while it still exists: hundreds of them must not grow the checkpoint.
    for i in 0..300 {
        let target = dir.path().join(format!("t{i}.log"));
        append(&target, &[&format!("line {i}")]);
        retarget(&link, &target);
        c.poll(&mut t);
        if i % 50 == 49 {
            close_retired(&mut c, &mut t);
        }
    }
    close_retired(&mut c, &mut t);
    let cp = t.checkpoint();
    assert!(cp.closed.len() <= 64, "{} remembered", cp.closed.len());
    assert!(serde_json::to_vec(&cp).unwrap().len() < 32 * 1024);
    assert_eq!(c.lines.len(), 300);
}
