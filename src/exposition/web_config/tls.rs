//! The `tls_server_config` section: certificates, client authentication, versions, suites and
//! curves, turned into a rustls configuration.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Deserializer};

use super::validity::{Validity, validity};
use super::{Stamp, stamp};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TlsFile {
    #[serde(default)]
    cert_file: Option<PathBuf>,
    #[serde(default)]
    key_file: Option<PathBuf>,
    /// Inline PEM instead of `cert_file`.
    #[serde(default)]
    cert: Option<String>,
    /// Inline PEM instead of `key_file`.
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    client_ca_file: Option<PathBuf>,
    /// Inline PEM instead of `client_ca_file`.
    #[serde(default)]
    client_ca: Option<String>,
    #[serde(default)]
    client_auth_type: ClientAuthType,
    /// Empty or omitted: TLS12.
    #[serde(default, deserialize_with = "version_or_blank")]
    min_version: Option<TlsVersion>,
    /// Empty or omitted: TLS13.
    #[serde(default, deserialize_with = "version_or_blank")]
    max_version: Option<TlsVersion>,
    /// Go names of TLS 1.2 suites; TLS 1.3 suites are not configurable (as in Go).
    #[serde(default)]
    cipher_suites: Option<Vec<String>>,
    #[serde(default)]
    curve_preferences: Option<Vec<String>>,
    /// Accepted for compatibility; has no effect (it has none in Go either since 1.17).
    #[serde(default)]
    #[allow(dead_code)]
    prefer_server_cipher_suites: Option<bool>,
    /// Not supported: refused rather than ignored, as ignoring it would let in clients the
    /// user meant to keep out.
    #[serde(default)]
    client_allowed_sans: Option<Vec<String>>,
}

/// Go's `tls.ClientAuthType` names, as exporter-toolkit reads them; ordered from the least to the
/// most protection.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub enum ClientAuthType {
    /// No client certificate asked for (also an empty value).
    #[default]
    #[serde(alias = "")]
    NoClientCert,
    /// Refused: a certificate would be asked for but never verified.
    RequestClientCert,
    /// Refused: a certificate would be required but never verified.
    RequireAnyClientCert,
    /// A certificate is optional, but verified against `client_ca_file` when given.
    VerifyClientCertIfGiven,
    /// A certificate signed by `client_ca_file` is required.
    RequireAndVerifyClientCert,
}

/// Go's TLS version names, as exporter-toolkit reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[allow(clippy::upper_case_acronyms)] // the names users write
pub enum TlsVersion {
    /// Refused: TLS 1.0 is broken.
    TLS10,
    /// Refused: TLS 1.1 is broken.
    TLS11,
    TLS12,
    TLS13,
}

impl TlsVersion {
    fn rustls(self, field: &'static str) -> Result<&'static SupportedProtocolVersion, TlsError> {
        match self {
            TlsVersion::TLS13 => Ok(&rustls::version::TLS13),
            TlsVersion::TLS12 => Ok(&rustls::version::TLS12),
            TlsVersion::TLS10 | TlsVersion::TLS11 => Err(TlsError::Version { field, version: self }),
        }
    }
}

/// An empty version is no version, as in exporter-toolkit's files.
fn version_or_blank<'de, D: Deserializer<'de>>(d: D) -> Result<Option<TlsVersion>, D::Error> {
    #[derive(Deserialize)]
    enum Named {
        #[serde(rename = "")]
        Blank,
        TLS10,
        TLS11,
        TLS12,
        TLS13,
    }
    Ok(match Option::<Named>::deserialize(d)? {
        None | Some(Named::Blank) => None,
        Some(Named::TLS10) => Some(TlsVersion::TLS10),
        Some(Named::TLS11) => Some(TlsVersion::TLS11),
        Some(Named::TLS12) => Some(TlsVersion::TLS12),
        Some(Named::TLS13) => Some(TlsVersion::TLS13),
    })
}

/// Why the `tls_server_config` section gives no server configuration. Names are where PEM came
/// from (`cert_file <path>`, `key`), never its content; `detail` is the TLS library's own
/// message, which names the problem, not the key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TlsError {
    #[error("give one of {file_key} and {inline_key}, not both")]
    Both { file_key: &'static str, inline_key: String },
    #[error("{file_key}: cannot read {}: {source}", path.display())]
    Unreadable { file_key: &'static str, path: PathBuf, source: crate::bounded_read::ReadError },
    #[error("{name}: invalid PEM: {detail}")]
    InvalidPem { name: String, detail: String },
    #[error("{0}: no CERTIFICATE block")]
    NoCertificate(String),
    #[error("cipher_suites: `{name}` is not available (offered: {})", offered.join(", "))]
    CipherSuite { name: String, offered: Vec<&'static str> },
    #[error("curve_preferences: `{0}` is not available (X25519, CurveP256, CurveP384)")]
    Curve(String),
    #[error("client authentication needs cert_file and key_file")]
    ClientAuthWithoutCert,
    #[error("missing key_file")]
    MissingKey,
    #[error("missing cert_file")]
    MissingCert,
    #[error("client_allowed_sans is not supported by integration-exporter; remove it")]
    AllowedSans,
    #[error("{name}: no usable private key: {detail}")]
    NoPrivateKey { name: String, detail: String },
    #[error("{field}: {version:?} is not supported (TLS12 or TLS13)")]
    Version { field: &'static str, version: TlsVersion },
    #[error("min_version is above max_version")]
    MinAboveMax,
    #[error("cannot use these versions and suites: {detail}")]
    Versions { detail: String },
    #[error("client_auth_type {0:?} needs client_ca_file")]
    NeedsClientCa(ClientAuthType),
    #[error("{name}: {detail}")]
    ClientCa { name: String, detail: String },
    #[error(
        "client_ca_file is set but client_auth_type is NoClientCert; set RequireAndVerifyClientCert or VerifyClientCertIfGiven"
    )]
    ClientCaUnused,
    #[error(
        "client_auth_type {0:?} (unverified client certificates) is not supported; use RequireAndVerifyClientCert or VerifyClientCertIfGiven"
    )]
    Unverified(ClientAuthType),
    #[error("{cert} and {key} do not make a usable certificate: {detail}")]
    Unusable { cert: String, key: String, detail: String },
}

