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

/// Go's `tls.ClientAuthType` names, as exporter-toolkit reads them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
pub(super) enum ClientAuthType {
    /// No client certificate asked for (also an empty value).
    #[default]
    #[serde(alias = "")]
    NoClientCert,
    /// A certificate signed by `client_ca_file` is required.
    RequireAndVerifyClientCert,
    /// A certificate is optional, but verified against `client_ca_file` when given.
    VerifyClientCertIfGiven,
    /// Refused: a certificate would be asked for but never verified.
    RequestClientCert,
    /// Refused: a certificate would be required but never verified.
    RequireAnyClientCert,
}

/// Go's TLS version names, as exporter-toolkit reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[allow(clippy::upper_case_acronyms)] // the names users write
pub(super) enum TlsVersion {
    /// Refused: TLS 1.0 is broken.
    TLS10,
    /// Refused: TLS 1.1 is broken.
    TLS11,
    TLS12,
    TLS13,
}

impl TlsVersion {
    fn rustls(self, field: &str) -> Result<&'static SupportedProtocolVersion, String> {
        match self {
            TlsVersion::TLS13 => Ok(&rustls::version::TLS13),
            TlsVersion::TLS12 => Ok(&rustls::version::TLS12),
            TlsVersion::TLS10 | TlsVersion::TLS11 => {
                Err(format!("{field}: {self:?} is not supported (TLS12 or TLS13)"))
            }
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

/// PEM from a file (recorded in `stamps`) or inline; exactly one of them.
fn pem_source<'a>(
    file: Option<&'a Path>,
    inline: Option<&'a str>,
    file_key: &str,
    inline_key: &str,
    dir: &Path,
    stamps: &mut Vec<(PathBuf, Option<Stamp>)>,
) -> Result<Option<(String, Vec<u8>)>, String> {
    match (file.filter(|p| !p.as_os_str().is_empty()), inline.filter(|s| !s.is_empty())) {
        (Some(_), Some(_)) => Err(format!("give one of {file_key} and {inline_key}, not both")),
        (None, None) => Ok(None),
        (None, Some(text)) => Ok(Some((inline_key.to_string(), text.as_bytes().to_vec()))),
        (Some(path), None) => {
            let path = dir.join(path);
            let before = stamp(&path);
            let bytes = std::fs::read(&path).map_err(|e| format!("{file_key}: cannot read {}: {e}", path.display()))?;
            let name = format!("{file_key} {}", path.display());
            stamps.push((path, before));
            Ok(Some((name, bytes)))
        }
    }
}

fn certificates(name: &str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{name}: invalid PEM: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{name}: no CERTIFICATE block"));
    }
    Ok(certs)
}

/// The ring provider, narrowed to the file's `cipher_suites` and `curve_preferences`.
fn provider(tls: &TlsFile) -> Result<CryptoProvider, String> {
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
                let offered: Vec<&str> = tls12.iter().filter_map(|s| s.suite().as_str()).collect();
                return Err(format!("cipher_suites: `{name}` is not available (offered: {})", offered.join(", ")));
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
                other => {
                    return Err(format!(
                        "curve_preferences: `{other}` is not available (X25519, CurveP256, CurveP384)"
                    ));
                }
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
) -> Result<Option<ServerConfig>, String> {
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
                return Err("client authentication needs cert_file and key_file".into());
            }
            return Ok(None);
        }
        (Some(_), None) => return Err("missing key_file".into()),
        (None, Some(_)) => return Err("missing cert_file".into()),
        (Some(c), Some(k)) => (c, k),
    };
    if tls.client_allowed_sans.as_ref().is_some_and(|s| !s.is_empty()) {
        return Err("client_allowed_sans is not supported by integration-exporter; remove it".into());
    }
    let chain = certificates(&cert.0, &cert.1)?;
    let private_key =
        PrivateKeyDer::from_pem_slice(&key.1).map_err(|e| format!("{}: no usable private key: {e}", key.0))?;

    let min = tls.min_version.unwrap_or(TlsVersion::TLS12).rustls("min_version")?;
    let max = tls.max_version.unwrap_or(TlsVersion::TLS13).rustls("max_version")?;
    let rank = |v: &SupportedProtocolVersion| if v.version == rustls::ProtocolVersion::TLSv1_3 { 1 } else { 0 };
    if rank(min) > rank(max) {
        return Err("min_version is above max_version".into());
    }
    let versions: Vec<&'static SupportedProtocolVersion> = [&rustls::version::TLS12, &rustls::version::TLS13]
        .into_iter()
        .filter(|v| rank(v) >= rank(min) && rank(v) <= rank(max))
        .collect();
    let provider = Arc::new(provider(tls)?);
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("cannot use these versions and suites: {e}"))?;

    let auth = tls.client_auth_type;
    let verify = |optional: bool| -> Result<_, String> {
        let Some((name, pem)) = &client_ca else {
            return Err(format!("client_auth_type {auth:?} needs client_ca_file"));
        };
        let mut roots = RootCertStore::empty();
        for ca in certificates(name, pem)? {
            roots.add(ca).map_err(|e| format!("{name}: {e}"))?;
        }
        let mut verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
        if optional {
            verifier = verifier.allow_unauthenticated();
        }
        verifier.build().map_err(|e| format!("{name}: {e}"))
    };
    let builder = match auth {
        ClientAuthType::NoClientCert => {
            if client_ca.is_some() {
                return Err("client_ca_file is set but client_auth_type is NoClientCert; set RequireAndVerifyClientCert or VerifyClientCertIfGiven".into());
            }
            builder.with_no_client_auth()
        }
        ClientAuthType::RequireAndVerifyClientCert => builder.with_client_cert_verifier(verify(false)?),
        ClientAuthType::VerifyClientCertIfGiven => builder.with_client_cert_verifier(verify(true)?),
        ClientAuthType::RequestClientCert | ClientAuthType::RequireAnyClientCert => {
            return Err(format!(
                "client_auth_type {auth:?} (unverified client certificates) is not supported; use RequireAndVerifyClientCert or VerifyClientCertIfGiven"
            ));
        }
    };
    let mut config = builder
        .with_single_cert(chain, private_key)
        .map_err(|e| format!("{} and {} do not make a usable certificate: {e}", cert.0, key.0))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(config))
}
