//! Which rules a text line can match, found with one literal scan instead of a regex per rule.
//!
//! Every match of a rule's pattern starts with one of the pattern's prefix literals (as
//! `regex-syntax` extracts them), so a line that holds none of them cannot match the rule and no
//! regex runs on it. When a pattern *is* its literals (no repetition, class or assertion left over)
//! and the rule captures nothing, finding the literal is the match and no regex runs at all. A
//! pattern with no usable literal (it may start with `\d`, or match the empty string) keeps its
//! rule a candidate for every line.

use aho_corasick::{AhoCorasick, MatchKind};
use regex_syntax::hir::literal::{ExtractKind, Extractor};

/// The rules of a text source indexed by their literals.
#[derive(Debug, Clone)]
pub(super) struct LiteralFilter {
    /// One automaton over every distinct literal of every filtered rule; `None` when no rule
    /// has one.
    scan: Option<AhoCorasick>,
    /// Per automaton pattern: the rules of every literal it contains (itself included), since
    /// the longest literal found at a position hides those inside it, with where in it the
    /// rule's first literal starts.
    owners: Vec<Vec<(usize, usize)>>,
    /// Per rule: literals one of which every match ends with, when they are few and long enough
    /// to be worth a look; a line holding none of them does not run the rule's regex.
    suffixes: Vec<Vec<memchr::memmem::Finder<'static>>>,
    /// Rules whose regex must run on every line: no literal could be extracted.
    always: Vec<usize>,
    /// Per rule: the literal found is the whole match, no regex needed to say yes.
    exact: Vec<bool>,
}

impl LiteralFilter {
    /// `patterns[i]` is rule `i`'s pattern, `None` for a rule without one (it never matches a
    /// text line); `captures[i]` whether rule `i` reads named captures (then its regex always
    /// runs, to read them).
    pub(super) fn new(patterns: &[Option<&str>], captures: &[bool]) -> Result<Self, String> {
        let mut literals: Vec<Vec<u8>> = Vec::new();
        let mut owner: Vec<usize> = Vec::new();
        let mut always = Vec::new();
        let mut exact = vec![false; patterns.len()];
        let mut suffixes = vec![Vec::new(); patterns.len()];
        for (i, pattern) in patterns.iter().enumerate() {
            let Some(pattern) = pattern else { continue };
            suffixes[i] = suffix_literals(pattern)?;
            match prefix_literals(pattern)? {
                Some(found) => {
                    exact[i] = found.exact && !captures.get(i).copied().unwrap_or(true);
                    owner.extend(std::iter::repeat_n(i, found.literals.len()));
                    literals.extend(found.literals);
                }
                None => always.push(i),
            }
        }
        let mut distinct: Vec<Vec<u8>> = literals.clone();
        distinct.sort_unstable();
        distinct.dedup();
        let owners = distinct
            .iter()
            .map(|found| {
                let mut rules: Vec<(usize, usize)> = literals
                    .iter()
                    .zip(&owner)
                    .filter_map(|(inner, rule)| Some((*rule, memchr::memmem::find(found, inner)?)))
                    .collect();
                // The first literal of each rule in it.
                rules.sort_unstable();
                rules.dedup_by_key(|(rule, _)| *rule);
                rules
            })
            .collect();
        let scan = if distinct.is_empty() {
            None
        } else {
            // Leftmost-longest lets the automaton use its SIMD searcher, which overlapping
            // search cannot; `candidates` restarts one byte after each literal found, so no
            // literal starting anywhere is missed.
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&distinct)
                    .map_err(|e| format!("literal prefilter: {e}"))?,
            )
        };
        // An exact rule runs no regex: nothing to spare it.
        for (i, e) in exact.iter().enumerate() {
            if *e {
                suffixes[i].clear();
            }
        }
        Ok(Self { scan, owners, always, exact, suffixes })
    }

    /// No filtering: every rule with a pattern runs its regex on every line (the reference the
    /// tests compare the filter with).
    #[cfg(test)]
    pub(super) fn every_rule(patterns: &[Option<&str>]) -> Self {
        let always = patterns.iter().enumerate().filter(|(_, p)| p.is_some()).map(|(i, _)| i).collect();
        let suffixes = vec![Vec::new(); patterns.len()];
        Self { scan: None, owners: Vec::new(), always, exact: vec![false; patterns.len()], suffixes }
    }

    /// Fills `out` with the rules `line` may match, in rule order, without duplicates, and
    /// `first[rule]` with where the first of its literals starts in the line (0 for a rule
    /// without literals): no match of the rule starts before.
    pub(super) fn candidates(&self, line: &str, out: &mut Vec<usize>, first: &mut Vec<usize>) {
        out.clear();
        first.clear();
        first.resize(self.exact.len(), usize::MAX);
        for &i in &self.always {
            out.push(i);
            first[i] = 0;
        }
        if let Some(scan) = &self.scan {
            // At each position the longest literal is found, and it carries the rules of the
            // literals inside it; searching on from the next byte finds those starting later.
            let mut from = 0;
            while let Some(m) = scan.find(aho_corasick::Input::new(line).span(from..line.len())) {
                for &(rule, offset) in &self.owners[m.pattern().as_usize()] {
                    if first[rule] == usize::MAX {
                        out.push(rule);
                    }
                    first[rule] = first[rule].min(m.start() + offset);
                }
                from = m.start() + 1;
            }
        }
        if out.len() > 1 {
            out.sort_unstable();
        }
        out.retain(|&i| {
            let ends = &self.suffixes[i];
            ends.is_empty() || ends.iter().any(|f| f.find(line.as_bytes()).is_some())
        });
    }

    /// Whether finding rule `i`'s literal already means the line matches it.
    pub(super) fn is_exact(&self, i: usize) -> bool {
        self.exact.get(i).copied().unwrap_or(false)
    }
}

