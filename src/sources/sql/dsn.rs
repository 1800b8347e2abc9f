//! The connection string: read from where the user keeps it, taken apart here (not by the driver,
//! whose parse errors quote the text they failed on), and printed without its password.
//!
//! Both `postgres://user:pass@host:port/db?key=value` URLs and libpq's `host=... password=...`
//! strings are read. A URL password may be written without percent-encoding: the user part ends
//! at the last `@` that is followed by something shaped like a host, so `@`, `/`, `?` and `#` in a
//! password work. Nothing that could be part of the password is ever printed: messages about the
//! string say what is wrong and where (a character position), never what is there.
//!
//! Why a parser of our own: URL parsers (the driver's, the `url` crate) reject or misread a raw
//! `/`, `@`, `?` or `#` in the password, which is how passwords pasted from a secret store are
//! written, and their errors quote the text, password included.

use std::path::{Path, PathBuf};

use sqlx::postgres::PgConnectOptions;

use super::secret;
use crate::spec::config::DatabaseConfig;

/// A connection string is a line; a bigger file is not one.
const MAX_URL_FILE_BYTES: u64 = 64 << 10;

/// Why there is no connection string to connect with: it could not be read from where the spec
/// says, or it does not parse. No variant holds any of the string's text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DsnError {
    #[error("environment variable `{var}` (database.url_env) is not set")]
    EnvNotSet { var: String },
    #[error("environment variable `{var}` (database.url_env) is not valid UTF-8")]
    EnvNotUnicode { var: String },
    #[error("cannot read database.url_file {}: {source}", path.display())]
    FileUnreadable { path: PathBuf, source: crate::bounded_read::ReadError },
    #[error("database.url_file {} is not UTF-8", path.display())]
    FileNotUtf8 { path: PathBuf },
    /// A certificate or key file the string names cannot be read: said at start and reload, not
    /// by every connection as an unlabelled "No such file or directory".
    #[error("cannot read {key} {} (from the connection string): {reason}", path.display())]
    CertificateUnreadable { key: String, path: PathBuf, reason: String },
    #[error("database: give `url_env` or `url_file`")]
    NoSource,
    /// What is wrong and where (a character position), never what is there.
    #[error("the connection string does not parse: {0}")]
    Malformed(String),
    #[error("the connection string does not parse: the driver refused its settings")]
    DriverRefused,
}

/// The URL, from the environment variable or the file the spec names.
pub fn read_url(db: &DatabaseConfig, spec_dir: &Path) -> Result<String, DsnError> {
    if let Some(var) = &db.url_env {
        return match std::env::var(var) {
            Ok(url) => Ok(url),
            Err(std::env::VarError::NotPresent) => Err(DsnError::EnvNotSet { var: var.clone() }),
            Err(std::env::VarError::NotUnicode(_)) => Err(DsnError::EnvNotUnicode { var: var.clone() }),
        };
    }
    if let Some(file) = &db.url_file {
        let path = if file.is_absolute() { file.clone() } else { spec_dir.join(file) };
        // Bounded in time and refusing FIFOs and devices: it is read at start and on every
        // reload, where a hung secret mount must not hold the process.
        return crate::bounded_read::read(&path, MAX_URL_FILE_BYTES)
            .map_err(|source| DsnError::FileUnreadable { path: path.clone(), source })
            .and_then(|bytes| String::from_utf8(bytes).map_err(|_| DsnError::FileNotUtf8 { path: path.clone() }))
            .map(|s| s.trim().to_string());
    }
    Err(DsnError::NoSource)
}

/// The spec's database as the driver takes it, and its URL as logs may show it.
pub struct Dsn {
    pub options: PgConnectOptions,
    pub redacted: String,
}

