//! HTTP source: each enabled HTTP signal polls its JSON endpoint on its own interval (one request
//! at a time, the whole exchange, token refresh included, bounded by the signal's timeout) and
//! publishes the numbers picked from the answer by path, plus the `up` and `duration` probes. A
//! failing endpoint only affects its own signal; its last JSON values are served for three
//! intervals, then dropped, while the health metrics are always published so a blind signal shows:
//!
//! - `integration_exporter_http_up` is 1 when the endpoint answered 2xx within the timeout;
//! - `integration_exporter_http_errors_total{kind}` counts failed polls by why: `connect`,
//!   `timeout`, `auth` (401/403, or no token to send), `status` (other non-2xx), `body` (not
//!   JSON), `path` (a value missing from a 2xx answer: up, but that value is blind) and `limit`
//!   (series dropped for the per-value bound);
//! - `integration_exporter_http_last_success_timestamp_seconds` moves only when a poll worked and
//!   read every value, so "no success for N minutes" covers missing values too;
//! - per value (`metric`), `integration_exporter_http_value_errors_total{kind=path|limit}` and
//!   `integration_exporter_http_value_last_read_timestamp_seconds`: a path gone from the answer
//!   blinds that value only, and the alerts of the values still read must stay armed.

mod auth;
mod path;
mod settings;
mod values;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value as Json;

pub use auth::header_value;
pub use path::{Filter, PathError};
pub use values::{CompiledValue, MAX_LABEL_BYTES, MAX_SERIES_PER_VALUE};

use crate::self_metrics::{self, SelfMetric};
use crate::sources::health::{ErrorKind, PollHealth};
use crate::sources::poll::{self, FailureLog, Poll};
use crate::spec::{HttpAuth, HttpSource, LabelDef, MetricType, Model, OAuthRefresh, ResolvedSignal, Source};
use crate::state::{Family, State};
use auth::Env;
use values::{Labels, Probe};

/// The kind's name: producers are `http:<signal id>`.
pub const KIND: &str = "http";

/// Bodies larger than this are not read (a metrics endpoint answers a few kilobytes).
const MAX_BODY_BYTES: usize = 8 << 20;

/// Why a poll failed; exported as the `kind` label of the error counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum HttpErrorKind {
    /// No answer at all: refused, DNS, TLS, connection reset, invalid URL.
    Connect,
    /// No complete answer within the timeout.
    Timeout,
    /// 401 or 403, a token that cannot be read, or a token refresh that failed.
    Auth,
    /// The answer's status was not 2xx (and not 401/403).
    Status,
    /// The body could not be read or is not JSON.
    Body,
    /// A value is missing from the JSON, does not hold a number, or its `minus` leaves the
    /// finite range (no +Inf, -Inf or NaN is ever exported).
    Path,
    /// A value made more series than allowed; the rest were dropped.
    Limit,
}

impl ErrorKind for HttpErrorKind {
    const ALL: &'static [HttpErrorKind] =
        &[Self::Connect, Self::Timeout, Self::Auth, Self::Status, Self::Body, Self::Path, Self::Limit];

    fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::Auth => "auth",
            Self::Status => "status",
            Self::Body => "body",
            Self::Path => "path",
            Self::Limit => "limit",
        }
    }
}

type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// What one request gave.
#[derive(Debug)]
struct Answer {
    up: bool,
    duration: f64,
    error: Option<HttpErrorKind>,
    doc: Option<Json>,
    /// Why the exchange failed, safe to log: names a variable, a file, a status, an OS error or a
    /// place in the body, never a secret or the body itself.
    note: Option<String>,
}

