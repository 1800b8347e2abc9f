//! One direct connection attempt, to say why the database cannot be reached in the words a
//! person acts on ("connection refused at 127.0.0.1:5432"), before any query waits on a pool
//! that would only say "pool timed out".

use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

use super::secret::scrub;

/// Where the options point: `host:port`, or the socket file.
pub fn address(options: &PgConnectOptions) -> String {
    match options.get_socket() {
        Some(dir) => dir.join(format!(".s.PGSQL.{}", options.get_port())).display().to_string(),
        None => format!("{}:{}", options.get_host(), options.get_port()),
    }
}

/// What went wrong, in a few words: `connection refused`, the server's own message for a refused
/// login, the resolver's for an unknown host.
pub fn cause(error: &sqlx::Error) -> String {
    use std::io::ErrorKind;
    let text = match error {
        sqlx::Error::Io(io) => match io.kind() {
            ErrorKind::ConnectionRefused => "connection refused".to_string(),
            ErrorKind::ConnectionReset => "connection reset by the server".to_string(),
            ErrorKind::ConnectionAborted => "connection aborted".to_string(),
            ErrorKind::TimedOut => "timed out".to_string(),
            ErrorKind::HostUnreachable => "host unreachable".to_string(),
            ErrorKind::NetworkUnreachable => "network unreachable".to_string(),
            ErrorKind::AddrNotAvailable => "address not available".to_string(),
            ErrorKind::NotFound => "no such socket".to_string(),
            ErrorKind::PermissionDenied => "permission denied".to_string(),
            ErrorKind::UnexpectedEof => "the server closed the connection".to_string(),
            _ => io.to_string(),
        },
        sqlx::Error::Database(db) => db.message().to_string(),
        sqlx::Error::Tls(e) => format!("TLS: {e}"),
        other => other.to_string(),
    };
    let text = match super::tls::hint(error) {
        Some(hint) => format!("{text}; {hint}"),
        None => text,
    };
    // No driver or server text is known to quote the password; none is printed if one does.
    scrub(&text)
}

/// Connects once within `within` and closes again; the error says what went wrong and where.
pub async fn connect_once(options: &PgConnectOptions, within: Duration) -> Result<(), String> {
    let at = address(options);
    match tokio::time::timeout(within, PgConnection::connect_with(options)).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(format!("{} at {at}", cause(&e))),
        Err(_) => {
            Err(format!("no answer from {at} within {}", crate::spec::PromDuration::from_secs(within.as_secs().max(1))))
        }
    }
}
