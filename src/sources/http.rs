//! HTTP source: each enabled HTTP signal polls its JSON endpoint on its own interval (one request
//! at a time, the whole request bounded by the signal's timeout) and publishes the numbers picked
//! from the answer by path, plus the `up` and `duration` probes. A failing endpoint only affects
//! its own signal; its last JSON values are served for three intervals, then dropped, while `up`
//! is always published so a down endpoint can alert.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::Request;
use hyper::header::{HeaderName, HeaderValue};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value as Json;

use crate::sources::health::{ErrorKind, HealthMetrics, KEEP_VALUES_FOR_INTERVALS, PollHealth};
use crate::spec::{HttpSource, MetricType, Model, ResolvedSignal, Source};
use crate::state::{Family, State};

/// Bodies larger than this are not read (a metrics endpoint answers a few kilobytes).
const MAX_BODY_BYTES: usize = 8 << 20;

/// Why a poll failed; exported as the `kind` label of the error counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum HttpErrorKind {
    /// No answer at all: refused, DNS, TLS, connection reset, invalid URL.
    Connect,
    /// No complete answer within the timeout.
    Timeout,
    /// The answer's status was not 2xx.
    Status,
    /// The body could not be read or is not JSON.
    Body,
    /// A path is missing from the JSON, or does not hold a number.
    Path,
}

impl ErrorKind for HttpErrorKind {
    const ALL: &'static [HttpErrorKind] = &[Self::Connect, Self::Timeout, Self::Status, Self::Body, Self::Path];

    fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::Status => "status",
            Self::Body => "body",
            Self::Path => "path",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Paths

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// Parses `.a.b[0].c`, `.["weird key"]`, `.a["b"][2]`; `.` alone is the whole document.
pub fn parse_path(path: &str) -> Result<Vec<Step>, String> {
    let bad = |why: &str| format!("path `{path}`: {why}");
    let rest = path.strip_prefix('.').ok_or_else(|| bad("starts with `.`"))?;
    let chars: Vec<char> = rest.chars().collect();
    let mut steps = Vec::new();
    let mut i = 0;
    // Right after a `.`, a key (or a bracket) is expected; `.` alone is the root.
    let mut after_dot = true;
    while i < chars.len() {
        match chars[i] {
            '[' => {
                i += 1;
                if chars.get(i) == Some(&'"') {
                    i += 1;
                    let mut key = String::new();
                    loop {
                        match chars.get(i) {
                            None => return Err(bad("unterminated string")),
                            Some('\\') => {
                                let next = chars.get(i + 1).ok_or_else(|| bad("unterminated string"))?;
                                key.push(*next);
                                i += 2;
                            }
                            Some('"') => {
                                i += 1;
                                break;
                            }
                            Some(c) => {
                                key.push(*c);
                                i += 1;
                            }
                        }
                    }
                    if chars.get(i) != Some(&']') {
                        return Err(bad("expected `]`"));
                    }
                    steps.push(Step::Key(key));
                } else {
                    let start = i;
                    while chars.get(i).is_some_and(char::is_ascii_digit) {
                        i += 1;
                    }
                    if start == i || chars.get(i) != Some(&']') {
                        return Err(bad("an index is `[N]`, a quoted key `[\"key\"]`"));
                    }
                    let digits: String = chars[start..i].iter().collect();
                    let index = digits.parse::<usize>().map_err(|_| bad("index too large"))?;
                    steps.push(Step::Index(index));
                }
                i += 1;
                after_dot = false;
            }
            '.' if !after_dot => {
                i += 1;
                after_dot = true;
                if i == chars.len() {
                    return Err(bad("ends with `.`"));
                }
            }
            c if after_dot && (c.is_alphanumeric() || c == '_' || c == '-' || c == '$' || c == '@') => {
                let start = i;
                while chars.get(i).is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '$' | '@')) {
                    i += 1;
                }
                steps.push(Step::Key(chars[start..i].iter().collect()));
                after_dot = false;
            }
            c => return Err(bad(&format!("unexpected `{c}`; quote odd keys as `.[\"key\"]`"))),
        }
    }
    Ok(steps)
}

/// The value at `steps`, if there is one.
pub fn walk<'a>(mut value: &'a Json, steps: &[Step]) -> Option<&'a Json> {
    for step in steps {
        value = match (step, value) {
            (Step::Key(k), Json::Object(map)) => map.get(k)?,
            (Step::Index(i), Json::Array(items)) => items.get(*i)?,
            _ => return None,
        };
    }
    Some(value)
}

