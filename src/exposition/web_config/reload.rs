//! Following the web config while the exporter runs.
//!
//! - **Never on the async runtime.** Looking at the files (a `stat` each) and reading them run on
//!   the blocking pool, one re-read at a time. A request waits for it at most [`REQUEST_WAIT`]; a
//!   re-read that takes longer (a hung mount) is left to finish on its own while requests are
//!   answered with the version in force, without waiting and without starting another.
//! - **Never a downgrade by accident.** A version that loads but would lower protection (see
//!   [`WebConfig::lowers`]) is refused unless it says `allow_downgrade: true`: the version in
//!   force stays, a warning names the file and what would have been turned off. An empty,
//!   comment-only or half-written file is such a version when the one in force has users or
//!   certificates. Files are read whole and again while they change under the read
//!   ([`crate::bounded_read`]); a version that does not load answers 500, never open.
//! - **Visible.** `integration_exporter_web_config_last_reload_successful` is 0 while the file as
//!   it is does not load or was refused; `integration_exporter_tls_certificate_expiry_timestamp_seconds`
//!   is the `notAfter` of the certificate new connections get.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::ServerConfig;

use super::{Stamp, WebConfig, WebConfigError, WebConfigWatch, load, stamp};
use crate::self_metrics;
use crate::state::State;

/// How long a request waits for a re-read of the files before it is answered with the version in
/// force.
pub const REQUEST_WAIT: Duration = Duration::from_secs(1);

/// The producer name of the web config's metrics in the state.
const PRODUCER: &str = "exporter:web_config";

/// Why the file as it is now is not the version in force.
#[derive(Debug, Clone)]
enum Problem {
    /// It does not load: requests answer 500.
    Broken(WebConfigError),
    /// It loads but would lower protection: the version in force stays.
    Refused(NotInForce),
    /// It could not be read in time: the version in force stays.
    Blocked(WebConfigError),
}

/// Why a reload may not report the web config as in force: the file as it is now does not load
/// or was refused, or the new spec's file would lower the protection of the old one. Each message
/// names the file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NotInForce {
    /// It does not load, or could not be read in time.
    #[error(transparent)]
    Load(#[from] WebConfigError),
    /// A changed file would turn off what `off` lists.
    #[error(
        "web config {}: the change would turn off {}; refused, the settings in force stay \
         (write `allow_downgrade: true` in the file to apply such a change)",
        path.display(),
        off.join(" and ")
    )]
    Downgrade { path: PathBuf, off: Vec<&'static str> },
    /// The new spec names no web config, while the old one's requires basic auth.
    #[error(
        "the spec no longer names a web config, which would turn basic auth off (it was {}); \
         restart the exporter to do that",
        old.display()
    )]
    AuthDropped { old: PathBuf },
    /// The new spec's file would turn off what `off` lists of the old one's.
    #[error(
        "web config {}: replacing {} would turn off {}; refused (write `allow_downgrade: true` in the new file to \
         apply such a change)",
        new.display(),
        old.display(),
        off.join(" and ")
    )]
    Replacing { new: PathBuf, old: PathBuf, off: Vec<&'static str> },
}

pub(super) struct Current {
    /// What requests are checked against: the last version that loaded and was not refused.
    applied: Arc<WebConfig>,
    problem: Option<Problem>,
    /// The files last looked at, with their stamps then.
    stamps: Vec<(PathBuf, Option<Stamp>)>,
    /// The certificates new connections get (the last that loaded) and that certificate's
    /// `notAfter`.
    tls: Option<(Arc<ServerConfig>, Option<i64>)>,
}

impl Current {
    pub(super) fn new(config: WebConfig) -> Self {
        let tls = config.tls.clone().map(|t| (t, config.certificate.as_ref().map(|(v, _)| v.not_after)));
        Current { stamps: config.stamps.clone(), applied: Arc::new(config), problem: None, tls }
    }

    fn config(&self) -> Result<Arc<WebConfig>, WebConfigError> {
        match &self.problem {
            Some(Problem::Broken(e)) => Err(e.clone()),
            _ => Ok(self.applied.clone()),
        }
    }
}

impl WebConfigWatch {
    /// The version in force, after looking for changed files (off the runtime, bounded in time).
    /// `Err` while the file does not load (the caller answers 500).
    pub async fn current(self: &Arc<Self>) -> Result<Arc<WebConfig>, WebConfigError> {
        self.refresh_bounded().await;
        self.lock().config()
    }

    /// The certificates for a new connection (after looking for changed files).
    pub async fn tls(self: &Arc<Self>) -> Option<Arc<ServerConfig>> {
        self.refresh_bounded().await;
        self.lock().tls.as_ref().map(|(config, _)| config.clone())
    }