/// Per-signal state beyond the common health: the JSON values last read, and whether the
/// current failure was already logged.
#[derive(Debug, Default, Clone)]
struct HttpHealth {
    poll: PollHealth<HttpErrorKind>,
    /// JSON values by metric: last samples and when they were read.
    last: BTreeMap<String, (Vec<(Labels, f64)>, Instant)>,
    failures: FailureLog,
    /// OAuth token refreshes by result (`ok`, `failed`).
    refreshes: BTreeMap<&'static str, u64>,
    /// Per JSON value, by metric: answers it could not be read from, and when it last was.
    values: BTreeMap<String, ValueHealth>,
    /// The last poll's failure: its kinds and why, safe to show.
    last_failure: Option<String>,
}

/// One JSON value's own health.
#[derive(Debug, Default, Clone)]
struct ValueHealth {
    /// Answers the value could not be read from (fully), by kind (`path`, `limit`).
    errors: BTreeMap<&'static str, u64>,
    /// When it was last read in full, in unix seconds.
    last_read: Option<f64>,
}

/// The kinds of `integration_exporter_http_value_errors_total`, all exported from the start.
const VALUE_ERROR_KINDS: [HttpErrorKind; 2] = [HttpErrorKind::Path, HttpErrorKind::Limit];

const REFRESHES: SelfMetric = self_metrics::HTTP_TOKEN_REFRESHES;

/// Why an exchange failed, with a note that is safe to log.
type Failure = (HttpErrorKind, String);

/// The request could not be made from the spec (a header the client refuses).
fn unbuildable() -> Failure {
    (HttpErrorKind::Connect, "the request cannot be built from the spec".to_string())
}

/// An error and its sources, outermost first ("client error (Connect): tcp connect error:
/// Connection refused (os error 111)"); the client's errors name no URL, header or body.
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let more = e.to_string();
        if !text.ends_with(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = e.source();
    }
    text
}

/// One HTTP signal's poller: the client, the header templates and what the last polls gave.
pub struct HttpPoller {
    id: String,
    source: HttpSource,
    metrics: Vec<(String, String, Vec<String>)>,
    values: Vec<CompiledValue>,
    /// How long a value read is served through failures.
    kept_for: Duration,
    timeout: Duration,
    uri: Result<hyper::Uri, String>,
    /// Header names and their specs; `env:`/`file:` parts are read before every request.
    headers: Vec<(HeaderName, String)>,
    env: Box<Env>,
    client: Result<HttpsClient, String>,
    /// The OAuth access token, kept until the endpoint answers 401.
    access_token: Option<String>,
    health: HttpHealth,
}

impl HttpPoller {
    /// The poller of an HTTP signal (`None` for a signal of another kind). Nothing here fails: a
    /// bad URL or a missing secret is logged and shows up as errors of the signal.
    pub fn new(signal: &ResolvedSignal) -> Option<HttpPoller> {
        Self::with_env(signal, |name| std::env::var(name).ok())
    }

