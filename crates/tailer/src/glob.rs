//! Watched-path patterns: a literal path, or a glob whose *file-name part*
//! may contain `*`, `?` and `[...]`. The directory part is always literal, so
//! expanding a glob costs exactly one `read_dir` — no recursive walking — and
//! the log source's inotify watch is that one directory.
//!
//! Why our own matcher and not `globset` (weighed, kept as a dev-dependency
//! only: the `differs_from_globset_only_where_documented` property test below
//! holds the two to the same answers on the grammar they share):
//! * globset cannot plan the walk: it matches whole paths and has no notion of
//!   "the directory to list", so [`Pattern::parse`] (and the log source's
//!   `parent_dir`) would stay ours anyway. Without `**` (one `read_dir` per
//!   glob is what keeps 500 idle files cheap, and every directory a walk
//!   reached would need its own inotify watch) a pattern here is one path
//!   component, where globset's separator handling buys nothing.
//! * It would change what existing configs match: `?` and `[é]` do not match a
//!   non-ASCII character (it matches bytes; BurntSushi/ripgrep#2873), a
//!   leading `.` is matched by `*` (no option keeps sh's rule, so a wrapper
//!   would stay ours), `{a,b}` becomes alternation and a stray `{` or `}` an
//!   error, `[z-a]` an error instead of matching nothing, `[a-c-e]` the range
//!   `a-e`, `[[:digit:]]` a POSIX class.
//! * It would bring `bstr` and regex compilation into a crate that otherwise
//!   needs only `serde` and `memchr`, to replace about 80 lines.
//!
//! The grammar, for a file name: `*` any run of characters, `?` one character
//! (a Unicode scalar, not a byte), `[abc]` `[a-z]` a class, `[!...]` or `[^...]`
//! its complement, `]` first in a class is a member and `-` first or last is
//! one; an unclosed `[` is an ordinary character; `\`, `{`, `}` and `,` are
//! ordinary characters; a leading `.` must be matched by a literal `.`.

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