impl TlsError {
    /// A PEM file that did not answer in time (a hung mount): nothing is known of it.
    pub fn is_blocked(&self) -> bool {
        matches!(self, TlsError::Unreadable { source, .. } if source.is_blocked())
    }
}

/// A PEM file holds a key or a chain of a few certificates: kilobytes.
const MAX_PEM_BYTES: u64 = 1 << 20;

/// What the web config's TLS section gives beyond the rustls configuration: what the reload
/// checks compare, and what is logged and exported about the certificate.
pub(super) struct Tls {
    pub config: ServerConfig,
    /// How strictly client certificates are checked.
    pub client_auth: ClientAuthType,
    /// The served certificate's validity (the first of the chain), when it can be read.
    pub validity: Option<Validity>,
    /// Where the served certificate came from (`cert_file <path>` or `cert`).
    pub certificate: String,
}

/// PEM from a file (recorded in `stamps`) or inline; exactly one of them.
fn pem_source<'a>(
    file: Option<&'a Path>,
    inline: Option<&'a str>,
    file_key: &'static str,
    inline_key: &str,
    dir: &Path,
    stamps: &mut Vec<(PathBuf, Option<Stamp>)>,
) -> Result<Option<(String, Vec<u8>)>, TlsError> {
    match (file.filter(|p| !p.as_os_str().is_empty()), inline.filter(|s| !s.is_empty())) {
        (Some(_), Some(_)) => Err(TlsError::Both { file_key, inline_key: inline_key.to_string() }),
        (None, None) => Ok(None),
        (None, Some(text)) => Ok(Some((inline_key.to_string(), text.as_bytes().to_vec()))),
        (Some(path), None) => {
            let path = dir.join(path);
            let before = stamp(&path);
            let bytes = crate::bounded_read::read(&path, MAX_PEM_BYTES).map_err(|source| TlsError::Unreadable {
                file_key,
                path: path.clone(),
                source,
            })?;
            let name = format!("{file_key} {}", path.display());
            stamps.push((path, before));
            Ok(Some((name, bytes)))
        }
    }
}

fn certificates(name: &str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::InvalidPem { name: name.to_string(), detail: e.to_string() })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(name.to_string()));
    }
    Ok(certs)
}