    /// [`HttpPoller::new`] reading `env:` secrets through `env` instead of the environment.
    pub fn with_env(
        signal: &ResolvedSignal,
        env: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Option<HttpPoller> {
        let (Source::Http(source), Some(schedule)) = (&signal.signal.source, signal.schedule()) else {
            return None;
        };
        let id = signal.signal.id.clone();
        let source = source.clone();
        let uri = source.url.parse::<hyper::Uri>().map_err(|e| format!("invalid url: {e}"));
        if let Err(e) = &uri {
            tracing::warn!(signal = %id, error = %e, "HTTP signal has an invalid url");
        }
        let mut headers = Vec::new();
        for (name, spec) in &source.headers {
            match HeaderName::from_bytes(name.as_bytes()) {
                Ok(header) => headers.push((header, spec.clone())),
                Err(_) => tracing::warn!(signal = %id, header = %name, "invalid header name; header not sent"),
            }
        }
        let client = build_client(schedule.timeout.0);
        if let Err(e) = &client {
            tracing::warn!(signal = %id, error = %e, "cannot build the HTTPS client");
        }
        let declared = |metric: &str| -> Vec<LabelDef> {
            signal.signal.metrics.iter().find(|m| m.name == metric).map(|m| m.labels.clone()).unwrap_or_default()
        };
        let values: Vec<CompiledValue> =
            source.values.iter().map(|v| CompiledValue::new(v, &declared(&v.metric))).collect();
        for value in &values {
            if let Some(e) = value.error() {
                tracing::warn!(signal = %id, error = %e, "HTTP value cannot be read");
            }
        }
        let metrics = signal
            .signal
            .metrics
            .iter()
            .map(|m| (m.name.clone(), m.help.clone(), m.labels.iter().map(|l| l.name().to_string()).collect()))
            .collect();
        let mut health = HttpHealth::default();
        for value in values.iter().filter(|v| v.probe().is_none()) {
            health.values.entry(value.metric.clone()).or_default();
        }
        Some(HttpPoller {
            id,
            source,
            metrics,
            values,
            kept_for: poll::kept_for(schedule.interval.0),
            timeout: schedule.timeout.0,
            uri,
            headers,
            env: Box::new(env),
            client,
            access_token: None,
            health,
        })
    }

    fn needs_body(&self) -> bool {
        self.values.iter().any(|v| v.probe().is_none())
    }

    /// The configured headers with their secrets read; a header whose secret cannot be read is
    /// left out. Problems with headers go to `notes` (they explain a 401 that follows).
    async fn header_values(&self, notes: &mut Vec<String>) -> Vec<(HeaderName, HeaderValue)> {
        let mut out = Vec::new();
        for (name, spec) in &self.headers {
            let value = match header_value(spec, &*self.env).await {
                Ok(value) => value,
                Err(why) => {
                    notes.push(format!("header {name} not sent: {why}"));
                    continue;
                }
            };
            let Ok(mut value) = HeaderValue::from_str(&value) else {
                notes.push(format!("header {name} not sent: not a valid header value"));
                continue;
            };
            value.set_sensitive(spec.contains("env:") || spec.contains("file:"));
            out.push((name.clone(), value));
        }
        out
    }

    /// The request with `headers` (from [`Self::header_values`]) and the bearer token.
    fn request(
        &self,
        uri: &hyper::Uri,
        headers: &[(HeaderName, HeaderValue)],
        bearer: Option<&str>,
    ) -> Option<Request<Full<Bytes>>> {
        let mut request = Request::get(uri.clone());
        for (name, value) in headers {
            request = request.header(name, value.clone());
        }
        if let Some(token) = bearer {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
            value.set_sensitive(true);
            request = request.header(hyper::header::AUTHORIZATION, value);
        }
        if !self.headers.iter().any(|(n, _)| n == hyper::header::ACCEPT) {
            request = request.header(hyper::header::ACCEPT, "application/json");
        }
        if !self.headers.iter().any(|(n, _)| n == hyper::header::USER_AGENT) {
            request = request.header(hyper::header::USER_AGENT, user_agent());
        }
        request.body(Full::new(Bytes::new())).ok()
    }

    /// One request: its status and its whole body (a half answer is no answer, also for probes).
    async fn send(
        &self,
        client: &HttpsClient,
        request: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Result<Bytes, String>), Failure> {
        let response = client.request(request).await.map_err(|e| (HttpErrorKind::Connect, causes(&e)))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_BODY_BYTES).collect().await;
        let body = body.map(|b| b.to_bytes()).map_err(|e| match e.is::<LengthLimitError>() {
            true => format!("it is larger than {MAX_BODY_BYTES} bytes"),
            false => causes(&*e),
        });
        Ok((status, body))
    }

    /// A new access token from the token endpoint; every failure is an `auth` failure.
    async fn refresh(&mut self, client: &HttpsClient, oauth: &OAuthRefresh) -> Result<String, Failure> {
        let result = self.try_refresh(client, oauth).await;
        let key = if result.is_ok() { "ok" } else { "failed" };
        *self.health.refreshes.entry(key).or_default() += 1;
        let token = result.map_err(|note| (HttpErrorKind::Auth, note))?;
        self.access_token = Some(token.clone());
        Ok(token)
    }

