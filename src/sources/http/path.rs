//! The small path language of HTTP values. It is a subset of jq on purpose: every path, filter and
//! comparison below means what it means to `jq`, so an operator can try a spec's path with
//! `curl ... | jq '<path>'` before trusting the metric.
//!
//! - a path: `.a.b[0].c`, `.["odd key"]`, `.` (the whole document), `.items[]` (every item);
//! - a comparison: `PATH == LITERAL` (also `!=`, `<`, `<=`, `>`, `>=`), a JSON literal on the right;
//! - an item list (`each`): `PATH` then any number of `| select(COMPARISON)`,
//!   `| select(PATH | IN(LITERAL, ...))` or `| PATH` stages.

use std::cmp::Ordering;

use serde_json::Value as Json;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
    /// `[]`: every item of an array (or every value of an object).
    Each,
}

/// Parses `.a.b[0].c`, `.["weird key"]`, `.a["b"][2]`, `.a[]`; `.` alone is the whole document.
pub fn parse_path(path: &str) -> Result<Vec<Step>, String> {
    let bad = |why: &str| format!("path `{path}`: {why}");
    let rest = path.strip_prefix('.').ok_or_else(|| bad("starts with `.`"))?;
    let chars: Vec<char> = rest.chars().collect();
    let mut steps = Vec::new();
    let mut i = 0;
    // Right after a `.`, a key (or a bracket) is expected; `.` alone is the root.
    let mut after_dot = true;
    while i < chars.len() {
        match chars[i] {
            '[' => {
                i += 1;
                if chars.get(i) == Some(&'"') {
                    i += 1;
                    let mut key = String::new();
                    loop {
                        match chars.get(i) {
                            None => return Err(bad("unterminated string")),
                            Some('\\') => {
                                let next = chars.get(i + 1).ok_or_else(|| bad("unterminated string"))?;
                                key.push(*next);
                                i += 2;
                            }
                            Some('"') => {
                                i += 1;
                                break;
                            }
                            Some(c) => {
                                key.push(*c);
                                i += 1;
                            }
                        }
                    }
                    if chars.get(i) != Some(&']') {
                        return Err(bad("expected `]`"));
                    }
                    steps.push(Step::Key(key));
                } else if chars.get(i) == Some(&']') {
                    steps.push(Step::Each);
                } else {
                    let start = i;
                    while chars.get(i).is_some_and(char::is_ascii_digit) {
                        i += 1;
                    }
                    if start == i || chars.get(i) != Some(&']') {
                        return Err(bad("an index is `[N]`, a quoted key `[\"key\"]`, every item `[]`"));
                    }
                    let digits: String = chars[start..i].iter().collect();
                    let index = digits.parse::<usize>().map_err(|_| bad("index too large"))?;
                    steps.push(Step::Index(index));
                }
                i += 1;
                after_dot = false;
            }
            '.' if !after_dot => {
                i += 1;
                after_dot = true;
                if i == chars.len() {
                    return Err(bad("ends with `.`"));
                }
            }
            c if after_dot && (c.is_alphanumeric() || c == '_' || c == '-' || c == '$' || c == '@') => {
                let start = i;
                while chars.get(i).is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '$' | '@')) {
                    i += 1;
                }
                steps.push(Step::Key(chars[start..i].iter().collect()));
                after_dot = false;
            }
            c => return Err(bad(&format!("unexpected `{c}`; quote odd keys as `.[\"key\"]`"))),
        }
    }
    Ok(steps)
}

/// The value at `steps`, if there is exactly one place (`[]` makes many: see [`walk_all`]).
pub fn walk<'a>(mut value: &'a Json, steps: &[Step]) -> Option<&'a Json> {
    for step in steps {
        value = match (step, value) {
            (Step::Key(k), Json::Object(map)) => map.get(k)?,
            (Step::Index(i), Json::Array(items)) => items.get(*i)?,
            _ => return None,
        };
    }
    Some(value)
}

/// Every value at `steps`; `None` when a step does not exist (a missing array is not an empty one).
pub fn walk_all<'a>(value: &'a Json, steps: &[Step]) -> Option<Vec<&'a Json>> {
    let mut current = vec![value];
    for step in steps {
        let mut next = Vec::with_capacity(current.len());
        for value in current {
            match (step, value) {
                (Step::Key(k), Json::Object(map)) => next.push(map.get(k)?),
                (Step::Index(i), Json::Array(items)) => next.push(items.get(*i)?),
                (Step::Each, Json::Array(items)) => next.extend(items.iter()),
                (Step::Each, Json::Object(map)) => next.extend(map.values()),
                _ => return None,
            }
        }
        current = next;
    }
    Some(current)
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

