//! One log rule compiled: its pattern, where each label and the value come from, and reading
//! them out of a text or JSON line.

use std::borrow::Cow;

use regex::Regex;
use serde_json::Value as Json;

use super::DEFAULT_MESSAGE_FIELD;
use crate::spec::{LabelDef, LogAction, LogFormat, LogRule, MetricDef};

/// A fixed label's allowed values and the value that takes everything else.
pub(super) type FixedValues = (Vec<String>, Option<String>);

#[derive(Debug, Clone)]
pub(super) enum LabelSource {
    Literal(String),
    Field(String),
}

#[derive(Debug, Clone)]
pub struct CompiledRule {
    pub(super) metric: String,
    pub(super) action: LogAction,
    /// The pattern as written.
    pub(super) pattern_text: Option<String>,
    /// JSON lines: the compiled pattern (text lines use `search`: one compiled copy per rule).
    pub(super) pattern: Option<Regex>,
    pub(super) fields: Vec<(String, String)>,
    pub(super) value: Option<String>,
    /// Whether any label or the value comes from a named capture.
    pub(super) captures: bool,
    pub(super) scale: f64,
    /// In the metric's label order.
    pub(super) labels: Vec<(LabelSource, Option<FixedValues>)>,
    pub(super) format: LogFormat,
    /// JSON lines: the field `pattern` reads.
    pub(super) message_field: String,
    /// JSON lines: `pattern` reads the raw line instead of `message_field`.
    pub(super) whole_line: bool,
    /// Text lines: the capture group each label reads, in label order (`None`: a literal).
    pub(super) label_groups: Vec<Option<usize>>,
    /// Text lines: the capture group of the value.
    pub(super) value_group: Option<usize>,
    /// Text lines: the pattern for the engine's reading, which keeps a cache per reading thread
    /// and can start where the literal scan found the rule's literal.
    pub(super) search: Option<regex_automata::meta::Regex>,
    /// The first rule of the engine with the same pattern: one capture pass per line serves all
    /// rules that share a pattern (set by the engine; the rule itself until then).
    pub(super) shares: usize,
}

/// One line, parsed as its source's format needs.
pub enum Line<'a> {
    Text(&'a str),
    /// The parsed object and the line as written.
    Json(&'a serde_json::Map<String, Json>, &'a str),
}

impl CompiledRule {
    pub fn compile(rule: &LogRule, metric: &MetricDef, format: LogFormat) -> Result<Self, String> {
        // A compiled pattern holds its automata (about 30 KB for a short one): a text rule keeps
        // only the copy its reading runs, a JSON rule only the one its fields go through.
        let (pattern, search) = match (&rule.pattern, format) {
            (Some(p), LogFormat::Text) => {
                (None, Some(regex_automata::meta::Regex::new(p).map_err(|e| bad_pattern(p, &e))?))
            }
            (Some(p), LogFormat::Json) => (Some(Regex::new(p).map_err(|e| bad_pattern(p, &e))?), None),
            (None, _) => (None, None),
        };
        let names: Vec<Option<&str>> = match (&pattern, &search) {
            (Some(p), _) => p.capture_names().collect(),
            (None, Some(s)) => s.group_info().pattern_names(regex_automata::PatternID::ZERO).collect(),
            (None, None) => Vec::new(),
        };
        let captures: Vec<&str> = names.iter().copied().flatten().collect();
        let takes_from_line = |name: &str| format == LogFormat::Json || captures.contains(&name);
        if let Some(v) = &rule.value
            && !takes_from_line(v)
        {
            return Err(format!("value `{v}` is not a named capture of the pattern"));
        }
        let mut labels = Vec::new();
        for def in &metric.labels {
            let written = rule.labels.get(def.name()).ok_or_else(|| format!("label `{}` is not set", def.name()))?;
            let source = match written.strip_prefix('$') {
                Some(field) if takes_from_line(field) => LabelSource::Field(field.to_string()),
                Some(field) => {
                    return Err(format!("label `{}` takes `${field}`, which the pattern does not capture", def.name()));
                }
                None => {
                    if let Some(values) = def.fixed_values()
                        && !values.contains(written)
                    {
                        return Err(format!(
                            "label `{}` = `{written}` is not one of its values {values:?}",
                            def.name()
                        ));
                    }
                    LabelSource::Literal(written.clone())
                }
            };
            let fixed = match def {
                LabelDef::Fixed(f) => Some((f.values.clone(), f.other.clone())),
                LabelDef::Name(_) => None,
            };
            labels.push((source, fixed));
        }
        let group = |name: &str| names.iter().position(|n| *n == Some(name));
        let label_groups = labels
            .iter()
            .map(|(source, _)| match source {
                LabelSource::Field(name) => group(name),
                LabelSource::Literal(_) => None,
            })
            .collect();
        let value_group = rule.value.as_deref().and_then(group);
        Ok(Self {
            pattern_text: rule.pattern.clone(),
            search,
            label_groups,
            value_group,
            shares: 0,
            metric: rule.metric.clone(),
            action: rule.action,
            pattern,
            fields: rule.fields.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            value: rule.value.clone(),
            captures: rule.value.is_some() || labels.iter().any(|(l, _)| matches!(l, LabelSource::Field(_))),
            scale: rule.scale.unwrap_or(1.0),
            labels,
            format,
            message_field: DEFAULT_MESSAGE_FIELD.to_string(),
            whole_line: rule.whole_line,
        })
    }

