//! The real `logrotate` binary rotates while a writer appends and a tailer
//! follows a glob that also matches the rotated files: copytruncate,
//! dateext, delaycompress, compress, create and `extension .log`.
//!
//! Lines are accounted one by one. A line never counted is either nowhere on
//! disk any more (written between logrotate's copy and its truncate: lost
//! for every reader, counted apart), only in a compressed file (`compress`
//! without `delaycompress` may compress a copy before we saw it), or a
//! tailer loss (must be 0). A line counted twice is always a failure.
//!
//! `FAULT_ROTATIONS` (default 6; at most 5 for dated names, one a second)
//! sets rotations per variant; the long run is `scripts/fault-rotations`.

mod common;

use common::*;
use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};
use tailer::Tailer;

fn rotations(default: usize) -> usize {
    std::env::var("FAULT_ROTATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Variant {
    name: &'static str,
    /// logrotate directives inside the file's block.
    directives: &'static str,
    /// The glob the tailer follows, relative to the directory.
    glob: &'static str,
    /// Rotated names carry the time in seconds: one rotation per second.
    dated: bool,
}

#[derive(Debug, Default)]
struct Figures {
    written: u64,
    counted: u64,
    twice: u64,
    /// Not counted and nowhere on disk: logrotate's copy/truncate race.
    race: u64,
    /// Not counted, only in a compressed file.
    compressed_only: u64,
    /// Not counted although still in a text file: the tailer's fault.
    lost: u64,
}

/// Every line still on disk, with compressed files decompressed by `gzip`.
fn lines_on_disk(dir: &Path) -> (Vec<String>, Vec<String>) {
    let (mut text, mut gz) = (Vec::new(), Vec::new());
    for e in fs::read_dir(dir).expect("ls").flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".gz") {
            let out = program("gzip").arg("-dc").arg(e.path()).output().expect("gzip -dc");
            gz.extend(String::from_utf8_lossy(&out.stdout).lines().map(String::from));
        } else if name.contains("app") {
            text.extend(String::from_utf8_lossy(&fs::read(e.path()).expect("read")).lines().map(String::from));
        }
    }
    (text, gz)
}

fn number(line: &str) -> u64 {
    line.split(' ').next().and_then(|t| t.parse().ok()).unwrap_or_else(|| panic!("malformed line {line:?}"))
}

fn run_variant(v: &Variant, rotations: usize, seed: u64) -> Figures {
    // Before any thread starts: a missing logrotate is one clear failure.
    program("logrotate").arg("--version").output().expect("logrotate --version");
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_path_buf();
    let live = d.join("app.log");
    let conf = d.join("logrotate.conf");
    let state = d.join("logrotate.state");
    fs::write(&live, "").expect("create");
    fs::write(&conf, format!("{} {{\n    rotate 100000\n    missingok\n{}\n}}\n", live.display(), v.directives))
        .expect("conf");
    let mut t = Tailer::new(config(&[&d.join(v.glob)], Duration::from_millis(500)), None);
    let written = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    // Polls finished by the tailer. A rotation waits for one after the previous rotation, as in
    // production (logrotate runs hourly, the tailer every few ms): on a starved CI runner two
    // rotations 40 ms apart could otherwise compress a copy before the tailer ever ran.
    let polls = AtomicU64::new(0);
    let mut c = Collected::default();
    // Scoped threads, and a loop that ends with the rotator rather than with a flag it would set:
    // a rotator or writer that panics ends the test with its message instead of hanging it.
    thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut rng = Rng::new(seed);
            let open = |p: &PathBuf| OpenOptions::new().create(true).append(true).open(p).expect("open log");
            let mut f = open(&live);
            let mut ino = f.metadata().expect("fstat").ino();
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                // Like a daemon told to reopen: notice the new file (create).
                if n.is_multiple_of(8)
                    && let Ok(m) = fs::metadata(&live)
                    && m.ino() != ino
                {
                    f = open(&live);
                    ino = m.ino();
                }
                f.write_all(numbered(n, &mut rng).as_bytes()).expect("write");
                n += 1;
                written.store(n, Ordering::SeqCst);
                if n.is_multiple_of(4) {
                    thread::sleep(Duration::from_micros(200));
                }
            }
        });
        let rotator = s.spawn(|| {
            for _ in 0..rotations {
                let seen = polls.load(Ordering::SeqCst);
                thread::sleep(if v.dated { Duration::from_millis(1050) } else { Duration::from_millis(40) });
                let deadline = Instant::now() + Duration::from_secs(10);
                while polls.load(Ordering::SeqCst) < seen + 2 && Instant::now() < deadline {
                    thread::sleep(Duration::from_millis(1));
                }
                let out = program("logrotate").arg("-f").arg("-s").arg(&state).arg(&conf).output().expect("logrotate");
                assert!(out.status.success(), "logrotate: {}", String::from_utf8_lossy(&out.stderr));
            }
            thread::sleep(Duration::from_millis(50));
        });
        while !rotator.is_finished() && !writer.is_finished() {
            c.poll(&mut t);
            polls.fetch_add(1, Ordering::SeqCst);
            thread::sleep(Duration::from_millis(2));
        }
        stop.store(true, Ordering::SeqCst);
        let rotated = rotator.join();
        let wrote = writer.join();
        if let Err(panic) = rotated.and(wrote) {
            std::panic::resume_unwind(panic);
        }
    });
    let end = Instant::now() + Duration::from_millis(700);
    while Instant::now() < end {
        c.poll(&mut t);
        thread::sleep(Duration::from_millis(10));
    }
    let total = written.load(Ordering::SeqCst);
    let mut counts: HashMap<u64, u64> = HashMap::new();
    for l in c.line_texts() {
        *counts.entry(number(&l)).or_default() += 1;
    }
    let (text, gz) = lines_on_disk(&d);
    let in_text: std::collections::HashSet<u64> = text.iter().map(|l| number(l)).collect();
    let in_gz: std::collections::HashSet<u64> = gz.iter().map(|l| number(l)).collect();
    let mut fig = Figures { written: total, counted: counts.values().sum(), ..Figures::default() };
    for n in 0..total {
        match counts.get(&n).copied().unwrap_or(0) {
            0 if in_text.contains(&n) => fig.lost += 1,
            0 if in_gz.contains(&n) => fig.compressed_only += 1,
            0 => fig.race += 1,
            1 => {}
            k => fig.twice += k - 1,
        }
    }
    println!(
        "logrotate {:<32} rotations {rotations:>5}  written {:>8}  counted {:>8}  lost {}  twice {}  \
         lost-by-logrotate-race {}  only-in-compressed {}",
        v.name, fig.written, fig.counted, fig.lost, fig.twice, fig.race, fig.compressed_only
    );
    fig
}