/// The connection string read from where the spec says, parsed, its relative certificate and key
/// paths made absolute ([`files_dir`]).
pub fn load(db: &DatabaseConfig, spec_dir: &Path) -> Result<Dsn, DsnError> {
    let url = read_url(db, spec_dir)?;
    let dir = files_dir(db, spec_dir);
    let options = parse_in(&url, &dir)?;
    // It parsed, so it takes apart; its file settings are the paths the driver will open.
    for (key, value, printable) in take_apart(&url).map(|p| p.pairs).unwrap_or_default() {
        if FILE_KEYS.contains(&key.as_str()) && !is_inline_pem(&value) {
            let path = PathBuf::from(absolute_file(&value, &dir));
            crate::bounded_read::read(&path, MAX_CERTIFICATE_FILE_BYTES).map_err(|e| {
                // Text after an unquoted password may be more of the password.
                let path = if printable { path } else { PathBuf::from("(not shown: it may be password text)") };
                DsnError::CertificateUnreadable { key, path, reason: e.to_string() }
            })?;
        }
    }
    Ok(Dsn { redacted: redact(&url), options })
}

/// A CA bundle of every public root is about 250 KiB.
const MAX_CERTIFICATE_FILE_BYTES: u64 = 4 << 20;

fn is_inline_pem(value: &str) -> bool {
    let trimmed = value.trim();
    trimmed.starts_with("-----BEGIN") && trimmed.ends_with("-----")
}

/// What a relative `sslrootcert`, `sslcert` or `sslkey` is relative to: the directory of the
/// `url_file` (a mounted secret holds the URL and the certificates side by side), else the spec's
/// directory, like every other path in the spec. Never the working directory, which a service
/// manager chooses.
pub fn files_dir(db: &DatabaseConfig, spec_dir: &Path) -> PathBuf {
    match (&db.url_env, &db.url_file) {
        (None, Some(file)) => {
            let path = if file.is_absolute() { file.clone() } else { spec_dir.join(file) };
            path.parent().map_or_else(|| spec_dir.to_path_buf(), Path::to_path_buf)
        }
        _ => spec_dir.to_path_buf(),
    }
}

/// Keys whose value is a file (or, starting `-----BEGIN`, the PEM text itself).
const FILE_KEYS: &[&str] = &["sslrootcert", "ssl-root-cert", "ssl-ca", "sslcert", "ssl-cert", "sslkey", "ssl-key"];

/// A certificate or key setting's value with a relative path joined to `dir`.
fn absolute_file(value: &str, dir: &Path) -> String {
    if is_inline_pem(value) || value.is_empty() || Path::new(value).is_absolute() {
        return value.to_string();
    }
    dir.join(value).to_string_lossy().into_owned()
}

/// Driver options from a connection string, relative certificate and key paths left for the
/// driver to open from the working directory (the exporter's own connections go through [`load`]).
pub fn parse(text: &str) -> Result<PgConnectOptions, DsnError> {
    parse_in(text, Path::new(""))
}

/// Driver options from a connection string; relative certificate and key paths are taken from
/// `files_dir`. The password is remembered so that no later message can print it
/// ([`secret::scrub`]). The error names the problem, never the text.
pub fn parse_in(text: &str, files_dir: &Path) -> Result<PgConnectOptions, DsnError> {
    let parsed = take_apart(text).map_err(DsnError::Malformed)?;
    for (key, value, _) in &parsed.pairs {
        if key == "password" {
            secret::remember(value);
        }
    }
    // The driver falls back to it when the string has no password.
    if let Ok(password) = std::env::var("PGPASSWORD") {
        secret::remember(&password);
    }
    // The driver reads the pairs back from a URL we write, every value percent-encoded; it reads
    // `~/.pgpass` and the PG* environment variables the way it always does.
    let canonical: Vec<String> = parsed
        .pairs
        .iter()
        .map(|(k, v, _)| {
            let v = if FILE_KEYS.contains(&k.as_str()) { absolute_file(v, files_dir) } else { v.clone() };
            format!("{}={}", percent_encode(k), percent_encode(&v))
        })
        .collect();
    format!("postgres://?{}", canonical.join("&")).parse::<PgConnectOptions>().map_err(|_| DsnError::DriverRefused)
}

