//! A throwaway PostgreSQL that speaks only TLS: `ssl = on` with a server certificate for
//! `127.0.0.1` signed by a throwaway CA, and `pg_hba.conf` holding `hostssl` lines only, so a
//! plain TCP connection is refused. Certificates are made with `openssl` at each start (a minute
//! of CPU would be a lot; elliptic-curve keys take milliseconds).

use std::path::{Path, PathBuf};

use super::{Cluster, is_root, pg_command, program};

/// The files a client needs: the CA that signed the server certificate, a CA that did not, and a
/// client certificate (signed by the CA) for the role [`CERT_USER`], which logs in with it alone.
pub struct Pki {
    /// Holds the files; removed on drop.
    _dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub wrong_ca: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

/// The role whose only way in is a client certificate (`cert` authentication).
pub const CERT_USER: &str = "certuser";
/// The role that logs in with a password (SCRAM), over TLS.
pub const PASSWORD_USER: &str = "app";

fn openssl(dir: &Path, args: &[&str]) {
    let out = program("openssl").args(args).current_dir(dir).output().expect("run openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A self-signed CA `<name>.crt` / `<name>.key` in `dir`.
fn ca(dir: &Path, name: &str) {
    let (key, crt, subject) = (format!("{name}.key"), format!("{name}.crt"), format!("/CN=throwaway {name}"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            &key,
            "-out",
            &crt,
            "-subj",
            &subject,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

/// A leaf `<name>.crt` / `<name>.key` signed by `ca`, with the given extensions.
fn leaf(dir: &Path, name: &str, subject: &str, extensions: &str) {
    let (key, csr, crt, ext) =
        (format!("{name}.key"), format!("{name}.csr"), format!("{name}.crt"), format!("{name}.ext"));
    std::fs::write(dir.join(&ext), extensions).expect("write extensions");
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            subject,
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &crt,
            "-extfile",
            &ext,
        ],
    );
}

impl Cluster {
    /// A cluster that accepts TLS connections only: the `postgres` superuser without a password,
    /// [`PASSWORD_USER`] with `password`, [`CERT_USER`] with its client certificate.
    pub fn start_tls(password: &str) -> (Cluster, Pki) {
        let pki_dir = tempfile::Builder::new().prefix("ie-pki-").tempdir().expect("tempdir");
        let d = pki_dir.path();
        ca(d, "ca");
        ca(d, "wrong_ca");
        let server = "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
                      keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n";
        leaf(d, "server", "/CN=127.0.0.1", server);
        let client = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n";
        leaf(d, "client", &format!("/CN={CERT_USER}"), client);

        let cluster = Cluster::init();
        let data = cluster.data();
        for file in ["server.crt", "server.key", "ca.crt"] {
            std::fs::copy(d.join(file), data.join(file)).expect("copy certificate into the data directory");
            // The server refuses a key others can read, and must own it.
            std::fs::set_permissions(data.join(file), std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .expect("chmod");
            if is_root() {
                program("chown").arg("postgres").arg(data.join(file)).status().expect("chown");
            }
        }
        let conf = "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nssl_ca_file = 'ca.crt'\n";
        append(&data.join("postgresql.conf"), conf);
        // No `host` line: a connection without TLS matches nothing and is refused.
        let hba = format!(
            "local all all trust\n\
             hostssl all postgres 127.0.0.1/32 trust\n\
             hostssl all {CERT_USER} 127.0.0.1/32 cert\n\
             hostssl all all 127.0.0.1/32 scram-sha-256\n"
        );
        std::fs::write(data.join("pg_hba.conf"), hba).expect("write pg_hba.conf");
        cluster.pg_ctl_start();
        let escaped = password.replace('\'', "''");
        let sql = format!("CREATE ROLE {PASSWORD_USER} LOGIN PASSWORD '{escaped}'; CREATE ROLE {CERT_USER} LOGIN;");
        let status = pg_command(&cluster.bindir, "psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-h"])
            .arg(cluster.dir.path())
            .args(["-p", &cluster.port.to_string(), "-d", "postgres", "-c", &sql])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("psql");
        assert!(status.success(), "creating the roles failed");
        let pki = Pki {
            ca: d.join("ca.crt"),
            wrong_ca: d.join("wrong_ca.crt"),
            client_cert: d.join("client.crt"),
            client_key: d.join("client.key"),
            _dir: pki_dir,
        };
        (cluster, pki)
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().append(true).open(path).expect("open postgresql.conf");
    file.write_all(text.as_bytes()).expect("append to postgresql.conf");
}
