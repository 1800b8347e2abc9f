//! The path language of HTTP values: a subset of jq whose every filter parses and evaluates as
//! `jq` (1.6 and later) does, so an operator can try a spec's path with `curl ... | jq '<path>'`
//! before trusting the metric. `tests/it/jq_paths.rs` holds it equal to the real `jq`.
//!
//! Why our own subset and not a jq implementation (the `jaq` crates, weighed for this): a filter
//! runs inside the exporter on every poll, so it must not be able to hang, crash or leak. jaq has
//! no step budget or cancellation (`[range(1e12)] | length` runs inside one call that no deadline
//! can stop; a thread cannot be killed), `def f: 1 + f; f` aborts the whole process on a stack
//! overflow, `halt_error` exits it, and `env`/`$ENV` would put the tokens the exporter holds into
//! labels. Making it safe takes a checker refusing most of the language (definitions, recursion,
//! `range`, `repeat`, `while`, `env`, `input`, variables, `reduce`...), as much grammar to own as
//! this file, on top of about 20 new crates and 3.3 MB of release binary (measured on a probe
//! program: 3.8 MB with jaq-core 3.1 + jaq-std 3.0 + jaq-json 2.0 against 0.5 MB with serde_json
//! alone). This subset has no loop, no recursion and no variable: a filter's work is bounded by
//! the answer's size times the filter's length, so nothing needs a deadline.
//!
//! The language, jq's own syntax and meaning:
//! - a path: `.` (the whole answer), `.key`, `."odd key"`, `.["odd key"]`, `.[0]`, `.[]` (every item
//!   of an array or every value of an object), chained: `.a.b[0]["c"][]`. Keys are jq identifiers
//!   (`[A-Za-z_][A-Za-z0-9_]*`); other keys are quoted, strings take JSON's escapes, as jq's do;
//! - a comparison: `PATH == LITERAL` (also `!=`, `<`, `<=`, `>`, `>=`): `true` or `false`, with jq's
//!   order of types (`null < false < true < numbers < strings < arrays < objects`);
//! - `select(COMPARISON)` and `select(PATH | IN(LITERAL, ...))`: keeps the input when it holds;
//! - stages joined by `|`. A literal is a JSON string, number, `true`, `false` or `null`.
//!
//! As in jq, a missing key or index is `null` and indexing `null` is `null`, while indexing a
//! number, a string or a boolean, a key of an array, an index of an object or `.[]` of anything
//! but an array or an object is an error. An error makes the whole filter give nothing.
//! The one difference: `.[]` of an object goes through its keys in sorted order, where jq keeps
//! the answer's order (the answer is parsed into sorted maps).

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use serde_json::Value as Json;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
    /// `[]`: every item of an array (or every value of an object).
    Each,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A condition of `select`, or a stage of its own (then it gives `true` or `false`).
#[derive(Debug, Clone, PartialEq)]
enum Cond {
    Compare(Vec<Step>, CmpOp, Json),
    /// `PATH | IN(LITERAL, ...)`: jq's membership test, so a spec can name the items it watches
    /// (a repository's workflows by path) in one parameter.
    In(Vec<Step>, Vec<Json>),
}

#[derive(Debug, Clone, PartialEq)]
enum Stage {
    Path(Vec<Step>),
    Test(Cond),
    Select(Cond),
}

/// Why a filter does not parse, and where: `column` counts characters from 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError {
    pub column: usize,
    pub message: String,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at column {}: {}", self.column, self.message)
    }
}

/// A parsed filter: stages joined by `|`.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    stages: Vec<Stage>,
}

impl Filter {
    pub fn parse(text: &str) -> Result<Filter, PathError> {
        let mut parser = Parser { chars: text.chars().collect(), at: 0 };
        let mut stages = Vec::new();
        loop {
            parser.skip_ws();
            stages.push(parser.stage()?);
            parser.skip_ws();
            if !parser.eat("|") {
                break;
            }
        }
        match parser.peek() {
            None => Ok(Filter { stages }),
            Some(c) => Err(parser.unexpected(c)),
        }
    }

    /// Whether a path in it has `[]` (so it may give many values).
    pub fn has_each(&self) -> bool {
        self.stages.iter().any(|s| matches!(s, Stage::Path(steps) if steps.contains(&Step::Each)))
    }

    /// Whether it gives `true` or `false` (it ends with a comparison).
    pub fn gives_bool(&self) -> bool {
        matches!(self.stages.last(), Some(Stage::Test(_)))
    }