/// The connection string without its password, for logs: `postgres://app:***@db:5432/main`.
/// Parts that cannot be told apart from the password with certainty are shown as `?`.
pub fn redact(text: &str) -> String {
    match take_apart(text) {
        Ok(parsed) => parsed.display(),
        Err(_) => "<database url>".into(),
    }
}

/// Connection parameters in libpq's names, each with whether its value may be printed.
struct Parsed {
    pairs: Vec<(String, String, bool)>,
}

/// Keys the driver understands (libpq's names and sqlx's spellings of the same settings).
const KNOWN_KEYS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "user",
    "password",
    "dbname",
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "application_name",
    "options",
    "statement-cache-capacity",
];

const SSL_MODES: &[&str] = &["disable", "allow", "prefer", "require", "verify-ca", "verify-full"];

impl Parsed {
    fn get(&self, key: &str) -> Option<(&str, bool)> {
        self.pairs.iter().rev().find(|(k, _, _)| k == key).map(|(_, v, printable)| (v.as_str(), *printable))
    }

    fn display(&self) -> String {
        let shown = |key: &str| match self.get(key) {
            Some((value, true)) => Some(value.to_string()),
            Some((_, false)) => Some("?".to_string()),
            None => None,
        };
        let mut out = String::from("postgres://");
        if let Some(user) = shown("user") {
            out.push_str(&user);
        }
        if self.get("password").is_some() {
            out.push_str(":***");
        }
        if self.get("user").is_some() || self.get("password").is_some() {
            out.push('@');
        }
        if let Some(host) = shown("host").or_else(|| shown("hostaddr")) {
            out.push_str(&host);
        }
        if let Some(port) = shown("port") {
            out.push(':');
            out.push_str(&port);
        }
        if let Some(db) = shown("dbname") {
            out.push('/');
            out.push_str(&db);
        }
        out
    }