/// Literals one of which every match of `pattern` ends with, when there are at most four, each
/// of at least three bytes (shorter or more would cost more to look for than they spare).
fn suffix_literals(pattern: &str) -> Result<Vec<memchr::memmem::Finder<'static>>, String> {
    let hir = regex_syntax::parse(pattern).map_err(|e| format!("pattern: {e}"))?;
    let seq = Extractor::new().kind(ExtractKind::Suffix).extract(&hir);
    let Some(literals) = seq.literals() else { return Ok(Vec::new()) };
    if literals.is_empty() || literals.len() > 4 || literals.iter().any(|l| l.as_bytes().len() < 3) {
        return Ok(Vec::new());
    }
    Ok(literals.iter().map(|l| memchr::memmem::Finder::new(l.as_bytes()).into_owned()).collect())
}

/// The literals every match of a pattern starts with.
struct Prefixes {
    literals: Vec<Vec<u8>>,
    /// The pattern matches exactly these literals, nothing more.
    exact: bool,
}

/// `pattern`'s [`Prefixes`]; `None` when they cannot narrow anything down (no finite set, or the
/// empty string is one).
fn prefix_literals(pattern: &str) -> Result<Option<Prefixes>, String> {
    // The `regex` crate's own default syntax, so the literals are those of the compiled pattern.
    let hir = regex_syntax::parse(pattern).map_err(|e| format!("pattern: {e}"))?;
    let seq = Extractor::new().kind(ExtractKind::Prefix).extract(&hir);
    let Some(literals) = seq.literals() else { return Ok(None) };
    if literals.is_empty() || literals.iter().any(|l| l.as_bytes().is_empty()) {
        return Ok(None);
    }
    // The extractor reads an assertion (`^`, `\b`) as the empty string: a pattern with one is
    // never just its literals.
    let exact = seq.is_exact() && hir.properties().look_set().is_empty();
    Ok(Some(Prefixes { literals: literals.iter().map(|l| l.as_bytes().to_vec()).collect(), exact }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exactness(pattern: &str) -> Option<bool> {
        prefix_literals(pattern).unwrap().map(|p| p.exact)
    }

    #[test]
    fn only_patterns_that_are_their_literals_skip_the_regex() {
        assert_eq!(exactness("ProactiveRefresh ✓"), Some(true));
        assert_eq!(exactness("acquire lock|lock lost"), Some(true));
        // Anchors and word boundaries read as empty strings to the extractor: not exact.
        assert_eq!(exactness("^ProactiveRefresh"), Some(false));
        assert_eq!(exactness(r"\berror="), Some(false));
        assert_eq!(exactness("ProactiveRefresh.*Cycle complete"), Some(false));
        // Nothing to look for: the regex decides on every line.
        assert_eq!(exactness(r"\d+ms"), None);
        assert_eq!(exactness("x*"), None);
    }

    #[test]
    fn a_line_holding_no_literal_has_only_the_unfiltered_rules() {
        let patterns = [Some("ProactiveRefresh ✓"), None, Some(r"\d+ms"), Some("ProactiveRefresh.*Cycle")];
        let filter = LiteralFilter::new(&patterns, &[false; 4]).unwrap();
        let (mut out, mut first) = (Vec::new(), Vec::new());
        filter.candidates("polling mailbox", &mut out, &mut first);
        assert_eq!(out, [2]);
        // One literal the prefix of another: both rules are found, each where it first starts.
        filter.candidates("x ProactiveRefresh ✓ then ProactiveRefresh Cycle", &mut out, &mut first);
        assert_eq!(out, [0, 2, 3]);
        assert_eq!((first[0], first[2], first[3]), (2, 0, 2));
        // A rule's pattern ends with `Cycle`: without it in the line, no regex runs.
        filter.candidates("ProactiveRefresh ✓ then", &mut out, &mut first);
        assert_eq!(out, [0, 2]);
    }
}
