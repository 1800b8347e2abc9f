//! FNV-1a 64: tiny and stable across Rust releases (unlike `DefaultHasher`). Its values are
//! persisted — head fingerprints in checkpoints, and the exporter's dashboard uids — so it is
//! exported for the exporter to share, and it must never change (see the tests).

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

fn step(h: u64, b: u8) -> u64 {
    (h ^ u64::from(b)).wrapping_mul(PRIME)
}

/// FNV-1a 64 of `bytes`, a stable hash for values that are stored or published.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(OFFSET, |h, &b| step(h, b))
}

/// FNV-1a 64 of every prefix of `head`: `[i]` is the hash of `head[..i]`.
/// Lets one new file be compared with the fingerprints of many in O(1) each.
pub(crate) fn prefix_hashes(head: &[u8]) -> Vec<u64> {
    let mut out = Vec::with_capacity(head.len() + 1);
    out.push(OFFSET);
    let mut h = OFFSET;
    for &b in head {
        h = step(h, b);
        out.push(h);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published FNV-1a 64 test vectors: the function is the standard one, not merely ours.
    #[test]
    fn standard_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn prefix_hashes_are_the_hashes_of_the_prefixes() {
        let head = b"2024-05-01 first line\nsecond\n";
        let prefixes = prefix_hashes(head);
        assert_eq!(prefixes.len(), head.len() + 1);
        for (i, &h) in prefixes.iter().enumerate() {
            assert_eq!(h, fnv1a(&head[..i]), "prefix {i}");
        }
    }
}
