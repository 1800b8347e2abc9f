//! The exporter binary behind an exporter-toolkit web config: TLS, mutual TLS, basic auth,
//! response headers and a reload of `basic_auth_users` without restart. Certificates come from the
//! `openssl` CLI, requests from `curl`; the spec reads only a log file, so no database is needed.

use crate::support;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use support::exporter::Exporter;
use support::wait::{self, Worker};
use support::{exporter_bin, free_port, program};

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// A CA, a server certificate for localhost/127.0.0.1 and a client certificate, all signed by
/// the CA, plus a self-signed client certificate the CA knows nothing about.
fn certificates(dir: &Path) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let ca_ext = ["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"];
    run(program("openssl")
        .current_dir(dir)
        .args(["req", "-x509"])
        .args(ec)
        .args(["-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=test-ca"])
        .args(ca_ext));
    run(program("openssl").current_dir(dir).args(["req", "-x509"]).args(ec).args([
        "-keyout",
        "rogue.key",
        "-out",
        "rogue.crt",
        "-days",
        "2",
        "-subj",
        "/CN=rogue",
    ]));
    for (name, ext) in [
        (
            "server",
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
        ),
        ("client", "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n"),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        run(program("openssl").current_dir(dir).args(["req"]).args(ec).args([
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={name}"),
        ]));
        run(program("openssl").current_dir(dir).args([
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
        ]));
    }
}

/// `$2y$` hashes, as `htpasswd -B` writes them (cost 4 keeps the test quick).
fn bcrypt_hash(password: &str) -> String {
    bcrypt::hash_with_result(password, 4).unwrap().format_for_version(bcrypt::Version::TwoY)
}