    /// Every key known, every value the driver would read checked here, so that its own parse
    /// (whose errors quote values) cannot fail.
    fn check(&self) -> Result<(), String> {
        for (key, value, _) in &self.pairs {
            let is_option = key.starts_with("options[") && key.ends_with(']');
            if !KNOWN_KEYS.contains(&key.as_str()) && !is_option {
                // Not named: in a string that is not what it seems, a "key" can be password text.
                return Err(format!("a parameter is not one of {}, options[...]", KNOWN_KEYS.join(", ")));
            }
            match key.as_str() {
                "port" if !value.parse::<u16>().is_ok_and(|p| p > 0) => {
                    return Err("the port is not a number from 1 to 65535".into());
                }
                "sslmode" | "ssl-mode" if !SSL_MODES.contains(&value.to_ascii_lowercase().as_str()) => {
                    return Err(format!("`sslmode` is not one of {}", SSL_MODES.join(", ")));
                }
                "hostaddr" if value.parse::<std::net::IpAddr>().is_err() => {
                    return Err("`hostaddr` is not an IP address".into());
                }
                "statement-cache-capacity" if value.parse::<usize>().is_err() => {
                    return Err("`statement-cache-capacity` is not a number".into());
                }
                "host" if value.contains(',') => return Err("several hosts are not supported".into()),
                _ => {}
            }
        }
        Ok(())
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

fn take_apart(text: &str) -> Result<Parsed, String> {
    let text = text.trim();
    let parsed = if let Some(rest) =
        strip_prefix_ignore_case(text, "postgresql://").or_else(|| strip_prefix_ignore_case(text, "postgres://"))
    {
        url_parts(rest)?
    } else if !text.contains("://") && text.contains('=') {
        key_value_parts(text)?
    } else {
        return Err("it is neither a postgres:// URL nor libpq `key=value` pairs".into());
    };
    parsed.check()?;
    Ok(parsed)
}

/// `a,b` host lists, `[::1]`, names, addresses and percent-encoded socket directories.
fn looks_like_hosts(segment: &str) -> bool {
    segment.chars().all(|c| c.is_ascii_alphanumeric() || ".-_:[]%,".contains(c))
}

fn host_segment_end(text: &str) -> usize {
    text.find(['/', '?', '#']).unwrap_or(text.len())
}

/// The part after `postgres://`.
fn url_parts(rest: &str) -> Result<Parsed, String> {
    let mut pairs = Vec::new();
    // Anything before the last `@` may be password; nothing from there is printed.
    let secret_end = rest.rfind('@').map_or(0, |at| at + 1);
    let after_user = match rest.rfind('@') {
        None => 0,
        Some(_) => {
            let at = rest
                .match_indices('@')
                .map(|(i, _)| i)
                .rev()
                .find(|&i| looks_like_hosts(&rest[i + 1..][..host_segment_end(&rest[i + 1..])]))
                .ok_or(
                    "cannot tell where the password ends; percent-encode `@`, `/`, `?` and `#` in it \
                     (`%40`, `%2F`, `%3F`, `%23`)",
                )?;
            let userinfo = &rest[..at];
            let (user, password) = match userinfo.split_once(':') {
                Some((user, password)) => (user, Some(password)),
                None => (userinfo, None),
            };
            if !user.is_empty() {
                pairs.push(("user".to_string(), percent_decode(user, "the user name")?, true));
            }
            if let Some(password) = password {
                // Remembered as written too: a driver message could quote either form.
                secret::remember(password);
                pairs.push(("password".to_string(), percent_decode(password, "the password")?, false));
            }
            at + 1
        }
    };
    let printable = |at: usize| at >= secret_end;
    let after = &rest[after_user..];
    let host_end = host_segment_end(after);
    let hostport = &after[..host_end];
    let printable_host = printable(after_user);
    if !hostport.is_empty() {
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let close = v6.find(']').ok_or("an IPv6 address without its closing `]`")?;
            match &v6[close + 1..] {
                "" => (&v6[..close], None),
                tail => {
                    (&v6[..close], Some(tail.strip_prefix(':').ok_or("unexpected text after the `]` of the host")?))
                }
            }
        } else {
            match hostport.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (hostport, None),
            }
        };
        if !host.is_empty() {
            pairs.push(("host".to_string(), percent_decode(host, "the host")?, printable_host));
        }
        if let Some(port) = port {
            pairs.push(("port".to_string(), port.to_string(), printable_host));
        }
    }
    let mut tail = &after[host_end..];
    let mut at = after_user + host_end;
    if let Some(path) = tail.strip_prefix('/') {
        let end = path.find(['?', '#']).unwrap_or(path.len());
        if end > 0 {
            pairs.push(("dbname".to_string(), percent_decode(&path[..end], "the database name")?, printable(at + 1)));
        }
        tail = &path[end..];
        at += 1 + end;
    }
    if let Some(query) = tail.strip_prefix('?') {
        let end = query.find('#').unwrap_or(query.len());
        let mut offset = at + 1;
        for item in query[..end].split('&') {
            if !item.is_empty() {
                let (key, value) = item.split_once('=').ok_or("a query parameter without `=`")?;
                let key = percent_decode(key, "a parameter name")?;
                let value = percent_decode(value, "a parameter value")?;
                let visible = printable(offset) && key != "password";
                pairs.push((key, value, visible));
            }
            offset += item.len() + 1;
        }
        tail = &query[end..];
    }
    if tail.starts_with('#') {
        return Err("a connection URL has no `#` part (percent-encode `#` in a password as `%23`)".into());
    }
    Ok(Parsed { pairs })
}

