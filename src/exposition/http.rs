//! The HTTP endpoint: `/metrics` from the published snapshots, `/healthz`, `/ready`, and a landing
//! page. Nothing here waits on a source.

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ACCEPT, ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use super::text::{Format, encode};
use crate::state::{Family, State};

/// Families the HTTP layer adds itself (build info, start time).
pub struct Server {
    pub state: Arc<State>,
    pub static_families: Vec<Family>,
}

const LANDING: &str = "<!doctype html><html><head><title>integration-exporter</title></head><body>\
<h1>integration-exporter</h1><ul><li><a href=\"/metrics\">/metrics</a></li>\
<li><a href=\"/healthz\">/healthz</a></li><li><a href=\"/ready\">/ready</a></li></ul></body></html>\n";

impl Server {
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

/// Serves until `shutdown` resolves, then lets open connections finish.
pub async fn serve(
    listener: TcpListener,
    server: Arc<Server>,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _peer): (_, SocketAddr) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let server = server.clone();
                let service = service_fn(move |req: Request<Incoming>| {
                    let response = server.handle(&req);
                    async move { Ok::<_, Infallible>(response) }
                });
                let conn = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10))
                    .serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
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