/// Numbers, numeric strings and booleans become numbers; anything else is not one.
pub fn as_number(value: &Json) -> Option<f64> {
    match value {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => s.trim().parse::<f64>().ok(),
        Json::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        _ => None,
    }
    .filter(|v| v.is_finite())
}

/// The number at `path` in `doc` (a path that does not parse holds nothing).
pub fn lookup(doc: &Json, path: &str) -> Option<f64> {
    let steps = parse_path(path).ok()?;
    walk(doc, &steps).and_then(as_number)
}

// ---------------------------------------------------------------------------------------------
// Headers

/// Fills a header value: `env:NAME` is the variable's value, `Scheme env:NAME` (e.g.
/// `Bearer env:SF_ACCESS_TOKEN`) the scheme, a space and the variable's value; anything else is
/// taken literally. `Err` names the missing variable, never a value.
pub fn header_value(spec: &str, env: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let (prefix, var) = match spec.strip_prefix("env:") {
        Some(var) => ("", var),
        None => match spec.split_once(" env:") {
            Some((scheme, var)) if !scheme.is_empty() && !scheme.contains(' ') => (scheme, var),
            _ => return Ok(spec.to_string()),
        },
    };
    let var = var.trim();
    let value = env(var).ok_or_else(|| var.to_string())?;
    Ok(if prefix.is_empty() { value } else { format!("{prefix} {value}") })
}

// ---------------------------------------------------------------------------------------------
// Polling

type HttpsClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// What one request gave.
#[derive(Debug)]
struct Answer {
    up: bool,
    duration: f64,
    error: Option<HttpErrorKind>,
    doc: Option<Json>,
}

/// Per-signal state beyond the common health: the JSON values last read, and whether the
/// current failure was already logged.
#[derive(Debug, Default, Clone)]
struct HttpHealth {
    poll: PollHealth<HttpErrorKind>,
    /// JSON-path metrics: last value and when it was read.
    last: BTreeMap<String, (f64, Instant)>,
    logged_failure: bool,
}

const HEALTH: HealthMetrics = HealthMetrics {
    ok: ("integration_exporter_http_up", "1 if the endpoint answered 2xx within the timeout at the last poll."),
    duration: ("integration_exporter_http_duration_seconds", "Duration of the last poll of the endpoint."),
    last_success: (
        "integration_exporter_http_last_success_timestamp_seconds",
        "When a poll of the endpoint last fully succeeded, in unix seconds.",
    ),
    errors: (
        "integration_exporter_http_errors_total",
        "Failed HTTP polls, by kind (connect, timeout, status, body, path).",
    ),
};

/// One HTTP signal's poller: the client, the filled-in headers and what the last polls gave.
pub struct HttpPoller {
    id: String,
    source: HttpSource,
    metrics: Vec<(String, String)>,
    interval: Duration,
    timeout: Duration,
    uri: Result<hyper::Uri, String>,
    headers: Vec<(HeaderName, HeaderValue)>,
    client: Result<HttpsClient, String>,
    health: HttpHealth,
}

impl HttpPoller {
    /// Builds the poller; headers' `env:` variables are read here, once. Nothing here fails: a
    /// bad URL or a missing variable is logged and shows up as errors of the signal.
    pub fn new(signal: &ResolvedSignal) -> HttpPoller {
        Self::with_env(signal, |name| std::env::var(name).ok())
    }

    pub fn with_env(signal: &ResolvedSignal, env: impl Fn(&str) -> Option<String>) -> HttpPoller {
        let id = signal.signal.id.clone();
        let source = match &signal.signal.source {
            Source::Http(http) => http.clone(),
            _ => HttpSource {
                url: String::new(),
                headers: BTreeMap::new(),
                interval: None,
                timeout: None,
                values: Vec::new(),
            },
        };
        let uri = source.url.parse::<hyper::Uri>().map_err(|e| format!("invalid url: {e}"));
        if let Err(e) = &uri {
            tracing::warn!(signal = %id, error = %e, "HTTP signal has an invalid url");
        }
        let mut headers = Vec::new();
        for (name, spec) in &source.headers {
            let Ok(header) = HeaderName::from_bytes(name.as_bytes()) else {
                tracing::warn!(signal = %id, header = %name, "invalid header name; header not sent");
                continue;
            };
            match header_value(spec, &env) {
                Err(var) => {
                    tracing::warn!(signal = %id, header = %name, variable = %var, "environment variable is not set; header not sent");
                }
                Ok(value) => match HeaderValue::from_str(&value) {
                    Ok(mut v) => {
                        v.set_sensitive(spec.contains("env:"));
                        headers.push((header, v));
                    }
                    Err(_) => {
                        tracing::warn!(signal = %id, header = %name, "header value is not valid; header not sent")
                    }
                },
            }
        }
        let client = build_client(signal.timeout.0);
        if let Err(e) = &client {
            tracing::warn!(signal = %id, error = %e, "cannot build the HTTPS client");
        }
        let metrics = signal.signal.metrics.iter().map(|m| (m.name.clone(), m.help.clone())).collect();
        HttpPoller {
            id,
            source,
            metrics,
            interval: signal.interval.0,
            timeout: signal.timeout.0,
            uri,
            headers,
            client,
            health: HttpHealth::default(),
        }
    }

