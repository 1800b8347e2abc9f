//! The HTTP endpoint: `/metrics` from the published snapshots, `/healthz`, `/ready`, the status
//! page (`/`, and `/status.json`; a page of links without a board), and `/-/reload` when enabled. Nothing here waits on a source. With a web config file: TLS,
//! basic auth on every path and extra response headers (see [`super::web_config`]).
//!
//! Every client is bounded ([`Limits`]): in connections, in scrapes in flight, in the time to send
//! its request and to take its answer, so slow or hostile clients cannot pile up memory or tasks,
//! and a client that stalls gives its place back within those times.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{
    ACCEPT, ACCEPT_ENCODING, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE,
};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::Watcher;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::body::{self, Chunks, Deflated, Encoded, Extras};
use super::deadline::WriteDeadline;
use super::negotiate;
use super::process::Collector;
use super::slots::{Answering, Slots};
use super::text::Format;
use super::web_config::{Auth, REALM, WebConfigWatch};
use crate::state::{Family, State};

/// How a reload asked over HTTP (`POST /-/reload`) gets its answer: `Err` carries the message
/// already logged.
pub type ReloadReply = oneshot::Sender<Result<(), String>>;

/// What one client may hold of the server, and for how long.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Scrapes and reloads handled at once; more get 503 at once (`0`: no limit). `/healthz`,
    /// `/ready` and authentication (bounded on its own, see [`super::web_config`]) do not count.
    pub max_requests: usize,
    /// Open connections (TLS handshakes included; `0`: no limit; `serve` fits it into the
    /// open-file limit, see [`crate::fds`]). When all are taken, a new
    /// client takes the place of the oldest connection without a complete request (sending
    /// headers, in a handshake, idle between requests) of the address holding the most, so one
    /// client cannot keep the others out; only while every connection is answering a request do
    /// new ones wait in the listen backlog (see [`super::slots`]).
    pub max_connections: usize,
    /// Time to send request headers (and to finish a TLS handshake); also how long an idle
    /// keep-alive connection stays open.
    pub header_read_timeout: Duration,
    /// Time for a response to be written out, from its first byte.
    pub write_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // node_exporter's `--web.max-requests` default.
            max_requests: 40,
            // Well under the usual 1024 open files, which log files and the database share.
            max_connections: 512,
            header_read_timeout: Duration::from_secs(10),
            // Longer than any sensible scrape timeout.
            write_timeout: Duration::from_secs(30),
        }
    }
}

/// The endpoint's state: what it serves, how it authenticates, and its bounds.
pub struct Server {
    pub state: Arc<State>,
    /// Families the HTTP layer adds itself (build info, start time).
    pub static_families: Vec<Family>,
    /// TLS, basic auth and headers; `None`: plain HTTP, open. Replaced by a reload.
    web: RwLock<Option<Arc<WebConfigWatch>>>,
    /// Whether the listener speaks TLS: decided at start, kept by reloads.
    tls_listener: bool,
    limits: Limits,
    in_flight: Option<Semaphore>,
    /// Where the metrics are served (`/metrics` unless `--web.telemetry-path` says otherwise).
    telemetry_path: String,
    /// `process_*`, read at scrape time; `None` in tests that serve a fixed state.
    process: Option<Arc<Collector>>,
    /// `Some` when `/-/reload` is enabled: where reload requests go.
    lifecycle: Option<mpsc::Sender<ReloadReply>>,
    /// What `/metrics` answers are made of: concurrent scrapes of an unchanged state encode
    /// once, and a new process reading does not encode the state again.
    bodies: tokio::sync::Mutex<Bodies>,
    encodes: AtomicU64,
    /// The status page's board: `/` shows it and `/status.json` serves it; `None`, `/` is a
    /// page of links.
    status: Option<Arc<crate::status::StatusBoard>>,
}

/// What an encoded body shows: the state's version and the process reading's generation.
type Shown = (u64, u64);

/// The `/metrics` cache (see [`body`]).
#[derive(Default)]
struct Bodies {
    /// The state encoded per format, at the version it shows.
    encoded: HashMap<Format, Arc<Encoded>>,
    /// The state deflated in pieces per format, with the server's family names it was cut for.
    deflated: HashMap<Format, (Vec<String>, Arc<Deflated>)>,
    /// Formats asked for uncompressed at least once: their encoded text is kept beside the
    /// deflated pieces. For the others, once deflated, it is dropped: a scraper asking for gzip
    /// (as Prometheus does) needs only the pieces, and the text is the larger of the two.
    plain_wanted: HashSet<Format>,
    /// The last answer per format and compression.
    bodies: HashMap<(Format, bool), (Shown, Chunks)>,
}

