//! The listen address, checked when the spec is read: `check` must refuse what `serve` could not
//! bind, with the place in the file, rather than `serve` stopping later with a bare OS error.

use serde::{Deserialize, Deserializer};

use super::SourceText;

/// `host:port`: an IPv4 address, a bracketed IPv6 address or a host name, and a port 0-65535.
pub fn check(address: &str) -> Result<(), String> {
    let hint = "give host:port, e.g. 127.0.0.1:29187, 0.0.0.0:29187 for every interface, [::1]:29187";
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err(format!("listen address `{address}` has no port; {hint}"));
    };
    match port.parse::<u32>() {
        Ok(p) if p <= u32::from(u16::MAX) => {}
        Ok(p) => return Err(format!("listen address `{address}`: port {p} is out of range (0-65535)")),
        Err(_) => return Err(format!("listen address `{address}`: `{port}` is not a port number; {hint}")),
    }
    if host.is_empty() {
        return Err(format!("listen address `{address}` has no host; {hint}"));
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner
            .parse::<std::net::Ipv6Addr>()
            .map(|_| ())
            .map_err(|_| format!("listen address `{address}`: `{inner}` is not an IPv6 address"));
    }
    if host.contains(':') {
        return Err(format!("listen address `{address}`: write an IPv6 address in brackets, `[{host}]:{port}`"));
    }
    if host.parse::<std::net::Ipv4Addr>().is_ok() {
        return Ok(());
    }
    // A host name (resolved when the listener binds): letters, digits, `-` and `.` only.
    let name_ok = host.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
    });
    if !name_ok || host.len() > 253 || host.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(format!("listen address `{address}`: `{host}` is neither an IP address nor a host name"));
    }
    Ok(())
}

/// Where the spec's `listen` key is, as `file:line:col`: at the start of a line (a block
/// mapping's top-level key), else after `{` or `,` (the flow form), outside comments.
pub fn place(source: &SourceText) -> Option<String> {
    for (i, line) in source.text.lines().enumerate() {
        let code = line.split_once('#').map_or(line, |(code, _)| code);
        for (at, _) in code.match_indices("listen") {
            let before = code[..at].trim_end();
            let key_start = at == 0 || before.ends_with('{') || before.ends_with(',');
            if key_start && code[at + "listen".len()..].trim_start().starts_with(':') {
                return Some(format!("{}:{}:{}", source.name, i + 1, code[..at].chars().count() + 1));
            }
        }
    }
    None
}

/// `deserialize_with` for `listen`: the error is placed at the value by the YAML reader.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let address = String::deserialize(d)?;
    check(&address).map_err(serde::de::Error::custom)?;
    Ok(address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listen_key_is_placed() {
        let place = |text: &str| place(&SourceText { name: "s.yaml".into(), text: text.into() });
        assert_eq!(place("# listen: here?\nlisten: 127.0.0.1:1\n").as_deref(), Some("s.yaml:2:1"));
        assert_eq!(place("{signals: [], listen: x}").as_deref(), Some("s.yaml:1:15"));
        assert_eq!(place("signals: []\n  listen_x: 1\n"), None);
    }

    #[test]
    fn addresses() {
        for good in [
            "127.0.0.1:29187",
            "0.0.0.0:0",
            "[::1]:29187",
            "[::]:65535",
            "localhost:29187",
            "exporter.example-1.org:80",
        ] {
            assert_eq!(check(good), Ok(()), "{good}");
        }
        for (bad, says) in [
            ("garbage", "has no port"),
            ("127.0.0.1:99999", "port 99999 is out of range"),
            ("127.0.0.1:http", "not a port number"),
            (":29187", "has no host"),
            ("::1:29187", "in brackets"),
            ("[zz]:1", "not an IPv6 address"),
            ("bad host:1", "neither"),
            ("300.1.1.1:1", "neither"),
            ("127.0.0.1:", "not a port number"),
        ] {
            let err = check(bad).expect_err(bad);
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
