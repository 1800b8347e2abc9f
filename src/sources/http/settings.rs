//! What the HTTP kind provides to the spec: a pack's parameters fill its URL, headers, value paths
//! and auth verbatim; secrets are references, never text; every value names a declared gauge and
//! has a path that parses. It is polled on a schedule.

use crate::self_metrics;
use crate::spec::pack::render_raw;
use crate::spec::source_kind::{PackParams, PolledKind, Problem, SourceSettings};
use crate::spec::{HttpAuth, HttpSource, MetricType, Model, PromDuration, Signal};

use super::CompiledValue;

/// How generated alerts and panels watch an endpoint.
static POLLED: PolledKind = PolledKind {
    health: &self_metrics::HTTP_HEALTH,
    ok_on_partial_answer: true,
    values: Some(&self_metrics::HTTP_VALUE_HEALTH),
    failing_alert: "IntegrationSourceHttpFailing",
    what: "endpoint",
    summary: "A signal's HTTP endpoint is failing, so its alerts cannot see.",
    checks: &[
        ("connect, timeout", "the service is up and reachable from the exporter's host, within the signal's timeout"),
        (
            "auth",
            "the answer was 401 or 403, the token could not be read, or its refresh failed: the token in the \
             header's `env:`/`file:` secret has expired or lost its rights (the exporter's log says which)",
        ),
        ("status", "the answer's HTTP status, in the exporter's log: the service answers but fails"),
        ("body", "the answer is not JSON (an error page, a proxy's login page): the exporter's log gives the position"),
    ],
    panel: (
        "HTTP endpoints up",
        "1 when the signal's endpoint answered 2xx within its timeout at the last poll, by signal (the worst instance). See `integration_exporter_http_errors_total` for why it did not.",
    ),
};

impl SourceSettings for HttpSource {
    fn kind(&self) -> &'static str {
        super::KIND
    }

    fn render(&mut self, pack: &PackParams<'_>) -> Vec<String> {
        let params = pack.params;
        self.url = render_raw(&self.url, params);
        for header in self.headers.values_mut() {
            *header = render_raw(header, params);
        }
        for value in &mut self.values {
            value.path = render_raw(&value.path, params);
            value.minus = value.minus.as_deref().map(|m| render_raw(m, params));
            value.each = value.each.as_deref().map(|m| render_raw(m, params));
            for label in value.labels.values_mut() {
                *label = render_raw(label, params);
            }
        }
        match &mut self.auth {
            None => {}
            Some(HttpAuth::Bearer(token)) => *token = render_raw(token, params),
            Some(HttpAuth::OauthRefresh(o)) => {
                for field in [&mut o.token_url, &mut o.client_id, &mut o.refresh_token] {
                    *field = render_raw(field, params);
                }
                o.client_secret = o.client_secret.as_deref().map(|s| render_raw(s, params));
            }
        }
        Vec::new()
    }

    fn validate(&self, signal: &Signal, _model: &Model) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut err = |at: &str, message: String| problems.push(Problem::new(at, message));
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            err(&self.url, format!("signal `{}`: url must start with http:// or https://", signal.id));
        }
        for value in &self.values {
            match signal.metrics.iter().find(|m| m.name == value.metric) {
                None => err(&value.metric, format!("signal `{}` does not declare `{}`", signal.id, value.metric)),
                Some(m) if m.kind != MetricType::Gauge => {
                    err(&value.metric, format!("`{}`: HTTP values are gauges", value.metric))
                }
                Some(m) => {
                    let compiled = CompiledValue::new(value, &m.labels);
                    if let (Some(e), Some(at)) = (compiled.error(), compiled.error_at()) {
                        err(at, format!("signal `{}`: {e}", signal.id));
                    }
                }
            }
        }
        validate_auth(self, &mut err);
        problems
    }

    fn polled(&self) -> Option<&'static PolledKind> {
        Some(&POLLED)
    }

    /// The signal's own alert on its `up` probe (the MCP health check) already is the endpoint's
    /// health alert.
    fn watches_itself(&self, signal: &Signal) -> bool {
        let up: Vec<&str> = self.values.iter().filter(|v| v.path == "up").map(|v| v.metric.as_str()).collect();
        signal.alerts.iter().any(|a| a.enabled && a.condition.metrics().iter().any(|m| up.contains(m)))
    }

    fn own_schedule(&self) -> Option<(Option<PromDuration>, Option<PromDuration>)> {
        Some((self.interval, self.timeout))
    }

    /// Every value but the `up` and `duration` probes, which need no answer: one entry per metric,
    /// located as its spec writes it (`each | path`, `path - minus`).
    fn answer_values(&self) -> Vec<(&str, String)> {
        let mut out: Vec<(&str, String)> = Vec::new();
        for value in self.values.iter().filter(|v| super::values::Probe::named(&v.path).is_none()) {
            if out.iter().any(|(m, _)| *m == value.metric) {
                continue;
            }
            let mut at = value.each.as_ref().map_or_else(String::new, |each| format!("{each} | "));
            at.push_str(&value.path);
            if let Some(minus) = &value.minus {
                at.push_str(&format!(" - {minus}"));
            }
            out.push((value.metric.as_str(), at));
        }
        out
    }
}

/// Secrets come from the environment or a file, never from the spec's text.
fn validate_auth(http: &HttpSource, err: &mut impl FnMut(&str, String)) {
    let reference = |s: &str| s.starts_with("env:") || s.starts_with("file:");
    match &http.auth {
        None => {}
        Some(HttpAuth::Bearer(token)) if !reference(token) => {
            err(token, "`auth: {bearer: ...}` is `env:NAME` or `file:PATH`, not the token itself".into())
        }
        Some(HttpAuth::Bearer(_)) => {}
        Some(HttpAuth::OauthRefresh(o)) => {
            if !(o.token_url.starts_with("http://") || o.token_url.starts_with("https://")) {
                err(&o.token_url, "`token_url` must start with http:// or https://".into());
            }
            for secret in o.client_secret.iter().chain([&o.refresh_token]) {
                if !reference(secret) {
                    err(secret, "OAuth secrets are `env:NAME` or `file:PATH`, not the secret itself".into());
                }
            }
        }
    }
}
