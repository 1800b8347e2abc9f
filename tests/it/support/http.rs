//! HTTP as the tests speak it to the programs they run: one request on a fresh connection, and
//! the text exposition read into series and values.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

/// An answer: status, headers (in order, as sent), and the body with any chunked encoding undone.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first header of this name, in any case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        for (k, v) in &self.headers {
            write!(f, "\n{k}: {v}")?;
        }
        write!(f, "\n\n{}", self.text())
    }
}

/// `GET path` from 127.0.0.1:`port`; `None` when nothing answers.
pub fn get(port: u16, path: &str) -> Option<Response> {
    request(port, "GET", path, &[])
}

/// One request with `Connection: close` on a new connection to 127.0.0.1:`port`; `None` when
/// nothing accepts it or the answer does not end within 10 s.
pub fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> Option<Response> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if method != "GET" {
        head.push_str("Content-Length: 0\r\n");
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    stream.write_all(format!("{head}\r\n").as_bytes()).ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    let chunked = headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = &raw[split + 4..];
    let body = if chunked { dechunk(body) } else { body.to_vec() };
    Some(Response { status, headers, body })
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = body.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&body[..eol]).trim(), 16).unwrap_or(0);
        let Some(chunk) = body.get(eol + 2..eol + 2 + size).filter(|_| size > 0) else { break };
        out.extend_from_slice(chunk);
        body = body.get(eol + 4 + size..).unwrap_or_default();
    }
    out
}

/// Whether something accepts connections on 127.0.0.1:`port`.
pub fn listening(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// A JSON API answer (Prometheus', Alertmanager's), `Null` when there is none.
pub fn api(port: u16, path: &str) -> Value {
    get(port, path).and_then(|r| serde_json::from_slice(&r.body).ok()).unwrap_or(Value::Null)
}

/// A text exposition and its samples' values by series, `name{labels}` as written.
#[derive(Clone, Default)]
pub struct Metrics {
    pub text: String,
    pub series: BTreeMap<String, f64>,
}

impl Metrics {
    pub fn parse(text: &str) -> Metrics {
        let series = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| {
                // A label value may hold spaces; the value follows the last `}`.
                let end = l.rfind('}').map_or_else(|| l.find(' ').unwrap_or(l.len()), |i| i + 1);
                let (series, rest) = l.split_at(end);
                Some((series.to_string(), rest.split_whitespace().next()?.parse().ok()?))
            })
            .collect();
        Metrics { text: text.to_string(), series }
    }

    pub fn get(&self, series: &str) -> Option<f64> {
        self.series.get(series).copied()
    }
}

impl<S: AsRef<str> + ?Sized> std::ops::Index<&S> for Metrics {
    type Output = f64;

    fn index(&self, series: &S) -> &f64 {
        let series = series.as_ref();
        self.series.get(series).unwrap_or_else(|| panic!("no `{series}` in:\n{}", self.text))
    }
}

/// The text itself, as a failed wait shows it.
impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The `integration_exporter_*` families of an exposition, each checked against the catalog of
/// self-metrics: declared there, with the same type and help. Returns their names.
pub fn catalogued_self_metrics(exposition: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in exposition.lines() {
        let (what, rest) = match (line.strip_prefix("# HELP "), line.strip_prefix("# TYPE ")) {
            (Some(rest), _) => ("help", rest),
            (_, Some(rest)) => ("type", rest),
            _ => continue,
        };
        let (name, value) = rest.split_once(' ').unwrap_or((rest, ""));
        if !name.starts_with("integration_exporter_") {
            continue;
        }
        let Some(metric) = integration_exporter::self_metrics::find(name) else {
            panic!("`{name}` is served but not in the catalog of self-metrics");
        };
        match what {
            "help" => assert_eq!(value, metric.help, "help of `{name}`"),
            _ => assert_eq!(value, format!("{:?}", metric.kind).to_lowercase(), "type of `{name}`"),
        }
        names.insert(name.to_string());
    }
    names
}