    async fn try_refresh(&self, client: &HttpsClient, oauth: &OAuthRefresh) -> Result<String, String> {
        let env = &*self.env;
        let client_id = auth::resolve(&oauth.client_id, env).await?;
        let secret = match oauth.client_secret.as_deref() {
            Some(secret) => Some(auth::resolve(secret, env).await?),
            None => None,
        };
        let refresh_token = auth::resolve(&oauth.refresh_token, env).await?;
        let form = auth::refresh_form(&client_id, secret.as_deref(), &refresh_token);
        let uri = oauth.token_url.parse::<hyper::Uri>().map_err(|_| "the token url is not valid".to_string())?;
        let request = Request::post(uri)
            .header(hyper::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(hyper::header::ACCEPT, "application/json")
            .header(hyper::header::USER_AGENT, user_agent())
            .body(Full::new(Bytes::from(form)))
            .map_err(|_| "the token request cannot be built".to_string())?;
        let (status, body) =
            self.send(client, request).await.map_err(|(_, why)| format!("the token endpoint did not answer: {why}"))?;
        if !status.is_success() {
            return Err(format!("the token endpoint answered {}", status.as_u16()));
        }
        let doc: Json = body
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| "the token endpoint's answer is not JSON".to_string())?;
        match doc.get("access_token").and_then(Json::as_str) {
            Some(token) if !token.is_empty() && HeaderValue::from_str(&format!("Bearer {token}")).is_ok() => {
                Ok(token.to_string())
            }
            _ => Err("the token endpoint's answer has no usable access_token".to_string()),
        }
    }

