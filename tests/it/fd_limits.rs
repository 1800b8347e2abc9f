//! The binary under a low open-file limit, with a glob matching more files than it may open:
//! before, log files took every descriptor, `accept` failed with EMFILE twenty times a second and
//! `/healthz` never answered again. Now the endpoint keeps its share, the files beyond a log
//! source's `max_files` are counted instead of opened, and deleting files gives their
//! descriptors back after `rotate_wait`, to the files that waited.

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support;
use support::exporter::Exporter;
use support::http::{Metrics, get};

const FILES: usize = 300;
const LIMIT: usize = 256;
const SKIPPED: &str = "integration_exporter_log_files_skipped{log=\"app\"}";
const OPEN: &str = "integration_exporter_log_files{log=\"app\"}";
const TICKS: &str = "app_ticks_total";

/// Runs the exporter with `ulimit` arguments applied first (`-n 256`: soft and hard).
fn under_ulimit(spec: &Path, port: u16, ulimit: &str) -> Exporter {
    let script = format!("ulimit {ulimit} {LIMIT} && exec \"$0\" \"$@\"");
    Exporter::serve(spec, port).prefix(&["sh", "-c", &script]).start()
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(usize::MAX)
}

fn spec(dir: &Path, port: u16) -> std::path::PathBuf {
    let spec = dir.join("spec.yaml");
    let paths = format!("\"{}/logs/app-*.log\"", dir.display());
    let text = format!("listen: 127.0.0.1:{port}\n{}", support::ticks_spec(&paths))
        .replace("    paths: [", "    rotate_wait: 1s\n    paths: [");
    std::fs::write(&spec, text).unwrap();
    spec
}

fn healthz_within(port: u16, within: Duration) -> Duration {
    let started = Instant::now();
    let answer = get(port, "/healthz");
    let took = started.elapsed();
    assert!(answer.is_some_and(|r| r.status == 200), "/healthz did not answer 200");
    assert!(took < within, "/healthz took {took:?}");
    took
}

#[test]
fn more_files_than_descriptors_leave_the_endpoint_serving_and_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("logs")).unwrap();
    for i in 0..FILES {
        std::fs::write(dir.path().join(format!("logs/app-{i:03}.log")), "tick\n").unwrap();
    }
    let port = support::free_port();
    let exporter = under_ulimit(&spec(dir.path(), port), port, "-n");
    let pid = exporter.pid();

    let m = exporter.wait_for("the files counted", |m| m.get(SKIPPED).is_some_and(|s| s > 0.0));
    let (open, skipped) = (m.get(OPEN).unwrap_or(0.0), m.get(SKIPPED).unwrap_or(0.0));
    assert_eq!(open + skipped, FILES as f64, "every file open or counted as skipped: {open} + {skipped}");
    assert_eq!(m.get("process_max_fds"), Some(LIMIT as f64));
    let held = open_fds(pid);
    assert!(held < LIMIT - 32, "{held} descriptors held, too close to {LIMIT}");
    healthz_within(port, Duration::from_secs(1));

    // Files appearing beyond the cap are counted as they appear, empty ones too. Past the first
    // second, when the source publishes once more anyway (its first checkpoint time).
    std::thread::sleep(Duration::from_millis(1500));
    for i in FILES..FILES + 10 {
        std::fs::write(dir.path().join(format!("logs/app-{i:03}.log")), "").unwrap();
    }
    exporter.wait_for("ten more files skipped", |m| m.get(SKIPPED) == Some(skipped + 10.0));

    // More clients than descriptors left: they take turns, the endpoint never runs out.
    let idle: Vec<TcpStream> = (0..LIMIT)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
        .map(|mut c| {
            let _ = c.write_all(b"GET /metrics HTTP/1.1\r\n");
            c
        })
        .collect();
    let took = healthz_within(port, Duration::from_secs(2));
    let metrics = exporter.metrics();
    drop(idle);
    println!(
        "FIGURE fd limit {LIMIT}: {FILES} files, {open} open, {skipped} skipped, {held} fds held; /healthz in {} ms beside {LIMIT} idle connections",
        took.as_millis()
    );
    assert!(metrics.get(SKIPPED).is_some_and(|s| s > 0.0));

    // Deleting files gives their descriptors back after rotate_wait, and the files that waited
    // are opened: at their end (the source started at the end of the files), so what they held
    // is not counted, what is written next is.
    let keep = 40;
    for i in keep..FILES + 10 {
        std::fs::remove_file(dir.path().join(format!("logs/app-{i:03}.log"))).unwrap();
    }
    exporter.wait_for("the deleted files closed and the rest opened", |m| {
        m.get(SKIPPED) == Some(0.0) && m.get(OPEN) == Some(keep as f64)
    });
    let released = support::wait::until(
        "the deleted files' descriptors released",
        Duration::from_secs(10),
        || open_fds(pid),
        |n| (*n < held - (open as usize - keep) / 2).then_some(*n),
    );
    let before = exporter.metrics().get(TICKS).unwrap_or(0.0);
    for i in 0..keep {
        let mut f =
            std::fs::OpenOptions::new().append(true).open(dir.path().join(format!("logs/app-{i:03}.log"))).unwrap();
        f.write_all(b"tick\n").unwrap();
    }
    exporter.wait_for("one new tick per file", |m: &Metrics| m.get(TICKS) == Some(before + keep as f64));
    println!("FIGURE fd limit {LIMIT}: after deleting {} files, {released} fds held", FILES + 10 - keep);

    let output = exporter.stop();
    assert!(!output.contains("Too many open files") && !output.contains("accept failed"), "{output}");
    assert!(output.contains("open-file limit"), "the limits are logged: {output}");
}

#[test]
fn the_soft_open_file_limit_is_raised_to_the_hard_one() {
    let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("logs")).unwrap();
    let port = support::free_port();
    let exporter = under_ulimit(&spec(dir.path(), port), port, "-S -n");
    let m = exporter.wait_for("process metrics", |m| m.get("process_max_fds").is_some());
    match hard {
        Some(hard) => assert_eq!(m.get("process_max_fds"), Some(hard as f64)),
        None => assert!(m.get("process_max_fds").is_some_and(|n| n > LIMIT as f64)),
    }
    let output = exporter.stop();
    assert!(output.contains(&format!("soft_at_start={LIMIT}")), "{output}");
}
