//! The exporter binary as a child process with its output captured, stopped on drop, and a plain
//! HTTP GET to read what it serves.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running `integration-exporter serve`; stdout and stderr go to files read by [`Self::output`].
pub struct Running {
    child: Child,
    dir: tempfile::TempDir,
    pub port: u16,
}

impl Running {
    /// Starts `serve -c spec` with the given environment (on top of the test's own).
    pub fn serve(spec: &Path, port: u16, env: &[(&str, &str)]) -> Running {
        let dir = tempfile::tempdir().expect("tempdir");
        let stdout = std::fs::File::create(dir.path().join("stdout")).expect("stdout file");
        let stderr = std::fs::File::create(dir.path().join("stderr")).expect("stderr file");
        let mut command = Command::new(super::exporter_bin());
        command.args(["serve", "--config"]).arg(spec).stdout(stdout).stderr(stderr).stdin(Stdio::null());
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().expect("start exporter");
        Running { child, dir, port }
    }

    /// Waits until the port accepts connections; false if the process exited first or `within` passed.
    pub fn wait_listening(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return false;
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// The process id, for signals.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits for the process to end on its own.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Everything written to stdout and stderr so far.
    pub fn output(&self) -> String {
        let read = |name: &str| std::fs::read(self.dir.path().join(name)).unwrap_or_default();
        format!("{}{}", String::from_utf8_lossy(&read("stdout")), String::from_utf8_lossy(&read("stderr")))
    }

    /// Stops the process (SIGKILL) and returns its whole output.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.output()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` over HTTP/1.1: the status and the body (chunked bodies are not decoded, which does
/// not matter for searching them). `None` when nothing answers within five seconds.
pub fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok())?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some((status, body))
}

/// The value of one sample line (`name{labels} value`) in a Prometheus exposition.
pub fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The `integration_exporter_*` families of a Prometheus exposition, each checked against the
/// catalog of self-metrics: declared there, with the same type and help. Returns their names.
pub fn catalogued_self_metrics(exposition: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
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
