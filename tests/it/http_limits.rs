//! The HTTP endpoint's bounds over real TCP: requests in flight, open connections, the time to send
//! headers and to read a response, and one encoding per state version for concurrent scrapes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use integration_exporter::exposition::http::{Limits, ReloadReply, Server, serve};
use integration_exporter::exposition::process::Collector;
use integration_exporter::spec::MetricType;
use integration_exporter::state::{Family, State};
use tokio::sync::{mpsc, oneshot};

use crate::support::wait::Worker;

/// A server on 127.0.0.1:0 on its own runtime; stops when dropped.
struct Running {
    port: u16,
    server: Arc<Server>,
    stop: Option<oneshot::Sender<()>>,
    _thread: Worker<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn start(state: Arc<State>, limits: Limits, reloads: Option<mpsc::Sender<ReloadReply>>) -> Running {
    let mut server = Server::new(state, Vec::new(), None, limits);
    if let Some(reloads) = reloads {
        server = server.with_lifecycle(reloads);
    }
    start_server(server)
}

fn start_server(server: Server) -> Running {
    let server = Arc::new(server);
    let (stop, stopped) = oneshot::channel::<()>();
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let serving = server.clone();
    let thread = Worker::spawn("server", move |_| {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            port_tx.send(listener.local_addr().unwrap().port()).unwrap();
            serve(listener, serving, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
    });
    let port = port_rx.recv_timeout(Duration::from_secs(10)).expect("the server's port");
    Running { port, server, stop: Some(stop), _thread: thread }
}

fn limits() -> Limits {
    Limits {
        max_requests: 40,
        max_connections: 64,
        header_read_timeout: Duration::from_millis(500),
        write_timeout: Duration::from_secs(1),
    }
}

fn send(port: u16, method: &str, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    stream
}

fn answer(mut stream: TcpStream) -> (u16, String) {
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("an answer in time");
    let raw = String::from_utf8_lossy(&raw).into_owned();
    (raw.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0), raw)
}

fn get(port: u16, path: &str) -> (u16, String) {
    answer(send(port, "GET", path))
}

/// A state whose exposition is `samples` lines long.
fn big_state(samples: usize) -> Arc<State> {
    let state = Arc::new(State::default());
    let mut family = Family::new("big", "Many series.", MetricType::Gauge);
    for i in 0..samples {
        family.push(&[("series", &format!("{i:08}"))], i as f64);
    }
    state.publish("test", vec![family]);
    state
}

#[test]
fn requests_beyond_max_requests_get_503_at_once() {
    let (reloads, mut requested) = mpsc::channel(1);
    let running = start(big_state(10), Limits { max_requests: 1, ..limits() }, Some(reloads));
    // A reload request stays in flight until this test answers it.
    let held = send(running.port, "POST", "/-/reload");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let reply = runtime.block_on(async { tokio::time::timeout(Duration::from_secs(10), requested.recv()).await });
    let reply = reply.expect("the reload request within 10 s").expect("the reload request");
    let started = Instant::now();
    let (status, raw) = get(running.port, "/metrics");
    assert_eq!(status, 503, "{raw}");
    assert!(started.elapsed() < Duration::from_secs(1), "turned away at once, not queued");
    assert_eq!(get(running.port, "/healthz").0, 200, "probes do not count");
    reply.send(Ok(())).unwrap();
    assert_eq!(answer(held).0, 200);
    assert_eq!(get(running.port, "/metrics").0, 200);
}

#[test]
fn a_client_that_stops_reading_gives_its_connection_back_within_the_write_timeout() {
    // Some 10 MB of text: more than the socket buffers on both sides hold.
    let running = start(big_state(400_000), Limits { max_connections: 1, ..limits() }, None);
    let mut stalled = send(running.port, "GET", "/metrics");
    std::thread::sleep(Duration::from_millis(300));
    // The only connection slot is the stalled client's until its response times out.
    let started = Instant::now();
    assert_eq!(get(running.port, "/healthz").0, 200);
    assert!(started.elapsed() < Duration::from_secs(8), "waited {:?}", started.elapsed());
    // What the stalled client can still read is cut short.
    let mut raw = Vec::new();
    let _ = stalled.read_to_end(&mut raw);
    let expected = running.server.state.gather()[0].samples.len() * 30;
    assert!(raw.len() < expected, "read {} bytes: the response was not cut", raw.len());
}

#[test]
fn slow_headers_and_idle_connections_are_closed_and_free_their_slot() {
    let running = start(big_state(10), Limits { max_connections: 2, ..limits() }, None);
    let mut slow = TcpStream::connect(("127.0.0.1", running.port)).unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: a").unwrap();
    let mut idle = TcpStream::connect(("127.0.0.1", running.port)).unwrap();
    // Both slots are taken by connections without a complete request: the next client takes the
    // place of the oldest, and the other is closed by the header timeout.
    let started = Instant::now();
    assert_eq!(get(running.port, "/healthz").0, 200);
    assert!(started.elapsed() < Duration::from_secs(5), "waited {:?}", started.elapsed());
    for stream in [&mut slow, &mut idle] {
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut rest = Vec::new();
        // Closed by the server (EOF or reset), not left hanging.
        match stream.read_to_end(&mut rest) {
            Ok(_) => {}
            Err(e) => assert!(
                !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
                "still open: {e}"
            ),
        }
    }
}

#[test]
fn concurrent_scrapes_of_an_unchanged_state_encode_once() {
    let running = start(big_state(20_000), limits(), None);
    let port = running.port;
    let scrapes: Vec<_> =
        (0..16).map(|i| Worker::spawn(&format!("scrape {i}"), move |_| get(port, "/metrics"))).collect();
    let bodies: Vec<String> =
        Worker::join_all(scrapes, Duration::from_secs(30)).into_iter().map(|(_, raw)| raw).collect();
    assert!(bodies.iter().all(|b| b.starts_with("HTTP/1.1 200") && b.contains("big{series=\"00019999\"} 19999")));
    assert_eq!(running.server.encodes(), 1);
    // A change is seen by the next scrape.
    running.server.state.publish("other", vec![Family::new("other", "O.", MetricType::Gauge).with(&[], 7.0)]);
    assert!(get(port, "/metrics").1.contains("\nother 7\n"));
    assert_eq!(running.server.encodes(), 2);
}

#[test]
fn a_new_process_reading_is_spliced_into_the_state_encoded_before() {
    let server =
        Server::new(big_state(20_000), Vec::new(), None, limits()).with_process_metrics(Arc::new(Collector::default()));
    let running = start_server(server);
    let first = get(running.port, "/metrics").1;
    // The process reading is at most a second old: the next scrape takes a new one.
    std::thread::sleep(Duration::from_millis(1100));
    let second = get(running.port, "/metrics").1;
    for body in [&first, &second] {
        let big = body.find("\nbig{series=\"00019999\"} 19999\n").expect("the state");
        let process = body.find("\nprocess_start_time_seconds ").expect("the process reading");
        assert!(big < process, "families in name order");
    }
    assert_eq!(running.server.encodes(), 1, "the state was encoded again for a new process reading");
}

#[test]
fn a_connection_at_the_limit_is_not_cut_while_no_other_client_waits() {
    // The only slot is taken by a client that has not sent its request yet: it is idle, but
    // nobody needs its place, so it keeps it until its header timeout.
    let running = start(big_state(10), Limits { max_connections: 1, ..limits() }, None);
    let mut stream = TcpStream::connect(("127.0.0.1", running.port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let (status, raw) = answer(stream);
    assert_eq!(status, 200, "{raw}");
}
