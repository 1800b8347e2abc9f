//! Raw bytes at the running HTTP endpoint over TCP: arbitrary bytes, request-shaped garbage, huge
//! headers and requests cut short. None may panic a server task or hang a connection past the
//! header timeout, and a good scrape works after each.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use integration_exporter::exposition::http::{Limits, Server, serve};
use integration_exporter::exposition::web_config::WebConfigWatch;
use integration_exporter::spec::MetricType;
use integration_exporter::state::{Family, State};
use proptest::prelude::*;

use crate::support::http::get;
use crate::support::program;

const HEADER_READ_TIMEOUT: Duration = Duration::from_millis(400);

/// Panics on the server's threads (the test's own are proptest's business).
static SERVER_PANICS: AtomicUsize = AtomicUsize::new(0);

/// One plain server for every case, on its own runtime, for the life of the test binary.
fn port() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| start_server(None))
}

/// The same behind TLS (a certificate made with the `openssl` CLI), and its directory.
fn tls() -> &'static (u16, PathBuf) {
    static TLS: OnceLock<(u16, PathBuf)> = OnceLock::new();
    TLS.get_or_init(|| {
        // Under the target directory, reused by each run, rather than a temporary one never removed;
        // one per test, as the test runner may run the tests that call this in processes of their
        // own at once, and one's server must not see the other rewrite its certificate.
        let test = std::thread::current().name().unwrap_or("main").replace(|c: char| !c.is_ascii_alphanumeric(), "_");
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("http-fuzz-tls-{test}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let made = program("openssl")
            .current_dir(&dir)
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
            .args(["-keyout", "server.key", "-out", "server.crt", "-days", "2", "-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=IP:127.0.0.1"])
            .output()
            .expect("the openssl command-line tool");
        assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
        std::fs::write(dir.join("web.yml"), "tls_server_config: {cert_file: server.crt, key_file: server.key}\n")
            .unwrap();
        let web = Arc::new(WebConfigWatch::load(&dir.join("web.yml")).expect("web config"));
        (start_server(Some(web)), dir)
    })
}

fn start_server(web: Option<Arc<WebConfigWatch>>) -> u16 {
    static HOOK: OnceLock<()> = OnceLock::new();
    HOOK.get_or_init(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name().is_some_and(|n| n.starts_with("http-fuzz-server")) {
                SERVER_PANICS.fetch_add(1, Ordering::SeqCst);
            }
            previous(info);
        }));
    });
    let state = Arc::new(State::default());
    state.publish("test", vec![Family::new("fuzz_ok", "Up.", MetricType::Gauge).with(&[("a", "b\"\\\n")], 1.0)]);
    let limits = Limits {
        max_requests: 8,
        max_connections: 32,
        header_read_timeout: HEADER_READ_TIMEOUT,
        write_timeout: Duration::from_secs(2),
    };
    let server = Arc::new(Server::new(state, Vec::new(), web, limits));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("http-fuzz-server".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("http-fuzz-server-worker")
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap().port()).unwrap();
                let _ = serve(listener, server, std::future::pending()).await;
            });
        })
        .unwrap();
    rx.recv().unwrap()
}

/// Sends `bytes` (optionally half-closing), then reads until the server closes. Returns how long
/// the server took to close or answer, or `None` when it kept the connection open too long.
fn poke(bytes: &[u8], half_close: bool) -> Option<Duration> {
    poke_at(port(), bytes, half_close)
}

fn poke_at(port: u16, bytes: &[u8], half_close: bool) -> Option<Duration> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(HEADER_READ_TIMEOUT * 5 + Duration::from_secs(2))).unwrap();
    let started = Instant::now();
    // The server may close on bad bytes before it has them all: that is an answer too.
    let _ = stream.write_all(bytes);
    if half_close {
        let _ = stream.shutdown(Shutdown::Write);
    }
    let mut sink = Vec::new();
    match stream.read_to_end(&mut sink) {
        Ok(_) => Some(started.elapsed()),
        Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => None,
        Err(_) => Some(started.elapsed()), // reset: closed
    }
}

fn good_scrape() -> bool {
    get(port(), "/metrics").is_some_and(|r| r.status == 200 && r.text().contains("fuzz_ok{a=\"b\\\"\\\\\\n\"} 1"))
}

/// A scrape over TLS with curl, trusting the test certificate.
fn good_tls_scrape() -> bool {
    let (port, dir) = tls();
    let out = program("curl")
        .current_dir(dir)
        .args(["-sS", "--max-time", "5", "--cacert", "server.crt"])
        .arg(format!("https://127.0.0.1:{port}/metrics"))
        .output()
        .expect("curl");
    out.status.success() && String::from_utf8_lossy(&out.stdout).contains("fuzz_ok{")
}