    /// Looks at the files now, on the calling thread (each read bounded in time), and says why
    /// the file as it is now is not in force, if it is not: for a reload, which must not report
    /// success while the file is broken or refused.
    pub fn check_now(&self) -> Result<Arc<WebConfig>, NotInForce> {
        self.refresh();
        let current = self.lock();
        match &current.problem {
            None => Ok(current.applied.clone()),
            Some(Problem::Broken(e) | Problem::Blocked(e)) => Err(NotInForce::Load(e.clone())),
            Some(Problem::Refused(e)) => Err(e.clone()),
        }
    }

    /// The version in force, whatever the file now says.
    pub fn applied(&self) -> Arc<WebConfig> {
        self.lock().applied.clone()
    }

    /// Publishes the reload status and certificate expiry into `state`, now and on every change.
    pub fn attach(&self, state: &Arc<State>) {
        *self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(state.clone());
        self.publish();
    }

    async fn refresh_bounded(self: &Arc<Self>) {
        let started = *self.refresh_started.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if started.is_some_and(|at| at.elapsed() >= REQUEST_WAIT) {
            return;
        }
        let watch = self.clone();
        let refresh = tokio::task::spawn_blocking(move || watch.refresh());
        if tokio::time::timeout(REQUEST_WAIT, refresh).await.is_err() {
            tracing::warn!(
                file = %self.path.display(),
                "the web config files do not answer (a hung mount?); serving with the settings in force"
            );
        }
    }

    /// Re-reads the files when one of them changed, and applies, refuses or records the result.
    fn refresh(&self) {
        let _one = self.refreshing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Set for the whole look, `stat`s included: on a hung mount those block too.
        let _in_progress = RefreshInProgress::start(&self.refresh_started);
        let seen = self.lock().stamps.clone();
        if !seen.iter().any(|(path, stamp_then)| stamp(path) != *stamp_then) {
            return;
        }
        // Stamped before the read: a file still being written when it is read is then seen as
        // changed at the next look, and read again whole.
        let mut before: Vec<_> = seen.iter().map(|(path, _)| (path.clone(), stamp(path))).collect();
        if !before.iter().any(|(p, _)| p == &self.path) {
            before.push((self.path.clone(), stamp(&self.path)));
        }
        let loaded = load(&self.path);
        {
            let mut current = self.lock();
            self.settle(&mut current, loaded, before);
        }
        self.publish();
    }

    fn settle(
        &self,
        current: &mut Current,
        loaded: Result<WebConfig, WebConfigError>,
        before: Vec<(PathBuf, Option<Stamp>)>,
    ) {
        let file = self.path.display();
        let config = match loaded {
            Ok(config) => config,
            Err(e) if e.is_blocked() => {
                // Nothing is known of the file: keep the stamps, so the next look reads it again.
                tracing::warn!(error = %e, "web config cannot be read now; the settings in force stay");
                current.problem = Some(Problem::Blocked(e));
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "web config does not load; answering 500 until it is fixed");
                // Remember the files as they were before this read, so the error is logged once
                // per change and a file that changed during the read is read again.
                current.stamps = before;
                current.problem = Some(Problem::Broken(e));
                return;
            }
        };
        let off = config.lowers(&current.applied, self.tls_listener);
        if !off.is_empty() && !config.allow_downgrade {
            let refused = NotInForce::Downgrade { path: self.path.clone(), off };
            tracing::warn!(file = %file, "{refused}");
            current.stamps = config.stamps.clone();
            current.problem = Some(Problem::Refused(refused));
            return;
        }
        if !off.is_empty() {
            tracing::warn!(file = %file, turned_off = %off.join(", "), "web config lowers protection, as it allows (allow_downgrade)");
        }
        if let Some(problem) = config.certificate_problem() {
            tracing::warn!(file = %file, "web config: {problem}");
        }
        tracing::info!(file = %file, users = config.users.len(), "web config reloaded");
        let not_after = config.certificate.as_ref().map(|(v, _)| v.not_after);
        match (&config.tls, self.tls_listener) {
            (Some(tls), true) => current.tls = Some((tls.clone(), not_after)),
            (Some(_), false) => tracing::warn!(
                file = %file,
                "web config now has TLS certificates; the listener stays plain HTTP until a restart"
            ),
            (None, true) => tracing::warn!(
                file = %file,
                "web config no longer names certificates; keeping the previous ones until a restart"
            ),
            (None, false) => {}
        }
        current.stamps = config.stamps.clone();
        current.applied = Arc::new(config);
        current.problem = None;
    }

    fn publish(&self) {
        let Some(state) = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone() else {
            return;
        };
        let (ok, not_after) = {
            let current = self.lock();
            (current.problem.is_none(), current.tls.as_ref().and_then(|(_, not_after)| *not_after))
        };
        let mut families =
            vec![self_metrics::WEB_CONFIG_RELOAD_SUCCESSFUL.family().with(&[], if ok { 1.0 } else { 0.0 })];
        if let Some(not_after) = not_after {
            families.push(self_metrics::TLS_CERTIFICATE_EXPIRY.family().with(&[], not_after as f64));
        }
        state.publish(PRODUCER, families);
    }
}