/// A spec with one log signal of its own and the web config next to it (a relative path).
fn spec(dir: &Path, port: u16) -> PathBuf {
    std::fs::write(dir.join("app.log"), "tick\n").unwrap();
    let path = dir.join("spec.yaml");
    let log = format!("{}/app.log", dir.display());
    // A state_dir, so the tick already in the file is counted at the first start.
    let text = format!(
        "listen: 127.0.0.1:{port}\nweb_config_file: web-config.yml\nstate_dir: {}\n{}",
        dir.join("state").display(),
        support::ticks_spec(&log)
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn start(spec: &Path, port: u16) -> Exporter {
    Exporter::serve(spec, port).start()
}

/// What curl got: its exit code, the status (0 when there was no HTTP answer), headers, body.
#[derive(Clone, Debug)]
struct Answer {
    exit: i32,
    status: u16,
    head: String,
    body: String,
}

fn curl(dir: &Path, url: &str, args: &[&str]) -> Answer {
    let head = dir.join("head.txt");
    let _ = std::fs::remove_file(&head);
    let out = program("curl")
        .current_dir(dir)
        .args(["-sS", "--max-time", "10", "-D"])
        .arg(&head)
        .args(args)
        .arg(url)
        .output()
        .expect("curl");
    let head = std::fs::read_to_string(&head).unwrap_or_default();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Answer {
        exit: out.status.code().unwrap_or(-1),
        status,
        head: head.to_lowercase(),
        body: String::from_utf8_lossy(&out.stdout).into_owned(),
    }
}

#[test]
fn tls_basic_auth_headers_and_a_reload_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    certificates(d);
    let web = d.join("web-config.yml");
    let write_users = |users: &[(&str, &str)]| {
        let mut text = String::from(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: TLS12\n\
             http_server_config:\n  headers:\n    X-Frame-Options: deny\n    X-Content-Type-Options: nosniff\n\
             basic_auth_users:\n",
        );
        for (user, password) in users {
            text.push_str(&format!("  {user}: '{}'\n", bcrypt_hash(password)));
        }
        // Write then rename, as config management does; the reload must notice either way.
        std::fs::write(d.join("web-config.yml.tmp"), text).unwrap();
        std::fs::rename(d.join("web-config.yml.tmp"), &web).unwrap();
    };
    write_users(&[("alice", "s3cret")]);
    let port = free_port();
    let _exporter = start(&spec(d, port), port);
    let https = format!("https://127.0.0.1:{port}/metrics");

    // Plain HTTP on the TLS listener: a 400 that says so, never the metrics.
    let plain = curl(d, &format!("http://127.0.0.1:{port}/metrics"), &["-u", "alice:s3cret"]);
    assert_eq!(plain.status, 400, "{}", plain.head);
    assert!(plain.body.contains("HTTP request to an HTTPS server") && !plain.body.contains("app_ticks_total"));

    // A client that does not trust the CA gives up; one that does gets an answer.
    assert_eq!(curl(d, &https, &["-u", "alice:s3cret"]).exit, 60, "curl: certificate problem");
    let ca = ["--cacert", "ca.crt"];

    // Basic auth on every path: missing or wrong credentials are 401 with a challenge.
    for (path, creds) in [("/metrics", None), ("/metrics", Some("alice:wrong")), ("/healthz", Some("mallory:s3cret"))] {
        let mut args = ca.to_vec();
        if let Some(c) = creds {
            args.extend(["-u", c]);
        }
        let a = curl(d, &format!("https://127.0.0.1:{port}{path}"), &args);
        assert_eq!(a.status, 401, "{path} {creds:?}: {}", a.head);
        assert!(a.head.contains("www-authenticate: basic realm=\"integration-exporter\""), "{}", a.head);
        assert!(a.head.contains("x-frame-options: deny"), "headers on a 401 too: {}", a.head);
        assert!(!a.body.contains("app_ticks_total"));
    }

    // The right password: the metrics, with the configured headers.
    let scrape = || curl(d, &https, &[&ca[..], &["-u", "alice:s3cret"]].concat());
    let ok = wait::until("app_ticks_total 1", Duration::from_secs(20), scrape, |a| {
        assert_eq!(a.status, 200, "{}", a.head);
        a.body.contains("app_ticks_total 1").then(|| a.clone())
    });
    assert!(ok.head.contains("x-frame-options: deny") && ok.head.contains("x-content-type-options: nosniff"));
    // A second request is answered from the cache of checked passwords, still 200.
    assert_eq!(curl(d, &https, &[&ca[..], &["-u", "alice:s3cret"]].concat()).status, 200);

    // New users apply to the next request, without a restart; removed ones stop working.
    write_users(&[("bob", "hunter2")]);
    assert_eq!(curl(d, &https, &[&ca[..], &["-u", "bob:hunter2"]].concat()).status, 200);
    assert_eq!(curl(d, &https, &[&ca[..], &["-u", "alice:s3cret"]].concat()).status, 401);

    // A file that stops loading answers 500 (it never falls back to open), and recovers.
    std::fs::write(&web, "basic_auth_users: [\n").unwrap();
    assert_eq!(curl(d, &https, &[&ca[..], &["-u", "bob:hunter2"]].concat()).status, 500);
    write_users(&[("bob", "hunter2")]);
    assert_eq!(curl(d, &https, &[&ca[..], &["-u", "bob:hunter2"]].concat()).status, 200);

    // Renewed certificates (from another CA here) serve new connections without a restart.
    let renewed = d.join("renewed");
    std::fs::create_dir(&renewed).unwrap();
    certificates(&renewed);
    for file in ["server.crt", "server.key"] {
        std::fs::copy(renewed.join(file), d.join(file)).unwrap();
    }
    let a = curl(d, &https, &["--cacert", "renewed/ca.crt", "-u", "bob:hunter2"]);
    assert_eq!((a.exit, a.status), (0, 200), "{}", a.head);
    assert_eq!(curl(d, &https, &[&ca[..], &["-u", "bob:hunter2"]].concat()).exit, 60, "old CA no longer matches");
}

#[test]
fn mutual_tls_rejects_clients_without_a_certificate_from_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    certificates(d);
    std::fs::write(
        d.join("web-config.yml"),
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_ca_file: ca.crt\n  \
         client_auth_type: RequireAndVerifyClientCert\n  min_version: TLS13\n",
    )
    .unwrap();
    let port = free_port();
    let _exporter = start(&spec(d, port), port);
    let https = format!("https://localhost:{port}/healthz");

    let without = curl(d, &https, &["--cacert", "ca.crt"]);
    assert!(without.exit != 0 && without.status == 0, "no client certificate: exit {} {}", without.exit, without.head);
    let rogue = curl(d, &https, &["--cacert", "ca.crt", "--cert", "rogue.crt", "--key", "rogue.key"]);
    assert!(rogue.exit != 0 && rogue.status == 0, "unknown CA: exit {} {}", rogue.exit, rogue.head);
    let with = curl(d, &https, &["--cacert", "ca.crt", "--cert", "client.crt", "--key", "client.key"]);
    assert_eq!((with.exit, with.status, with.body.as_str()), (0, 200, "ok\n"), "{}", with.head);
    // TLS 1.2 is below min_version.
    let old =
        curl(d, &https, &["--cacert", "ca.crt", "--cert", "client.crt", "--key", "client.key", "--tls-max", "1.2"]);
    assert!(old.exit != 0 && old.status == 0, "TLS 1.2: exit {}", old.exit);
}

