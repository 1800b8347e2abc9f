//! The HTTP endpoint: `/metrics` from the published snapshots, `/healthz`, `/ready`, and a landing
//! page, and `/-/reload` when enabled. Nothing here waits on a source. With a web config file: TLS,
//! basic auth on every path and extra response headers (see [`super::web_config`]).
//!
//! Every client is bounded ([`Limits`]): in connections, in scrapes in flight, in the time to send
//! its request and to take its answer, so slow or hostile clients cannot pile up memory or tasks,
//! and a client that stalls gives its place back within those times.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
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
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::deadline::WriteDeadline;
use super::process::Collector;
use super::text::{Format, encode};
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
    /// Open connections (TLS handshakes included); more wait in the listen backlog until one
    /// closes (`0`: no limit).
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
    /// The last encoded `/metrics` body per format and compression, with the state version and
    /// process reading it shows: concurrent scrapes of an unchanged state encode once.
    bodies: tokio::sync::Mutex<HashMap<(Format, bool), (Shown, Bytes)>>,
    encodes: AtomicU64,
}

/// What an encoded body shows: the state's version and the process reading's generation.
type Shown = (u64, u64);

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
            bodies: tokio::sync::Mutex::new(HashMap::new()),
            encodes: AtomicU64::new(0),
        }
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
    pub async fn respond(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        let Some(web) = self.web() else {
            return self.handle(req).await;
        };
        let config = match web.current() {
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

    pub async fn handle(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        // The requests that do work count against `max_requests`; the probes never wait on it,
        // so a liveness check does not fail because of scrape load.
        let path = req.uri().path();
        let heavy = path == self.telemetry_path || path == "/-/reload";
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
            "/" => Response::builder()
                .header(CONTENT_TYPE, "text/html; charset=utf-8")
                .body(Full::new(Bytes::from(landing(&self.telemetry_path))))
                .unwrap_or_default(),
            _ => plain(StatusCode::NOT_FOUND, "not found\n"),
        }
    }

    /// `POST /-/reload` (or `PUT`, as in Prometheus): reload the spec and web config and say how
    /// it went.
    async fn reload(&self, method: &Method) -> Response<Full<Bytes>> {
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

    async fn metrics(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        let header = |name| req.headers().get(name).and_then(|v: &hyper::header::HeaderValue| v.to_str().ok());
        let format = Format::negotiate(header(ACCEPT));
        let gzip = header(ACCEPT_ENCODING).is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
        let Some(body) = self.body(format, gzip).await else {
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n");
        };
        let builder = Response::builder().header(CONTENT_TYPE, format.content_type());
        let builder = if gzip { builder.header(CONTENT_ENCODING, "gzip") } else { builder };
        builder.body(Full::new(body)).unwrap_or_default()
    }

    /// The encoded body of the state as it is now: from the cache when the state has not changed
    /// since, else gathered, sorted, encoded and compressed on the blocking pool (large states
    /// take milliseconds the async workers should spend answering others).
    async fn body(&self, format: Format, gzip: bool) -> Option<Bytes> {
        // Held while encoding: scrapes arriving meanwhile wait for this body instead of making
        // their own.
        let mut bodies = self.bodies.lock().await;
        let (generation, process) = match &self.process {
            Some(collector) => collector.current(),
            None => (0, Arc::default()),
        };
        if let Some(((version, shown), body)) = bodies.get(&(format, gzip))
            && *version == self.state.version()
            && *shown == generation
        {
            return Some(body.clone());
        }
        let state = self.state.clone();
        let statics = self.static_families.clone();
        let (version, body) = tokio::task::spawn_blocking(move || {
            let (version, mut families) = state.snapshot();
            families.extend(statics);
            families.extend(process.iter().cloned());
            families.sort_by(|a, b| a.name.cmp(&b.name));
            let text = encode(&families, format);
            if !gzip {
                return Some((version, Bytes::from(text)));
            }
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(text.as_bytes()).ok()?;
            Some((version, Bytes::from(encoder.finish().ok()?)))
        })
        .await
        .ok()??;
        self.encodes.fetch_add(1, Ordering::Relaxed);
        bodies.insert((format, gzip), ((version, generation), body.clone()));
        Some(body)
    }
}

fn plain(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(text.to_string())))
        .unwrap_or_default()
}

/// Serves until `shutdown` resolves, then lets open connections finish. Speaks TLS when the web
/// config named certificates at start.
pub async fn serve(
    listener: TcpListener,
    server: Arc<Server>,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let connections = match server.limits.max_connections {
        0 => None,
        n => Some(Arc::new(Semaphore::new(n))),
    };
    tokio::pin!(shutdown);
    loop {
        // A slot first: at the limit, new connections wait in the backlog rather than each
        // costing a task and buffers.
        let slot = match &connections {
            Some(slots) => tokio::select! {
                slot = slots.clone().acquire_owned() => slot.ok(),
                _ = &mut shutdown => break,
            },
            None => None,
        };
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer): (_, SocketAddr) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let server = server.clone();
                let watcher = graceful.watcher();
                if !server.tls_listener {
                    tokio::spawn(async move {
                        let _slot = slot;
                        let io = WriteDeadline::new(stream, server.limits.write_timeout);
                        serve_connection(TokioIo::new(io), server, watcher).await;
                    });
                    continue;
                }
                tokio::spawn(async move {
                    let _slot = slot;
                    // The certificates of the web config in force (after looking for changed files).
                    let Some(config) = server.web().and_then(|w| w.tls()) else { return };
                    match tokio::time::timeout(server.limits.header_read_timeout, handshake(stream, config)).await {
                        Ok(Ok(stream)) => {
                            let io = WriteDeadline::new(stream, server.limits.write_timeout);
                            serve_connection(TokioIo::new(io), server, watcher).await
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
    }
    Ok(())
}

/// One HTTP/1.1 connection, plain or TLS, until it closes or the server shuts down.
async fn serve_connection<I>(io: TokioIo<I>, server: Arc<Server>, watcher: Watcher)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let header_read_timeout = server.limits.header_read_timeout;
    let service = service_fn(move |req: Request<Incoming>| {
        let server = server.clone();
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