/// Marks a re-read as running for as long as it lives.
struct RefreshInProgress<'a>(&'a Mutex<Option<Instant>>);

impl<'a> RefreshInProgress<'a> {
    fn start(started: &'a Mutex<Option<Instant>>) -> Self {
        *started.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
        RefreshInProgress(started)
    }
}

impl Drop for RefreshInProgress<'_> {
    fn drop(&mut self) {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}

/// Whether a reload may put `new` in place of `old` (the web config files named by the old and
/// the new spec): refused when it would lower the protection in force, unless the new file allows
/// it. A spec that stops naming a web config cannot say so: that takes a restart.
pub fn replacing(old: Option<&WebConfigWatch>, new: Option<&WebConfigWatch>) -> Result<(), NotInForce> {
    let Some(old) = old else { return Ok(()) };
    let before = old.applied();
    let after = match new {
        Some(new) => new.applied(),
        None if before.requires_auth() => {
            return Err(NotInForce::AuthDropped { old: old.path().to_path_buf() });
        }
        None => return Ok(()),
    };
    let off = after.lowers(&before, old.tls_listener());
    if off.is_empty() || after.allow_downgrade {
        return Ok(());
    }
    Err(NotInForce::Replacing {
        new: new.map(|n| n.path().to_path_buf()).unwrap_or_default(),
        old: old.path().to_path_buf(),
        off,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_in_force_says_what_it_said_as_text() {
        let off = vec!["basic auth (no basic_auth_users left)", "TLS"];
        assert_eq!(
            NotInForce::Downgrade { path: "w.yml".into(), off: off.clone() }.to_string(),
            "web config w.yml: the change would turn off basic auth (no basic_auth_users left) and TLS; refused, \
             the settings in force stay (write `allow_downgrade: true` in the file to apply such a change)"
        );
        assert_eq!(
            NotInForce::AuthDropped { old: "w.yml".into() }.to_string(),
            "the spec no longer names a web config, which would turn basic auth off (it was w.yml); restart the \
             exporter to do that"
        );
        assert_eq!(
            NotInForce::Replacing { new: "n.yml".into(), old: "o.yml".into(), off }.to_string(),
            "web config n.yml: replacing o.yml would turn off basic auth (no basic_auth_users left) and TLS; refused \
             (write `allow_downgrade: true` in the new file to apply such a change)"
        );
        let load = WebConfigError::NotBcrypt { path: "w.yml".into(), user: "alice".into() };
        assert_eq!(NotInForce::Load(load.clone()).to_string(), load.to_string());
    }

    const HASH: &str = "$2y$04$L6Bc/AlTQHyd9liGgGEZyOFLPHNgyxeEPfgYfBCVxJ7JIlwxyVU3u";

    /// Writes a new version with a stamp of its own (another size), as an edit would.
    fn rewrite(path: &std::path::Path, text: &str) {
        std::fs::write(path, text).expect("write");
    }

    fn reload_ok(state: &State) -> Option<f64> {
        let families = state.gather();
        let family = families.iter().find(|f| f.name == self_metrics::WEB_CONFIG_RELOAD_SUCCESSFUL.name)?;
        match family.samples.first()?.value {
            crate::state::SampleValue::Scalar(v) => Some(v),
            _ => None,
        }
    }

    #[test]
    fn a_change_that_lowers_protection_is_refused_unless_the_file_allows_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("web.yml");
        let users = format!("basic_auth_users:\n  alice: '{HASH}'\n");
        rewrite(&path, &users);
        let watch = WebConfigWatch::load(&path).expect("load");
        let state = Arc::new(State::default());
        watch.attach(&state);
        assert_eq!(reload_ok(&state), Some(1.0));

        for lowered in ["", "# nothing here yet\n", "basic_auth_users:\n", "basic_auth_users: {}\n# comment\n"] {
            rewrite(&path, lowered);
            let err = watch.check_now().expect_err(lowered).to_string();
            assert!(err.contains(&path.display().to_string()) && err.contains("basic auth"), "{err}");
            assert!(watch.applied().requires_auth(), "{lowered:?} opened the endpoint");
            assert_eq!(reload_ok(&state), Some(0.0));
            rewrite(&path, &users);
            watch.check_now().expect("back to the users");
            assert_eq!(reload_ok(&state), Some(1.0));
        }
        // Other users are no downgrade: a user removed, another added.
        rewrite(&path, &format!("basic_auth_users:\n  bob: '{HASH}'\n"));
        watch.check_now().expect("other users");
        // Said in the file: applied.
        rewrite(&path, "allow_downgrade: true\n");
        watch.check_now().expect("allowed");
        assert!(!watch.applied().requires_auth());
        assert_eq!(reload_ok(&state), Some(1.0));
    }

    #[test]
    fn a_broken_file_answers_500_and_never_falls_back_to_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("web.yml");
        rewrite(&path, &format!("basic_auth_users:\n  alice: '{HASH}'\n"));
        let watch = WebConfigWatch::load(&path).expect("load");
        rewrite(&path, "basic_auth_users: [\n");
        assert!(watch.check_now().is_err());
        assert!(watch.lock().config().is_err(), "500 while broken");
        // Broken, then emptied: still compared with the version in force, so refused.
        rewrite(&path, "");
        assert!(watch.check_now().expect_err("emptied").to_string().contains("refused"));
        assert!(watch.lock().config().expect("the version in force").requires_auth());
    }

    /// A self-signed certificate (the `openssl` CLI), used as its own client CA.
    fn certificate(dir: &std::path::Path) {
        let made = std::process::Command::new("openssl")
            .current_dir(dir)
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
            .args(["-keyout", "s.key", "-out", "s.crt", "-days", "2", "-subj", "/CN=localhost"])
            .output()
            .expect("the openssl command-line tool");
        assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    }

    #[test]
    fn a_weaker_client_certificate_check_is_refused_and_certificates_matter_only_on_a_tls_listener() {
        let dir = tempfile::tempdir().expect("tempdir");
        certificate(dir.path());
        let path = dir.path().join("web.yml");
        let tls = |auth: &str| {
            format!(
                "tls_server_config:\n  cert_file: s.crt\n  key_file: s.key\n  client_ca_file: s.crt\n  client_auth_type: {auth}\n"
            )
        };
        rewrite(&path, &tls("RequireAndVerifyClientCert"));
        let watch = WebConfigWatch::load(&path).expect("load");
        rewrite(&path, &tls("VerifyClientCertIfGiven"));
        assert!(watch.check_now().expect_err("weaker").to_string().contains("client certificate check"));
        rewrite(&path, "tls_server_config:\n  cert_file: s.crt\n  key_file: s.key\n");
        let err = watch.check_now().expect_err("none").to_string();
        assert!(err.contains("client certificate check") && !err.contains("TLS ("), "{err}");
        rewrite(&path, "# no TLS\n");
        assert!(watch.check_now().expect_err("no TLS").to_string().contains("TLS (no certificate left)"));
        rewrite(&path, &format!("allow_downgrade: true\n{}", tls("VerifyClientCertIfGiven")));
        watch.check_now().expect("allowed");

        // Plain listener: certificates come and go without protecting anything.
        let plain = dir.path().join("plain.yml");
        rewrite(&plain, "# nothing\n");
        let watch = WebConfigWatch::load(&plain).expect("load");
        rewrite(&plain, &tls("RequireAndVerifyClientCert"));
        watch.check_now().expect("certificates on a plain listener");
        rewrite(&plain, "# none again\n");
        watch.check_now().expect("and gone again");
    }

    #[test]
    fn a_spec_that_drops_or_swaps_the_web_config_cannot_lower_protection() {
        let dir = tempfile::tempdir().expect("tempdir");
        let with_users = dir.path().join("a.yml");
        rewrite(&with_users, &format!("basic_auth_users:\n  alice: '{HASH}'\n"));
        let open = dir.path().join("b.yml");
        rewrite(&open, "http_server_config:\n  headers:\n    X-Frame-Options: deny\n");
        let allowed = dir.path().join("c.yml");
        rewrite(&allowed, "allow_downgrade: true\n");
        let old = WebConfigWatch::load(&with_users).expect("a");
        let new = WebConfigWatch::load(&open).expect("b");
        assert!(replacing(Some(&old), None).expect_err("dropped").to_string().contains("restart"));
        assert!(replacing(Some(&old), Some(&new)).expect_err("swapped").to_string().contains("basic auth"));
        replacing(Some(&old), Some(&WebConfigWatch::load(&allowed).expect("c"))).expect("allowed");
        replacing(Some(&new), None).expect("nothing to lower");
        replacing(None, Some(&new)).expect("nothing before");
    }
}