#[test]
fn a_bad_web_config_stops_the_exporter_with_a_message_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();
    let spec = spec(d, port);
    for (text, expected) in [
        ("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n", "cannot read"),
        ("basic_auth_users:\n  alice: not-a-hash\n", "not a bcrypt hash"),
        ("tls_server_config: {cert_file: a.crt, kye_file: a.key}\n", "kye_file"),
    ] {
        std::fs::write(d.join("web-config.yml"), text).unwrap();
        let (status, stderr) = Exporter::serve(&spec, port).exit();
        assert_eq!(status.code(), Some(1), "{text}: {stderr}");
        assert!(stderr.contains(&format!("web config {}", d.join("web-config.yml").display())), "{stderr}");
        assert!(stderr.contains(expected) && !stderr.contains("panicked"), "{text}: {stderr}");
    }
}

#[test]
fn a_plaintext_password_is_never_echoed_at_start_in_check_or_on_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();
    let spec = spec(d, port);
    let web = d.join("web-config.yml");
    let password = "s3cret-Plain_42";
    let plaintext = format!("basic_auth_users:\n  alice: {password}\n");
    let said =
        |out: &Output| format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let names_user_and_file = |text: &str| {
        assert!(!text.contains(password) && !text.contains("s3cret"), "the password is echoed:\n{text}");
        assert!(text.contains("`alice`") && text.contains("bcrypt hash"), "{text}");
        assert!(text.contains(&web.display().to_string()), "{text}");
    };

    std::fs::write(&web, &plaintext).unwrap();
    let (status, output) = Exporter::serve(&spec, port).exit();
    assert!(!status.success(), "serve");
    names_user_and_file(&output);
    let out = Command::new(exporter_bin()).args(["check", "--config"]).arg(&spec).output().expect("run");
    assert!(!out.status.success(), "check");
    names_user_and_file(&said(&out));

    // Running with a good file, which then changes: both the per-request re-read and SIGHUP log
    // the error, neither with the password.
    std::fs::write(&web, format!("basic_auth_users:\n  alice: '{}'\n", bcrypt_hash(password))).unwrap();
    let exporter = start(&spec, port);
    let url = format!("http://127.0.0.1:{port}/metrics");
    assert_eq!(curl(d, &url, &["-u", &format!("alice:{password}")]).status, 200);
    std::fs::write(&web, &plaintext).unwrap();
    assert_eq!(curl(d, &url, &["-u", &format!("alice:{password}")]).status, 500);
    exporter.signal("HUP");
    exporter.wait_output("a reload failure logged", |out| out.contains("reload failed"));
    assert_eq!(curl(d, &url, &["-u", &format!("alice:{password}")]).status, 500, "still refusing, never open");
    let output = exporter.stop();
    assert_eq!(output.matches("bcrypt hash").count(), 2, "once per change, once per reload:\n{output}");
    names_user_and_file(&output);
}

/// One request on a keep-alive connection: the status, after reading the whole answer.
fn keep_alive_get(stream: &mut TcpStream, authorization: &str) -> std::io::Result<u16> {
    use std::io::{Read, Write};
    write!(stream, "GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {authorization}\r\n\r\n")?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    let length: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body)?;
    Ok(head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0))
}

