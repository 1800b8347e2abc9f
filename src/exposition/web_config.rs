//! TLS, basic auth and extra response headers for the HTTP endpoint, from a web configuration
//! file in Prometheus exporter-toolkit's format (what node_exporter reads with
//! `--web.config.file`), so one file serves every exporter on a host.
//!
//! As in exporter-toolkit, the file is consulted on every request: a change to
//! `basic_auth_users` or `http_server_config.headers` applies to the next request without a
//! restart, and a file that no longer loads answers 500 until it is fixed. Here the file is only
//! re-read when its modification time, size or inode changes, and never on the async runtime (see
//! [`reload`]). The certificates are loaded at start and again, for new connections, when the
//! file or one of the PEM files it names changes. While a reload fails (a broken file, a key that
//! does not match its certificate halfway through a rotation), requests answer 500, the error is
//! logged once per change, and new connections still get the last certificates that loaded.
//! Whether the listener speaks TLS at all is decided at start.
//!
//! A change that would lower protection (basic auth off, certificates gone, client certificates
//! no longer required) is refused unless the file says `allow_downgrade: true`: an empty or
//! half-written file must not open the endpoint. See [`reload`].
//!
//! Successful basic-auth checks are remembered for five minutes after their last use (at most 100,
//! keyed by a SHA-256 of user, password and stored hash), so a scraper pays for bcrypt once and a
//! remembered request never waits; failures are not remembered. bcrypt runs on the blocking pool,
//! at most two at a time, and a request that finds both busy is turned away at once
//! ([`Auth::Busy`]) instead of queueing: a flood of wrong passwords costs two cores at most and
//! cannot build a queue in front of the real scraper.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

mod reload;
mod tls;
mod validity;

use base64::Engine as _;
use hyper::header::{HeaderName, HeaderValue};
use rustls::ServerConfig;
use serde::Deserialize;
use sha2::{Digest, Sha256};
pub use tls::TlsError;
use tls::{ClientAuthType, TlsFile, tls_config};
use tokio::sync::Semaphore;
use validity::Validity;

pub use reload::{NotInForce, replacing};

use crate::bounded_read;
use crate::state::State;

/// The realm of the `WWW-Authenticate` challenge.
pub const REALM: &str = "integration-exporter";

/// How long a successful basic-auth check is remembered, so each scrape does not pay for bcrypt.
const AUTH_CACHE_TTL: Duration = Duration::from_secs(300);
/// Most remembered successful checks.
const AUTH_CACHE_SIZE: usize = 100;
/// bcrypt verifications running at once; more are turned away, so a flood of bad passwords costs
/// at most this many cores and no memory.
const BCRYPT_CONCURRENCY: usize = 2;
/// A web config is a few kilobytes.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// The file as written (exporter-toolkit's `Config`, plus `allow_downgrade`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    tls_server_config: Option<TlsFile>,
    #[serde(default)]
    http_server_config: Option<HttpFile>,
    #[serde(default)]
    basic_auth_users: Option<BTreeMap<String, String>>,
    /// Not an exporter-toolkit key. `true` lets a change of this file that lowers protection apply
    /// while the exporter runs: basic auth turned off (no `basic_auth_users` left), the TLS
    /// certificates removed, or client certificates checked less strictly (`client_auth_type`).
    /// Without it such a change, including an empty, comment-only or half-written file, is
    /// refused: the settings in force stay, a warning names the file and what the change would
    /// have turned off, and `integration_exporter_web_config_last_reload_successful` is 0 until the
    /// file is changed back or says `allow_downgrade: true`. Other exporters refuse keys they do
    /// not know: if they read the same file, remove the key once the change has applied.
    #[serde(default)]
    allow_downgrade: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    /// Accepted for compatibility; the endpoint speaks HTTP/1.1 only.
    #[serde(default)]
    #[allow(dead_code)]
    http2: Option<bool>,
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
}

