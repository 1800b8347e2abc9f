//! The command line as Prometheus' own exporters have it: `--config.file`, `--web.*`, `--log.*`
//! and `--version`, and the standard self-metrics (`process_*`, `*_build_info`), all through the
//! real binary.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::exporter::{Exporter, Launch};
use support::http::{get, listening};
use support::{exporter_bin, free_port, ticks_spec};

/// A spec listening on `port`, counting ticks in a log file of its own directory.
fn spec(dir: &Path, port: u16) -> PathBuf {
    let log = dir.join("app.log");
    std::fs::write(&log, "tick\n").unwrap();
    let path = dir.join("spec.yaml");
    std::fs::write(&path, format!("listen: 127.0.0.1:{port}\n{}", ticks_spec(&log.display().to_string()))).unwrap();
    path
}

/// `serve --config.file spec` from the spec's directory.
fn serve(spec: &Path, port: u16) -> Launch {
    Exporter::serve(spec, port).config_flag("--config.file").cwd(spec.parent().unwrap())
}

#[test]
fn version_names_revision_branch_build_date_and_compiler() {
    let out = Command::new(exporter_bin()).arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let first = text.lines().next().unwrap();
    assert!(first.starts_with(&format!("integration-exporter {} (branch: ", env!("CARGO_PKG_VERSION"))), "{text}");
    let revision = first.split("revision: ").nth(1).unwrap().trim_end_matches(')');
    assert!(
        revision == "unknown" || (revision.len() == 40 && revision.chars().all(|c| c.is_ascii_hexdigit())),
        "{text}"
    );
    let date = text.lines().find_map(|l| l.trim().strip_prefix("build date:")).expect("build date").trim();
    assert!(chrono::DateTime::parse_from_rfc3339(date).is_ok(), "{text}");
    let compiler = text.lines().find_map(|l| l.trim().strip_prefix("compiler:")).expect("compiler").trim();
    assert!(compiler.starts_with("rustc 1."), "{text}");
}

#[test]
fn listen_address_flag_wins_over_the_spec_and_old_config_flag_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let (in_spec, on_flag) = (free_port(), free_port());
    let spec = spec(dir.path(), in_spec);
    let address = format!("127.0.0.1:{on_flag}");
    let exporter = Exporter::serve(&spec, on_flag).args(["--web.listen-address", &address]).cwd(dir.path()).start();
    assert_eq!(get(on_flag, "/healthz").map(|r| r.status), Some(200));
    assert!(!listening(in_spec), "the spec's address is not used");
    // A reload keeps the flag in force: no talk of a changed address.
    exporter.signal("HUP");
    let log = exporter.wait_output("the reload", |log| log.contains("configuration reloaded"));
    assert!(!log.contains("listen address changed"), "{log}");
    assert_eq!(get(on_flag, "/healthz").map(|r| r.status), Some(200));
}

#[test]
fn without_listen_the_exporter_takes_its_own_port_not_postgres_exporters() {
    use integration_exporter::spec::config::DEFAULT_PORT;
    assert_ne!(DEFAULT_PORT, 9187, "postgres_exporter's port");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spec.yaml");
    let log = dir.path().join("app.log");
    std::fs::write(&log, "tick\n").unwrap();
    std::fs::write(&path, ticks_spec(&log.display().to_string())).unwrap();
    let exporter = Exporter::serve(&path, DEFAULT_PORT).config_flag("-c").cwd(dir.path()).start();
    let log = exporter.wait_output("the serving line", |log| log.contains("serving /metrics"));
    assert!(log.contains(&format!("addr=127.0.0.1:{DEFAULT_PORT}")), "{log}");
}

#[test]
fn telemetry_path_moves_the_metrics_and_the_landing_page_links_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _exporter = serve(&spec(dir.path(), port), port).arg("--web.telemetry-path=/x/metrics").start();
    let answer = get(port, "/x/metrics").unwrap();
    assert_eq!(answer.status, 200);
    assert!(answer.text().contains("integration_exporter_build_info{"), "{answer:?}");
    assert_eq!(get(port, "/metrics").unwrap().status, 404);
    assert!(get(port, "/").unwrap().text().contains("href=\"/x/metrics\""));
    // A path the exporter needs for itself, or one that would need escaping, is refused.
    for bad in ["/healthz", "metrics", "/a\"b"] {
        let (status, said) =
            Exporter::serve(Path::new("unused.yaml"), 0).config_flag("-c").args(["--web.telemetry-path", bad]).exit();
        assert_eq!(status.code(), Some(2), "{bad}");
        assert!(said.contains("--web.telemetry-path"), "{bad}");
    }
}

#[test]
fn web_config_flag_is_relative_to_the_working_directory_and_wins_over_the_spec() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let spec = spec(dir.path(), port);
    let cwd = tempfile::tempdir().unwrap();
    let hash = bcrypt::hash_with_result("pw", 4).unwrap().format_for_version(bcrypt::Version::TwoY);
    std::fs::write(cwd.path().join("web.yml"), format!("basic_auth_users:\n  alice: '{hash}'\n")).unwrap();
    let _exporter = Exporter::serve(&spec, port)
        .config_flag("--config.file")
        .args(["--web.config.file", "web.yml"])
        .cwd(cwd.path())
        .start();
    assert_eq!(get(port, "/metrics").unwrap().status, 401, "basic auth from the flag's file");
}