/// The ring provider, narrowed to the file's `cipher_suites` and `curve_preferences`.
fn provider(tls: &TlsFile) -> Result<CryptoProvider, TlsError> {
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(names) = tls.cipher_suites.as_ref().filter(|n| !n.is_empty()) {
        let (tls13, tls12): (Vec<rustls::SupportedCipherSuite>, Vec<rustls::SupportedCipherSuite>) =
            provider.cipher_suites.iter().partition(|s| s.tls13().is_some());
        let mut chosen = tls13;
        for name in names {
            // Go also accepts the old names of the ChaCha20 suites without `_SHA256`.
            let name = if name.ends_with("_POLY1305") { format!("{name}_SHA256") } else { name.clone() };
            if matches!(
                name.as_str(),
                "TLS_AES_128_GCM_SHA256" | "TLS_AES_256_GCM_SHA384" | "TLS_CHACHA20_POLY1305_SHA256"
            ) {
                continue; // TLS 1.3 suites are always on, as in Go.
            }
            let Some(suite) = tls12.iter().find(|s| s.suite().as_str() == Some(name.as_str())) else {
                let offered = tls12.iter().filter_map(|s| s.suite().as_str()).collect();
                return Err(TlsError::CipherSuite { name, offered });
            };
            chosen.push(*suite);
        }
        provider.cipher_suites = chosen;
    }
    if let Some(names) = tls.curve_preferences.as_ref().filter(|n| !n.is_empty()) {
        let mut chosen = Vec::new();
        for name in names {
            let rustls_name = match name.as_str() {
                "X25519" => "X25519",
                "CurveP256" => "secp256r1",
                "CurveP384" => "secp384r1",
                other => return Err(TlsError::Curve(other.to_string())),
            };
            if let Some(group) = provider.kx_groups.iter().find(|g| g.name().as_str() == Some(rustls_name)) {
                chosen.push(*group);
            }
        }
        provider.kx_groups = chosen;
    }
    Ok(provider)
}