/// The landing page, linking the telemetry path (checked to be a plain path by the command line).
fn landing(telemetry_path: &str) -> String {
    format!(
        "<!doctype html><html><head><title>integration-exporter</title></head><body>\
<h1>integration-exporter</h1><ul><li><a href=\"{telemetry_path}\">{telemetry_path}</a></li>\
<li><a href=\"/healthz\">/healthz</a></li><li><a href=\"/ready\">/ready</a></li></ul></body></html>\n"
    )
}

impl Server {
    pub fn new(
        state: Arc<State>,
        static_families: Vec<Family>,
        web: Option<Arc<WebConfigWatch>>,
        limits: Limits,
    ) -> Self {
        Self {
            state,
            static_families,
            tls_listener: web.as_ref().is_some_and(|w| w.tls_listener()),
            web: RwLock::new(web),
            in_flight: (limits.max_requests > 0).then(|| Semaphore::new(limits.max_requests)),
            limits,
            telemetry_path: "/metrics".into(),
            process: None,
            lifecycle: None,
            bodies: tokio::sync::Mutex::new(Bodies::default()),
            encodes: AtomicU64::new(0),
            status: None,
        }
    }

    /// Serves the status page of `board` at `/` and its data at `/status.json`.
    pub fn with_status(mut self, board: Arc<crate::status::StatusBoard>) -> Self {
        self.status = Some(board);
        self
    }

    /// The status page's board, when there is one.
    pub fn status(&self) -> Option<&Arc<crate::status::StatusBoard>> {
        self.status.as_ref()
    }

    /// Serves the metrics under `path` instead of `/metrics`.
    pub fn with_telemetry_path(mut self, path: &str) -> Self {
        self.telemetry_path = path.to_string();
        self
    }

    /// Adds the `process_*` metrics to every scrape.
    pub fn with_process_metrics(mut self, collector: Arc<Collector>) -> Self {
        self.process = Some(collector);
        self
    }

    /// Enables `POST /-/reload`: each request is sent to `reloads` and answered with its reply.
    pub fn with_lifecycle(mut self, reloads: mpsc::Sender<ReloadReply>) -> Self {
        self.lifecycle = Some(reloads);
        self
    }

