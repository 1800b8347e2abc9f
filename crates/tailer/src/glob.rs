//! Watched-path patterns: a literal path, or a glob whose *file-name part*
//! may contain `*`, `?` and `[...]`. The directory part is always literal, so
//! expanding a glob costs exactly one `read_dir` — no recursive walking.

use std::path::PathBuf;

/// One entry of `TailerConfig::paths`, parsed once.
#[derive(Debug, Clone)]
pub(crate) enum Pattern {
    Literal(String),
    Glob {
        /// The pattern as configured; used as the `path` of directory errors.
        raw: String,
        /// Directory to list.
        dir: PathBuf,
        /// Prefix glued to matching names to build labels (`"dir/"`, or `""`
        /// for a bare pattern) so labels look like the configured pattern.
        prefix: String,
        name: Vec<char>,
    },
}

impl Pattern {
    pub(crate) fn parse(raw: &str) -> Pattern {
        let (prefix, name) = match raw.rfind('/') {
            Some(i) => (&raw[..=i], &raw[i + 1..]),
            None => ("", raw),
        };
        if !name.contains(['*', '?', '[']) {
            return Pattern::Literal(raw.to_string());
        }
        let dir = if prefix.is_empty() { PathBuf::from(".") } else { PathBuf::from(prefix) };
        Pattern::Glob { raw: raw.to_string(), dir, prefix: prefix.to_string(), name: name.chars().collect() }
    }

    /// Whether `label` is a path this pattern could produce (used to keep
    /// state for paths whose directory could not be listed this poll).
    pub(crate) fn covers(&self, label: &str) -> bool {
        match self {
            Pattern::Literal(p) => p == label,
            Pattern::Glob { prefix, name, .. } => {
                label.strip_prefix(prefix.as_str()).is_some_and(|rest| !rest.contains('/') && matches(name, rest))
            }
        }
    }
}

/// Shell-style match of one file name. A leading `.` must be matched
/// explicitly (as in sh), so `*` does not pick up editor/dot files.
pub(crate) fn matches(pat: &[char], name: &str) -> bool {
    let s: Vec<char> = name.chars().collect();
    if s.first() == Some(&'.') && pat.first() != Some(&'.') {
        return false;
    }
    let (mut pi, mut si) = (0usize, 0usize);
    // Position after the last `*` and the name index it is currently
    // assumed to swallow up to; classic linear-backtracking wildcard match.
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < pat.len() {
            match pat[pi] {
                '*' => {
                    star = Some((pi + 1, si));
                    pi += 1;
                    continue;
                }
                '?' => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                '[' => match class(pat, pi, s[si]) {
                    Some((true, next)) => {
                        pi = next;
                        si += 1;
                        continue;
                    }
                    Some((false, _)) => {}
                    // Unclosed `[` is an ordinary character.
                    None if s[si] == '[' => {
                        pi += 1;
                        si += 1;
                        continue;
                    }
                    None => {}
                },
                c if c == s[si] => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((after, swallowed)) => {
                pi = after;
                si = swallowed + 1;
                star = Some((after, swallowed + 1));
            }
            None => return false,
        }
    }
    pat[pi..].iter().all(|&c| c == '*')
}

/// Evaluates the bracket expression starting at `pat[open] == '['` against
/// `c`. Returns (matched, index after `]`), or `None` if it is not closed.
fn class(pat: &[char], open: usize, c: char) -> Option<(bool, usize)> {
    let mut i = open + 1;
    let negate = matches!(pat.get(i), Some('!') | Some('^'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    loop {
        let lo = *pat.get(i)?;
        // `]` right after `[` or `[!` is a literal member, as in sh.
        if lo == ']' && !first {
            return Some((hit != negate, i + 1));
        }
        first = false;
        if pat.get(i + 1) == Some(&'-') && pat.get(i + 2).is_some_and(|&h| h != ']') {
            let hi = pat[i + 2];
            hit |= lo <= c && c <= hi;
            i += 3;
        } else {
            hit |= lo == c;
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, n: &str) -> bool {
        matches(&p.chars().collect::<Vec<_>>(), n)
    }

    #[test]
    fn wildcards() {
        assert!(m("*.log", "app.log"));
        assert!(!m("*.log", "app.log.1"));
        assert!(m("app.log*", "app.log.1"));
        assert!(m("app.log*", "app.log"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("*a*b*c", "xxaybzzc"));
        assert!(!m("*a*b*c", "xxaybzz"));
        assert!(!m("*", ".hidden"));
        assert!(m(".*", ".hidden"));
        assert!(m("", ""));
        assert!(!m("", "a"));
    }

    #[test]
    fn classes() {
        assert!(m("app.[0-9]", "app.7"));
        assert!(!m("app.[0-9]", "app.x"));
        assert!(m("app.[!0-9]", "app.x"));
        assert!(m("app.[^0-9]", "app.x"));
        assert!(m("[]x]", "]"));
        assert!(m("[a-]", "-"));
        assert!(m("a[", "a["));
        assert!(!m("a[b", "ab"));
    }

    #[test]
    fn parse_and_cover() {
        let p = Pattern::parse("/var/log/app/*.log");
        assert!(p.covers("/var/log/app/x.log"));
        assert!(!p.covers("/var/log/app/sub/x.log"));
        assert!(!p.covers("/var/log/x.log"));
        assert!(matches!(Pattern::parse("/var/log/a.log"), Pattern::Literal(_)));
        match Pattern::parse("*.log") {
            Pattern::Glob { dir, prefix, .. } => {
                assert_eq!(dir, PathBuf::from("."));
                assert_eq!(prefix, "");
            }
            Pattern::Literal(_) => panic!("expected glob"),
        }
    }
}