/// The rustls configuration, or `None` when the section names no certificate (plain HTTP, as in
/// exporter-toolkit).
pub(super) fn tls_config(
    tls: &TlsFile,
    dir: &Path,
    stamps: &mut Vec<(PathBuf, Option<Stamp>)>,
) -> Result<Option<Tls>, TlsError> {
    let cert = pem_source(tls.cert_file.as_deref(), tls.cert.as_deref(), "cert_file", "cert", dir, stamps)?;
    let key = pem_source(tls.key_file.as_deref(), tls.key.as_deref(), "key_file", "key", dir, stamps)?;
    let client_ca = pem_source(
        tls.client_ca_file.as_deref(),
        tls.client_ca.as_deref(),
        "client_ca_file",
        "client_ca",
        dir,
        stamps,
    )?;
    let (cert, key) = match (cert, key) {
        (None, None) => {
            if client_ca.is_some() || tls.client_auth_type != ClientAuthType::NoClientCert {
                return Err(TlsError::ClientAuthWithoutCert);
            }
            return Ok(None);
        }
        (Some(_), None) => return Err(TlsError::MissingKey),
        (None, Some(_)) => return Err(TlsError::MissingCert),
        (Some(c), Some(k)) => (c, k),
    };
    if tls.client_allowed_sans.as_ref().is_some_and(|s| !s.is_empty()) {
        return Err(TlsError::AllowedSans);
    }
    let chain = certificates(&cert.0, &cert.1)?;
    let served = chain.first().and_then(|leaf| validity(leaf.as_ref()));
    let private_key = PrivateKeyDer::from_pem_slice(&key.1)
        .map_err(|e| TlsError::NoPrivateKey { name: key.0.clone(), detail: e.to_string() })?;

    let min = tls.min_version.unwrap_or(TlsVersion::TLS12).rustls("min_version")?;
    let max = tls.max_version.unwrap_or(TlsVersion::TLS13).rustls("max_version")?;
    let rank = |v: &SupportedProtocolVersion| if v.version == rustls::ProtocolVersion::TLSv1_3 { 1 } else { 0 };
    if rank(min) > rank(max) {
        return Err(TlsError::MinAboveMax);
    }
    let versions: Vec<&'static SupportedProtocolVersion> = [&rustls::version::TLS12, &rustls::version::TLS13]
        .into_iter()
        .filter(|v| rank(v) >= rank(min) && rank(v) <= rank(max))
        .collect();
    let provider = Arc::new(provider(tls)?);
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| TlsError::Versions { detail: e.to_string() })?;

    let auth = tls.client_auth_type;
    let verify = |optional: bool| -> Result<_, TlsError> {
        let Some((name, pem)) = &client_ca else {
            return Err(TlsError::NeedsClientCa(auth));
        };
        let client_ca = |e: &dyn std::fmt::Display| TlsError::ClientCa { name: name.clone(), detail: e.to_string() };
        let mut roots = RootCertStore::empty();
        for ca in certificates(name, pem)? {
            roots.add(ca).map_err(|e| client_ca(&e))?;
        }
        let mut verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
        if optional {
            verifier = verifier.allow_unauthenticated();
        }
        verifier.build().map_err(|e| client_ca(&e))
    };
    let builder = match auth {
        ClientAuthType::NoClientCert => {
            if client_ca.is_some() {
                return Err(TlsError::ClientCaUnused);
            }
            builder.with_no_client_auth()
        }
        ClientAuthType::RequireAndVerifyClientCert => builder.with_client_cert_verifier(verify(false)?),
        ClientAuthType::VerifyClientCertIfGiven => builder.with_client_cert_verifier(verify(true)?),
        ClientAuthType::RequestClientCert | ClientAuthType::RequireAnyClientCert => {
            return Err(TlsError::Unverified(auth));
        }
    };
    let mut config = builder.with_single_cert(chain, private_key).map_err(|e| TlsError::Unusable {
        cert: cert.0.clone(),
        key: key.0.clone(),
        detail: e.to_string(),
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Tls { config, client_auth: auth, validity: served, certificate: cert.0 }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_errors_say_what_they_said_as_text() {
        let said = |e: TlsError| e.to_string();
        assert_eq!(
            said(TlsError::Both { file_key: "cert_file", inline_key: "cert".into() }),
            "give one of cert_file and cert, not both"
        );
        assert_eq!(said(TlsError::InvalidPem { name: "cert".into(), detail: "d".into() }), "cert: invalid PEM: d");
        assert_eq!(said(TlsError::NoCertificate("cert_file c.pem".into())), "cert_file c.pem: no CERTIFICATE block");
        assert_eq!(
            said(TlsError::CipherSuite { name: "X".into(), offered: vec!["A", "B"] }),
            "cipher_suites: `X` is not available (offered: A, B)"
        );
        assert_eq!(
            said(TlsError::Curve("P521".into())),
            "curve_preferences: `P521` is not available (X25519, CurveP256, CurveP384)"
        );
        assert_eq!(said(TlsError::ClientAuthWithoutCert), "client authentication needs cert_file and key_file");
        assert_eq!(said(TlsError::MissingKey), "missing key_file");
        assert_eq!(said(TlsError::MissingCert), "missing cert_file");
        assert_eq!(
            said(TlsError::AllowedSans),
            "client_allowed_sans is not supported by integration-exporter; remove it"
        );
        assert_eq!(
            said(TlsError::NoPrivateKey { name: "key".into(), detail: "d".into() }),
            "key: no usable private key: d"
        );
        assert_eq!(
            said(TlsError::Version { field: "min_version", version: TlsVersion::TLS11 }),
            "min_version: TLS11 is not supported (TLS12 or TLS13)"
        );
        assert_eq!(said(TlsError::MinAboveMax), "min_version is above max_version");
        assert_eq!(said(TlsError::Versions { detail: "d".into() }), "cannot use these versions and suites: d");
        assert_eq!(
            said(TlsError::NeedsClientCa(ClientAuthType::RequireAndVerifyClientCert)),
            "client_auth_type RequireAndVerifyClientCert needs client_ca_file"
        );
        assert_eq!(said(TlsError::ClientCa { name: "client_ca".into(), detail: "d".into() }), "client_ca: d");
        assert_eq!(
            said(TlsError::ClientCaUnused),
            "client_ca_file is set but client_auth_type is NoClientCert; set RequireAndVerifyClientCert or VerifyClientCertIfGiven"
        );
        assert_eq!(
            said(TlsError::Unverified(ClientAuthType::RequestClientCert)),
            "client_auth_type RequestClientCert (unverified client certificates) is not supported; use RequireAndVerifyClientCert or VerifyClientCertIfGiven"
        );
        assert_eq!(
            said(TlsError::Unusable { cert: "cert".into(), key: "key".into(), detail: "d".into() }),
            "cert and key do not make a usable certificate: d"
        );
    }

    #[test]
    fn inline_pem_is_named_never_quoted() {
        let secret = "SECRET-KEY-MATERIAL";
        for (cert, key) in [(secret, secret), ("", secret), (secret, "")] {
            let file = TlsFile {
                cert: Some(cert.to_string()).filter(|c| !c.is_empty()),
                key: Some(key.to_string()).filter(|k| !k.is_empty()),
                ..TlsFile::default()
            };
            let err = tls_config(&file, Path::new("."), &mut Vec::new()).err().expect("refused");
            assert!(!err.to_string().contains(secret), "{err}");
            assert!(!format!("{err:?}").contains(secret), "{err:?}");
        }
    }
}