fn check(v: Variant, default_rotations: usize, seed: u64) {
    let copies = v.directives.contains("copytruncate");
    let delayed = v.directives.contains("delaycompress") || !v.directives.contains("compress");
    // Dated names change once a second: at most a few of those.
    let n = if v.dated { rotations(default_rotations).min(5) } else { rotations(default_rotations) };
    let fig = run_variant(&v, n, seed);
    assert!(fig.written > 0);
    assert_eq!(fig.twice, 0, "{}: {fig:?}", v.name);
    assert_eq!(fig.lost, 0, "{}: {fig:?}", v.name);
    if !copies {
        assert_eq!(fig.race, 0, "{}: only copytruncate loses lines by itself: {fig:?}", v.name);
    }
    if delayed {
        assert_eq!(fig.compressed_only, 0, "{}: {fig:?}", v.name);
    }
}

#[test]
fn copytruncate() {
    check(Variant { name: "copytruncate", directives: "    copytruncate", glob: "app.log*", dated: false }, 6, 1);
}

#[test]
fn copytruncate_delaycompress() {
    let directives = "    copytruncate\n    compress\n    delaycompress";
    check(Variant { name: "copytruncate+delaycompress", directives, glob: "app.log*", dated: false }, 6, 2);
}

#[test]
fn copytruncate_compress() {
    let directives = "    copytruncate\n    compress";
    check(Variant { name: "copytruncate+compress", directives, glob: "app.log*", dated: false }, 6, 3);
}

#[test]
fn copytruncate_dateext() {
    let directives = "    copytruncate\n    dateext\n    dateformat -%Y%m%d-%s";
    check(Variant { name: "copytruncate+dateext", directives, glob: "app.log*", dated: true }, 2, 4);
}

#[test]
fn copytruncate_extension_delaycompress_under_star_log() {
    let directives = "    copytruncate\n    extension .log\n    compress\n    delaycompress";
    check(Variant { name: "copytruncate+extension+delaycompress", directives, glob: "*.log", dated: false }, 6, 5);
}

#[test]
fn create_delaycompress() {
    let directives = "    create\n    compress\n    delaycompress";
    check(Variant { name: "create+delaycompress", directives, glob: "app.log*", dated: false }, 6, 6);
}

#[test]
fn create_dateext_extension_under_star_log() {
    let directives = "    create\n    dateext\n    dateformat -%Y%m%d-%s\n    extension .log";
    check(Variant { name: "create+dateext+extension", directives, glob: "*.log", dated: true }, 2, 7);
}
