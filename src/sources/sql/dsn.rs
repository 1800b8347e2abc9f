//! Reading the connection URL from where the user keeps it, and printing it without its password.

use std::path::Path;

use crate::spec::config::DatabaseConfig;

/// The URL, from the environment variable or the file the spec names.
pub fn read_url(db: &DatabaseConfig, spec_dir: &Path) -> Result<String, String> {
    if let Some(var) = &db.url_env {
        return std::env::var(var).map_err(|_| format!("environment variable `{var}` (database.url_env) is not set"));
    }
    if let Some(file) = &db.url_file {
        let path = if file.is_absolute() { file.clone() } else { spec_dir.join(file) };
        return std::fs::read_to_string(&path)
            .map(|s| s.trim().to_string())
            .map_err(|e| format!("cannot read database.url_file {}: {e}", path.display()));
    }
    Err("database: give `url_env` or `url_file`".into())
}

/// `postgres://user:secret@host/db` -> `postgres://user:***@host/db`, for logs and errors.
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else { return "<database url>".into() };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let redacted_authority = match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            let user = userinfo.split(':').next().unwrap_or("");
            if userinfo.contains(':') { format!("{user}:***@{}", &authority[at + 1..]) } else { authority.to_string() }
        }
        None => authority.to_string(),
    };
    // Query parameters can carry a password too (`?password=`); drop them all.
    let path = rest[authority_end..].split('?').next().unwrap_or("");
    format!("{}://{}{}", &url[..scheme_end], redacted_authority, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hides_passwords() {
        assert_eq!(redact("postgres://app:s3cret@db:5432/main"), "postgres://app:***@db:5432/main");
        assert_eq!(redact("postgres://app@db/main?password=s3cret"), "postgres://app@db/main");
        assert_eq!(redact("not a url"), "<database url>");
    }

    proptest! {
        #[test]
        fn the_password_never_survives(password in "[A-Za-z0-9%!]{6,20}") {
            let url = format!("postgresql://user:{password}@host:5432/db?sslmode=require&password={password}");
            prop_assert!(!redact(&url).contains(&password));
        }
    }
}
