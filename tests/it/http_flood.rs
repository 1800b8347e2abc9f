//! One client cannot take the endpoint's connection slots from the others (the binary, default
//! limits): a flood of idle connections that send half a request and reconnect as soon as they
//! are cut, while a scraper from another address and one from the flood's own address (with a
//! complete request) must be answered at once. Before, 1,500 such connections made every scrape
//! wait for the 10 s header timeout of the connections ahead of it.
//!
//! `FLOOD` sets the number of connections (default 1,500, fewer when this process may not open
//! that many files); the latencies are printed as `FIGURE` lines (`scripts/fault-exhaustion`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::support;
use support::exporter::Exporter;
use support::wait::Worker;

/// How many files this process may open, after raising its soft limit to the hard one.
fn raise_own_fd_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if let Some(hard) = limit.maximum {
        let _ = setrlimit(Resource::Nofile, rustix::process::Rlimit { current: Some(hard), maximum: Some(hard) });
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// `n` connections to `port` that each send half a request and wait; when the server closes
/// one, it connects again. Counts the connections made.
fn flood(port: u16, n: usize, stop: &AtomicBool, made: Arc<AtomicU64>) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        // Tells the connections to stop at their next look (they are aborted anyway).
        let stop_all = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for _ in 0..n {
            let (stop_all, made) = (stop_all.clone(), made.clone());
            tasks.push(tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                while !stop_all.load(Ordering::Relaxed) {
                    // A connect can wait for seconds while the listen backlog is full.
                    let connect = tokio::net::TcpStream::connect(("127.0.0.1", port));
                    let Ok(Ok(mut conn)) = tokio::time::timeout(Duration::from_secs(1), connect).await else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    };
                    made.fetch_add(1, Ordering::Relaxed);
                    let _ = conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: flood\r\nX-Partial: ").await;
                    let mut sink = [0u8; 512];
                    // Until the server cuts it (or the test ends).
                    loop {
                        tokio::select! {
                            read = conn.read(&mut sink) => if !matches!(read, Ok(n) if n > 0) { break },
                            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                                if stop_all.load(Ordering::Relaxed) { break }
                            }
                        }
                    }
                }
            }));
        }
        while !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop_all.store(true, Ordering::Relaxed);
        for task in tasks {
            task.abort();
        }
    });
}

/// One complete `GET /metrics` from `source` (port 0): how long until the whole answer was read,
/// or `None` when it did not come within 15 s.
fn scrape_from(source: IpAddr, port: u16) -> Option<Duration> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let started = Instant::now();
        let attempt = async {
            let socket = tokio::net::TcpSocket::new_v4().ok()?;
            socket.bind(SocketAddr::new(source, 0)).ok()?;
            let mut conn = socket.connect(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)).await.ok()?;
            conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: scraper\r\nConnection: close\r\n\r\n").await.ok()?;
            let mut answer = Vec::new();
            conn.read_to_end(&mut answer).await.ok()?;
            let ok = answer.starts_with(b"HTTP/1.1 200") && answer.windows(13).any(|w| w == b"log_files{log");
            ok.then(|| started.elapsed())
        };
        tokio::time::timeout(Duration::from_secs(15), attempt).await.ok().flatten()
    })
}

fn summary(latencies: &[Option<Duration>]) -> String {
    let mut ms: Vec<u128> = latencies.iter().flatten().map(|d| d.as_millis()).collect();
    ms.sort_unstable();
    let failed = latencies.iter().filter(|l| l.is_none()).count();
    match (ms.first(), ms.get(ms.len() / 2), ms.last()) {
        (Some(min), Some(p50), Some(max)) => format!("min {min} ms, p50 {p50} ms, max {max} ms, {failed} failed"),
        _ => format!("all {failed} failed"),
    }
}

#[test]
fn idle_connection_flood_does_not_delay_other_scrapes() {
    let wanted: usize = std::env::var("FLOOD").ok().and_then(|v| v.parse().ok()).unwrap_or(1500);
    // Each flood connection is a file here too; keep room for the test's own.
    let room = raise_own_fd_limit().saturating_sub(200);
    let n = wanted.min(usize::try_from(room).unwrap_or(usize::MAX));
    // The proportion: 1,500 connections to the default 512 slots.
    let max_connections = (n * 512 / 1500).clamp(1, 512);

    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let spec = dir.path().join("spec.yaml");
    let paths = format!("\"{}/app.log\"", dir.path().display());
    std::fs::write(&spec, format!("listen: 127.0.0.1:{port}\n{}", support::ticks_spec(&paths))).unwrap();
    let exporter = Exporter::serve(&spec, port).args(["--web.max-connections", &max_connections.to_string()]).start();
    exporter.wait_for("the log source's gauge", |m| m.get("integration_exporter_log_files{log=\"app\"}").is_some());

    let made = Arc::new(AtomicU64::new(0));
    let counted = made.clone();
    let flooding = Worker::spawn("flood", move |stop| flood(port, n, stop, counted));
    // Every flood connection made once, and then some: the slots are full and the rest queue.
    support::wait::until(
        "the flood's connections",
        Duration::from_secs(30),
        || made.load(Ordering::Relaxed),
        |m| (*m >= n as u64).then_some(()),
    );
    std::thread::sleep(Duration::from_secs(1));

    let other = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let same = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut from_other = Vec::new();
    let mut from_same = Vec::new();
    for _ in 0..8 {
        flooding.check();
        from_other.push(scrape_from(other, port));
        from_same.push(scrape_from(same, port));
        std::thread::sleep(Duration::from_millis(250));
    }
    let reconnects = made.load(Ordering::Relaxed);
    drop(flooding);
    println!(
        "FIGURE slot flood: {n} idle partial-header connections against {max_connections} slots, \
         {reconnects} connections made by the flood"
    );
    println!("FIGURE slot flood: scrape from another address: {}", summary(&from_other));
    println!("FIGURE slot flood: scrape from the flood's address: {}", summary(&from_same));
    let slowest = from_other.iter().chain(&from_same).map(|l| l.unwrap_or(Duration::MAX)).max().unwrap_or_default();
    assert!(
        slowest < Duration::from_secs(2),
        "scrapes during the flood: other address {}; same address {}",
        summary(&from_other),
        summary(&from_same)
    );
    // The flood is gone: the endpoint is as it was.
    assert!(support::http::get(port, "/healthz").is_some_and(|r| r.status == 200));
    drop(exporter);
}