#[test]
fn a_flood_of_wrong_passwords_does_not_stop_the_scraper() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hash = bcrypt::hash_with_result("right", 8).unwrap().format_for_version(bcrypt::Version::TwoY);
    std::fs::write(d.join("web-config.yml"), format!("basic_auth_users:\n  alice: '{hash}'\n")).unwrap();
    let port = free_port();
    let _exporter = start(&spec(d, port), port);
    let basic = |password: &str| base64::engine::general_purpose::STANDARD.encode(format!("alice:{password}"));
    let connect = || {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    };
    let right = basic("right");
    let mut scraper = connect();
    assert_eq!(keep_alive_get(&mut scraper, &right).unwrap(), 200);

    let flood: Vec<_> = (0..300)
        .map(|i| {
            let wrong = basic(&format!("wrong{i}"));
            Worker::spawn(&format!("flood {i}"), move |stop| {
                let mut statuses = std::collections::BTreeMap::<u16, u32>::new();
                let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
                stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match keep_alive_get(&mut stream, &wrong) {
                        Ok(status) => *statuses.entry(status).or_default() += 1,
                        // Closed (the idle timeout, a restart of the connection): open another.
                        Err(_) => {
                            stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
                            stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                        }
                    }
                }
                statuses
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let started = Instant::now();
        let status = keep_alive_get(&mut scraper, &right).or_else(|_| {
            scraper = connect();
            keep_alive_get(&mut scraper, &right)
        });
        slowest = slowest.max(started.elapsed());
        assert_eq!(status.unwrap(), 200);
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut statuses = std::collections::BTreeMap::<u16, u32>::new();
    for answers in Worker::join_all(flood, Duration::from_secs(60)) {
        for (status, n) in answers {
            *statuses.entry(status).or_default() += n;
        }
    }
    eprintln!("FIGURE web config flood: answers by status {statuses:?}; the scraper's slowest answer {slowest:?}");
    assert!(slowest < Duration::from_secs(2), "the scraper waited {slowest:?} (flood: {statuses:?})");
    assert!(statuses.keys().all(|s| [401, 429].contains(s)), "{statuses:?}");
    assert!(statuses.get(&429).is_some_and(|n| *n > 0), "the excess is turned away: {statuses:?}");
}

#[test]
fn sighup_applies_a_new_web_config_but_never_switches_tls_on_a_running_listener() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    certificates(d);
    let port = free_port();
    let spec = spec(d, port);
    // Start open: the spec names no web config yet.
    let with_web = std::fs::read_to_string(&spec).unwrap();
    std::fs::write(&spec, with_web.replace("web_config_file: web-config.yml\n", "")).unwrap();
    let exporter = start(&spec, port);
    let http = format!("http://127.0.0.1:{port}/healthz");
    assert_eq!(curl(d, &http, &[]).status, 200);
    let hup_and_wait = |count: usize| {
        exporter.signal("HUP");
        exporter.wait_output("a reload outcome logged", |text| {
            text.matches("reload failed").count() + text.matches("configuration reloaded").count() >= count
        })
    };

    // TLS on a plain listener needs a restart: the reload fails and nothing changes.
    std::fs::write(d.join("web-config.yml"), "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n")
        .unwrap();
    std::fs::write(&spec, &with_web).unwrap();
    let text = hup_and_wait(1);
    assert!(text.contains("reload failed") && text.contains("restart"), "{text}");
    assert_eq!(curl(d, &http, &[]).status, 200);

    // Basic auth without TLS applies at once.
    std::fs::write(d.join("web-config.yml"), format!("basic_auth_users:\n  alice: '{}'\n", bcrypt_hash("pw"))).unwrap();
    let text = hup_and_wait(2);
    assert!(text.contains("configuration reloaded"), "{text}");
    assert_eq!(curl(d, &http, &[]).status, 401);
    assert_eq!(curl(d, &http, &["-u", "alice:pw"]).status, 200);
}

/// The web config rewritten in place (truncated, then written in pieces, as an editor or `cp`
/// does) while a client without credentials polls: the empty and half-written versions it reads
/// on the way must never open the endpoint. Before, an empty file loaded as "no users" and
/// answered 200.
#[test]
fn rewriting_the_web_config_in_place_never_opens_the_endpoint() {
    use std::io::Write;
    use std::sync::atomic::Ordering;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let web = d.join("web-config.yml");
    let good = format!(
        "# scrapers\nbasic_auth_users:\n  alice: '{}'\n  bob: '{}'\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n",
        bcrypt_hash("s3cret"),
        bcrypt_hash("hunter2")
    );
    std::fs::write(&web, &good).unwrap();
    let port = free_port();
    let exporter = start(&spec(d, port), port);

    let poller = Worker::spawn("unauthenticated poller", move |stop| {
        let mut statuses = std::collections::BTreeMap::<u16, u32>::new();
        while !stop.load(Ordering::Relaxed) {
            let status = support::http::get(port, "/metrics").map_or(0, |r| r.status);
            *statuses.entry(status).or_default() += 1;
        }
        statuses
    });
    let rewrites = std::env::var("FAULT_WEB_REWRITES").ok().and_then(|n| n.parse().ok()).unwrap_or(200);
    let pieces: Vec<&[u8]> = good.as_bytes().chunks(good.len() / 4 + 1).collect();
    for _ in 0..rewrites {
        let mut file = std::fs::OpenOptions::new().write(true).truncate(true).open(&web).unwrap();
        for piece in &pieces {
            std::thread::sleep(Duration::from_millis(1));
            file.write_all(piece).unwrap();
        }
        drop(file);
        std::thread::sleep(Duration::from_millis(2));
    }
    let statuses = Worker::join_all(vec![poller], Duration::from_secs(30)).pop().unwrap();
    eprintln!("FIGURE web config: {rewrites} in-place rewrites; unauthenticated answers by status: {statuses:?}");
    assert_eq!(statuses.get(&200), None, "the endpoint opened: {statuses:?}");
    assert!(statuses.get(&401).is_some_and(|n| *n > 0), "{statuses:?}");

    // Whole again: the users work and the reload status is back to 1.
    let url = format!("http://127.0.0.1:{port}/metrics");
    wait::until(
        "the file in force again",
        Duration::from_secs(20),
        || curl(d, &url, &["-u", "bob:hunter2"]),
        |a| {
            (a.status == 200 && a.body.contains("integration_exporter_web_config_last_reload_successful 1"))
                .then_some(())
        },
    );
    let output = exporter.stop();
    assert!(!output.contains("panicked"), "{output}");
}

/// A change that turns basic auth off is refused (warning naming the file, status metric 0, SIGHUP
/// fails) unless the file says `allow_downgrade: true`.
#[test]
fn a_downgrade_is_refused_unless_the_file_allows_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let web = d.join("web-config.yml");
    let users = format!("basic_auth_users:\n  alice: '{}'\n", bcrypt_hash("pw"));
    std::fs::write(&web, &users).unwrap();
    let port = free_port();
    let exporter = start(&spec(d, port), port);
    let url = format!("http://127.0.0.1:{port}/metrics");
    let status_metric = |a: &Answer| {
        a.body
            .lines()
            .find_map(|l| l.strip_prefix("integration_exporter_web_config_last_reload_successful "))
            .map(str::to_string)
    };
    assert_eq!(status_metric(&curl(d, &url, &["-u", "alice:pw"])).as_deref(), Some("1"));

    for lowered in ["", "# basic_auth_users moved elsewhere\n", "basic_auth_users: {}\n"] {
        std::fs::write(&web, lowered).unwrap();
        assert_eq!(curl(d, &url, &[]).status, 401, "{lowered:?} opened the endpoint");
        let a = curl(d, &url, &["-u", "alice:pw"]);
        assert_eq!((a.status, status_metric(&a).as_deref()), (200, Some("0")), "{lowered:?}");
    }
    let output = exporter.wait_output("the refusal logged", |o| o.contains("refused"));
    let warning = output.lines().find(|l| l.contains("refused")).unwrap();
    assert!(warning.contains(&web.display().to_string()) && warning.contains("basic auth"), "{warning}");
    exporter.signal("HUP");
    let output = exporter.wait_output("the reload refused", |o| o.contains("reload failed"));
    assert!(output.lines().any(|l| l.contains("reload failed") && l.contains("allow_downgrade")), "{output}");

    std::fs::write(&web, "allow_downgrade: true\n").unwrap();
    let a = curl(d, &url, &[]);
    assert_eq!((a.status, status_metric(&a).as_deref()), (200, Some("1")), "said in the file: applied");
}