/// The headers exporter-toolkit allows in `http_server_config.headers`, with the values it
/// allows (`None`: any value).
const ALLOWED_HEADERS: &[(&str, Option<&[&str]>)] = &[
    ("Strict-Transport-Security", None),
    ("X-Content-Type-Options", Some(&["nosniff"])),
    ("X-Frame-Options", Some(&["deny", "sameorigin"])),
    ("X-XSS-Protection", None),
    ("Content-Security-Policy", None),
];

/// One loaded and checked version of the file.
pub struct WebConfig {
    /// Added to every response.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// User name to bcrypt hash; empty means no authentication.
    users: HashMap<String, String>,
    /// Checked for unknown users, so the answer takes as long as for a known one.
    dummy_hash: String,
    /// `None`: plain HTTP.
    tls: Option<Arc<ServerConfig>>,
    /// How strictly client certificates are checked (none without TLS).
    client_auth: ClientAuthType,
    /// The served certificate's validity and where it came from.
    certificate: Option<(Validity, String)>,
    /// Whether a change to this version may lower protection.
    allow_downgrade: bool,
    /// The files this version was read from, to notice changes.
    stamps: Vec<(PathBuf, Option<Stamp>)>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("headers", &self.headers)
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field("tls", &self.tls.is_some())
            .field("client_auth", &self.client_auth)
            .field("allow_downgrade", &self.allow_downgrade)
            .finish()
    }
}

impl WebConfig {
    /// Whether requests need basic auth.
    pub fn requires_auth(&self) -> bool {
        !self.users.is_empty()
    }

    /// What this version would turn off if it replaced `before` on a listener that speaks TLS
    /// (`tls_listener`) or not; empty when it lowers nothing. On a plain listener certificates
    /// protect nothing, so losing them lowers nothing.
    fn lowers(&self, before: &WebConfig, tls_listener: bool) -> Vec<&'static str> {
        let mut off = Vec::new();
        if before.requires_auth() && !self.requires_auth() {
            off.push("basic auth (no basic_auth_users left)");
        }
        if tls_listener && before.tls.is_some() && self.tls.is_none() {
            off.push("TLS (no certificate left)");
        }
        if tls_listener && self.client_auth < before.client_auth {
            off.push("the client certificate check (a weaker client_auth_type)");
        }
        off
    }

    /// Why the served certificate will be refused by clients now, if it will.
    pub fn certificate_problem(&self) -> Option<String> {
        let (validity, name) = self.certificate.as_ref()?;
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        validity.problem(now).map(|p| format!("{name}: the certificate {p}"))
    }
}

/// What identifies a version of a file without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Stamp { modified: meta.modified().ok(), len: meta.len(), inode })
}

/// Why a version of the file did not load. Each message names the file (and, for YAML, the line
/// and column); none quotes a password.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WebConfigError {
    #[error("web config {}: cannot read: {source}", path.display())]
    Unreadable { path: PathBuf, source: bounded_read::ReadError },
    #[error("web config {}:{} {message}", path.display(), at.map(|(line, column)| format!("{line}:{column}:")).unwrap_or_default())]
    Yaml { path: PathBuf, at: Option<(u64, u64)>, message: String },
    #[error("web config {}: {reason}", path.display())]
    Headers { path: PathBuf, reason: String },
    /// The parser's own message quotes the value, which may be a plaintext password: never kept.
    #[error(
        "web config {}: basic_auth_users: the password of `{user}` is not a bcrypt hash; \
         give the hash, never the password (make one with `htpasswd -nBC 10 {user}`)",
        path.display()
    )]
    NotBcrypt { path: PathBuf, user: String },
    #[error("web config {}: tls_server_config: {source}", path.display())]
    Tls { path: PathBuf, source: tls::TlsError },
}

