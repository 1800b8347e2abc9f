//! Secrets of HTTP requests: `env:NAME` and `file:PATH` references, read again before every use so
//! a rotated token is picked up without a restart. Errors name the variable or the file, never a
//! value, so they can be logged. A file is read off the async runtime and within a time bound, and
//! a FIFO or device is refused ([`crate::bounded_read`]): a secret mount that hangs fails the poll
//! (`auth`), never the endpoint or the process.

use std::path::PathBuf;

use crate::bounded_read;

/// A token file is a few hundred bytes; anything bigger is not one.
const MAX_SECRET_BYTES: u64 = 64 << 10;

/// The environment as the poller sees it (tests hand in their own).
pub type Env = dyn Fn(&str) -> Option<String> + Send + Sync;

/// Whether `written` refers to a secret rather than being the value itself.
pub fn is_reference(written: &str) -> bool {
    written.starts_with("env:") || written.starts_with("file:")
}

/// The value `written` stands for: `env:NAME`, `file:PATH` (content, surrounding whitespace trimmed)
/// or, for anything else, `written` itself. An unset variable or an unreadable or empty file is an
/// error naming it.
pub async fn resolve(written: &str, env: &Env) -> Result<String, String> {
    if let Some(var) = written.strip_prefix("env:") {
        let var = var.trim();
        return env(var)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| format!("environment variable {var} is not set"));
    }
    if let Some(path) = written.strip_prefix("file:") {
        let path = path.trim();
        let bytes = bounded_read::read_async(PathBuf::from(path), MAX_SECRET_BYTES)
            .await
            .map_err(|e| format!("file {path} cannot be read ({e})"))?;
        let text = String::from_utf8(bytes).map_err(|_| format!("file {path} is not UTF-8 text"))?;
        let text = text.trim();
        if text.is_empty() {
            return Err(format!("file {path} is empty"));
        }
        return Ok(text.to_string());
    }
    Ok(written.to_string())
}

/// Fills a header value: `env:NAME` / `file:PATH` is the secret, `Scheme env:NAME` (e.g.
/// `Bearer env:SF_ACCESS_TOKEN`) the scheme, a space and the secret; anything else is literal.
pub async fn header_value(written: &str, env: &Env) -> Result<String, String> {
    if is_reference(written) {
        return resolve(written, env).await;
    }
    for marker in [" env:", " file:"] {
        if let Some((scheme, _)) = written.split_once(marker)
            && !scheme.is_empty()
            && !scheme.contains(' ')
        {
            let secret = resolve(&written[scheme.len() + 1..], env).await?;
            return Ok(format!("{scheme} {secret}"));
        }
    }
    Ok(written.to_string())
}

/// `application/x-www-form-urlencoded` encoding of one key or value.
pub fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The form body of a refresh-token grant.
pub fn refresh_form(client_id: &str, client_secret: Option<&str>, refresh_token: &str) -> String {
    let mut form = format!(
        "grant_type=refresh_token&refresh_token={}&client_id={}",
        form_encode(refresh_token),
        form_encode(client_id)
    );
    if let Some(secret) = client_secret {
        form.push_str("&client_secret=");
        form.push_str(&form_encode(secret));
    }
    form
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "TOKEN").then(|| "s3cret".to_string())
    }

    #[tokio::test]
    async fn headers_name_the_variable_or_file_never_the_value() {
        assert_eq!(header_value("env:TOKEN", &env).await.as_deref(), Ok("s3cret"));
        assert_eq!(header_value("Bearer env:TOKEN", &env).await.as_deref(), Ok("Bearer s3cret"));
        assert_eq!(header_value("plain", &env).await.as_deref(), Ok("plain"));
        assert_eq!(header_value("two words", &env).await.as_deref(), Ok("two words"));
        let err = header_value("Bearer env:MISSING", &env).await.unwrap_err();
        assert!(err.contains("MISSING") && !err.contains("s3cret"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "rotated-1\n").unwrap();
        let written = format!("Bearer file:{}", file.display());
        assert_eq!(header_value(&written, &env).await.as_deref(), Ok("Bearer rotated-1"));
        std::fs::write(&file, "rotated-2").unwrap();
        assert_eq!(header_value(&written, &env).await.as_deref(), Ok("Bearer rotated-2"), "read again on every use");
        std::fs::write(&file, " \n").unwrap();
        assert!(header_value(&written, &env).await.unwrap_err().contains("is empty"));
        std::fs::remove_file(&file).unwrap();
        assert!(header_value(&written, &env).await.unwrap_err().contains("cannot be read"));
    }

    #[test]
    fn refresh_form_is_url_encoded() {
        assert_eq!(
            refresh_form("id 1", Some("a&b=c"), "5Aep!x/y"),
            "grant_type=refresh_token&refresh_token=5Aep%21x%2Fy&client_id=id+1&client_secret=a%26b%3Dc"
        );
        assert_eq!(refresh_form("id", None, "t"), "grant_type=refresh_token&refresh_token=t&client_id=id");
    }
}