    /// The web config in force.
    pub fn web(&self) -> Option<Arc<WebConfigWatch>> {
        self.web.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Puts another web config in force (a reload). The caller has checked it speaks TLS
    /// exactly when the listener does.
    pub fn set_web(&self, web: Option<Arc<WebConfigWatch>>) {
        *self.web.write().unwrap_or_else(std::sync::PoisonError::into_inner) = web;
    }

    /// Whether the listener speaks TLS.
    pub fn tls_listener(&self) -> bool {
        self.tls_listener
    }

    /// How many times a `/metrics` body was encoded (the rest came from the cache).
    pub fn encodes(&self) -> u64 {
        self.encodes.load(Ordering::Relaxed)
    }

    /// [`Server::handle`] behind the web config: basic auth when it has users, its headers on
    /// every answer, 500 while the file does not load.
    pub async fn respond(&self, req: &Request<Incoming>) -> Response<Chunks> {
        let Some(web) = self.web() else {
            return self.handle(req).await;
        };
        let config = match web.current().await {
            Ok(c) => c,
            Err(_) => return plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n"),
        };
        let auth = if config.requires_auth() {
            web.authorized(&config, req.headers().get(AUTHORIZATION)).await
        } else {
            Auth::Granted
        };
        let mut response = match auth {
            Auth::Granted => self.handle(req).await,
            Auth::Denied => {
                let mut r = plain(StatusCode::UNAUTHORIZED, "Unauthorized\n");
                if let Ok(challenge) = hyper::header::HeaderValue::try_from(format!("Basic realm=\"{REALM}\"")) {
                    r.headers_mut().insert(WWW_AUTHENTICATE, challenge);
                }
                r
            }
            Auth::Busy => {
                let mut r = plain(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests\n");
                r.headers_mut().insert(RETRY_AFTER, hyper::header::HeaderValue::from_static("1"));
                r
            }
        };
        for (name, value) in &config.headers {
            response.headers_mut().insert(name.clone(), value.clone());
        }
        response
    }

    pub async fn handle(&self, req: &Request<Incoming>) -> Response<Chunks> {
        // The requests that do work count against `max_requests`; the probes never wait on it,
        // so a liveness check does not fail because of scrape load.
        let path = req.uri().path();
        let heavy = path == self.telemetry_path
            || path == "/-/reload"
            || (self.status.is_some() && matches!(path, "/" | "/status.json"));
        let _permit = match &self.in_flight {
            Some(slots) if heavy => match slots.try_acquire() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    return plain(StatusCode::SERVICE_UNAVAILABLE, "too many requests in flight; try again\n");
                }
            },
            _ => None,
        };
        if req.uri().path() == "/-/reload" {
            return self.reload(req.method()).await;
        }
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
        }
        match req.uri().path() {
            p if p == self.telemetry_path => self.metrics(req).await,
            "/healthz" => plain(StatusCode::OK, "ok\n"),
            "/ready" => {
                let pending = self.state.readiness.pending();
                if pending.is_empty() {
                    plain(StatusCode::OK, "ready\n")
                } else {
                    plain(
                        StatusCode::SERVICE_UNAVAILABLE,
                        &format!("waiting for first run of: {}\n", pending.join(", ")),
                    )
                }
            }
            "/" | "/status.json" if self.status.is_some() => self.status_page(req.uri().path() == "/").await,
            "/" => Response::builder()
                .header(CONTENT_TYPE, "text/html; charset=utf-8")
                .body(Chunks::from(landing(&self.telemetry_path)))
                .unwrap_or_default(),
            _ => plain(StatusCode::NOT_FOUND, "not found\n"),
        }
    }

    /// The status page (`html`) or its data as JSON, judged on the blocking pool: every check
    /// is evaluated, which takes longer than a request worker should be held.
    async fn status_page(&self, html: bool) -> Response<Chunks> {
        let Some(board) = self.status.clone() else { return plain(StatusCode::NOT_FOUND, "not found\n") };
        let telemetry_path = self.telemetry_path.clone();
        let rendered = tokio::task::spawn_blocking(move || {
            let status = board.status();
            if html {
                ("text/html; charset=utf-8", crate::status::page::html(&status, &telemetry_path))
            } else {
                ("application/json", serde_json::to_string(&status).unwrap_or_default())
            }
        })
        .await;
        match rendered {
            Ok((content_type, body)) => Response::builder()
                .header(CONTENT_TYPE, content_type)
                .header(hyper::header::CACHE_CONTROL, "no-store")
                .body(Chunks::from(body))
                .unwrap_or_default(),
            Err(_) => plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n"),
        }
    }

    /// `POST /-/reload` (or `PUT`, as in Prometheus): reload the spec and web config and say how
    /// it went.
    async fn reload(&self, method: &Method) -> Response<Chunks> {
        let Some(reloads) = &self.lifecycle else {
            return plain(StatusCode::FORBIDDEN, "Lifecycle API is not enabled.\n");
        };
        if method != Method::POST && method != Method::PUT {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "Only POST or PUT requests allowed\n");
        }
        let (reply, answer) = oneshot::channel();
        if reloads.send(reply).await.is_err() {
            return plain(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
        }
        match answer.await {
            Ok(Ok(())) => plain(StatusCode::OK, "configuration reloaded\n"),
            Ok(Err(e)) => plain(StatusCode::INTERNAL_SERVER_ERROR, &format!("failed to reload config: {e}\n")),
            Err(_) => plain(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n"),
        }
    }

    async fn metrics(&self, req: &Request<Incoming>) -> Response<Chunks> {
        let header = |name| req.headers().get(name).and_then(|v: &hyper::header::HeaderValue| v.to_str().ok());
        let format = negotiate::format(header(ACCEPT));
        let gzip = negotiate::gzip(header(ACCEPT_ENCODING));
        let Some(body) = self.body(format, gzip).await else {
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n");
        };
        let builder = Response::builder().header(CONTENT_TYPE, format.content_type());
        let builder = if gzip { builder.header(CONTENT_ENCODING, "gzip") } else { builder };
        builder.body(body).unwrap_or_default()
    }

    /// The body of the state as it is now: from the cache when neither the state nor the
    /// process reading changed since, else made from the state's encoding (and deflated pieces)
    /// of its version, encoded anew only when the state changed, on the blocking pool (large
    /// states take milliseconds the async workers should spend answering others).
    async fn body(&self, format: Format, gzip: bool) -> Option<Chunks> {
        // Held while encoding: scrapes arriving meanwhile wait for this body instead of making
        // their own.
        let mut cache = self.bodies.lock().await;
        let (generation, process) = match &self.process {
            Some(collector) => collector.current(),
            None => (0, Arc::default()),
        };
        let version = self.state.version();
        if let Some(((shown, read), body)) = cache.bodies.get(&(format, gzip))
            && *shown == version
            && *read == generation
        {
            return Some(body.clone());
        }
        if !gzip {
            cache.plain_wanted.insert(format);
        }
        let mut own = self.static_families.clone();
        own.extend(process.iter().cloned());
        let extras = Extras::new(own, format);
        let names: Vec<String> = extras.names().map(str::to_string).collect();
        let (shown, body) = match cache.deflated.get(&format) {
            Some((cut_for, deflated)) if gzip && deflated.version == version && *cut_for == names => {
                (version, body::gzip(deflated, &extras, format).ok()?)
            }
            _ => {
                let encoded = match cache.encoded.get(&format) {
                    Some(e) if e.version == version => e.clone(),
                    _ => {
                        let state = self.state.clone();
                        let encoded = tokio::task::spawn_blocking(move || {
                            let (version, snapshots) = state.snapshots();
                            Arc::new(Encoded::new(version, &snapshots, format))
                        })
                        .await
                        .ok()?;
                        self.encodes.fetch_add(1, Ordering::Relaxed);
                        cache.encoded.insert(format, encoded.clone());
                        encoded
                    }
                };
                let cuts = encoded.cuts(extras.names());
                if gzip {
                    let from = encoded.clone();
                    let deflated =
                        Arc::new(tokio::task::spawn_blocking(move || Deflated::new(&from, cuts)).await.ok()?.ok()?);
                    cache.deflated.insert(format, (names, deflated.clone()));
                    if !cache.plain_wanted.contains(&format) {
                        cache.encoded.remove(&format);
                    }
                    (encoded.version, body::gzip(&deflated, &extras, format).ok()?)
                } else {
                    (encoded.version, body::plain(&encoded, &cuts, &extras, format))
                }
            }
        };
        // Older answers would keep older encodings alive.
        cache.bodies.retain(|_, ((v, _), _)| *v == shown);
        cache.bodies.insert((format, gzip), ((shown, generation), body.clone()));
        Some(body)
    }
}