/// The number at `path` in `doc` (a path that does not parse holds nothing).
pub fn lookup(doc: &Json, path: &str) -> Option<f64> {
    let steps = parse_path(path).ok()?;
    if steps.contains(&Step::Each) {
        return None;
    }
    walk(doc, &steps).and_then(as_number)
}

/// Where `needle` first occurs in `text` outside double-quoted strings and brackets.
fn find_outside(text: &str, needles: &[&str]) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    let (mut quoted, mut depth, mut i) = (false, 0i32, 0);
    while i < bytes.len() {
        let b = bytes[i];
        if quoted {
            match b {
                b'\\' => i += 1,
                b'"' => quoted = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => quoted = true,
                b'[' | b'(' => depth += 1,
                b']' | b')' => depth -= 1,
                _ if depth == 0 => {
                    if let Some(n) = needles.iter().find(|n| bytes[i..].starts_with(n.as_bytes())) {
                        return Some((i, n.len()));
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    None
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

/// `PATH` or `PATH OP LITERAL`: a number read from an item, or 1/0 for a comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueExpr {
    pub steps: Vec<Step>,
    pub compare: Option<(CmpOp, Json)>,
}

impl ValueExpr {
    pub fn parse(text: &str) -> Result<ValueExpr, String> {
        let text = text.trim();
        // Two-character operators first, so `<=` is not read as `<`.
        let ops = ["==", "!=", "<=", ">=", "<", ">"];
        let Some((at, len)) = find_outside(text, &ops) else {
            let steps = parse_path(text)?;
            return Ok(ValueExpr { steps, compare: None });
        };
        let op = match &text[at..at + len] {
            "==" => CmpOp::Eq,
            "!=" => CmpOp::Ne,
            "<=" => CmpOp::Le,
            ">=" => CmpOp::Ge,
            "<" => CmpOp::Lt,
            _ => CmpOp::Gt,
        };
        let steps = parse_path(text[..at].trim())?;
        let literal = text[at + len..].trim();
        let literal: Json = serde_json::from_str(literal).map_err(|_| {
            format!("`{text}`: the right side of a comparison is a JSON literal (\"text\", 3, true, null)")
        })?;
        if matches!(literal, Json::Array(_) | Json::Object(_)) {
            return Err(format!("`{text}`: compare with a string, number, boolean or null"));
        }
        if steps.contains(&Step::Each) {
            return Err(format!("`{text}`: `[]` cannot be compared; filter with `each`"));
        }
        Ok(ValueExpr { steps, compare: Some((op, literal)) })
    }

    pub fn has_each(&self) -> bool {
        self.steps.contains(&Step::Each)
    }

    /// Comparisons are always a number (a missing left side is `null`, as in jq).
    pub fn test(&self, item: &Json) -> Option<bool> {
        let (op, literal) = self.compare.as_ref()?;
        let left = walk(item, &self.steps).unwrap_or(&Json::Null);
        let order = compare(left, literal);
        Some(match op {
            CmpOp::Eq => order == Some(Ordering::Equal),
            CmpOp::Ne => order != Some(Ordering::Equal),
            CmpOp::Lt => order == Some(Ordering::Less),
            CmpOp::Le => matches!(order, Some(Ordering::Less | Ordering::Equal)),
            CmpOp::Gt => order == Some(Ordering::Greater),
            CmpOp::Ge => matches!(order, Some(Ordering::Greater | Ordering::Equal)),
        })
    }
}

/// jq orders values of different types by type; within this language only like types are
/// ordered, and unlike types are merely unequal.
fn compare(a: &Json, b: &Json) -> Option<Ordering> {
    match (a, b) {
        (Json::Null, Json::Null) => Some(Ordering::Equal),
        (Json::Bool(x), Json::Bool(y)) => Some(x.cmp(y)),
        (Json::Number(x), Json::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Json::String(x), Json::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// One stage of an item list.
#[derive(Debug, Clone, PartialEq)]
enum Stage {
    Path(Vec<Step>),
    Select(ValueExpr),
    /// `select(PATH | IN("a", "b"))`: jq's membership test, so a spec can name the items it
    /// watches (a repository's workflows by path) in one parameter.
    SelectIn(Vec<Step>, Vec<Json>),
}

/// A membership test: the path read from each item and the literals it may equal.
type Membership = (Vec<Step>, Vec<Json>);

/// `PATH | IN(LITERAL, ...)`, the condition of a membership `select`: `None` when `cond` is not
/// one, an error when it is one written wrong.
fn parse_in(cond: &str) -> Option<Result<Membership, String>> {
    let (path, rest) = find_outside(cond, &["|"]).map(|(at, _)| (cond[..at].trim(), cond[at + 1..].trim()))?;
    let list = rest.strip_prefix("IN(")?.strip_suffix(')')?;
    Some((|| {
        let steps = parse_path(path)?;
        if steps.contains(&Step::Each) {
            return Err(format!("`{cond}`: `[]` cannot be tested; filter with `each`"));
        }
        // The literals are JSON separated by commas, as in a JSON array.
        let literals: Vec<Json> = serde_json::from_str(&format!("[{list}]"))
            .map_err(|_| format!("`{cond}`: `IN` takes JSON literals separated by commas (\"a\", \"b\")"))?;
        if literals.is_empty() || literals.iter().any(|l| matches!(l, Json::Array(_) | Json::Object(_))) {
            return Err(format!("`{cond}`: `IN` takes at least one string, number, boolean or null"));
        }
        Ok((steps, literals))
    })())
}

/// `PATH | select(.state != "active") | .x[]`: the items a labelled or counted value reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Items {
    stages: Vec<Stage>,
}

impl Items {
    pub fn parse(text: &str) -> Result<Items, String> {
        let mut stages = Vec::new();
        let mut rest = text.trim();
        loop {
            let (part, next) = match find_outside(rest, &["|"]) {
                Some((at, _)) => (rest[..at].trim(), Some(rest[at + 1..].trim())),
                None => (rest.trim(), None),
            };
            if let Some(cond) = part.strip_prefix("select(").and_then(|c| c.strip_suffix(')')) {
                if stages.is_empty() {
                    return Err(format!("`{text}`: starts with a path, then `| select(...)`"));
                }
                stages.push(match parse_in(cond) {
                    Some(member) => {
                        let (steps, literals) = member?;
                        Stage::SelectIn(steps, literals)
                    }
                    None => {
                        let cond = ValueExpr::parse(cond)?;
                        if cond.compare.is_none() {
                            return Err(format!("`{text}`: `select` takes a comparison (`.state != \"active\"`)"));
                        }
                        Stage::Select(cond)
                    }
                });
            } else {
                stages.push(Stage::Path(parse_path(part).map_err(|e| format!("`{text}`: {e}"))?));
            }
            match next {
                Some(n) => rest = n,
                None => break,
            }
        }
        Ok(Items { stages })
    }

    /// The items, in the answer's order; `None` when a path in it does not exist.
    pub fn eval<'a>(&self, doc: &'a Json) -> Option<Vec<&'a Json>> {
        let mut items = vec![doc];
        for stage in &self.stages {
            items = match stage {
                Stage::Path(steps) => {
                    let mut next = Vec::new();
                    for item in items {
                        next.extend(walk_all(item, steps)?);
                    }
                    next
                }
                Stage::Select(cond) => items.into_iter().filter(|i| cond.test(i) == Some(true)).collect(),
                // A missing field is `null`, as in jq.
                Stage::SelectIn(steps, literals) => items
                    .into_iter()
                    .filter(|i| {
                        let v = walk(i, steps).unwrap_or(&Json::Null);
                        literals.iter().any(|l| compare(v, l) == Some(Ordering::Equal))
                    })
                    .collect(),
            };
        }
        Some(items)
    }
}

/// RFC 3339 text (`2026-01-31T08:00:00Z`, fractions and offsets allowed) as unix seconds.
pub fn rfc3339_seconds(value: &Json) -> Option<f64> {
    let text = value.as_str()?;
    let at = chrono::DateTime::parse_from_rfc3339(text.trim()).ok()?;
    Some(at.timestamp() as f64 + f64::from(at.timestamp_subsec_nanos()) / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn paths_parse_and_walk() {
        let doc: Json = serde_json::json!({
            "pending": 12, "a": {"b": [{"c": "3.5"}, {"c": true}]}, "weird key": {"x.y": 7}, "n": null
        });
        assert_eq!(lookup(&doc, ".pending"), Some(12.0));
        assert_eq!(lookup(&doc, ".a.b[0].c"), Some(3.5));
        assert_eq!(lookup(&doc, ".a.b[1].c"), Some(1.0));
        assert_eq!(lookup(&doc, ".[\"weird key\"][\"x.y\"]"), Some(7.0));
        assert_eq!(lookup(&doc, ".[\"weird key\"].[\"x.y\"]"), Some(7.0));
        assert_eq!(lookup(&doc, ".a.b[2].c"), None);
        assert_eq!(lookup(&doc, ".n"), None);
        assert_eq!(lookup(&doc, ".a"), None);
        assert_eq!(lookup(&doc, ".a.b[].c"), None, "many values are not one number");
        assert_eq!(lookup(&serde_json::json!(4), "."), Some(4.0));
        for bad in ["pending", ".a..b", ".a.", ".a[x]", ".a[\"b", ".a[1", ".a b", ".a[", ".a[-1]"] {
            assert!(parse_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn items_filter_and_compare_like_jq() {
        let doc = serde_json::json!({"workflows": [
            {"name": "sync", "state": "active", "n": 3},
            {"name": "refresh", "state": "disabled_manually", "n": 1},
            {"name": "odd|name", "state": "disabled_inactivity"}
        ]});
        let names = |items: &str| -> Option<Vec<String>> {
            let items = Items::parse(items).unwrap_or_else(|e| panic!("{e}"));
            Some(items.eval(&doc)?.iter().map(|i| i["name"].as_str().unwrap_or("").to_string()).collect())
        };
        assert_eq!(names(".workflows[]").unwrap().len(), 3);
        assert_eq!(names(r#".workflows[] | select(.state != "active")"#).unwrap(), ["refresh", "odd|name"]);
        assert_eq!(names(r#".workflows[] | select(.name == "odd|name")"#).unwrap(), ["odd|name"]);
        assert_eq!(names(".workflows[] | select(.n >= 2)").unwrap(), ["sync"]);
        assert_eq!(names(".workflows[] | select(.n < 2)").unwrap(), ["refresh"], "null is not < 2 here");
        assert_eq!(names(".missing[]"), None, "a missing list is not an empty one");
        assert_eq!(names(".workflows[] | select(.state == \"none\")").unwrap(), Vec::<String>::new());

        let v = ValueExpr::parse(r#".state == "active""#).unwrap();
        assert_eq!(v.test(&doc["workflows"][0]), Some(true));
        assert_eq!(v.test(&doc["workflows"][1]), Some(false));
        assert_eq!(ValueExpr::parse(".gone == null").unwrap().test(&doc), Some(true));
        for bad in [".a == ", ".a == active", ".a == [1]", ".a[] == 1", "select(.a == 1)"] {
            assert!(ValueExpr::parse(bad).is_err(), "{bad}");
        }
        for bad in ["select(.a == 1)", ".a | select(.b)", ".a | nope", ".a |"] {
            assert!(Items::parse(bad).is_err(), "{bad}");
        }

        // Membership, as jq's `IN`: a name in the list (a `|` or `)` inside a string is text),
        // a missing field is null, and chained selects narrow further.
        assert_eq!(names(r#".workflows[] | select(.name | IN("sync", "odd|name"))"#).unwrap(), ["sync", "odd|name"]);
        assert_eq!(names(r#".workflows[] | select(.name | IN("a)b", "refresh"))"#).unwrap(), ["refresh"]);
        assert_eq!(names(".workflows[] | select(.n | IN(null))").unwrap(), ["odd|name"]);
        assert_eq!(
            names(r#".workflows[] | select(.name | IN("sync", "refresh")) | select(.state != "active")"#).unwrap(),
            ["refresh"]
        );
        for bad in [
            ".w[] | select(.a | IN())",
            ".w[] | select(.a | IN([1]))",
            ".w[] | select(.a | IN(x))",
            ".w[] | select(.a[] | IN(1))",
        ] {
            assert!(Items::parse(bad).is_err(), "{bad}");
        }
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
        fn path_walker_never_panics(path in ".{0,40}", key in "[a-z\\[\\]\"\\. ]{0,10}") {
            let doc = serde_json::json!({"a": [1, {"b": "2"}], key.clone(): {"c": [true]}});
            let _ = lookup(&doc, &path);
            let _ = lookup(&doc, &format!(".{key}"));
            let _ = lookup(&doc, &format!(".[\"{key}\"]"));
            if let Ok(items) = Items::parse(&path) {
                let _ = items.eval(&doc);
            }
            if let Ok(v) = ValueExpr::parse(&path) {
                let _ = v.test(&doc);
            }
        }

        #[test]
        fn quoted_keys_round_trip(key in "[^\"\\\\]{0,20}") {
            let doc = serde_json::json!({key.clone(): 5});
            prop_assert_eq!(lookup(&doc, &format!(".[\"{key}\"]")), Some(5.0));
        }
    }
}
