//! One direct connection for `check`, failing with the real cause. A pool retries a refused
//! connection until its acquire timeout and then says only "pool timed out", once per query;
//! `check` connects once, and a refused or unreachable database is one line naming where and why.

use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

pub use crate::sources::sql::reach::{address, cause};

/// Why `check` could not connect; `at` is host:port (or the socket), never the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// The driver's failure, said as [`cause`] says it.
    #[error("cannot connect to the database at {at}: {cause}")]
    Failed { at: String, cause: String },
    #[error("cannot connect to the database at {at}: no answer within {} (database.connect_timeout)", crate::spec::PromDuration(*within))]
    NoAnswer { at: String, within: Duration },
}

/// A connection within `timeout`, or one line: `cannot connect to the database at
/// 127.0.0.1:5432: connection refused`.
pub async fn connect(options: &PgConnectOptions, timeout: Duration) -> Result<PgConnection, ConnectError> {
    let at = address(options);
    match tokio::time::timeout(timeout, PgConnection::connect_with(options)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(ConnectError::Failed { at, cause: cause(&e) }),
        Err(_) => Err(ConnectError::NoAnswer { at, within: timeout }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_errors_say_what_they_said_as_text() {
        let failed = ConnectError::Failed { at: "127.0.0.1:5432".into(), cause: "connection refused".into() };
        assert_eq!(failed.to_string(), "cannot connect to the database at 127.0.0.1:5432: connection refused");
        let silent = ConnectError::NoAnswer { at: "db:5432".into(), within: Duration::from_secs(5) };
        assert_eq!(
            silent.to_string(),
            "cannot connect to the database at db:5432: no answer within 5s (database.connect_timeout)"
        );
    }
}