    /// Every value the filter gives, in jq's order; `None` where jq stops with an error.
    pub fn run<'a>(&self, input: &'a Json) -> Option<Vec<Cow<'a, Json>>> {
        let mut values = vec![Cow::Borrowed(input)];
        for stage in &self.stages {
            let mut next = Vec::new();
            for value in values {
                match stage {
                    Stage::Path(steps) => match value {
                        Cow::Borrowed(v) => next.extend(walk(v, steps)?.into_iter().map(Cow::Borrowed)),
                        Cow::Owned(v) => next.extend(walk(&v, steps)?.into_iter().map(|x| Cow::Owned(x.clone()))),
                    },
                    Stage::Test(cond) => next.push(Cow::Owned(Json::Bool(cond.holds(&value)?))),
                    Stage::Select(cond) => {
                        if cond.holds(&value)? {
                            next.push(value);
                        }
                    }
                }
            }
            values = next;
        }
        Some(values)
    }

    /// The one value the filter gives; `None` for none, several or an error.
    pub fn one<'a>(&self, input: &'a Json) -> Option<Cow<'a, Json>> {
        let mut values = self.run(input)?;
        if values.len() == 1 { values.pop() } else { None }
    }
}

impl Cond {
    /// jq's answer; `None` on an error (conditions have no `[]`, so one answer).
    fn holds(&self, input: &Json) -> Option<bool> {
        let found = match self {
            Cond::Compare(steps, ..) | Cond::In(steps, _) => walk(input, steps)?,
        };
        let left = found.first().copied().unwrap_or(&Json::Null);
        Some(match self {
            Cond::Compare(_, op, literal) => {
                let order = compare(left, literal);
                match op {
                    CmpOp::Eq => order == Ordering::Equal,
                    CmpOp::Ne => order != Ordering::Equal,
                    CmpOp::Lt => order == Ordering::Less,
                    CmpOp::Le => order != Ordering::Greater,
                    CmpOp::Gt => order == Ordering::Greater,
                    CmpOp::Ge => order != Ordering::Less,
                }
            }
            Cond::In(_, literals) => literals.iter().any(|l| compare(left, l) == Ordering::Equal),
        })
    }
}

static NULL: Json = Json::Null;

/// The values at `steps`, as jq's path: `None` where jq errors.
fn walk<'a>(value: &'a Json, steps: &[Step]) -> Option<Vec<&'a Json>> {
    let mut current = vec![value];
    for step in steps {
        let mut next = Vec::with_capacity(current.len());
        for value in current {
            match (step, value) {
                (Step::Key(_) | Step::Index(_), Json::Null) => next.push(&NULL),
                (Step::Key(k), Json::Object(map)) => next.push(map.get(k).unwrap_or(&NULL)),
                (Step::Index(i), Json::Array(items)) => next.push(items.get(*i).unwrap_or(&NULL)),
                (Step::Each, Json::Array(items)) => next.extend(items.iter()),
                (Step::Each, Json::Object(map)) => next.extend(map.values()),
                _ => return None,
            }
        }
        current = next;
    }
    Some(current)
}

