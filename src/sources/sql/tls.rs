//! What a failed TLS connection means in the connection string's own words (`sslmode`,
//! `sslrootcert`): the driver says `invalid peer certificate: UnknownIssuer`, the server says
//! `no pg_hba.conf entry ... no encryption`; a person needs to know which setting to change.

use rustls::CertificateError;

/// The setting to look at when `error` is a TLS or certificate problem; `None` otherwise.
pub fn hint(error: &sqlx::Error) -> Option<&'static str> {
    match error {
        sqlx::Error::Io(io) => io.get_ref()?.downcast_ref::<rustls::Error>().map(rustls_hint),
        sqlx::Error::Tls(e) => Some(e.downcast_ref::<rustls::Error>().map_or(
            "TLS: check sslmode, sslrootcert, sslcert and sslkey (a certificate or key file that does not parse?)",
            rustls_hint,
        )),
        // PostgreSQL 15 says "no encryption", older servers "SSL off": `hostssl` lines only.
        sqlx::Error::Database(db)
            if db.code().as_deref() == Some("28000")
                && (db.message().contains("no encryption") || db.message().contains("SSL off")) =>
        {
            Some("the server accepts this login over TLS only: set sslmode=verify-full (with sslrootcert) or require")
        }
        _ => None,
    }
}

fn rustls_hint(error: &rustls::Error) -> &'static str {
    match error {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => {
                "TLS: the server's certificate is not signed by a CA in sslrootcert"
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "TLS: the server's certificate does not name the host in the connection string \
                 (sslmode=verify-full checks it; verify-ca does not)"
            }
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => {
                "TLS: the server's certificate is expired or not yet valid (or this machine's clock is wrong)"
            }
            _ => "TLS: the server's certificate is refused; check sslrootcert",
        },
        rustls::Error::AlertReceived(_) => {
            "TLS: the server refused the handshake; does it want a client certificate (sslcert, sslkey)?"
        }
        _ => "TLS: the handshake failed; check sslmode, sslrootcert, sslcert and sslkey",
    }
}
