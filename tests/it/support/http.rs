//! HTTP as the tests speak it: one request on a fresh connection, the text exposition read into
//! series and values, and stand-ins for the APIs the exporter and Alertmanager call.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::wait::Worker;

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

/// One request as a stand-in saw it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// The request line and the headers, as sent.
    pub head: String,
    /// By lowercase name.
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

/// A real HTTP/1.1 server on 127.0.0.1 answering each request with what `answer` returns (status
/// and a JSON body), recording every request; stopped and joined when dropped, and a panic of
/// `answer` fails the test.
pub struct StandIn {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    _worker: Worker<()>,
}

impl StandIn {
    pub fn start(answer: impl Fn(&Request) -> (u16, String) + Send + Sync + 'static) -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        // Polled, so that the server notices it is asked to stop.
        listener.set_nonblocking(true).expect("nonblocking");
        let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
        let seen = requests.clone();
        let worker = Worker::spawn(&format!("stand-in on {addr}"), move |stop| {
            let failed = AtomicBool::new(false);
            // Each request on a thread of its own: a slow answer holds up no other.
            std::thread::scope(|scope| {
                while !stop.load(Ordering::SeqCst) {
                    assert!(!failed.load(Ordering::SeqCst), "the stand-in on {addr} panicked answering (see above)");
                    let Ok((stream, _)) = listener.accept() else {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    };
                    let (answer, seen, failed) = (&answer, &seen, &failed);
                    scope.spawn(move || {
                        let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            serve_one(stream, answer, seen);
                        }));
                        failed.fetch_or(served.is_err(), Ordering::SeqCst);
                    });
                }
            });
        });
        StandIn { addr, requests, _worker: worker }
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

fn serve_one(stream: TcpStream, answer: &dyn Fn(&Request) -> (u16, String), seen: &Mutex<Vec<Request>>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(&stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let mut words = head.split_whitespace();
    let (method, path) = (words.next().unwrap_or("").to_string(), words.next().unwrap_or("").to_string());
    let headers: BTreeMap<String, String> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    let length = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let request = Request { method, path, head, headers, body: String::from_utf8_lossy(&body).into_owned() };
    seen.lock().unwrap().push(request.clone());
    let (status, body) = answer(&request);
    let _ = write!(
        &stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}