fn plain(status: StatusCode, text: &str) -> Response<Chunks> {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Chunks::from(text.to_string()))
        .unwrap_or_default()
}

/// A listener on `addr` (`host:port`) whose accept queue is as deep as the system allows
/// (`net.core.somaxconn`, as Go servers such as Prometheus use): while a flood of connections
/// waits to be accepted, a scraper's connection still finds a place in the queue instead of
/// having its SYN dropped and retried a second later.
pub async fn listen(addr: &str) -> std::io::Result<TcpListener> {
    let mut failed = None;
    for address in tokio::net::lookup_host(addr).await? {
        let socket = if address.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
        // As std and tokio's own `bind`: a restart does not wait out TIME_WAIT connections.
        socket.set_reuseaddr(true)?;
        match socket.bind(address) {
            Ok(()) => return socket.listen(accept_queue()),
            Err(e) => failed = Some(e),
        }
    }
    Err(failed.unwrap_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "resolves to no address")))
}

/// The longest accept queue the system grants, or 4096 when it does not say.
fn accept_queue() -> u32 {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(4096)
        .min(65_535)
}

/// Serves until `shutdown` resolves, then lets open connections finish. Speaks TLS when the web
/// config named certificates at start.
pub async fn serve(
    listener: TcpListener,
    server: Arc<Server>,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Slots::new(server.limits.max_connections);
    let mut failures = AcceptFailures::default();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer): (_, SocketAddr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, an idle connection gives its own back.
                    let freed = is_fd_exhaustion(&e) && slots.displace_for_fd();
                    let pause = failures.failed(&e, freed);
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = &mut shutdown => break,
                    }
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        failures.succeeded();
        // A slot for it: at the limit, an idle connection makes room (only now that a client is
        // here to take it); with every slot answering a request, this client waits unserved, and
        // the next ones in the backlog, rather than each costing a task and buffers.
        tokio::select! {
            _ = slots.room() => {}
            _ = &mut shutdown => break,
        }
        let mut slot = slots.admit(peer.ip());
        let server = server.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let displaced = slot.displaced();
            tokio::select! {
                _ = connection(stream, peer, server, watcher, slot.answering()) => {}
                _ = displaced => tracing::debug!(%peer, "idle connection closed to make room"),
            }
            drop(slot);
        });
    }
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
    }
    Ok(())
}