/// The regular files `patterns` name now, as the tailer would open them (a literal path that
/// exists, the matches of a glob, compressed rotations left out), for a one-shot read. A
/// directory that does not exist matches nothing; one that cannot be listed is an error.
pub fn files_matching(patterns: &[String]) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for raw in patterns {
        match Pattern::parse(raw) {
            Pattern::Literal(path) => {
                if std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
                    out.push(PathBuf::from(path));
                }
            }
            Pattern::Glob { dir, name, .. } => {
                let entries = match std::fs::read_dir(&dir) {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(std::io::Error::new(e.kind(), format!("{}: {e}", dir.display()))),
                };
                for entry in entries.flatten() {
                    let fname = entry.file_name();
                    let Some(fname) = fname.to_str() else { continue };
                    if matches(&name, fname)
                        && !crate::copies::compressed_name(fname)
                        && std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file())
                    {
                        out.push(entry.path());
                    }
                }
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
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

    /// What configs rely on where a general-purpose glob library (globset)
    /// answers differently; each line is a behaviour a swap would change.
    #[test]
    fn grammar_we_keep() {
        // `*` and `?` stay inside the file name: a glob never reaches a subdirectory,
        // and a wildcard in the directory part makes no glob at all.
        assert!(!Pattern::parse("logs/*").covers("logs/sub/app.log"));
        assert!(!Pattern::parse("logs/?").covers("logs/a/b"));
        assert!(matches!(Pattern::parse("logs/*/app.log"), Pattern::Literal(_)));
        // sh's hidden-file rule, even for a class that could match the dot.
        assert!(!m("*.log", ".app.log"));
        assert!(!m("?app.log", ".app.log"));
        assert!(!m("[.]app.log", ".app.log"));
        assert!(m(".*.log", ".app.log"));
        // Both spellings of the complement.
        assert!(m("app.[!0-9]", "app.x") && !m("app.[!0-9]", "app.1"));
        assert!(m("app.[^0-9]", "app.x") && !m("app.[^0-9]", "app.1"));
        // Braces and commas are ordinary characters; a name with braces but no
        // wildcard is a literal path.
        assert!(m("app{1,2}*", "app{1,2}.log"));
        assert!(!m("app{1,2}*", "app1.log"));
        assert!(m("a}b*", "a}b") && m("a{b*", "a{b"));
        assert!(matches!(Pattern::parse("logs/app{1,2}.log"), Pattern::Literal(_)));
        // No escapes: a backslash is a character of the name.
        assert!(m(r"a\*", r"a\x"));
        assert!(!m(r"a\*", "a*"));
        assert!(m("a[*]", "a*") && !m("a[*]", "ab"));
        // `?` and classes count characters, not bytes.
        assert!(m("app-?.log", "app-é.log"));
        assert!(m("app-[éè].log", "app-è.log"));
        assert!(m("журнал-*.log", "журнал-1.log"));
        // `**` is just two stars.
        assert!(m("app**.log", "app.1.log"));
        assert!(!Pattern::parse("logs/**").covers("logs/sub/app.log"));
        // Odd classes match something or nothing, they are never an error.
        assert!(!m("[z-a]*", "x"));
        assert!(m("[a-c-e]", "-") && !m("[a-c-e]", "d"));
        assert!(m("[[:digit:]]", ":]") && !m("[[:digit:]]", "1"));
    }

    /// globset, configured as close to our grammar as it goes, as the
    /// reference for the part both have: ASCII names, no braces or backslashes
    /// (ordinary characters here, syntax there), no `[:` (POSIX classes there),
    /// and with sh's hidden-file rule put on top of it.
    fn globset_says(pat: &str, name: &str) -> Option<bool> {
        let glob = globset::GlobBuilder::new(pat)
            .literal_separator(true)
            .backslash_escape(false)
            .allow_unclosed_class(true)
            .build();
        match glob {
            Ok(g) => Some((pat.starts_with('.') || !name.starts_with('.')) && g.compile_matcher().is_match(name)),
            // A reversed range (`[b-a]`): an error there, an empty class here.
            Err(e) if matches!(e.kind(), globset::ErrorKind::InvalidRange(..)) => None,
            Err(e) => panic!("{pat:?}: {e}"),
        }
    }

    /// `[a-c-e]`: globset widens the range to `a-e`, we read `a-c`, `-`, `e`.
    fn chained_range(pat: &str) -> bool {
        let b = pat.as_bytes();
        b.windows(4).any(|w| w[1] == b'-' && w[3] == b'-') && pat.contains('[')
    }

    /// Patterns built from the grammar's pieces (a bare `[` included, which
    /// may open a class with what follows or stay unclosed), names over a
    /// small alphabet so that many pairs match.
    fn pattern_and_names() -> impl proptest::strategy::Strategy<Value = (String, Vec<String>)> {
        use proptest::prelude::*;
        let member = prop_oneof!["[ab.!^\\[]", "[ab.!\\[]-[ab.!\\[]"];
        let class = ("[!^]?", "[\\]-]?", proptest::collection::vec(member, 1..3), "-?")
            .prop_map(|(neg, first, members, last)| format!("[{neg}{first}{}{last}]", members.concat()));
        let token = prop_oneof![3 => "[ab.!^\\]-]", 2 => Just("*".to_string()), 1 => Just("?".to_string()),
            1 => Just("[".to_string()), 3 => class];
        let pattern = proptest::collection::vec(token, 0..5).prop_map(|t| t.concat());
        (pattern, proptest::collection::vec("[ab.\\[\\]!^-]{0,4}", 1..24))
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 1000, ..Default::default() })]
        #[test]
        fn differs_from_globset_only_where_documented((pat, names) in pattern_and_names()) {
            proptest::prop_assume!(!chained_range(&pat));
            for name in &names {
                if let Some(want) = globset_says(&pat, name) {
                    proptest::prop_assert_eq!(m(&pat, name), want, "pattern {:?} name {:?}", pat, name);
                }
            }
        }
    }

    /// The property above only proves something if its cases match often,
    /// not just miss.
    #[test]
    fn the_compared_cases_include_matches() {
        use proptest::strategy::{Strategy, ValueTree};
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let (mut pairs, mut hits) = (0, 0);
        for _ in 0..500 {
            let (pat, names) = pattern_and_names().new_tree(&mut runner).expect("case").current();
            for name in &names {
                pairs += 1;
                hits += usize::from(globset_says(&pat, name) == Some(true));
            }
        }
        assert!(hits * 10 > pairs, "{hits} matches in {pairs} pairs");
    }
}