fn lines(log: &str) -> Vec<&str> {
    log.lines().filter(|l| !l.is_empty()).collect()
}

#[test]
fn logs_are_logfmt_by_default_json_on_request_without_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let spec = spec(dir.path(), port);
    let log = serve(&spec, port).start().wait_output("the serving line", |log| log.contains("serving /metrics"));
    assert!(!log.contains('\u{1b}'), "colour codes in a file:\n{log}");
    let serving = lines(&log).into_iter().find(|l| l.contains("serving /metrics")).expect(&log);
    assert!(serving.starts_with("time=20"), "{serving}");
    assert!(serving.contains(" level=info source=serve.rs:"), "{serving}");
    assert!(serving.contains(" msg=\"serving /metrics\" "), "{serving}");
    assert!(serving.contains(&format!(" addr=127.0.0.1:{port}")), "{serving}");

    let json = serve(&spec, port).args(["--log.format", "json"]).start();
    let log = json.wait_output("the serving line", |log| log.contains("serving /metrics"));
    drop(json);
    assert!(!log.contains('\u{1b}'), "{log}");
    let events: Vec<serde_json::Value> =
        lines(&log).iter().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    let serving = events.iter().find(|e| e["msg"] == "serving /metrics").expect(&log);
    assert_eq!(serving["level"], "info");
    assert_eq!(serving["addr"], format!("127.0.0.1:{port}"));
    assert!(serving["time"].as_str().is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()));
}

#[test]
fn log_level_flag_and_rust_log_filter_and_the_flag_wins() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let spec = spec(dir.path(), port);
    // Flags, environment, and whether an info line is written.
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], bool);
    let cases: [Case; 4] = [
        (&[], &[], true),
        (&["--log.level=warn"], &[], false),
        (&[], &[("RUST_LOG", "warn")], false),
        (&["--log.level", "info"], &[("RUST_LOG", "error")], true),
    ];
    for (args, env, info) in cases {
        let launch = env.iter().fold(serve(&spec, port).args(args.iter().copied()), |l, &(k, v)| l.env(k, v));
        let exporter = launch.start();
        // The line is written right after the bind: waited for when expected, given time when not.
        let log = if info {
            exporter.wait_output("the serving line", |log| log.contains("serving /metrics"))
        } else {
            std::thread::sleep(Duration::from_millis(300));
            exporter.output()
        };
        drop(exporter);
        assert_eq!(log.contains("serving /metrics"), info, "{args:?} {env:?}:\n{log}");
    }
}

#[test]
fn process_and_build_info_metrics_are_exported_and_pass_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let exporter = serve(&spec(dir.path(), port), port).start();
    let m = exporter.metrics();
    let pid = exporter.pid();
    let value = |series: &str| m[series];

    assert!(value("process_cpu_seconds_total") >= 0.0);
    let resident = value("process_resident_memory_bytes");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let vm_rss = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).unwrap();
    let vm_rss: f64 = vm_rss.trim().trim_end_matches("kB").trim().parse::<f64>().unwrap() * 1024.0;
    assert!(resident > 1e6 && (resident - vm_rss).abs() < vm_rss * 0.5, "{resident} vs VmRSS {vm_rss}");
    assert!(value("process_virtual_memory_bytes") >= resident);
    let open = value("process_open_fds");
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count() as f64;
    assert!(open >= 3.0 && (open - fds).abs() <= 8.0, "{open} vs {fds}");
    assert!(value("process_max_fds") >= open);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let start = value("process_start_time_seconds");
    assert!(start <= now + 1.0 && start > now - 120.0, "start {start}, now {now}");

    let info = m.text.lines().find(|l| l.starts_with("integration_exporter_build_info{")).expect(&m.text);
    for label in ["version=\"", "revision=\"", "branch=\"", "rustc=\"rustc 1."] {
        assert!(info.contains(label), "{info}");
    }
    assert!(info.ends_with("} 1"), "{info}");
    assert_eq!(support::promtool_check_metrics(&m.text), "");
}

/// `catalog --format` is a closed set: `--help` lists it, and a misspelt one is refused with the
/// choices before anything is loaded.
#[test]
fn catalog_formats_are_a_closed_set() {
    let help = Command::new(exporter_bin()).args(["catalog", "--help"]).output().expect("run");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("- markdown: ") && help.contains("- json: "), "{help}");
    let out = Command::new(exporter_bin()).args(["catalog", "--format", "yaml"]).output().expect("run");
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("yaml") && said.contains("markdown") && said.contains("json"), "{said}");
    let json = Command::new(exporter_bin()).args(["catalog", "--format", "json"]).output().expect("run");
    assert!(json.status.success());
    serde_json::from_slice::<serde_json::Value>(&json.stdout).expect("the JSON catalog");
}
