//! The HTTP endpoint: `/metrics` from the published snapshots, `/healthz`, `/ready`, and a landing
//! page. Nothing here waits on a source. With a web config file: TLS, basic auth on every path and
//! extra response headers (see [`super::web_config`]).

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ACCEPT, ACCEPT_ENCODING, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::Watcher;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::text::{Format, encode};
use super::web_config::{REALM, WebConfigWatch};
use crate::state::{Family, State};

/// Families the HTTP layer adds itself (build info, start time).
pub struct Server {
    pub state: Arc<State>,
    pub static_families: Vec<Family>,
    /// TLS, basic auth and headers; `None`: plain HTTP, open.
    pub web: Option<Arc<WebConfigWatch>>,
}

/// How long a client has to send its request headers, and to finish a TLS handshake.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

const LANDING: &str = "<!doctype html><html><head><title>integration-exporter</title></head><body>\
<h1>integration-exporter</h1><ul><li><a href=\"/metrics\">/metrics</a></li>\
<li><a href=\"/healthz\">/healthz</a></li><li><a href=\"/ready\">/ready</a></li></ul></body></html>\n";

impl Server {
    /// [`Server::handle`] behind the web config: basic auth when it has users, its headers on
    /// every answer, 500 while the file does not load.
    pub async fn respond(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        let Some(web) = &self.web else {
            return self.handle(req);
        };
        let config = match web.current() {
            Ok(c) => c,
            Err(_) => return plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n"),
        };
        let mut response = if !config.requires_auth() || web.authorized(&config, req.headers().get(AUTHORIZATION)).await
        {
            self.handle(req)
        } else {
            let mut r = plain(StatusCode::UNAUTHORIZED, "Unauthorized\n");
            if let Ok(challenge) = hyper::header::HeaderValue::try_from(format!("Basic realm=\"{REALM}\"")) {
                r.headers_mut().insert(WWW_AUTHENTICATE, challenge);
            }
            r
        };
        for (name, value) in &config.headers {
            response.headers_mut().insert(name.clone(), value.clone());
        }
        response
    }

    pub fn handle(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
        }
        match req.uri().path() {
            "/metrics" => self.metrics(req),
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
                .body(Full::new(Bytes::from_static(LANDING.as_bytes())))
                .unwrap_or_default(),
            _ => plain(StatusCode::NOT_FOUND, "not found\n"),
        }
    }

    fn metrics(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        let header = |name| req.headers().get(name).and_then(|v: &hyper::header::HeaderValue| v.to_str().ok());
        let format = Format::negotiate(header(ACCEPT));
        let mut families = self.state.gather();
        families.extend(self.static_families.iter().cloned());
        families.sort_by(|a, b| a.name.cmp(&b.name));
        let body = encode(&families, format);
        let gzip = header(ACCEPT_ENCODING).is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
        let builder = Response::builder().header(CONTENT_TYPE, format.content_type());
        if gzip {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            if encoder.write_all(body.as_bytes()).is_ok()
                && let Ok(compressed) = encoder.finish()
            {
                return builder
                    .header(CONTENT_ENCODING, "gzip")
                    .body(Full::new(Bytes::from(compressed)))
                    .unwrap_or_default();
            }
        }
        builder.body(Full::new(Bytes::from(body))).unwrap_or_default()
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
    let tls = server.web.clone().filter(|w| w.tls_listener());
    tokio::pin!(shutdown);
    loop {
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
                match &tls {
                    None => {
                        tokio::spawn(serve_connection(TokioIo::new(stream), server, watcher));
                    }
                    Some(web) => {
                        let config = web.tls();
                        tokio::spawn(async move {
                            let Some(config) = config else { return };
                            match tokio::time::timeout(HEADER_READ_TIMEOUT, handshake(stream, config)).await {
                                Ok(Ok(stream)) => serve_connection(TokioIo::new(stream), server, watcher).await,
                                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                            }
                        });
                    }
                }
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
    let service = service_fn(move |req: Request<Incoming>| {
        let server = server.clone();
        async move { Ok::<_, Infallible>(server.respond(&req).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
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
