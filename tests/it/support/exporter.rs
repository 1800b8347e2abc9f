//! The exporter binary serving a spec, as the tests run it: started and waited for, scraped,
//! signalled, killed and started again on the same port and state; its output is printed when the
//! test fails.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use super::http::{self, Metrics};
use super::process::{Proc, program};
use super::wait;

/// How long a wait on the exporter lasts before the test fails.
pub const WITHIN: Duration = Duration::from_secs(30);

/// How to start `serve`: built by [`Exporter::serve`], run by [`Launch::start`] or [`Launch::spawn`].
pub struct Launch {
    spec: PathBuf,
    port: u16,
    config_flag: &'static str,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    cwd: Option<PathBuf>,
    prefix: Vec<String>,
}

impl Launch {
    pub fn arg(mut self, arg: impl Into<OsString>) -> Launch {
        self.args.push(arg.into());
        self
    }

    pub fn args<S: Into<OsString>>(mut self, args: impl IntoIterator<Item = S>) -> Launch {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Launch {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn cwd(mut self, dir: &Path) -> Launch {
        self.cwd = Some(dir.to_path_buf());
        self
    }

    /// The flag that names the spec (`--config` unless told).
    pub fn config_flag(mut self, flag: &'static str) -> Launch {
        self.config_flag = flag;
        self
    }

    /// A program and its arguments that run the exporter (`unshare ... sh -c '...' ...`).
    pub fn prefix(mut self, prefix: &[&str]) -> Launch {
        self.prefix = prefix.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Starts it and waits until it listens; fails if it exits first.
    pub fn start(self) -> Exporter {
        let mut exporter = self.spawn();
        exporter.wait_listening();
        exporter
    }

    /// Runs it until it exits on its own, which must happen within [`WITHIN`]: how, and its output.
    pub fn exit(self) -> (ExitStatus, String) {
        let mut exporter = self.spawn();
        let status = exporter.wait_exit(WITHIN);
        (status, exporter.output())
    }

    /// Starts it without waiting.
    pub fn spawn(self) -> Exporter {
        let out = tempfile::tempdir().expect("tempdir");
        let proc = self.proc(&out.path().join("output"));
        Exporter { port: self.port, launch: self, proc, out }
    }

    fn proc(&self, log: &Path) -> Proc {
        let mut command = match self.prefix.split_first() {
            Some((first, rest)) => {
                let mut c = program(first);
                c.args(rest).arg(super::exporter_bin());
                c
            }
            None => Command::new(super::exporter_bin()),
        };
        // The exporter's own default level, whatever the test runner's environment says.
        command.env_remove("RUST_LOG").arg("serve").arg(self.config_flag).arg(&self.spec).args(&self.args);
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some(dir) = &self.cwd {
            command.current_dir(dir);
        }
        Proc::start(&format!("exporter on port {}", self.port), log, &mut command)
    }
}

/// A running `integration-exporter serve`, killed on drop.
pub struct Exporter {
    pub port: u16,
    launch: Launch,
    proc: Proc,
    out: tempfile::TempDir,
}

impl Exporter {
    /// `serve --config spec`, the spec listening on `port`.
    pub fn serve(spec: &Path, port: u16) -> Launch {
        Launch {
            spec: spec.to_path_buf(),
            port,
            config_flag: "--config",
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            prefix: Vec::new(),
        }
    }

    fn wait_listening(&mut self) {
        let (port, proc) = (self.port, &mut self.proc);
        let up = || (proc.exited(), http::listening(port));
        wait::until(&format!("the exporter to listen on port {port}"), WITHIN, up, |&(exited, up)| {
            if let Some(status) = exited {
                panic!("the exporter exited ({status}) before listening");
            }
            up.then_some(())
        });
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// Its stdout and stderr so far, in the order written.
    pub fn output(&self) -> String {
        self.proc.output()
    }

    /// `/metrics`, or `None` when nothing answers with 200.
    pub fn scrape(&self) -> Option<Metrics> {
        http::get(self.port, "/metrics").filter(|r| r.status == 200).map(|r| Metrics::parse(&r.text()))
    }

    /// `/metrics`, failing the test when it does not answer with 200.
    pub fn metrics(&self) -> Metrics {
        self.scrape().unwrap_or_else(|| panic!("no /metrics from the exporter on port {}", self.port))
    }

    /// Scrapes until `check` holds, and returns that scrape.
    pub fn wait_for(&self, what: &str, check: impl Fn(&Metrics) -> bool) -> Metrics {
        wait::until(what, WITHIN, || self.scrape(), |m| m.as_ref().filter(|m| check(m)).cloned())
    }

    /// Waits until its output says what `check` looks for, and returns the output.
    pub fn wait_output(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        wait::until(what, WITHIN, || Output(self.output()), |o| check(&o.0).then(|| o.0.clone()))
    }

    /// Sends a signal by name (`HUP`, `TERM`, `INT`, `KILL`).
    pub fn signal(&self, name: &str) {
        self.proc.signal(name);
    }

    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.proc.exited()
    }

    /// Waits for it to end on its own; fails the test if it still runs after `within`.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        self.proc.wait_exit(within)
    }

    /// SIGKILL, and waits for it to be gone.
    pub fn kill(&mut self) {
        self.proc.kill();
    }

    /// Kills it (when still running) and returns everything it wrote.
    pub fn stop(mut self) -> String {
        self.proc.kill();
        self.output()
    }

    /// Starts it again as it was started (same spec, port, flags and state), once it has
    /// stopped or been killed, and waits until it listens; its output goes on in the same file.
    pub fn restart(&mut self) {
        self.proc.kill();
        self.proc = self.launch.proc(&self.out.path().join("output"));
        self.wait_listening();
    }
}

/// Output text, shown as written when a wait fails.
struct Output(String);

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