/// Signs a certificate for 127.0.0.1 with `ca.crt` in `dir`, valid from `start` to `end`
/// (`YYYYMMDDHHMMSSZ`), as `<name>.crt` / `<name>.key` (`openssl ca`: `x509 -req` cannot set past
/// dates).
fn certificate_between(dir: &Path, name: &str, start: &str, end: &str) {
    std::fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca = test\n[test]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\ndefault_md = sha256\n\
         policy = any\ncopy_extensions = copy\n[any]\ncommonName = supplied\n",
    )
    .unwrap();
    std::fs::write(dir.join("index.txt"), "").unwrap();
    std::fs::write(dir.join("serial"), "1000\n").unwrap();
    run(program("openssl")
        .current_dir(dir)
        .args(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
        .args([
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ]));
    run(program("openssl")
        .current_dir(dir)
        .args(["ca", "-batch", "-notext", "-config", "ca.cnf", "-cert", "ca.crt", "-keyfile", "ca.key"])
        .args(["-in", &format!("{name}.csr"), "-out", &format!("{name}.crt"), "-startdate", start, "-enddate", end]));
}

fn unix(generalized: &str) -> f64 {
    chrono::NaiveDateTime::parse_from_str(generalized, "%Y%m%d%H%M%SZ").unwrap().and_utc().timestamp() as f64
}