/// Request-shaped input: a request line and headers from pieces HTTP parsers trip on.
fn request_like() -> impl Strategy<Value = Vec<u8>> {
    let method = prop_oneof![
        Just("GET".to_string()),
        Just("HEAD".to_string()),
        Just("POST".to_string()),
        Just("PRI".to_string()),
        Just("G\0T".to_string()),
        Just(String::new()),
        "[A-Z]{1,12}",
    ];
    let path = prop_oneof![
        Just("/metrics".to_string()),
        Just("/-/reload".to_string()),
        Just("*".to_string()),
        Just("http://x/metrics".to_string()),
        "/[ -~]{0,40}",
    ];
    let version = prop_oneof![Just("HTTP/1.1"), Just("HTTP/1.0"), Just("HTTP/2.0"), Just("HTTP/9"), Just("")];
    let header = prop_oneof![
        Just("Host: x".to_string()),
        Just("Content-Length: 5".to_string()),
        Just("Content-Length: -1".to_string()),
        Just("Content-Length: 99999999999999999999".to_string()),
        Just("Transfer-Encoding: chunked".to_string()),
        Just("Transfer-Encoding: gzip, chunked".to_string()),
        Just("Accept-Encoding: gzip".to_string()),
        Just("Accept: application/openmetrics-text".to_string()),
        Just("Authorization: Basic !!!".to_string()),
        Just("Connection: keep-alive".to_string()),
        Just("Expect: 100-continue".to_string()),
        Just(" folded".to_string()),
        "[ -~]{0,60}",
        "[A-Za-z-]{1,20}: [\\x00-\\xff]{0,40}",
    ];
    let eol = prop_oneof![Just("\r\n"), Just("\n"), Just("\r"), Just("")];
    (method, path, version, proptest::collection::vec((header, eol.clone()), 0..12), eol, "[\\x00-\\xff]{0,64}")
        .prop_map(|(m, p, v, headers, end, body)| {
            let mut out = format!("{m} {p} {v}\r\n").into_bytes();
            for (h, e) in headers {
                out.extend_from_slice(h.as_bytes());
                out.extend_from_slice(e.as_bytes());
            }
            out.extend_from_slice(end.as_bytes());
            out.extend(body.chars().map(|c| c as u32 as u8));
            out
        })
}

proptest! {
    // `scripts/fuzz` runs thousands.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(64)
    ))]

    #[test]
    fn arbitrary_bytes_neither_panic_nor_hang(bytes in proptest::collection::vec(any::<u8>(), 0..4096), half_close in any::<bool>()) {
        let took = poke(&bytes, half_close);
        prop_assert!(took.is_some(), "connection left open after {} bytes", bytes.len());
        prop_assert!(good_scrape());
        prop_assert_eq!(SERVER_PANICS.load(Ordering::SeqCst), 0);
    }

    /// At the TLS listener: bytes that look like a handshake record (or not) go through the
    /// handshake timeout, never further.
    #[test]
    fn arbitrary_bytes_at_the_tls_listener_neither_panic_nor_hang(
        record in proptest::collection::vec(any::<u8>(), 0..2048),
        handshake_like in any::<bool>(),
        half_close in any::<bool>(),
    ) {
        let mut bytes = record;
        if handshake_like {
            bytes.splice(0..0, [0x16, 0x03, 0x01]);
        }
        let took = poke_at(tls().0, &bytes, half_close);
        prop_assert!(took.is_some(), "TLS connection left open after {} bytes", bytes.len());
        prop_assert!(good_tls_scrape());
        prop_assert_eq!(SERVER_PANICS.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn request_shaped_garbage_neither_panics_nor_hangs(bytes in request_like(), half_close in any::<bool>()) {
        let took = poke(&bytes, half_close);
        prop_assert!(took.is_some(), "connection left open: {:?}", String::from_utf8_lossy(&bytes));
        prop_assert!(good_scrape());
        prop_assert_eq!(SERVER_PANICS.load(Ordering::SeqCst), 0);
    }
}

#[test]
fn huge_headers_and_cut_requests_are_closed_in_time() {
    let huge_value = format!("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(2 << 20));
    let many = format!("GET /metrics HTTP/1.1\r\n{}\r\n", "X-A: b\r\n".repeat(10_000));
    let long_path = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "m".repeat(1 << 20));
    for (what, bytes) in [("a 2 MiB header", huge_value), ("10000 headers", many), ("a 1 MiB path", long_path)] {
        let took = poke(bytes.as_bytes(), false).unwrap_or_else(|| panic!("{what}: left open"));
        assert!(took < Duration::from_secs(5), "{what}: {took:?}");
        assert!(good_scrape(), "after {what}");
    }
    // Requests cut short, without closing: answered by the header timeout, not left open.
    for cut in [
        "G",
        "GET /metrics HTTP/1.1\r\n",
        "GET /metrics HTTP/1.1\r\nHost: x\r\n",
        "POST /-/reload HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc",
    ] {
        let took = poke(cut.as_bytes(), false).unwrap_or_else(|| panic!("{cut:?}: left open"));
        assert!(took < HEADER_READ_TIMEOUT * 5, "{cut:?}: {took:?}");
    }
    // A slowloris: one header byte at a time, each well within any per-read timeout.
    let mut slow = TcpStream::connect(("127.0.0.1", port())).unwrap();
    slow.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    let started = Instant::now();
    let mut closed_after = None;
    for byte in b"GET /metrics HTTP/1.1\r\nX-Slow: ".iter().chain(std::iter::repeat(&b'a')) {
        if slow.write_all(&[*byte]).is_err() || started.elapsed() > Duration::from_secs(5) {
            closed_after = Some(started.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let closed_after = closed_after.unwrap_or_default();
    assert!(good_tls_scrape(), "a TLS scrape");
    assert!(closed_after < Duration::from_secs(3), "a slowloris held on for {closed_after:?}");
    assert!(good_scrape());
    assert_eq!(SERVER_PANICS.load(Ordering::SeqCst), 0);
}