/// libpq's `key=value` pairs, separated by spaces; values in single quotes may hold spaces, and
/// `\` escapes the next character.
fn key_value_parts(text: &str) -> Result<Parsed, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut pairs = Vec::new();
    let mut i = 0;
    // Pairs after an unquoted password might be the password's own text (a space in it).
    let mut after_password = false;
    let skip_space = |i: &mut usize| {
        while *i < chars.len() && chars[*i].is_whitespace() {
            *i += 1;
        }
    };
    loop {
        skip_space(&mut i);
        if i >= chars.len() {
            break;
        }
        let key_start = i;
        while i < chars.len() && !chars[i].is_whitespace() && chars[i] != '=' {
            i += 1;
        }
        let key: String = chars[key_start..i].iter().collect();
        skip_space(&mut i);
        if i >= chars.len() || chars[i] != '=' {
            return Err(format!("expected `=` after the key at character {}", key_start + 1));
        }
        i += 1;
        skip_space(&mut i);
        let mut value = String::new();
        let quoted = i < chars.len() && chars[i] == '\'';
        if quoted {
            let open = i;
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(format!("the quote at character {} is not closed", open + 1)),
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some('\\') => {
                        if let Some(c) = chars.get(i + 1) {
                            value.push(*c);
                        }
                        i += 2;
                    }
                    Some(c) => {
                        value.push(*c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < chars.len() && !chars[i].is_whitespace() {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                }
                value.push(chars[i]);
                i += 1;
            }
        }
        let is_password = key == "password";
        pairs.push((key, value, !after_password && !is_password));
        // A quoted password ends where the user meant it to; an unquoted one may not.
        after_password |= is_password && !quoted;
    }
    Ok(Parsed { pairs })
}

/// `%XX` escapes decoded; a `%` not followed by two hex digits is kept as it is.
fn percent_decode(text: &str, what: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) =
                (bytes.get(i + 1).and_then(|b| hex(*b)), bytes.get(i + 2).and_then(|b| hex(*b)))
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("the percent-encoded bytes of {what} are not UTF-8"))
}