/// An expired (or not yet valid) certificate is said at start and by `check`, and the served
/// certificate's notAfter is exported for the expiry alert; certificates gone from the file are a
/// downgrade like users gone.
#[test]
fn certificate_validity_is_warned_about_and_its_expiry_exported() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    certificates(d);
    certificate_between(d, "expired", "20200101000000Z", "20200102000000Z");
    certificate_between(d, "future", "20990101000000Z", "20991231000000Z");
    let web = d.join("web-config.yml");
    let port = free_port();
    let spec = spec(d, port);
    let tls = |name: &str| format!("tls_server_config:\n  cert_file: {name}.crt\n  key_file: {name}.key\n");

    for (name, says) in [("expired", "expired at 2020-01-02T00:00:00Z"), ("future", "not valid before 2099-01-01")] {
        std::fs::write(&web, tls(name)).unwrap();
        let out = Command::new(exporter_bin()).args(["check", "--config"]).arg(&spec).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "a warning, not an error: {stderr}");
        assert!(
            stderr.contains("warning") && stderr.contains(says) && stderr.contains(&format!("{name}.crt")),
            "{stderr}"
        );
    }

    std::fs::write(&web, tls("expired")).unwrap();
    let exporter = start(&spec, port);
    let output = exporter.wait_output("the warning", |o| o.contains("expired at"));
    assert!(output.lines().any(|l| l.contains("WARN") || l.contains("level=warn")), "{output}");
    let https = format!("https://127.0.0.1:{port}/metrics");
    let expiry = |a: &Answer| {
        a.body
            .lines()
            .find_map(|l| l.strip_prefix("integration_exporter_tls_certificate_expiry_timestamp_seconds "))
            .and_then(|v| v.parse::<f64>().ok())
    };
    let a = curl(d, &https, &["-k"]);
    assert_eq!((a.status, expiry(&a)), (200, Some(unix("20200102000000Z"))), "{}", a.body);

    // Renewed: the metric follows the certificate new connections get.
    let renewed = d.join("renewed");
    std::fs::create_dir(&renewed).unwrap();
    for file in ["ca.crt", "ca.key"] {
        std::fs::copy(d.join(file), renewed.join(file)).unwrap();
    }
    certificate_between(&renewed, "server", "20200101000000Z", "20991231235959Z");
    for file in ["server.crt", "server.key"] {
        std::fs::copy(renewed.join(file), d.join(format!("expired.{}", &file[7..]))).unwrap();
    }
    wait::until(
        "the renewed expiry",
        Duration::from_secs(20),
        || curl(d, &https, &["-k"]),
        |a| (expiry(a) == Some(unix("20991231235959Z"))).then_some(()),
    );

    // Certificates gone from the file: refused, the listener keeps serving the last ones.
    std::fs::write(&web, "# tls moved\n").unwrap();
    let a = curl(d, &https, &["-k"]);
    assert_eq!(a.status, 200, "{}", a.head);
    assert!(a.body.contains("integration_exporter_web_config_last_reload_successful 0"), "{}", a.body);
    assert_eq!(expiry(&a), Some(unix("20991231235959Z")));
    let output = exporter.wait_output("the refusal", |o| o.contains("refused"));
    assert!(output.lines().any(|l| l.contains("refused") && l.contains("TLS")), "{output}");
}
