//! TLS to the database, against a real PostgreSQL that accepts TLS connections only: the
//! connection string's libpq settings (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`) are what the
//! exporter honours. Verified with the right CA it reads the database; with a CA that did not sign
//! the server's certificate, or without TLS, it says why it cannot, without the password.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::exporter::Exporter;
use support::http::Metrics;
use support::pg_tls::{CERT_USER, PASSWORD_USER, Pki};
use support::{Cluster, exporter_bin, free_port};

const PASSWORD: &str = "Tq7/Lw#Rz@Vb";

/// A spec reading one SQL signal; the database section as given.
fn spec(dir: &Path, port: u16, database: &str) -> PathBuf {
    let path = dir.join("spec.yaml");
    let text = format!(
        "listen: 127.0.0.1:{port}
database: {database}
poll_defaults: {{interval: 1s, timeout: 2s}}
signals:
  - id: t.tls
    title: Over TLS
    runbook_section: https://example.com/runbook#tls
    metrics:
      - {{name: t_tls, type: gauge, help: Whether the session is encrypted.}}
    source:
      sql:
        query: SELECT ssl::int AS value FROM pg_stat_ssl WHERE pid = pg_backend_pid()
"
    );
    std::fs::write(&path, text).expect("spec");
    path
}

fn url(cluster: &Cluster, query: &str) -> String {
    format!("postgres://{PASSWORD_USER}:{PASSWORD}@127.0.0.1:{}/postgres?{query}", cluster.port)
}

fn assert_no_password(output: &str) {
    let chars: Vec<char> = PASSWORD.chars().collect();
    for window in chars.windows(3) {
        let piece: String = window.iter().collect();
        assert!(!output.contains(&piece), "`{piece}` of the password is in the output:\n{output}");
    }
}

/// `serve` with the URL in `IE_TEST_DSN` (if any) from `cwd`, until `database_up` is `up`: the
/// metrics then and everything it printed.
fn serve_until(spec: &Path, cluster: &Cluster, dsn: &str, cwd: &Path, up: f64) -> (Metrics, String) {
    let port = spec_port(spec);
    let exporter = Exporter::serve(spec, port).env("IE_TEST_DSN", dsn).cwd(cwd).start();
    let series = format!("integration_exporter_database_up{{database=\"127.0.0.1:{}/postgres\"}}", cluster.port);
    let metrics = exporter
        .wait_for(&format!("{series} {up}"), |m| m.get(&series) == Some(up) && (up == 0.0 || m.get("t_tls").is_some()));
    (metrics, exporter.stop())
}

fn spec_port(spec: &Path) -> u16 {
    let text = std::fs::read_to_string(spec).expect("read spec");
    let listen = text.lines().find_map(|l| l.strip_prefix("listen: 127.0.0.1:")).expect("listen line");
    listen.trim().parse().expect("port")
}