impl WebConfigError {
    /// A read that did not answer in time (a hung mount): nothing is known of the file, so the
    /// version in force stays and requests are not failed for it.
    pub fn is_blocked(&self) -> bool {
        match self {
            WebConfigError::Unreadable { source, .. } => source.is_blocked(),
            WebConfigError::Tls { source, .. } => source.is_blocked(),
            _ => false,
        }
    }
}

/// Reads and checks the file at `path`. Errors name the file and, for YAML errors, the line.
pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
    let file_path = || path.to_path_buf();
    let before = stamp(path);
    let text = bounded_read::read_to_string(path, MAX_FILE_BYTES)
        .map_err(|source| WebConfigError::Unreadable { path: file_path(), source })?;
    let file: FileConfig = if text.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
        FileConfig::default()
    } else {
        serde_saphyr::from_str(&text).map_err(|e| {
            let (at, message) = crate::spec::yaml_error::describe(&e);
            WebConfigError::Yaml { path: file_path(), at, message }
        })?
    };
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut stamps = vec![(path.to_path_buf(), before)];
    let headers = headers(file.http_server_config.as_ref())
        .map_err(|reason| WebConfigError::Headers { path: file_path(), reason })?;
    let users = file.basic_auth_users.unwrap_or_default();
    let mut costs = Vec::new();
    for (user, hash) in &users {
        // The parser's own message quotes the value, which may be a plaintext password: never
        // pass it on.
        let parts: bcrypt::HashParts =
            hash.parse().map_err(|_| WebConfigError::NotBcrypt { path: file_path(), user: user.clone() })?;
        costs.push(parts.get_cost());
    }
    let tls = match &file.tls_server_config {
        Some(t) => {
            tls_config(t, &dir, &mut stamps).map_err(|source| WebConfigError::Tls { path: file_path(), source })?
        }
        None => None,
    };
    Ok(WebConfig {
        headers,
        users: users.into_iter().collect(),
        dummy_hash: dummy_hash(costs.iter().copied().max().unwrap_or(10)),
        client_auth: tls.as_ref().map(|t| t.client_auth).unwrap_or_default(),
        certificate: tls.as_ref().and_then(|t| t.validity.map(|v| (v, t.certificate.clone()))),
        tls: tls.map(|t| Arc::new(t.config)),
        allow_downgrade: file.allow_downgrade,
        stamps,
    })
}

/// A well-formed hash that no password matches, at the cost of the real ones.
fn dummy_hash(cost: u32) -> String {
    format!("$2y${cost:02}$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi")
}

fn headers(http: Option<&HttpFile>) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    let mut out = Vec::new();
    for (name, value) in http.and_then(|h| h.headers.as_ref()).into_iter().flatten() {
        let Some((_, allowed)) = ALLOWED_HEADERS.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) else {
            let names: Vec<&str> = ALLOWED_HEADERS.iter().map(|(n, _)| *n).collect();
            return Err(format!("http_server_config.headers: `{name}` cannot be set (allowed: {})", names.join(", ")));
        };
        if let Some(values) = allowed
            && !values.iter().any(|v| v.eq_ignore_ascii_case(value))
        {
            return Err(format!(
                "http_server_config.headers: `{name}: {value}` (allowed values: {})",
                values.join(", ")
            ));
        }
        let header_name =
            HeaderName::try_from(name.as_str()).map_err(|e| format!("http_server_config.headers: `{name}`: {e}"))?;
        let header_value = HeaderValue::try_from(value.as_str())
            .map_err(|e| format!("http_server_config.headers: `{name}`: invalid value: {e}"))?;
        out.push((header_name, header_value));
    }
    Ok(out)
}

/// The file, loaded at start and followed afterwards.
pub struct WebConfigWatch {
    path: PathBuf,
    current: Mutex<reload::Current>,
    /// One re-read at a time; see [`reload`].
    refreshing: Mutex<()>,
    /// When the re-read now running started, if one is.
    refresh_started: Mutex<Option<Instant>>,
    /// Where the reload status and the certificate's expiry are published.
    state: Mutex<Option<Arc<State>>>,
    /// Whether the listener speaks TLS (decided at start).
    tls_listener: bool,
    auth_cache: Mutex<HashMap<[u8; 32], Instant>>,
    /// How long a remembered check lasts after its last use.
    auth_ttl: Duration,
    bcrypt_slots: Semaphore,
}