    /// JSON lines: reads `match` from this field (a dotted path reaches into nested objects).
    pub fn with_message_field(mut self, field: &str) -> Self {
        self.message_field = field.to_string();
        self
    }

    /// Whether the rule takes this raw line (used by `check` on sample lines).
    pub fn matches_line(&self, raw: &str) -> bool {
        match self.format {
            LogFormat::Text => self.search.as_ref().is_some_and(|p| p.is_match(raw)),
            LogFormat::Json => match serde_json::from_str::<serde_json::Map<String, Json>>(raw) {
                Ok(obj) => self.extract(&Line::Json(&obj, raw)).is_some(),
                Err(_) => false,
            },
        }
    }

    /// Label values and the value text, when the line matches. A text line reaches this only
    /// once the engine knows that a rule capturing nothing matches it; a rule that captures runs
    /// its regex here and refuses the line when it does not match.
    pub(super) fn extract(&self, line: &Line<'_>) -> Option<(Vec<String>, Option<String>)> {
        match line {
            Line::Text(text) => {
                if !self.captures {
                    return Some((self.labels_from(|_| None), None));
                }
                let search = self.search.as_ref()?;
                let mut caps = search.create_captures();
                search.captures(*text, &mut caps);
                if !caps.is_match() {
                    return None;
                }
                let field = |name: &str| caps.get_group_by_name(name).map(|m| Cow::Borrowed(&text[m.range()]));
                let value = match &self.value {
                    Some(v) => Some(field(v)?.into_owned()),
                    None => None,
                };
                Some((self.labels_from(field), value))
            }
            Line::Json(obj, raw) => {
                for (k, want) in &self.fields {
                    if json_text(json_field(obj, k)?)?.as_ref() != want {
                        return None;
                    }
                }
                let message = match &self.pattern {
                    Some(_) if self.whole_line => Some(Cow::Borrowed(*raw)),
                    Some(_) => Some(json_field(obj, &self.message_field).and_then(json_text)?),
                    None => None,
                };
                let caps = match (&self.pattern, &message) {
                    (Some(re), Some(m)) => Some(re.captures(m)?),
                    _ => None,
                };
                // A named capture of the message first, then a field of the object.
                let field = |name: &str| {
                    caps.as_ref()
                        .and_then(|c| c.name(name))
                        .map(|m| Cow::Borrowed(m.as_str()))
                        .or_else(|| json_field(obj, name).and_then(json_text))
                };
                let value = match &self.value {
                    Some(v) => Some(field(v)?.into_owned()),
                    None => None,
                };
                Some((self.labels_from(field), value))
            }
        }
    }

    fn labels_from<'a>(&self, field: impl Fn(&str) -> Option<Cow<'a, str>>) -> Vec<String> {
        self.labels
            .iter()
            .map(|(source, _)| match source {
                LabelSource::Literal(v) => v.clone(),
                LabelSource::Field(f) => field(f).map(Cow::into_owned).unwrap_or_default(),
            })
            .collect()
    }
}

/// What is wrong with a pattern that does not compile, in the `regex` crate's words (where in the
/// pattern, and what), which the automata's own error only gives as its source.
fn bad_pattern(pattern: &str, error: &dyn std::error::Error) -> String {
    match (Regex::new(pattern), error.source()) {
        (Err(e), _) => format!("pattern: {e}"),
        (Ok(_), Some(source)) => format!("pattern: {error}: {source}"),
        (Ok(_), None) => format!("pattern: {error}"),
    }
}

/// A field of the line: the key itself, else a dotted path into nested objects
/// (`rate_limit_budget.total_attempts`), so a key that contains dots still reads as written.
pub(super) fn json_field<'a>(obj: &'a serde_json::Map<String, Json>, path: &str) -> Option<&'a Json> {
    if let Some(v) = obj.get(path) {
        return Some(v);
    }
    let (first, rest) = path.split_once('.')?;
    match obj.get(first)? {
        Json::Object(inner) => json_field(inner, rest),
        _ => None,
    }
}

pub(super) fn json_text(v: &Json) -> Option<Cow<'_, str>> {
    match v {
        Json::String(s) => Some(Cow::Borrowed(s)),
        Json::Number(n) => Some(Cow::Owned(n.to_string())),
        Json::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        Json::Null => Some(Cow::Borrowed("")),
        _ => None,
    }
}