    /// Authenticates, sends, and on a 401 with a kept OAuth token refreshes once and resends.
    async fn exchange(&mut self) -> Result<Bytes, Failure> {
        let uri = self.uri.clone().map_err(|e| (HttpErrorKind::Connect, e))?;
        let client = self.client.clone().map_err(|e| (HttpErrorKind::Connect, e))?;
        let oauth = match &self.source.auth {
            Some(HttpAuth::OauthRefresh(o)) => Some(o.clone()),
            _ => None,
        };
        let (bearer, kept) = match (&self.source.auth, &oauth) {
            (Some(HttpAuth::Bearer(token)), _) => {
                (Some(auth::resolve(token, &*self.env).await.map_err(|e| (HttpErrorKind::Auth, e))?), false)
            }
            (_, Some(o)) => match self.access_token.clone() {
                Some(token) => (Some(token), true),
                None => (Some(self.refresh(&client, o).await?), false),
            },
            _ => (None, false),
        };
        let mut notes = Vec::new();
        let headers = self.header_values(&mut notes).await;
        let request = self.request(&uri, &headers, bearer.as_deref()).ok_or_else(unbuildable)?;
        let (mut status, mut body) = self.send(&client, request).await?;
        if status == StatusCode::UNAUTHORIZED
            && let Some(o) = &oauth
        {
            // The kept token expired (or was revoked): one refresh, one retry. A 401 right after
            // a refresh is not retried, so a wrong grant cannot loop.
            self.access_token = None;
            if kept {
                let token = self.refresh(&client, o).await?;
                let request = self.request(&uri, &headers, Some(&token)).ok_or_else(unbuildable)?;
                (status, body) = self.send(&client, request).await?;
                if status == StatusCode::UNAUTHORIZED {
                    self.access_token = None;
                }
            }
        }
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            notes.insert(0, format!("the endpoint answered {}", status.as_u16()));
            return Err((HttpErrorKind::Auth, notes.join("; ")));
        }
        if !status.is_success() {
            return Err((HttpErrorKind::Status, format!("the endpoint answered {}", status.as_u16())));
        }
        body.map_err(|why| (HttpErrorKind::Body, format!("the answer could not be read: {why}")))
    }

    async fn fetch(&mut self) -> Answer {
        let started = Instant::now();
        let timeout = self.timeout;
        let result = tokio::time::timeout(timeout, self.exchange()).await;
        let duration = started.elapsed().as_secs_f64();
        let failed = |error: HttpErrorKind, note: Option<String>| Answer {
            up: false,
            duration,
            error: Some(error),
            doc: None,
            note,
        };
        match result {
            Err(_) => failed(HttpErrorKind::Timeout, Some(format!("no complete answer within {timeout:?}"))),
            Ok(Err((kind, note))) => failed(kind, Some(note)),
            Ok(Ok(body)) if self.needs_body() => match serde_json::from_slice::<Json>(&body) {
                Ok(doc) => Answer { up: true, duration, error: None, doc: Some(doc), note: None },
                // Where, not what: the message of a JSON error can quote the body.
                Err(e) => Answer {
                    up: true,
                    duration,
                    error: Some(HttpErrorKind::Body),
                    doc: None,
                    note: Some(format!("the answer is not JSON (line {}, column {})", e.line(), e.column())),
                },
            },
            Ok(Ok(_)) => Answer { up: true, duration, error: None, doc: None, note: None },
        }
    }

    /// Why the last poll failed (`connect: ...`, `status: the endpoint answered 503`), with
    /// nothing secret in it; `None` after a poll that worked.
    pub fn last_failure(&self) -> Option<&str> {
        self.health.last_failure.as_deref()
    }

    /// Polls once and returns the families to publish.
    pub async fn poll(&mut self) -> Vec<Family> {
        let answer = self.fetch().await;
        self.apply(answer)
    }

    fn apply(&mut self, answer: Answer) -> Vec<Family> {
        let now = Instant::now();
        let health = &mut self.health;
        let mut errors: Vec<HttpErrorKind> = answer.error.into_iter().collect();
        let mut reasons: Vec<String> = answer.note.into_iter().collect();
        let mut probes: BTreeMap<&str, f64> = BTreeMap::new();
        let mut missing: Vec<&str> = Vec::new();
        for value in &self.values {
            match value.probe() {
                Some(Probe::Up) => {
                    probes.insert(&value.metric, if answer.up { 1.0 } else { 0.0 });
                }
                Some(Probe::Duration) => {
                    probes.insert(&value.metric, answer.duration);
                }
                None => {
                    let Some(doc) = &answer.doc else { continue };
                    let read = value.read(doc);
                    let own = health.values.entry(value.metric.clone()).or_default();
                    for (failed, kind) in [(read.missing, HttpErrorKind::Path), (read.over_limit, HttpErrorKind::Limit)]
                    {
                        if failed {
                            *own.errors.entry(kind.as_str()).or_default() += 1;
                        }
                    }
                    if !read.missing && !read.over_limit {
                        own.last_read = Some(crate::sources::unix_now());
                    }
                    if read.missing {
                        missing.push(&value.metric);
                        if !errors.contains(&HttpErrorKind::Path) {
                            errors.push(HttpErrorKind::Path);
                            reasons.push("a value's path is missing from the answer or holds no number".into());
                        }
                        if read.not_finite {
                            reasons.push(format!("`{}` - `minus` gives no finite number", value.metric));
                        }
                    }
                    if read.over_limit && !errors.contains(&HttpErrorKind::Limit) {
                        errors.push(HttpErrorKind::Limit);
                        reasons.push("a value made more series than its limit; the rest were dropped".into());
                    }
                    // A value read in part (some items lacked it) still publishes what it read;
                    // a value not read at all keeps its last samples through a short blip.
                    if !read.samples.is_empty() || !read.missing {
                        health.last.insert(value.metric.clone(), (read.samples, now));
                    }
                }
            }
        }
        if errors.is_empty() {
            health.poll.succeeded(answer.duration);
            health.last_failure = None;
        } else {
            health.poll.failed(&errors, answer.duration);
            let kinds: Vec<&str> = errors.iter().map(|k| k.as_str()).collect();
            health.last_failure = Some(format!("{}: {}", kinds.join(","), reasons.join("; ")));
        }
        // `up` is about the answer itself: a path missing from a 2xx answer is an error, not down.
        health.poll.ok = answer.up;
        if errors.is_empty() {
            if health.failures.succeeded() {
                tracing::info!(signal = %self.id, "endpoint answers again");
            }
        } else if health.failures.failed() {
            let kinds: Vec<&str> = errors.iter().map(|k| k.as_str()).collect();
            // Metric names and notes name variables, files and statuses; never a secret or a body.
            tracing::warn!(
                signal = %self.id,
                kind = %kinds.join(","),
                missing_values = %missing.join(","),
                reason = %reasons.join("; "),
                "HTTP poll failed"
            );
        }
        // Keep serving values through a short blip; past that they would be lies.
        let keep = self.kept_for;
        health.last.retain(|_, (_, at)| now.duration_since(*at) <= keep);

        let mut families = Vec::new();
        for (name, help, _labels) in &self.metrics {
            if let Some(v) = probes.get(name.as_str()) {
                families.push(Family::new(name, help, MetricType::Gauge).with(&[], *v));
            } else if let Some((samples, _)) = health.last.get(name) {
                let mut family = Family::new(name, help, MetricType::Gauge);
                for (labels, v) in samples {
                    let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                    family.push(&labels, *v);
                }
                families.push(family);
            }
        }
        families.extend(self.health_families());
        families
    }

    fn health_families(&self) -> Vec<Family> {
        let mut families = self.health.poll.families(&self_metrics::HTTP_HEALTH, &self.id);
        if !self.health.values.is_empty() {
            let mut errors = self_metrics::HTTP_VALUE_ERRORS.family();
            let mut last_read = self_metrics::HTTP_VALUE_LAST_READ.family();
            for (metric, value) in &self.health.values {
                for kind in VALUE_ERROR_KINDS.map(HttpErrorKind::as_str) {
                    let count = *value.errors.get(kind).unwrap_or(&0) as f64;
                    errors.push(&[("signal", &self.id), ("metric", metric), ("kind", kind)], count);
                }
                if let Some(ts) = value.last_read {
                    last_read.push(&[("signal", &self.id), ("metric", metric)], ts);
                }
            }
            families.push(errors);
            if !last_read.samples.is_empty() {
                families.push(last_read);
            }
        }
        if matches!(self.source.auth, Some(HttpAuth::OauthRefresh(_))) {
            let mut refreshes = REFRESHES.family();
            for result in ["ok", "failed"] {
                let count = *self.health.refreshes.get(result).unwrap_or(&0) as f64;
                refreshes.push(&[("signal", &self.id), ("result", result)], count);
            }
            families.push(refreshes);
        }
        families
    }
}

