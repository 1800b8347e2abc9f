//! When a certificate is valid: `notBefore` and `notAfter` read from its DER. Only these two fields
//! are needed (for a warning at load and the expiry metric), so this walks the few DER headers in
//! front of them instead of bringing in an X.509 library; the handshake itself is rustls's.

use chrono::NaiveDateTime;

/// A certificate's validity period, in unix seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    pub not_before: i64,
    pub not_after: i64,
}

impl Validity {
    /// What is wrong with the period at `now` (unix seconds), said for a person; `None` when the
    /// certificate is valid.
    pub fn problem(&self, now: i64) -> Option<String> {
        if now > self.not_after {
            Some(format!("expired at {} (clients will refuse it)", iso(self.not_after)))
        } else if now < self.not_before {
            Some(format!("not valid before {} (clients will refuse it until then)", iso(self.not_before)))
        } else {
            None
        }
    }
}

fn iso(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map_or_else(|| secs.to_string(), |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// One DER element: its tag, its content, and what follows it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    // Multi-byte tags do not occur before the validity.
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// The validity of a DER certificate; `None` when it is not shaped as X.509 says.
pub fn validity(der: &[u8]) -> Option<Validity> {
    let (tag, certificate, _) = element(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, tbs, _) = element(certificate)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut rest = tbs;
    let (mut tag, _, mut after) = element(rest)?;
    if tag == VERSION {
        rest = after;
        (tag, _, after) = element(rest)?;
    }
    if tag != INTEGER {
        return None;
    }
    // The signature algorithm and the issuer, then the validity.
    let (_, _, after) = element(after)?;
    let (_, _, after) = element(after)?;
    let (tag, period, _) = element(after)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, before, rest) = element(period)?;
    let not_before = time(tag, before)?;
    let (tag, after, _) = element(rest)?;
    let not_after = time(tag, after)?;
    Some(Validity { not_before, not_after })
}

/// UTCTime (`YYMMDDHHMMSSZ`, years 1950-2049) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
fn time(tag: u8, content: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(content).ok()?;
    let full = match tag {
        UTC_TIME if text.len() == 13 => {
            let year: u32 = text.get(..2)?.parse().ok()?;
            format!("{}{text}", if year >= 50 { "19" } else { "20" })
        }
        GENERALIZED_TIME if text.len() == 15 => text.to_string(),
        _ => return None,
    };
    NaiveDateTime::parse_from_str(&full, "%Y%m%d%H%M%SZ").ok().map(|t| t.and_utc().timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DER element with a length in the short or long form.
    fn der(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if content.len() < 0x80 {
            out.push(content.len() as u8);
        } else {
            out.push(0x82);
            out.extend_from_slice(&(content.len() as u16).to_be_bytes());
        }
        out.extend_from_slice(content);
        out
    }

    fn certificate(not_before: (u8, &str), not_after: (u8, &str), version: bool) -> Vec<u8> {
        let mut tbs = Vec::new();
        if version {
            tbs.extend(der(VERSION, &der(INTEGER, &[2])));
        }
        tbs.extend(der(INTEGER, &[1, 2, 3]));
        tbs.extend(der(SEQUENCE, &der(0x06, &[42, 134, 72])));
        tbs.extend(der(SEQUENCE, &[b'x'; 200]));
        let mut period = der(not_before.0, not_before.1.as_bytes());
        period.extend(der(not_after.0, not_after.1.as_bytes()));
        tbs.extend(der(SEQUENCE, &period));
        tbs.extend(der(SEQUENCE, b"subject"));
        let mut cert = der(SEQUENCE, &tbs);
        cert.extend(der(SEQUENCE, b"sig alg"));
        der(SEQUENCE, &cert)
    }

    #[test]
    fn both_time_forms_with_and_without_a_version() {
        let cert = certificate((UTC_TIME, "250101000000Z"), (GENERALIZED_TIME, "20500101000000Z"), true);
        assert_eq!(validity(&cert), Some(Validity { not_before: 1_735_689_600, not_after: 2_524_608_000 }));
        let cert = certificate((UTC_TIME, "991231235959Z"), (UTC_TIME, "490101000000Z"), false);
        assert_eq!(validity(&cert), Some(Validity { not_before: 946_684_799, not_after: 2_493_072_000 }));
        let period = Validity { not_before: 100, not_after: 200 };
        assert!(period.problem(150).is_none());
        assert!(
            period.problem(201).is_some_and(|p| p.contains("expired at 1970-01-01T00:03:20Z")),
            "{:?}",
            period.problem(201)
        );
        assert!(period.problem(99).is_some_and(|p| p.contains("not valid before")));
    }

    proptest::proptest! {
        /// Any bytes, and a real shape cut anywhere: a period or `None`, never a panic.
        #[test]
        fn any_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), cut in 0usize..400) {
            let _ = validity(&bytes);
            let cert = certificate((UTC_TIME, "250101000000Z"), (GENERALIZED_TIME, "20500101000000Z"), true);
            let _ = validity(&cert[..cut.min(cert.len())]);
        }
    }
}
