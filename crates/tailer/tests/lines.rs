//! Guarantee 5: line assembly across polls, over-long and invalid lines,
//! CRLF; plus the random-chunk property test of guarantee 7.

mod common;

use common::*;
use proptest::prelude::*;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::Duration;
use tailer::{DropReason, Tailer, TailerConfig};

fn append(p: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new().create(true).append(true).open(p).expect("open");
    f.write_all(bytes).expect("write");
}

fn cfg(p: &Path, max: usize) -> TailerConfig {
    TailerConfig { max_line_bytes: max, ..config(&[p], Duration::from_millis(50)) }
}

#[test]
fn line_written_in_pieces_is_emitted_once_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("a.log");
    File::create(&p).expect("create");
    let mut t = Tailer::new(cfg(&p, 1024), None);
    let mut c = Collected::default();
    c.poll(&mut t);
    for piece in ["hel", "lo wo", "rld", "\nsecond", " line\r", "\n"] {
        append(&p, piece.as_bytes());
        c.poll(&mut t);
        if piece == "rld" {
            assert!(c.lines.is_empty(), "nothing before the newline");
        }
    }
    assert_eq!(c.line_texts(), ["hello world", "second line"]);
    assert!(c.events.is_empty());
    let cp = t.checkpoint();
    assert_eq!(cp.files[0].offset, std::fs::metadata(&p).expect("meta").len());
}

#[test]
fn too_long_line_is_dropped_and_its_rest_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("a.log");
    File::create(&p).expect("create");
    let mut t = Tailer::new(cfg(&p, 8), None);
    let mut c = Collected::default();
    append(&p, b"ok\n0123456");
    c.poll(&mut t);
    append(&p, b"789abcdef"); // now too long, newline not yet there
    c.poll(&mut t);
    assert_eq!(c.count(|e| *e == Ev::Dropped(p.to_string_lossy().into(), DropReason::TooLong)), 1);
    append(&p, b"ghij\nafter\n12345678\n123456789\n");
    c.poll(&mut t);
    // The tail "ghij" of the long line is not a line of its own.
    assert_eq!(c.line_texts(), ["ok", "after", "12345678"]);
    assert_eq!(c.count(|e| matches!(e, Ev::Dropped(_, DropReason::TooLong))), 2);
    let st = &t.file_stats()[0];
    assert_eq!((st.lines, st.dropped), (3, 2));
}

#[test]
fn invalid_utf8_is_dropped_not_fatal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("a.log");
    append(&p, b"good\n\xff\xfe bad\nalso good\r\n");
    let mut t = Tailer::new(cfg(&p, 1024), None);
    let mut c = Collected::default();
    c.poll(&mut t);
    assert_eq!(c.line_texts(), ["good", "also good"]);
    assert_eq!(c.events, [Ev::Dropped(p.to_string_lossy().into(), DropReason::InvalidUtf8)]);
    assert_eq!(DropReason::InvalidUtf8.as_str(), "invalid_utf8");
    assert_eq!(DropReason::TooLong.as_str(), "too_long");
    assert_eq!(DropReason::Unterminated.as_str(), "unterminated");
}

#[test]
fn unterminated_line_of_closed_retired_file_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("a.log");
    append(&p, b"one\npartial");
    let mut t = Tailer::new(cfg(&p, 1024), None);
    let mut c = Collected::default();
    c.poll(&mut t);
    std::fs::remove_file(&p).expect("rm");
    c.poll(&mut t);
    std::thread::sleep(Duration::from_millis(80));
    c.poll(&mut t);
    assert_eq!(c.line_texts(), ["one"]);
    let label: String = p.to_string_lossy().into();
    assert_eq!(c.events, [Ev::Rotated(label.clone()), Ev::Dropped(label, DropReason::Unterminated)]);
    assert!(t.checkpoint().files.is_empty());
}

/// What the tailer should emit for `data`, by the documented rules.
fn model(data: &[u8], max: usize) -> (Vec<String>, Vec<DropReason>) {
    let mut lines = Vec::new();
    let mut drops = Vec::new();
    let mut parts: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    let last = parts.pop().unwrap_or_default();
    for l in parts {
        if l.len() > max {
            drops.push(DropReason::TooLong);
            continue;
        }
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        match std::str::from_utf8(l) {
            Ok(s) => lines.push(s.to_string()),
            Err(_) => drops.push(DropReason::InvalidUtf8),
        }
    }
    // An unfinished line already longer than the limit is reported early.
    if last.len() > max {
        drops.push(DropReason::TooLong);
    }
    (lines, drops)
}

fn byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        6 => prop::sample::select(b"abcxyz ".to_vec()),
        2 => Just(b'\n'),
        1 => Just(b'\r'),
        1 => Just(0xffu8),
        1 => Just(0xc3u8), // UTF-8 lead byte; valid only before a continuation
        1 => Just(0xa9u8),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn random_chunks_give_the_lines_of_the_data(
        chunks in prop::collection::vec(prop::collection::vec(byte(), 0..80), 0..40),
        max in 1usize..40,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("a.log");
        File::create(&p).expect("create");
        let mut t = Tailer::new(cfg(&p, max), None);
        let mut c = Collected::default();
        let mut data = Vec::new();
        for ch in &chunks {
            append(&p, ch);
            data.extend_from_slice(ch);
            c.poll(&mut t);
        }
        let (lines, drops) = model(&data, max);
        prop_assert_eq!(c.line_texts(), lines);
        let got: Vec<DropReason> = c.events.iter().filter_map(|e| match e {
            Ev::Dropped(_, r) => Some(*r),
            _ => None,
        }).collect();
        prop_assert_eq!(got, drops);
    }
}
