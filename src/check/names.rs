//! Names in a query's text, read the way PostgreSQL reads them (unquoted parts folded to lower
//! case; strings, dollar quotes and comments skipped): the dotted name at the position an error
//! points at, and the relations the query's `FROM` and `JOIN` clauses name. The server says
//! `column "expires" does not exist` without its table; these find the table.

use std::ops::Range;

/// A dotted name, part by part (`["marketing", "platform_tokens"]`).
pub type Chain = Vec<String>;

#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// An identifier or key word, folded unless it was quoted.
    Word {
        name: String,
        quoted: bool,
    },
    Dot,
    Open,
    Other,
}

fn tokens(query: &str) -> Vec<(Token, Range<usize>)> {
    let bytes = query.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = query[i..].chars().next().unwrap_or(' ');
        let start = i;
        if c.is_whitespace() {
            i += c.len_utf8();
        } else if query[i..].starts_with("--") {
            i = query[i..].find('\n').map_or(bytes.len(), |n| i + n + 1);
        } else if query[i..].starts_with("/*") {
            i = query[i + 2..].find("*/").map_or(bytes.len(), |n| i + 2 + n + 2);
        } else if c == '\'' {
            i = skip_quoted(bytes, i, b'\'');
            out.push((Token::Other, start..i));
        } else if c == '"' {
            i = skip_quoted(bytes, i, b'"');
            let inner = &query[start + 1..i.saturating_sub(1).max(start + 1)];
            out.push((Token::Word { name: inner.replace("\"\"", "\""), quoted: true }, start..i));
        } else if c == '$'
            && let Some(end) = dollar_quote_end(query, i)
        {
            i = end;
            out.push((Token::Other, start..i));
        } else if c.is_alphabetic() || c == '_' {
            let len =
                query[i..].find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$')).unwrap_or(bytes.len() - i);
            i += len;
            out.push((Token::Word { name: query[start..i].to_ascii_lowercase(), quoted: false }, start..i));
        } else {
            i += c.len_utf8();
            let token = match c {
                '.' => Token::Dot,
                '(' => Token::Open,
                _ => Token::Other,
            };
            out.push((token, start..i));
        }
    }
    out
}

/// The byte past a quoted run starting at `start`; a doubled quote is part of it.
fn skip_quoted(bytes: &[u8], start: usize, quote: u8) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    bytes.len()
}

/// The byte past a `$tag$ ... $tag$` string starting at `start`, if one starts there.
fn dollar_quote_end(query: &str, start: usize) -> Option<usize> {
    let rest = &query[start + 1..];
    let tag_len = rest.find('$')?;
    let tag = &rest[..tag_len];
    if !tag.chars().all(|c| c.is_alphanumeric() || c == '_') || tag.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let delimiter = &query[start..start + tag_len + 2];
    let body = start + delimiter.len();
    Some(query[body..].find(delimiter).map_or(query.len(), |n| body + n + delimiter.len()))
}

/// The dotted name starting at token `at`, and how many tokens it took.
fn chain_from(tokens: &[(Token, Range<usize>)], at: usize) -> Option<(Chain, usize)> {
    let mut chain = Vec::new();
    let mut i = at;
    loop {
        let (Token::Word { name, .. }, _) = tokens.get(i)? else { return None };
        chain.push(name.clone());
        i += 1;
        if tokens.get(i).map(|t| &t.0) == Some(&Token::Dot)
            && matches!(tokens.get(i + 1).map(|t| &t.0), Some(Token::Word { .. }))
        {
            i += 1;
            continue;
        }
        return Some((chain, i - at));
    }
}

/// The dotted name that starts at byte `at` of the query (where the server's error position
/// points): `t.expires` is `["t", "expires"]`.
pub fn chain_at(query: &str, at: usize) -> Option<Chain> {
    let tokens = tokens(query);
    let index = tokens.iter().position(|(_, span)| span.start == at)?;
    chain_from(&tokens, index).map(|(chain, _)| chain)
}

/// One relation a `FROM` or `JOIN` names, with the alias it is known by in the query.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    pub name: Chain,
    pub alias: Option<String>,
}