/// One accepted connection: the TLS handshake when the listener speaks TLS, then HTTP/1.1.
async fn connection(stream: TcpStream, peer: SocketAddr, server: Arc<Server>, watcher: Watcher, answering: Answering) {
    let write_timeout = server.limits.write_timeout;
    if !server.tls_listener {
        let io = WriteDeadline::new(stream, write_timeout).with_answering(answering.clone());
        return serve_connection(TokioIo::new(io), server, watcher, answering).await;
    }
    // The certificates of the web config in force (after looking for changed files).
    let Some(web) = server.web() else { return };
    let Some(config) = web.tls().await else { return };
    match tokio::time::timeout(server.limits.header_read_timeout, handshake(stream, config)).await {
        Ok(Ok(stream)) => {
            let io = WriteDeadline::new(stream, write_timeout).with_answering(answering.clone());
            serve_connection(TokioIo::new(io), server, watcher, answering).await
        }
        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
    }
}

/// Whether an accept failed for lack of file descriptors (the process's or the system's).
fn is_fd_exhaustion(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(code) if code == rustix::io::Errno::MFILE.raw_os_error() || code == rustix::io::Errno::NFILE.raw_os_error())
}

/// Failed accepts in a row: how long to pause before the next (doubling from 5 ms to 1 s, so a
/// lasting failure such as EMFILE neither spins a core nor floods the log), and what to log.
#[derive(Default)]
struct AcceptFailures {
    in_a_row: u32,
    since_logged: u64,
    logged: Option<std::time::Instant>,
}

impl AcceptFailures {
    const FIRST_PAUSE: Duration = Duration::from_millis(5);
    const LONGEST_PAUSE: Duration = Duration::from_secs(1);
    const LOG_EVERY: Duration = Duration::from_secs(10);

    fn failed(&mut self, e: &std::io::Error, freed_a_slot: bool) -> Duration {
        self.since_logged += 1;
        if self.logged.is_none_or(|t| t.elapsed() >= Self::LOG_EVERY) {
            tracing::warn!(
                error = %e,
                failures = self.since_logged,
                closed_an_idle_connection = freed_a_slot,
                "accept failed; retrying with a growing pause"
            );
            self.logged = Some(std::time::Instant::now());
            self.since_logged = 0;
        }
        let pause = Self::FIRST_PAUSE.saturating_mul(1 << self.in_a_row.min(8)).min(Self::LONGEST_PAUSE);
        self.in_a_row += 1;
        if freed_a_slot { Self::FIRST_PAUSE } else { pause }
    }

    fn succeeded(&mut self) {
        if self.in_a_row > 0 {
            self.in_a_row = 0;
            self.logged = None;
            if self.since_logged > 0 {
                tracing::info!(failures = self.since_logged, "accepting again");
                self.since_logged = 0;
            }
        }
    }
}

/// One HTTP/1.1 connection, plain or TLS, until it closes or the server shuts down.
async fn serve_connection<I>(io: TokioIo<I>, server: Arc<Server>, watcher: Watcher, answering: Answering)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let header_read_timeout = server.limits.header_read_timeout;
    let service = service_fn(move |req: Request<Incoming>| {
        let server = server.clone();
        // A complete request is in: this connection holds its slot until the answer is out.
        answering.start();
        async move { Ok::<_, Infallible>(server.respond(&req).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .serve_connection(io, service);
    let _ = watcher.watch(conn).await;
}

/// The server side of a TLS handshake. A client speaking plain HTTP gets a plain 400 (as from Go's
/// servers) instead of a connection reset it would have to guess about.
async fn handshake(
    mut stream: TcpStream,
    config: Arc<rustls::ServerConfig>,
) -> std::io::Result<tokio_rustls::server::TlsStream<TcpStream>> {
    let mut first = [0u8; 1];
    if stream.peek(&mut first).await? == 0 {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed before the handshake"));
    }
    // Every TLS connection opens with a handshake record (content type 22).
    if first[0] != 0x16 {
        let _ = stream
            .write_all(b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
            .await;
        let _ = stream.shutdown().await;
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "plain HTTP on the TLS listener"));
    }
    tokio_rustls::TlsAcceptor::from(config).accept(stream).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_accepts_back_off_to_a_second_and_start_over_after_a_success() {
        let emfile = std::io::Error::from_raw_os_error(rustix::io::Errno::MFILE.raw_os_error());
        assert!(is_fd_exhaustion(&emfile));
        let mut failures = AcceptFailures::default();
        let pauses: Vec<u64> = (0..10).map(|_| failures.failed(&emfile, false).as_millis() as u64).collect();
        assert_eq!(pauses, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        // An idle connection closed for the descriptor: try again soon.
        assert_eq!(failures.failed(&emfile, true), AcceptFailures::FIRST_PAUSE);
        failures.succeeded();
        assert_eq!(failures.failed(&emfile, false), AcceptFailures::FIRST_PAUSE);
    }
}