/// What a request's credentials are worth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    Granted,
    Denied,
    /// Not checked: every bcrypt slot was busy. The client may retry.
    Busy,
}

impl WebConfigWatch {
    /// Loads the file; an error is fatal at start.
    pub fn load(path: &Path) -> Result<Self, WebConfigError> {
        let config = load(path)?;
        if let Some(problem) = config.certificate_problem() {
            tracing::warn!(file = %path.display(), "web config: {problem}");
        }
        Ok(Self {
            path: path.to_path_buf(),
            tls_listener: config.tls.is_some(),
            current: Mutex::new(reload::Current::new(config)),
            refreshing: Mutex::new(()),
            refresh_started: Mutex::new(None),
            state: Mutex::new(None),
            auth_cache: Mutex::new(HashMap::new()),
            auth_ttl: AUTH_CACHE_TTL,
            bcrypt_slots: Semaphore::new(BCRYPT_CONCURRENCY),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the listener speaks TLS.
    pub fn tls_listener(&self) -> bool {
        self.tls_listener
    }

    fn lock(&self) -> MutexGuard<'_, reload::Current> {
        self.current.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the request's `Authorization` header names a user of `config` with the right
    /// password. Slow (bcrypt) unless recently checked; [`Auth::Busy`] at once when it would have
    /// to wait for bcrypt.
    pub async fn authorized(&self, config: &WebConfig, authorization: Option<&HeaderValue>) -> Auth {
        let Some((user, password)) = authorization.and_then(parse_basic) else {
            return Auth::Denied;
        };
        let known = config.users.get(&user);
        let hash = known.cloned().unwrap_or_else(|| config.dummy_hash.clone());
        let key: [u8; 32] = {
            let mut digest = Sha256::new();
            for part in [user.as_bytes(), password.as_slice(), hash.as_bytes()] {
                digest.update((part.len() as u64).to_be_bytes());
                digest.update(part);
            }
            digest.finalize().into()
        };
        if known.is_some() && self.cached(&key) {
            return Auth::Granted;
        }
        let Ok(_slot) = self.bcrypt_slots.try_acquire() else {
            return Auth::Busy;
        };
        let matches = tokio::task::spawn_blocking(move || bcrypt::verify(&password, &hash).unwrap_or(false))
            .await
            .unwrap_or(false);
        if matches && known.is_some() {
            self.remember(key);
            Auth::Granted
        } else {
            Auth::Denied
        }
    }

    /// Whether the check is remembered; a hit starts its time again, so a scraper that keeps
    /// scraping never falls back to bcrypt (and behind a flood).
    fn cached(&self, key: &[u8; 32]) -> bool {
        let mut cache = self.auth_cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match cache.get_mut(key) {
            Some(at) if at.elapsed() < self.auth_ttl => {
                *at = Instant::now();
                true
            }
            _ => false,
        }
    }

    fn remember(&self, key: [u8; 32]) {
        let mut cache = self.auth_cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= AUTH_CACHE_SIZE {
            let ttl = self.auth_ttl;
            cache.retain(|_, at| at.elapsed() < ttl);
            if cache.len() >= AUTH_CACHE_SIZE {
                cache.clear();
            }
        }
        cache.insert(key, Instant::now());
    }
}

/// `Basic base64(user:password)`.
fn parse_basic(value: &HeaderValue) -> Option<(String, Vec<u8>)> {
    let value = value.to_str().ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some((user, decoded[colon + 1..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("web-config.yml");
        std::fs::write(&path, text).expect("write");
        path
    }

    fn tempdir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "web-config-unit-{}-{}",
            std::process::id(),
            SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir).expect("tempdir");
        dir
    }

    /// What went wrong is a variant the caller can tell apart; only its text says it to people.
    #[test]
    fn errors_say_which_part_of_the_file_failed() {
        let dir = tempdir();
        let err = load(&write(&dir, "basic_auth_users:\n  alice: plaintext\n")).expect_err("plaintext");
        assert!(matches!(&err, WebConfigError::NotBcrypt { user, .. } if user == "alice"), "{err:?}");
        assert!(!err.to_string().contains("plaintext"), "{err}");
        let err = load(&write(&dir, "tls_server_config: [\n")).expect_err("yaml");
        assert!(matches!(err, WebConfigError::Yaml { at: Some(_), .. }), "{err:?}");
        let err = load(&dir.join("missing.yml")).expect_err("missing");
        assert!(matches!(err, WebConfigError::Unreadable { .. }) && !err.is_blocked(), "{err:?}");
    }

    #[test]
    fn malformed_files_are_clear_errors_naming_the_file() {
        let dir = tempdir();
        let cases = [
            ("basic_auth_users: [alice]\n", "web-config.yml:1:"),
            ("tls_server_config:\n  cert_file: a.crt\n  bogus: 1\n", "bogus"),
            ("basic_auth_users:\n  alice: plaintext\n", "not a bcrypt hash"),
            ("tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n", "cannot read"),
            ("tls_server_config:\n  cert: not-pem\n", "missing key_file"),
            ("http_server_config:\n  headers:\n    Set-Cookie: x\n", "cannot be set"),
            ("http_server_config:\n  headers:\n    X-Frame-Options: allow\n", "allowed values"),
            ("tls_server_config: {client_auth_type: RequireAndVerifyClientCert}\n", "needs cert_file"),
            ("tls_server_config: [\n", ":"),
            // Closed sets: a misspelt name is an error at its place, not a guess.
            ("tls_server_config:\n  client_auth_type: RequireAndVerify\n", "web-config.yml:2:"),
            ("tls_server_config:\n  min_version: TLS14\n", "web-config.yml:2:"),
        ];
        for (text, expected) in cases {
            let path = write(&dir, text);
            let err = load(&path).expect_err(text).to_string();
            assert!(err.starts_with(&format!("web config {}", path.display())), "{err}");
            assert!(err.contains(expected), "{text}: {err}");
        }
        assert!(load(&dir.join("absent.yml")).expect_err("absent").to_string().contains("cannot read"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn empty_file_and_users_only() {
        let dir = tempdir();
        let config = load(&write(&dir, "# nothing yet\n")).expect("empty");
        assert!(!config.requires_auth() && config.tls.is_none());
        // Empty names are the defaults, as in exporter-toolkit.
        let blank = "tls_server_config:\n  client_auth_type: ''\n  min_version: ''\n  max_version: ''\n";
        assert!(load(&write(&dir, blank)).expect("blank names").tls.is_none());
        let hash = "$2y$04$L6Bc/AlTQHyd9liGgGEZyOFLPHNgyxeEPfgYfBCVxJ7JIlwxyVU3u";
        let config = load(&write(&dir, &format!("basic_auth_users:\n  alice: '{hash}'\n"))).expect("users");
        assert!(config.requires_auth() && config.tls.is_none());
        assert!(config.dummy_hash.starts_with("$2y$04$"));
        // The dummy is a well-formed hash: checking it costs as much as a real one.
        assert_eq!(bcrypt::verify("anything", &config.dummy_hash).ok(), Some(false));
        let _ = std::fs::remove_dir_all(dir);
    }

    fn basic(user: &str, password: &str) -> HeaderValue {
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {encoded}")).expect("header")
    }

    /// A scraper that keeps scraping stays remembered past the TTL (hits refresh it), so a flood
    /// of wrong passwords, which is turned away when both bcrypt slots are busy instead of
    /// queueing, never delays it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flood_of_wrong_passwords_never_delays_a_remembered_scraper() {
        let dir = tempdir();
        let hash = bcrypt::hash_with_result("right", 8).expect("hash").format_for_version(bcrypt::Version::TwoY);
        let path = write(&dir, &format!("basic_auth_users:\n  alice: '{hash}'\n"));
        let mut watch = WebConfigWatch::load(&path).expect("load");
        // Short for the test, long beside a scrape every 100 ms even on a loaded machine.
        watch.auth_ttl = Duration::from_secs(1);
        let watch = Arc::new(watch);
        let config = watch.current().await.expect("config");
        assert_eq!(watch.authorized(&config, Some(&basic("alice", "right"))).await, Auth::Granted);

        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut flood = Vec::new();
        for i in 0..300 {
            let (watch, config, stop) = (watch.clone(), config.clone(), stop.clone());
            flood.push(tokio::spawn(async move {
                let mut outcomes = (0u32, 0u32);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match watch.authorized(&config, Some(&basic("alice", &format!("wrong{i}")))).await {
                        Auth::Granted => panic!("a wrong password was granted"),
                        Auth::Denied => outcomes.0 += 1,
                        Auth::Busy => outcomes.1 += 1,
                    }
                    tokio::task::yield_now().await;
                }
                outcomes
            }));
        }
        // Two and a half TTLs long, one scrape every 100 ms.
        let mut slowest = Duration::ZERO;
        for _ in 0..25 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let started = Instant::now();
            let auth = watch.authorized(&config, Some(&basic("alice", "right"))).await;
            slowest = slowest.max(started.elapsed());
            assert_eq!(auth, Auth::Granted);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (mut denied, mut busy) = (0, 0);
        for task in flood {
            let (d, b) = task.await.expect("flood task");
            denied += d;
            busy += b;
        }
        assert!(slowest < Duration::from_millis(500), "the scraper waited {slowest:?}");
        assert!(denied > 0 && busy > denied, "checked {denied}, turned away {busy}");
        let _ = std::fs::remove_dir_all(dir);
    }

    proptest::proptest! {
        // `scripts/fuzz` runs thousands.
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(
            std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(128)
        ))]

        /// Any text: an error or a config, never a panic; and a value under `basic_auth_users`
        /// that is not a hash is never quoted back.
        #[test]
        fn any_text_loads_or_fails_cleanly(
            text in "(tls_server_config|http_server_config|basic_auth_users|headers|cert|key|client_ca|min_version|: |\\n|  |- |\\[|\\]|\\{|\\}|,|'|\"|#|!!|&a|\\*a|[a-zA-Z0-9$./]{1,12}){0,24}",
            password in "[A-Za-z0-9_!%+=-]{8,24}",
            style in 0usize..4,
        ) {
            let dir = tempdir();
            let _ = load(&write(&dir, &text));
            let quoted = match style {
                0 => password.clone(),
                1 => format!("'{password}'"),
                2 => format!("\"{password}\""),
                _ => format!("[{password}]"),
            };
            let path = write(&dir, &format!("basic_auth_users:\n  alice: {quoted}\n  bob: {quoted}\n"));
            let err = load(&path).expect_err("a plaintext password").to_string();
            proptest::prop_assert!(!err.contains(&password), "{}", err);
            proptest::prop_assert!(err.contains(&path.display().to_string()), "{}", err);
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    #[test]
    fn basic_header_parsing() {
        let header = |s: &str| HeaderValue::from_str(s).expect("header");
        assert_eq!(parse_basic(&header("Basic YWxpY2U6czNjcjN0OjE=")), Some(("alice".into(), b"s3cr3t:1".to_vec())));
        assert_eq!(parse_basic(&header("bearer YWxpY2U6eA==")), None);
        assert_eq!(parse_basic(&header("Basic !!!")), None);
        assert_eq!(parse_basic(&header("Basic YWxpY2U=")), None);
    }
}