fn user_agent() -> &'static str {
    concat!("integration-exporter/", env!("CARGO_PKG_VERSION"))
}

fn build_client(timeout: Duration) -> Result<HttpsClient, String> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(timeout));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
        .map_err(|e| e.to_string())?
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(90)).build(https))
}

impl Poll for HttpPoller {
    async fn poll(&mut self) -> Vec<Family> {
        HttpPoller::poll(self).await
    }

    fn initial(&self) -> Vec<Family> {
        self.health_families()
    }
}

/// Starts one task per enabled HTTP signal. Each waits for its own previous poll before the next.
pub fn spawn_all(model: &Model, state: Arc<State>) -> Vec<tokio::task::JoinHandle<()>> {
    let pollers =
        model.enabled_signals().filter_map(|signal| Some((signal, signal.schedule()?, HttpPoller::new(signal)?)));
    pollers
        .enumerate()
        .map(|(n, (signal, schedule, poller))| poll::spawn(KIND, signal, schedule, n, state.clone(), poller))
        .collect()
}

/// [`spawn_all`] through the kinds' registry.
pub fn start(start: &super::Start<'_>) -> Result<super::Workers, super::StartError> {
    Ok(super::Workers { tasks: spawn_all(start.model, start.state.clone()), threads: Vec::new() })
}