/// `check --database` from `cwd`: whether it passed, and what it printed.
fn check(spec: &Path, dsn: &str, cwd: &Path) -> (bool, String) {
    let out = Command::new(exporter_bin())
        .args(["check", "--database", "--config"])
        .arg(spec)
        .env("IE_TEST_DSN", dsn)
        .current_dir(cwd)
        .output()
        .expect("run check");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// A TLS-only cluster, its certificates, a directory for the spec and one to run the exporter in.
fn setup() -> (Cluster, Pki, tempfile::TempDir, tempfile::TempDir) {
    let (cluster, pki) = Cluster::start_tls(PASSWORD);
    (cluster, pki, tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"))
}

#[test]
fn verify_full_with_the_right_ca_reads_over_tls() {
    let (cluster, pki, dir, cwd) = setup();
    let spec = spec(dir.path(), free_port(), "{url_env: IE_TEST_DSN}");
    let dsn = url(&cluster, &format!("sslmode=verify-full&sslrootcert={}", pki.ca.display()));
    let (metrics, output) = serve_until(&spec, &cluster, &dsn, cwd.path(), 1.0);
    assert_eq!(metrics.get("t_tls"), Some(1.0), "the session is not encrypted");
    assert_eq!(metrics.get("integration_exporter_query_success{signal=\"t.tls\"}"), Some(1.0), "{output}");
    assert_no_password(&output);

    let (ok, said) = check(&spec, &dsn, cwd.path());
    assert!(ok && said.contains(": ok (1 signals)"), "check --database over TLS failed:\n{said}");
}

/// `sslrootcert`, `sslcert` and `sslkey` written as bare names in a `url_file` are the files next
/// to it, whatever directory the exporter runs in; the client certificate is the login.
#[test]
fn certificates_next_to_the_url_file_and_a_client_certificate() {
    let (cluster, pki, dir, cwd) = setup();
    let secret = dir.path().join("secret");
    std::fs::create_dir(&secret).expect("mkdir");
    for (from, to) in [(&pki.ca, "ca.crt"), (&pki.client_cert, "tls.crt"), (&pki.client_key, "tls.key")] {
        std::fs::copy(from, secret.join(to)).expect("copy certificate");
    }
    let dsn = format!(
        "postgres://{CERT_USER}@127.0.0.1:{}/postgres?sslmode=verify-full&sslrootcert=ca.crt&sslcert=tls.crt&sslkey=tls.key",
        cluster.port
    );
    std::fs::write(secret.join("url"), format!("{dsn}\n")).expect("write url");
    let spec = spec(dir.path(), free_port(), "{url_file: secret/url}");
    let (metrics, output) = serve_until(&spec, &cluster, "", cwd.path(), 1.0);
    assert_eq!(metrics.get("t_tls"), Some(1.0), "{output}");
    let (ok, said) = check(&spec, "", cwd.path());
    assert!(ok, "check --database with a client certificate failed:\n{said}");
}

/// A server certificate the given CA did not sign: no data, and the log and `check` say it is
/// the certificate, without the password.
#[test]
fn a_wrong_ca_is_a_certificate_problem() {
    let (cluster, pki, dir, cwd) = setup();
    let spec = spec(dir.path(), free_port(), "{url_env: IE_TEST_DSN}");
    let dsn = url(&cluster, &format!("sslmode=verify-full&sslrootcert={}", pki.wrong_ca.display()));
    let (metrics, output) = serve_until(&spec, &cluster, &dsn, cwd.path(), 0.0);
    assert_eq!(metrics.get("t_tls"), None);
    assert!(
        output.contains("kind=connect") && output.contains("certificate") && output.contains("sslrootcert"),
        "the log does not say the certificate is not trusted:\n{output}"
    );
    assert_no_password(&output);

    let (ok, said) = check(&spec, &dsn, cwd.path());
    assert!(!ok && said.contains("certificate") && said.contains("sslrootcert"), "{said}");
    assert_no_password(&said);
}

/// Without TLS the server refuses the login (its `pg_hba.conf` has `hostssl` lines only), and the
/// exporter says so in words that point at `sslmode`.
#[test]
fn without_tls_a_hostssl_server_refuses_and_it_says_so() {
    let (cluster, _pki, dir, cwd) = setup();
    let spec = spec(dir.path(), free_port(), "{url_env: IE_TEST_DSN}");
    let dsn = url(&cluster, "sslmode=disable");
    let (_, output) = serve_until(&spec, &cluster, &dsn, cwd.path(), 0.0);
    assert!(output.contains("no encryption") && output.contains("sslmode"), "{output}");
    assert_no_password(&output);
    let (ok, said) = check(&spec, &dsn, cwd.path());
    assert!(!ok && said.contains("no encryption") && said.contains("sslmode"), "{said}");
    assert_no_password(&said);
}

/// A certificate file the URL names but that is not there stops `serve` at start and fails
/// `check`, naming the setting and the path it looked at (the `url_file`'s directory), rather than
/// every connection failing with a bare "No such file or directory".
#[test]
fn a_missing_certificate_file_is_named_at_start() {
    let (cluster, _pki, dir, cwd) = setup();
    let secret = dir.path().join("secret");
    std::fs::create_dir(&secret).expect("mkdir");
    let dsn = url(&cluster, "sslmode=verify-full&sslrootcert=ca.crt");
    std::fs::write(secret.join("url"), &dsn).expect("write url");
    let spec = spec(dir.path(), free_port(), "{url_file: secret/url}");
    let expected = format!("cannot read sslrootcert {}", secret.join("ca.crt").display());
    let (status, output) = Exporter::serve(&spec, spec_port(&spec)).cwd(cwd.path()).exit();
    assert!(!status.success() && output.contains(&expected), "{status}: {output}");
    assert_no_password(&output);
    let (ok, said) = check(&spec, "", cwd.path());
    assert!(!ok && said.contains(&expected), "{said}");
}