/// jq's order: by type (`null`, `false`, `true`, numbers, strings, arrays, objects), then by value.
fn compare(a: &Json, b: &Json) -> Ordering {
    fn rank(v: &Json) -> u8 {
        match v {
            Json::Null => 0,
            Json::Bool(false) => 1,
            Json::Bool(true) => 2,
            Json::Number(_) => 3,
            Json::String(_) => 4,
            Json::Array(_) => 5,
            Json::Object(_) => 6,
        }
    }
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(f64::NAN), y.as_f64().unwrap_or(f64::NAN));
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
        (Json::String(x), Json::String(y)) => x.cmp(y),
        (Json::Array(x), Json::Array(y)) => {
            x.iter().zip(y).map(|(a, b)| compare(a, b)).find(|o| o.is_ne()).unwrap_or(x.len().cmp(&y.len()))
        }
        // jq compares objects by their sorted keys, then their values in that order.
        (Json::Object(x), Json::Object(y)) => {
            let keys = |m: &serde_json::Map<String, Json>| {
                let mut keys: Vec<String> = m.keys().cloned().collect();
                keys.sort();
                keys
            };
            let (kx, ky) = (keys(x), keys(y));
            kx.cmp(&ky)
                .then_with(|| kx.iter().map(|k| compare(&x[k], &y[k])).find(|o| o.is_ne()).unwrap_or(Ordering::Equal))
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Numbers, numeric strings and booleans become numbers; anything else is not one.
pub fn as_number(value: &Json) -> Option<f64> {
    match value {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => s.trim().parse::<f64>().ok(),
        Json::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        _ => None,
    }
    .filter(|v| v.is_finite())
}

/// RFC 3339 text (`2026-01-31T08:00:00Z`, fractions and offsets allowed) as unix seconds.
pub fn rfc3339_seconds(value: &Json) -> Option<f64> {
    let text = value.as_str()?;
    let at = chrono::DateTime::parse_from_rfc3339(text.trim()).ok()?;
    Some(at.timestamp() as f64 + f64::from(at.timestamp_subsec_nanos()) / 1e9)
}

struct Parser {
    chars: Vec<char>,
    at: usize,
}

/// What jq's identifiers are made of (`[A-Za-z_][A-Za-z0-9_]*`).
fn ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn looking_at(&self, word: &str) -> bool {
        word.chars().enumerate().all(|(i, c)| self.chars.get(self.at + i) == Some(&c))
    }

    fn eat(&mut self, word: &str) -> bool {
        let yes = self.looking_at(word);
        if yes {
            self.at += word.chars().count();
        }
        yes
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }

    fn error_at(&self, at: usize, message: impl Into<String>) -> PathError {
        PathError { column: at + 1, message: message.into() }
    }

    fn error(&self, message: impl Into<String>) -> PathError {
        self.error_at(self.at, message)
    }

    fn unexpected(&self, c: char) -> PathError {
        let hint = match c {
            '-' | '$' | '@' => format!("; jq does not read `{c}` in a key: quote the key, `.[\"a{c}b\"]`"),
            c if c.is_alphanumeric() => {
                "; jq keys are ASCII letters, digits and `_`: quote the key, `.[\"key\"]`".into()
            }
            _ => String::new(),
        };
        self.error(format!("unexpected `{c}`{hint}"))
    }

    fn stage(&mut self) -> Result<Stage, PathError> {
        if self.eat("select(") {
            self.skip_ws();
            let cond = self.cond()?;
            self.skip_ws();
            if !self.eat(")") {
                return Err(self.error("expected `)` closing `select(`"));
            }
            return Ok(Stage::Select(cond));
        }
        let start = self.at;
        let steps = self.path()?;
        let save = self.at;
        self.skip_ws();
        match self.op() {
            Some(op) => Ok(Stage::Test(self.compare(start, steps, op)?)),
            None => {
                self.at = save;
                Ok(Stage::Path(steps))
            }
        }
    }

    /// The condition of `select`: a comparison, or `PATH | IN(...)`.
    fn cond(&mut self) -> Result<Cond, PathError> {
        let start = self.at;
        let steps = self.path()?;
        self.skip_ws();
        if let Some(op) = self.op() {
            return self.compare(start, steps, op);
        }
        if self.eat("|") {
            self.skip_ws();
            if !self.eat("IN(") {
                return Err(self.error("`select(PATH | ...)` takes `IN(LITERAL, ...)`"));
            }
            if steps.contains(&Step::Each) {
                return Err(self.error_at(start, "`[]` cannot be tested; filter with `each`"));
            }
            let mut literals = Vec::new();
            loop {
                self.skip_ws();
                literals.push(self.literal()?);
                self.skip_ws();
                if self.eat(")") {
                    return Ok(Cond::In(steps, literals));
                }
                if !self.eat(",") {
                    return Err(self.error("`IN` takes literals separated by `,` and closed by `)`"));
                }
            }
        }
        Err(self.error("`select` takes a comparison (`.state != \"active\"`) or `PATH | IN(\"a\", \"b\")`"))
    }

    fn op(&mut self) -> Option<CmpOp> {
        // Two-character operators first, so `<=` is not read as `<`.
        let ops = [("==", CmpOp::Eq), ("!=", CmpOp::Ne), ("<=", CmpOp::Le), (">=", CmpOp::Ge)];
        let ops = ops.into_iter().chain([("<", CmpOp::Lt), (">", CmpOp::Gt)]);
        ops.into_iter().find(|(text, _)| self.eat(text)).map(|(_, op)| op)
    }

    fn compare(&mut self, start: usize, steps: Vec<Step>, op: CmpOp) -> Result<Cond, PathError> {
        if steps.contains(&Step::Each) {
            return Err(self.error_at(start, "`[]` cannot be compared; filter with `each`"));
        }
        self.skip_ws();
        Ok(Cond::Compare(steps, op, self.literal()?))
    }

    /// `.`, then keys, quoted keys, indexes and `[]`.
    fn path(&mut self) -> Result<Vec<Step>, PathError> {
        if !self.eat(".") {
            return Err(match self.peek() {
                Some(c) => self.error(format!("a path starts with `.`, not `{c}`")),
                None => self.error("a path is missing here"),
            });
        }
        let mut steps = Vec::new();
        // Right after the first `.`, a key may follow without another dot (`.a`, `."a"`).
        match self.peek() {
            Some(c) if ident_start(c) => steps.push(Step::Key(self.ident())),
            Some('"') => steps.push(Step::Key(self.string()?)),
            Some('.') => return Err(self.error("`..` (every value, recursively) is not supported")),
            _ => {}
        }
        loop {
            match self.peek() {
                Some('[') => steps.push(self.bracket()?),
                Some('.') => {
                    self.at += 1;
                    match self.peek() {
                        Some(c) if ident_start(c) => steps.push(Step::Key(self.ident())),
                        Some('"') => steps.push(Step::Key(self.string()?)),
                        // jq 1.7 reads `.a.[0]` as `.a[0]`; jq 1.6 refuses it.
                        Some('[') => return Err(self.error("write `.a[0]`, not `.a.[0]` (jq 1.6 refuses it)")),
                        _ => return Err(self.error("a key follows `.` (quote odd keys: `.[\"odd key\"]`)")),
                    }
                }
                _ => return Ok(steps),
            }
        }
    }

    fn ident(&mut self) -> String {
        let start = self.at;
        while self.peek().is_some_and(ident_char) {
            self.at += 1;
        }
        self.chars[start..self.at].iter().collect()
    }

    /// `["key"]`, `[N]` or `[]`.
    fn bracket(&mut self) -> Result<Step, PathError> {
        self.at += 1;
        let step = match self.peek() {
            Some(']') => Step::Each,
            Some('"') => Step::Key(self.string()?),
            Some(c) if c.is_ascii_digit() => {
                let start = self.at;
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.at += 1;
                }
                let digits: String = self.chars[start..self.at].iter().collect();
                Step::Index(digits.parse().map_err(|_| self.error_at(start, "index too large"))?)
            }
            _ => return Err(self.error("an index is `[N]`, a quoted key `[\"key\"]`, every item `[]`")),
        };
        if !self.eat("]") {
            return Err(self.error("expected `]`"));
        }
        Ok(step)
    }

    /// A double-quoted string, decoded as jq does (JSON's escapes); no interpolation.
    fn string(&mut self) -> Result<String, PathError> {
        let start = self.at;
        self.at += 1;
        loop {
            match self.peek() {
                None => return Err(self.error_at(start, "unterminated string")),
                Some('"') => break,
                Some('\\') if self.chars.get(self.at + 1) == Some(&'(') => {
                    return Err(self.error("string interpolation `\\(...)` is not supported"));
                }
                Some('\\') => self.at += 2,
                Some(_) => self.at += 1,
            }
        }
        self.at += 1;
        let raw: String = self.chars[start..self.at].iter().collect();
        serde_json::from_str::<String>(&raw).map_err(|e| {
            // The string is one line (a raw line break is itself an error at its column).
            let column = if e.line() == 1 { start + e.column().saturating_sub(1) } else { start };
            self.error_at(
                column,
                "invalid string: the escapes are \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX, no control characters",
            )
        })
    }

    /// A JSON string, number, `true`, `false` or `null`.
    fn literal(&mut self) -> Result<Json, PathError> {
        let start = self.at;
        let bad = |p: &Parser| p.error_at(start, "expected a JSON literal: a string, number, true, false or null");
        match self.peek() {
            Some('"') => Ok(Json::String(self.string()?)),
            Some(c) if ident_start(c) => match self.ident().as_str() {
                "true" => Ok(Json::Bool(true)),
                "false" => Ok(Json::Bool(false)),
                "null" => Ok(Json::Null),
                _ => Err(bad(self)),
            },
            Some(c) if c == '-' || c.is_ascii_digit() => {
                while self.peek().is_some_and(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E')) {
                    self.at += 1;
                }
                let token: String = self.chars[start..self.at].iter().collect();
                match serde_json::from_str::<Json>(&token) {
                    Ok(n @ Json::Number(_)) => Ok(n),
                    _ => Err(bad(self)),
                }
            }
            _ => Err(bad(self)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(filter: &str, doc: &Json) -> Option<Vec<Json>> {
        let filter = Filter::parse(filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
        Some(filter.run(doc)?.into_iter().map(Cow::into_owned).collect())
    }

    #[test]
    fn paths_walk_as_jq() {
        let doc = serde_json::json!({
            "pending": 12, "a": {"b": [{"c": "3.5"}, {"c": true}]}, "weird key": {"x.y": 7}, "n": null, "a\nb": 1
        });
        let one = |f: &str| run(f, &doc).map(|v| v.into_iter().map(|v| v.to_string()).collect::<Vec<_>>().join(" "));
        assert_eq!(one(".pending").as_deref(), Some("12"));
        assert_eq!(one(".a.b[0].c").as_deref(), Some("\"3.5\""));
        assert_eq!(one(".[\"weird key\"][\"x.y\"]").as_deref(), Some("7"));
        assert_eq!(one(".\"weird key\".\"x.y\"").as_deref(), Some("7"));
        assert_eq!(one(".[\"a\\nb\"]").as_deref(), Some("1"), "`\\n` is a line break, as in jq");
        assert_eq!(one(".a.b[].c").as_deref(), Some("\"3.5\" true"));
        assert_eq!(one(".missing.deeper[3]").as_deref(), Some("null"), "null propagates");
        assert_eq!(one(".pending.x"), None, "indexing a number is an error");
        assert_eq!(one(".n[]"), None, "iterating null is an error");
        assert_eq!(one(".a[0]"), None, "an index of an object is an error");
    }

    #[test]
    fn errors_give_the_column() {
        for (bad, column) in [
            ("pending", 1),
            (".a..b", 4),
            (".a.", 4),
            (".a[x]", 4),
            (".a[\"b", 4),
            (".a[1", 5),
            (".a b", 4),
            (".a-b", 3),
            (".a.[0]", 4),
            (".[\"a\\qb\"]", 6),
            (".[\"\\(1)\"]", 4),
            (".a == ", 7),
            (".a == active", 7),
            (".a[] == 1", 1),
            (".w[] | select(.a)", 17),
            (".w[] | select(.a | IN())", 23),
            ("..", 2),
            ("repeat(.)", 1),
        ] {
            let err = Filter::parse(bad).expect_err(bad);
            assert_eq!(err.column, column, "{bad}: {err}");
        }
    }

    #[test]
    fn comparisons_order_types_as_jq() {
        let doc = serde_json::json!({"workflows": [
            {"name": "sync", "state": "active", "n": 3},
            {"name": "refresh", "state": "disabled_manually", "n": 1},
            {"name": "odd|name", "state": "disabled_inactivity"}
        ]});
        let names = |f: &str| -> Vec<Json> { run(&format!("{f} | .name"), &doc).expect(f) };
        assert_eq!(names(r#".workflows[] | select(.state != "active")"#), ["refresh", "odd|name"]);
        assert_eq!(names(".workflows[] | select(.n >= 2)"), ["sync"]);
        assert_eq!(names(".workflows[] | select(.n < 2)"), ["refresh", "odd|name"], "null < 2, as in jq");
        assert_eq!(names(r#".workflows[] | select(.name | IN("sync", "odd|name"))"#), ["sync", "odd|name"]);
        assert_eq!(names(r#".workflows[] | select(.name | IN("a)b", "refresh"))"#), ["refresh"]);
        assert_eq!(run(".workflows[0].n > \"a\"", &doc), Some(vec![Json::Bool(false)]), "numbers sort before strings");
        assert_eq!(run(".workflows > 1", &doc), Some(vec![Json::Bool(true)]), "arrays sort after numbers");
        assert_eq!(run(".workflows[0].name.x == 1", &doc), None, "an error, not false");
    }

    #[test]
    fn rfc3339_times_become_unix_seconds() {
        assert_eq!(rfc3339_seconds(&serde_json::json!("2026-01-31T08:00:00Z")), Some(1_769_846_400.0));
        assert_eq!(rfc3339_seconds(&serde_json::json!("2026-01-31T09:00:00.5+01:00")), Some(1_769_846_400.5));
        assert_eq!(rfc3339_seconds(&serde_json::json!("yesterday")), None);
        assert_eq!(rfc3339_seconds(&serde_json::json!(12)), None);
    }

    proptest! {
        #[test]
        fn parsing_and_running_never_panic(path in ".{0,40}", key in "[a-z\\[\\]\"\\. ]{0,10}") {
            let doc = serde_json::json!({"a": [1, {"b": "2"}], key.clone(): {"c": [true]}});
            for text in [path.clone(), format!(".{key}"), format!(".[\"{key}\"]")] {
                if let Ok(filter) = Filter::parse(&text) {
                    let _ = filter.run(&doc);
                }
            }
        }

        #[test]
        fn quoted_keys_round_trip(key in "\\PC{0,20}") {
            let doc = serde_json::json!({key.clone(): 5});
            let quoted = serde_json::to_string(&key).unwrap();
            prop_assert_eq!(run(&format!(".[{quoted}]"), &doc), Some(vec![serde_json::json!(5)]));
            prop_assert_eq!(run(&format!(".{quoted}"), &doc), Some(vec![serde_json::json!(5)]));
        }
    }
}