/// Every byte but ASCII letters and digits as `%XX`.
pub(super) fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hides_passwords() {
        assert_eq!(redact("postgres://app:s3cret@db:5432/main"), "postgres://app:***@db:5432/main");
        assert_eq!(redact("postgres://app@db/main?password=s3cret"), "postgres://app:***@db/main");
        assert_eq!(redact("not a url"), "<database url>");
        assert_eq!(redact("host=db port=5432 user=app password='a b' dbname=main"), "postgres://app:***@db:5432/main");
    }

    #[test]
    fn a_password_may_hold_url_delimiters() {
        let options = parse("postgres://app:Zq8/x+Kk@host:5432/db").unwrap();
        assert_eq!((options.get_host(), options.get_port(), options.get_username()), ("host", 5432, "app"));
        assert_eq!(options.get_database(), Some("db"));
        assert_eq!(redact("postgres://app:Zq8/x+Kk@host:5432/db"), "postgres://app:***@host:5432/db");
        assert_eq!(redact("postgres://app:a@b/c?d#e@host/db"), "postgres://app:***@host/db");
        let options = parse("postgres://app:p%40ss@[::1]:6000/db?sslmode=disable&application_name=x").unwrap();
        assert_eq!((options.get_host(), options.get_port()), ("::1", 6000));
    }

    /// A relative certificate path is taken from the `url_file`'s directory, or the spec's when the
    /// URL comes from the environment; absolute paths and inline PEM are left as written.
    #[test]
    fn certificate_paths_are_relative_to_where_the_url_is_kept() {
        let db = |env: Option<&str>, file: Option<&str>| DatabaseConfig {
            url_env: env.map(str::to_string),
            url_file: file.map(PathBuf::from),
            ..serde_saphyr::from_str("{}").expect("empty database section")
        };
        let spec = Path::new("/etc/exporter");
        assert_eq!(files_dir(&db(None, Some("secret/url")), spec), Path::new("/etc/exporter/secret"));
        assert_eq!(files_dir(&db(None, Some("/run/db/url")), spec), Path::new("/run/db"));
        assert_eq!(files_dir(&db(Some("DSN"), None), spec), spec);
        let dir = Path::new("/run/db");
        assert_eq!(absolute_file("ca.crt", dir), "/run/db/ca.crt");
        assert_eq!(absolute_file("../pki/ca.crt", dir), "/run/db/../pki/ca.crt");
        assert_eq!(absolute_file("/etc/ssl/ca.crt", dir), "/etc/ssl/ca.crt");
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
        assert_eq!(absolute_file(pem, dir), pem);
    }

    /// Reading and parsing fail as variants a caller can tell apart, with the messages users see.
    #[test]
    fn errors_are_typed_by_phase() {
        let db = |env: Option<&str>| DatabaseConfig {
            url_env: env.map(str::to_string),
            ..serde_saphyr::from_str("{}").expect("empty database section")
        };
        let err = read_url(&db(Some("INTEGRATION_EXPORTER_UNIT_UNSET_VAR")), Path::new(".")).unwrap_err();
        assert_eq!(err, DsnError::EnvNotSet { var: "INTEGRATION_EXPORTER_UNIT_UNSET_VAR".into() });
        assert_eq!(
            err.to_string(),
            "environment variable `INTEGRATION_EXPORTER_UNIT_UNSET_VAR` (database.url_env) is not set"
        );
        assert_eq!(read_url(&db(None), Path::new(".")).unwrap_err(), DsnError::NoSource);
        let err = parse("mysql://app:pw@host").unwrap_err();
        assert!(matches!(err, DsnError::Malformed(_)), "{err:?}");
        assert!(err.to_string().starts_with("the connection string does not parse: it is neither"), "{err}");
    }

    #[test]
    fn errors_never_quote_the_text() {
        for (text, expected) in [
            ("postgres://app:pw@host:99999/db", "the port is not a number"),
            ("postgres://app:pw@host/db?sslmode=maybe", "`sslmode` is not one of"),
            ("postgres://app:pw@host/db?nosuch=1", "a parameter is not one of"),
            ("host=x password='open", "the quote at character 17 is not closed"),
            ("mysql://app:pw@host", "neither a postgres:// URL"),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text}: {err}");
            assert!(!err.contains("pw") && !err.contains("open"), "{err}");
        }
    }

    /// A 3-character piece of `password` that `output` shows, unless the same string with a
    /// harmless password shows it too (the host `db` is no leak of a password `xdbx`) or it is
    /// part of a message written in this file (a password `not` is not leaked by "is not").
    fn leaks(output: &str, baseline: &str, password: &str) -> Option<String> {
        let fixed = include_str!("dsn.rs");
        let chars: Vec<char> = password.chars().collect();
        chars
            .windows(3)
            .map(|w| w.iter().collect::<String>())
            .find(|w| output.contains(w) && !baseline.contains(w) && !fixed.contains(w))
    }

    fn outputs(dsn: &str) -> String {
        format!("{} {}", redact(dsn), parse(dsn).err().map(|e| e.to_string()).unwrap_or_default())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Any password of printable characters (any script), written raw, percent-encoded, as a query parameter or in a
        /// libpq string: neither the printable form nor any error shows a piece of it.
        #[test]
        fn the_password_never_survives(password in "\\PC{3,24}", raw_tail in "[ -~]{0,12}") {
            let encoded = percent_encode(&password);
            let quoted = password.replace('\\', "\\\\").replace('\'', "\\'");
            for (dsn, baseline) in [
                (format!("postgresql://user:{password}@host:5432/db"), "postgresql://user:xyz@host:5432/db".to_string()),
                (format!("postgres://user:{encoded}@host/db?sslmode=require"), "postgres://user:x@host/db?sslmode=require".into()),
                (format!("postgres://user@host/db?password={encoded}&sslmode=disable"), "postgres://user@host/db?password=x&sslmode=disable".into()),
                (format!("host=host user=user password='{quoted}' dbname=db"), "host=host user=user password='x' dbname=db".into()),
                // Strings that do not parse, with the password where a user might put it.
                (format!("postgres://user:{password}@{raw_tail}"), format!("postgres://user:x@{raw_tail}")),
                (format!("user=user password={password} {raw_tail}"), format!("user=user password=x {raw_tail}")),
                (format!("{password}@host"), "x@host".into()),
            ] {
                let said = outputs(&dsn);
                let base = outputs(&baseline);
                prop_assert!(leaks(&said, &base, &password).is_none(), "{dsn:?} printed {said:?}");
            }
        }
    }
}
