//! Programs a test runs: found on PATH or failing at once with the Debian package to install,
//! never reading a terminal, and when long-running, stopped on drop with their output printed if
//! the test fails.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

#[path = "../../shared/programs.rs"]
mod programs;
use programs::package_of;

/// Fails the test: `program` cannot be run, and which package brings it.
pub fn missing(program: &str) -> ! {
    let name = Path::new(program).file_name().and_then(|n| n.to_str()).unwrap_or(program);
    let package = package_of(name);
    let place = if program.contains('/') { "" } else { " on PATH" };
    match package {
        Some(package) => panic!("{program} not found{place}: install Debian package `{package}` (scripts/test does)"),
        None => panic!("{program} not found, and the table of programs in scripts/test does not name its package"),
    }
}

/// `name` from PATH, with stdin closed; fails at once naming the package when it is not there.
pub fn program(name: &str) -> Command {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| is_executable(p));
    let mut command = Command::new(found.unwrap_or_else(|| missing(name)));
    command.stdin(Stdio::null());
    command
}

pub fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A running program whose stdout and stderr are appended to one file; killed on drop.
pub struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    pub fn start(name: &str, log: &Path, command: &mut Command) -> Proc {
        let out = OpenOptions::new().create(true).append(true).open(log).expect("output file");
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("output file"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({command:?}): {e}"));
        Proc { name: name.into(), child, log: log.to_path_buf() }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything it wrote so far.
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// Waits for it to end on its own; fails the test if it is still running after `within`.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let what = format!("{} to exit", self.name);
        super::wait::until(&what, within, || self.child.try_wait().expect("try_wait"), |s| *s)
    }

    /// Sends a signal by name (`HUP`, `TERM`, `INT`, `KILL`...).
    pub fn signal(&self, name: &str) {
        let status = program("kill").args(["-s", name, &self.pid().to_string()]).status().expect("kill");
        assert!(status.success(), "kill -s {name} {} ({})", self.pid(), self.name);
    }

    /// SIGKILL, and waits for it to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let text = self.output();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(100)..].join("\n");
            eprintln!(
                "----- {} output (last 100 lines) -----\n{tail}\n----- end of {} output -----",
                self.name, self.name
            );
        }
    }
}

/// Prometheus with `dir/prometheus.yml`, its data under `dir`, its API on `port`.
pub fn prometheus(dir: &Path, port: u16) -> Proc {
    Proc::start(
        "prometheus",
        &dir.join("prometheus.log"),
        program("prometheus")
            .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("prom-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}")),
    )
}