/// Key words that may follow a relation in a `FROM` clause, so are not its alias.
const NOT_ALIASES: &[&str] = &[
    "where",
    "join",
    "inner",
    "left",
    "right",
    "full",
    "cross",
    "natural",
    "on",
    "using",
    "group",
    "order",
    "having",
    "limit",
    "offset",
    "union",
    "intersect",
    "except",
    "window",
    "for",
    "fetch",
    "tablesample",
    "returning",
    "as",
    "lateral",
];

/// Every name after `FROM` or `JOIN` that is not a subquery or a function call. Some are not
/// relations (`EXTRACT(EPOCH FROM col)`); the caller keeps those the database has.
pub fn from_references(query: &str) -> Vec<Reference> {
    let tokens = tokens(query);
    let mut out = Vec::new();
    let word = |i: usize| match tokens.get(i) {
        Some((Token::Word { name, quoted: false }, _)) => Some(name.as_str()),
        _ => None,
    };
    let mut i = 0;
    while i < tokens.len() {
        if !matches!(word(i), Some("from" | "join")) {
            i += 1;
            continue;
        }
        i += 1;
        while matches!(word(i), Some("only" | "lateral")) {
            i += 1;
        }
        let Some((name, taken)) = chain_from(&tokens, i) else { continue };
        // A function in FROM (`generate_series(...)`) reads no relation.
        if tokens.get(i + taken).map(|t| &t.0) == Some(&Token::Open) {
            i += taken;
            continue;
        }
        i += taken;
        if word(i) == Some("as") {
            i += 1;
        }
        let alias = match tokens.get(i) {
            Some((Token::Word { name, quoted: true }, _)) => Some(name.clone()),
            Some((Token::Word { name, quoted: false }, _)) if !NOT_ALIASES.contains(&name.as_str()) => {
                Some(name.clone())
            }
            _ => None,
        };
        out.push(Reference { name, alias });
    }
    out
}

/// The name a server message quotes (`relation "a.b" does not exist`), when there is no position
/// to read it from the query. English messages only; a translated server gives positions too.
pub fn quoted_in_message(message: &str) -> Option<Chain> {
    let start = message.find('"')? + 1;
    let end = start + message[start..].find('"')?;
    Some(message[start..end].split('.').map(str::to_string).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(parts: &[&str]) -> Chain {
        parts.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn reads_the_name_at_a_position() {
        let q = "SELECT t.Expires, \"Odd\"\"Name\".x FROM \"marketing\".\"tokens\" t";
        assert_eq!(chain_at(q, q.find("t.E").unwrap()), Some(chain(&["t", "expires"])));
        assert_eq!(chain_at(q, q.find("\"Odd").unwrap()), Some(chain(&["Odd\"Name", "x"])));
        assert_eq!(chain_at(q, q.find("\"marketing").unwrap()), Some(chain(&["marketing", "tokens"])));
        assert_eq!(chain_at(q, q.find("Expires").unwrap() + 1), None, "not where a token starts");
    }

    #[test]
    fn finds_relations_and_their_aliases_past_strings_comments_and_functions() {
        let q = "SELECT EXTRACT(EPOCH FROM (now() - a.x)), 'FROM fake' -- FROM fake2\n\
                 FROM (SELECT e FROM \"public\".\"Tokens\" AS tok WHERE e IS DISTINCT FROM 1) AS s\n\
                 JOIN locks l ON true, generate_series(1, 2) /* FROM fake3 */ LEFT JOIN ONLY w USING (id) \
                 WHERE $x$ FROM fake4 $x$ = '' FROM y";
        let refs = from_references(q);
        let got: Vec<(Chain, Option<&str>)> = refs.iter().map(|r| (r.name.clone(), r.alias.as_deref())).collect();
        assert_eq!(
            got,
            [
                (chain(&["public", "Tokens"]), Some("tok")),
                (chain(&["locks"]), Some("l")),
                (chain(&["w"]), None),
                (chain(&["y"]), None),
            ]
        );
    }

    #[test]
    fn reads_a_quoted_name_from_a_message() {
        assert_eq!(
            quoted_in_message("relation \"marketing.tokens\" does not exist"),
            Some(chain(&["marketing", "tokens"]))
        );
        assert_eq!(quoted_in_message("column t.x does not exist"), None);
    }
}