    fn needs_body(&self) -> bool {
        self.source.values.iter().any(|v| !matches!(v.path.as_str(), "up" | "duration"))
    }

    async fn fetch(&self) -> Answer {
        let started = Instant::now();
        let (Ok(uri), Ok(client)) = (&self.uri, &self.client) else {
            return Answer { up: false, duration: 0.0, error: Some(HttpErrorKind::Connect), doc: None };
        };
        let mut request = Request::get(uri.clone());
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        if !self.headers.iter().any(|(n, _)| n == hyper::header::ACCEPT) {
            request = request.header(hyper::header::ACCEPT, "application/json");
        }
        if !self.headers.iter().any(|(n, _)| n == hyper::header::USER_AGENT) {
            request =
                request.header(hyper::header::USER_AGENT, concat!("integration-exporter/", env!("CARGO_PKG_VERSION")));
        }
        let Ok(request) = request.body(Empty::<Bytes>::new()) else {
            return Answer { up: false, duration: 0.0, error: Some(HttpErrorKind::Connect), doc: None };
        };
        let needs_body = self.needs_body();
        let exchange = async {
            let response = client.request(request).await.map_err(|_| HttpErrorKind::Connect)?;
            let status = response.status();
            // The whole body is read within the timeout, also for probes: a half answer is no answer.
            let body = Limited::new(response.into_body(), MAX_BODY_BYTES).collect().await;
            if !status.is_success() {
                return Err(HttpErrorKind::Status);
            }
            let body = body.map_err(|_| HttpErrorKind::Body)?.to_bytes();
            Ok(body)
        };
        let result = tokio::time::timeout(self.timeout, exchange).await;
        let duration = started.elapsed().as_secs_f64();
        match result {
            Err(_) => Answer { up: false, duration, error: Some(HttpErrorKind::Timeout), doc: None },
            Ok(Err(kind)) => Answer { up: false, duration, error: Some(kind), doc: None },
            Ok(Ok(body)) if needs_body => match serde_json::from_slice::<Json>(&body) {
                Ok(doc) => Answer { up: true, duration, error: None, doc: Some(doc) },
                Err(_) => Answer { up: true, duration, error: Some(HttpErrorKind::Body), doc: None },
            },
            Ok(Ok(_)) => Answer { up: true, duration, error: None, doc: None },
        }
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
        let mut probes: BTreeMap<&str, f64> = BTreeMap::new();
        for value in &self.source.values {
            match value.path.as_str() {
                "up" => {
                    probes.insert(&value.metric, if answer.up { 1.0 } else { 0.0 });
                }
                "duration" => {
                    probes.insert(&value.metric, answer.duration);
                }
                path => {
                    let Some(doc) = &answer.doc else { continue };
                    let picked = lookup(doc, path).and_then(|v| match &value.minus {
                        None => Some(v),
                        Some(minus) => lookup(doc, minus).map(|m| v - m),
                    });
                    match picked {
                        Some(v) => {
                            health.last.insert(value.metric.clone(), (v, now));
                        }
                        None => {
                            if !errors.contains(&HttpErrorKind::Path) {
                                errors.push(HttpErrorKind::Path);
                            }
                        }
                    }
                }
            }
        }
        if errors.is_empty() {
            health.poll.succeeded(answer.duration);
        } else {
            health.poll.failed(&errors, answer.duration);
        }
        // `up` is about the answer itself: a path missing from a 2xx answer is an error, not down.
        health.poll.ok = answer.up;
        if errors.is_empty() {
            if health.logged_failure {
                tracing::info!(signal = %self.id, "endpoint answers again");
            }
            health.logged_failure = false;
        } else if !health.logged_failure {
            let kinds: Vec<&str> = errors.iter().map(|k| k.as_str()).collect();
            tracing::warn!(signal = %self.id, kind = %kinds.join(","), "HTTP poll failed");
            health.logged_failure = true;
        }
        // Keep serving values through a short blip; past three intervals they would be lies.
        let keep = self.interval * KEEP_VALUES_FOR_INTERVALS;
        health.last.retain(|_, (_, at)| now.duration_since(*at) <= keep);

        let mut families = Vec::new();
        for (name, help) in &self.metrics {
            let value = probes.get(name.as_str()).copied().or_else(|| health.last.get(name).map(|(v, _)| *v));
            if let Some(v) = value {
                families.push(Family::new(name, help, MetricType::Gauge).with(&[], v));
            }
        }
        families.extend(health.poll.families(&HEALTH, &self.id));
        families
    }
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

/// Starts one task per enabled HTTP signal. Each waits for its own previous poll before the next.
pub fn spawn_all(model: &Model, state: Arc<State>) -> Vec<tokio::task::JoinHandle<()>> {
    let mut handles = Vec::new();
    for signal in model.enabled_signals().filter(|s| matches!(s.signal.source, Source::Http(_))).cloned() {
        let state = state.clone();
        // Registered before the task starts, so /ready cannot answer before the first poll.
        state.readiness.expect(&format!("http:{}", signal.signal.id));
        handles.push(tokio::spawn(async move {
            let producer = format!("http:{}", signal.signal.id);
            let mut poller = HttpPoller::new(&signal);
            state.publish(&producer, poller.health.poll.families(&HEALTH, &poller.id));
            // The spec rejects a zero interval; a zero here would panic tokio's interval.
            let mut ticker = tokio::time::interval(signal.interval.0.max(Duration::from_millis(10)));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let families = poller.poll().await;
                state.publish(&producer, families);
                state.readiness.done(&producer);
            }
        }));
    }
    handles
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn paths_parse_and_walk() {
        let doc: Json = serde_json::json!({
            "pending": 12, "a": {"b": [{"c": "3.5"}, {"c": true}]}, "weird key": {"x.y": 7}, "n": null
        });
        assert_eq!(lookup(&doc, ".pending"), Some(12.0));
        assert_eq!(lookup(&doc, ".a.b[0].c"), Some(3.5));
        assert_eq!(lookup(&doc, ".a.b[1].c"), Some(1.0));
        assert_eq!(lookup(&doc, ".[\"weird key\"][\"x.y\"]"), Some(7.0));
        assert_eq!(lookup(&doc, ".[\"weird key\"].[\"x.y\"]"), Some(7.0));
        assert_eq!(lookup(&doc, ".a.b[2].c"), None);
        assert_eq!(lookup(&doc, ".n"), None);
        assert_eq!(lookup(&doc, ".a"), None);
        assert_eq!(lookup(&serde_json::json!(4), "."), Some(4.0));
        for bad in ["pending", ".a..b", ".a.", ".a[x]", ".a[\"b", ".a[1", ".a b"] {
            assert!(parse_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn env_headers_name_the_variable_never_the_value() {
        let env = |name: &str| (name == "TOKEN").then(|| "s3cret".to_string());
        assert_eq!(header_value("env:TOKEN", env).as_deref(), Ok("s3cret"));
        assert_eq!(header_value("Bearer env:TOKEN", env).as_deref(), Ok("Bearer s3cret"));
        assert_eq!(header_value("plain", env).as_deref(), Ok("plain"));
        assert_eq!(header_value("Bearer env:MISSING", env), Err("MISSING".to_string()));
    }

    proptest! {
        #[test]
        fn path_walker_never_panics(path in ".{0,40}", key in "[a-z\\[\\]\"\\. ]{0,10}") {
            let doc = serde_json::json!({"a": [1, {"b": "2"}], key.clone(): {"c": [true]}});
            let _ = lookup(&doc, &path);
            let _ = lookup(&doc, &format!(".{key}"));
            let _ = lookup(&doc, &format!(".[\"{key}\"]"));
        }

        #[test]
        fn quoted_keys_round_trip(key in "[^\"\\\\]{0,20}") {
            let doc = serde_json::json!({key.clone(): 5});
            prop_assert_eq!(lookup(&doc, &format!(".[\"{key}\"]")), Some(5.0));
        }
    }
}
