//! Where in the spec's text an error is. A spec can hold tens of thousands of errors (a generated
//! file, a paste gone wrong); searching the text and counting its lines again for each one made
//! `check` quadratic (40k unknown pack names took 15 s). The text is indexed once instead: the
//! start of every line, and where every name (a run of letters, digits, `_ . -`) starts.

use std::cell::RefCell;
use std::collections::HashMap;

use super::{SourceText, SpecError};

fn is_name(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '.' || c == '-'
}

/// The spec's text, indexed for locating errors.
pub struct Locator<'a> {
    source: &'a SourceText,
    line_starts: Vec<usize>,
    /// Each name in the text, with the byte offsets where it occurs, in order.
    words: HashMap<&'a str, Vec<usize>>,
    /// Needles that do not start a name, looked up once each by a plain search.
    searched: RefCell<HashMap<String, Option<usize>>>,
}

impl<'a> Locator<'a> {
    pub fn new(source: &'a SourceText) -> Self {
        let text = source.text.as_str();
        let line_starts = std::iter::once(0).chain(text.match_indices('\n').map(|(at, _)| at + 1)).collect();
        let mut words: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut start = None;
        for (at, c) in text.char_indices().chain(std::iter::once((text.len(), ' '))) {
            match (is_name(c), start) {
                (true, None) => start = Some(at),
                (false, Some(from)) => {
                    words.entry(&text[from..at]).or_default().push(from);
                    start = None;
                }
                _ => {}
            }
        }
        Self { source, line_starts, words, searched: RefCell::default() }
    }

    pub fn text(&self) -> &str {
        &self.source.text
    }

    /// An error at byte `at` of the text, or at its top.
    fn error_at(&self, at: Option<usize>, message: impl Into<String>) -> SpecError {
        let (line, column) = at.map_or((1, 1), |at| {
            let line = self.line_starts.partition_point(|&start| start <= at);
            let start = self.line_starts[line - 1];
            (line as u64, self.source.text[start..at].chars().count() as u64 + 1)
        });
        SpecError { file: self.source.name.clone(), line, column, message: message.into() }
    }

    /// Where `needle` occurs at the start of a name, at or after byte `from`, in order; `None`
    /// when it does not start with a name.
    fn starts<'s>(&'s self, needle: &'s str, from: usize) -> Option<impl Iterator<Item = usize> + 's> {
        let head_len = needle.find(|c: char| !is_name(c)).unwrap_or(needle.len());
        if head_len == 0 {
            return None;
        }
        // Where the needle starts a name, that name is exactly its leading run of name characters.
        let at = self.words.get(&needle[..head_len]).map_or(&[][..], Vec::as_slice);
        let first = at.partition_point(|&p| p < from);
        let text = self.text();
        Some(at[first..].iter().copied().filter(move |&p| text[p..].starts_with(needle)))
    }

    /// Best position for an error about `needle`: its first occurrence at the start of a name
    /// (so `refresh:` is not found inside `token_refresh:`), else anywhere, else the top of the file.
    pub fn locate(&self, needle: &str, message: impl Into<String>) -> SpecError {
        if needle.is_empty() {
            return self.error_at(None, message);
        }
        let at = self.starts(needle, 0).and_then(|mut found| found.next()).or_else(|| {
            *self.searched.borrow_mut().entry(needle.to_string()).or_insert_with(|| self.text().find(needle))
        });
        self.error_at(at, message)
    }

    /// Best position for an error about a nested key: each of `path` is looked for, as a whole
    /// word, after the previous one (`["packs", "token_refresh", "signals", id, "interval"]`), so
    /// the same key under another parent is not taken for it. Stops at the deepest one found.
    pub fn locate_path(&self, path: &[&str], message: impl Into<String>) -> SpecError {
        let mut at = None;
        let mut from = 0;
        for key in path {
            match self.find_word(key, from) {
                Some(found) => {
                    at = Some(found);
                    from = found + key.len();
                }
                None => break,
            }
        }
        self.error_at(at, message)
    }

    /// First occurrence of `word` at or after byte `from` that is not part of a longer name.
    fn find_word(&self, word: &str, from: usize) -> Option<usize> {
        if word.is_empty() {
            return None;
        }
        let text = self.text();
        let ends_clear = |at: usize| !text[at + word.len()..].chars().next().is_some_and(is_name);
        match self.starts(word, from) {
            Some(mut found) => found.find(|&at| ends_clear(at)),
            // A word that starts with punctuation: rare enough to search for.
            None => {
                let mut start = from;
                while let Some(found) = text.get(start..)?.find(word) {
                    let at = start + found;
                    if !text[..at].chars().next_back().is_some_and(is_name) && ends_clear(at) {
                        return Some(at);
                    }
                    start = at + text[at..].chars().next().map_or(1, char::len_utf8);
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, needle: &str) -> (u64, u64) {
        let source = SourceText { name: "s.yaml".into(), text: text.into() };
        let e = Locator::new(&source).locate(needle, "m");
        (e.line, e.column)
    }

    fn at_path(text: &str, path: &[&str]) -> (u64, u64) {
        let source = SourceText { name: "s.yaml".into(), text: text.into() };
        let e = Locator::new(&source).locate_path(path, "m");
        (e.line, e.column)
    }

    #[test]
    fn names_are_found_where_they_start() {
        let text = "packs:\n  token_refresh:\n    refresh: 1\n  é: {x: \"a b\"}\n";
        assert_eq!(at(text, "refresh:"), (3, 5));
        assert_eq!(at(text, "token_refresh"), (2, 3));
        assert_eq!(at(text, "x:"), (4, 7));
        assert_eq!(at(text, "\"a b\""), (4, 10));
        assert_eq!(at(text, "oken"), (2, 4), "inside a name when nothing starts with it");
        assert_eq!(at(text, "absent"), (1, 1));
        assert_eq!(at(text, ""), (1, 1));
        assert_eq!(at_path(text, &["packs", "refresh"]), (3, 5));
        assert_eq!(at_path(text, &["packs", "token_refresh", "absent"]), (2, 3));
        assert_eq!(at_path(text, &["\"a"]), (4, 10));
        assert_eq!(at_path(text, &["nothing"]), (1, 1));
    }
}
