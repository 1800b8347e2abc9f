//! Built-in packs: one YAML file per runbook, embedded in the binary. Register a new pack by adding
//! its file to `BUILTIN`.

#![warn(missing_docs)]

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::config::ParamValue;
use super::duration::PromDuration;
use super::model::{LogFiles, LogRule, Signal};

/// Why a pack's parameters could not be filled into its text: a placeholder, a value, or the log
/// shape the values select. The value a variant holds is the user's (or the pack's default).
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A `{{` with no `}}` after it.
    #[error("unclosed `{{{{` placeholder")]
    Unclosed,
    /// A placeholder naming no parameter of the pack.
    #[error("unknown parameter `{0}`")]
    UnknownParam(String),
    /// A value its kind cannot write.
    #[error("parameter `{name}`: {problem}")]
    BadValue {
        /// The parameter.
        name: String,
        /// What is wrong with its value.
        problem: ValueError,
    },
    /// `format` selects no shape the pack declares.
    #[error("format `{format}` is not one this pack reads ({})", known.join(", "))]
    UnknownFormat {
        /// The rendered `format`.
        format: String,
        /// The shapes the pack declares.
        known: Vec<String>,
    },
    /// The selected shape is not a mapping.
    #[error("shape `{0}` must be a mapping")]
    ShapeNotMapping(String),
    /// The selected shape, filled in, is not a log source.
    #[error("shape `{format}`: {source}")]
    ShapeInvalid {
        /// The shape's name.
        format: String,
        /// Why it does not read as a log source.
        source: serde_json::Error,
    },
}

/// Why one parameter's value cannot be written as its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Not a name [`quote_identifier`] quotes.
    #[error(transparent)]
    Identifier(#[from] IdentifierError),
    /// Not a duration: the duration parser's own message.
    #[error("{0}")]
    Interval(String),
    /// Not a finite number: the value.
    #[error("`{0}` is not a number")]
    NotANumber(String),
}

/// Why a name is not one [`quote_identifier`] quotes; each variant holds the name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    /// More than `schema.name`.
    #[error("`{0}`: at most `schema.name`")]
    TooManyParts(String),
    /// A part that would need more than quoting.
    #[error("`{0}` is not a plain SQL identifier")]
    NotPlain(String),
}

/// Every built-in pack: (name, YAML source).
pub const BUILTIN: &[(&str, &str)] = &[
    ("token_refresh", include_str!("../../packs/token_refresh.yaml")),
    ("calendar_sync", include_str!("../../packs/calendar_sync.yaml")),
    ("etl_token_monitoring", include_str!("../../packs/etl_token_monitoring.yaml")),
    ("microsoft_integration", include_str!("../../packs/microsoft_integration.yaml")),
    ("salesforce_incidents", include_str!("../../packs/salesforce_incidents.yaml")),
];

/// A pack file.
#[derive(Clone, Debug, Deserialize, JsonSchema, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Pack {
    /// Pack name; prefixes its signal ids.
    pub name: String,
    /// Human title; becomes the dashboard title.
    pub title: String,
    /// Runbook file the alerts link to, relative to `runbook_base_url`.
    pub runbook: String,
    /// What can be changed without copying SQL or regexes.
    #[serde(default)]
    pub params: BTreeMap<String, ParamDef>,
    /// The pack's log sources.
    #[serde(default)]
    pub logs: BTreeMap<String, PackLog>,
    /// Shared scans: one query per table that several SQL signals read (`scan: NAME` in their
    /// source instead of `query:`). It runs once per collection for all its enabled readers, so
    /// a table several signals watch is read once, not once per signal.
    #[serde(default)]
    pub scans: BTreeMap<String, ScanDef>,
    /// The pack's signals, each with its metrics, source, alerts and panel.
    pub signals: Vec<Signal>,
    /// The on-call engineer's next step for each of the pack's alerts, in the runbook's order:
    /// `diagnose` and the status page list the alerts in this order and show the step beside a
    /// verdict that is not ok.
    #[serde(default)]
    pub playbook: Vec<PlaybookStep>,
}

/// A query several SQL signals of a pack read: the pack author writes one pass over a table that
/// computes every reader's columns, rather than the exporter merging the readers' SQL (merging
/// free SQL text would need a parser and could change what a query means without anyone seeing).
#[derive(Clone, Debug, Deserialize, JsonSchema, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScanDef {
    /// The query, with `{{param}}` placeholders as in a signal's. Its result holds every column
    /// its readers' metrics read (`column:`) and every label they carry; a row whose column is
    /// NULL gives no series for that metric, so one result can hold rows for different metrics.
    pub query: String,
    /// What the scan reads and why its readers share it, for the pack's reviewer.
    pub doc: String,
}

/// What to do first about one alert.
#[derive(Clone, Debug, Deserialize, JsonSchema, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlaybookStep {
    /// The alert's name, or `Name:severity` for one half of a warning/critical pair.
    pub alert: String,
    /// The first thing to check or do, in a sentence or two.
    pub step: String,
}

impl PlaybookStep {
    /// Whether this step is the one for `name` at `severity`.
    pub fn names(&self, name: &str, severity: super::model::Severity) -> bool {
        self.alert == name || self.alert.strip_suffix(severity.as_str()).and_then(|a| a.strip_suffix(':')) == Some(name)
    }
}

/// A pack parameter.
#[derive(Clone, Debug, Deserialize, JsonSchema, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ParamDef {
    /// How the value is written into SQL or paths.
    pub kind: ParamKind,
    /// The value when the user sets none.
    pub default: ParamValue,
    /// What the parameter means, for the user.
    pub doc: String,
}

/// How a parameter is written into SQL or paths.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ParamKind {
    /// A table or column name, optionally schema-qualified (`marketing.platform_tokens`); quoted.
    Identifier,
    /// A duration (`10m`); becomes `interval '600 seconds'`.
    Interval,
    /// A string; becomes a quoted SQL literal.
    Text,
    /// A number; written as is.
    Number,
    /// A file path or glob; only valid in log paths.
    Path,
}

/// A pack's log source: its files, and every line shape the pack can read there; `format`
/// (a parameter, `{{log_format}}`) picks one. Real services log Python-logging text or JSON
/// lines, so a pack declares both and the user's setting chooses, without copying rules.
#[derive(Clone, Debug, Deserialize, JsonSchema, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PackLog {
    /// Files or globs; `{{param}}` placeholders are filled from the pack's parameters.
    pub paths: Vec<String>,
    /// Which entry of `shapes` applies (`text` or `json`).
    pub format: String,
    /// Per line shape, the rest of the log source (`timestamp`, `message_field`, `start_at` ...).
    /// Its strings may hold `{{param}}`, filled in verbatim.
    pub shapes: BTreeMap<String, serde_json::Value>,
}

impl PackLog {
    /// The log source the parameters select.
    pub fn render(&self, params: &Params) -> Result<LogFiles, RenderError> {
        let format = render_verbatim(&self.format, params)?;
        let shape = self.shapes.get(&format).ok_or_else(|| RenderError::UnknownFormat {
            format: format.clone(),
            known: self.shapes.keys().cloned().collect(),
        })?;
        let mut source = match render_json(shape, params)? {
            serde_json::Value::Object(map) => map,
            _ => return Err(RenderError::ShapeNotMapping(format)),
        };
        let paths = self.paths.iter().map(|p| render_verbatim(p, params)).collect::<Result<Vec<_>, _>>()?;
        source.insert("paths".into(), paths.into());
        source.insert("format".into(), format.clone().into());
        serde_json::from_value(serde_json::Value::Object(source))
            .map_err(|source| RenderError::ShapeInvalid { format, source })
    }

    /// The parameters `format` is made of, to point an error at the one the user set.
    pub fn format_params(&self) -> Vec<&str> {
        self.format.split("{{").skip(1).filter_map(|p| p.split_once("}}")).map(|(name, _)| name.trim()).collect()
    }

    /// Whether the selected shape reads lines as the pack's defaults do (same timestamp format,
    /// zone and field names), so its rules' sample lines still describe the user's lines.
    pub fn shape_is_default(&self, params: &Params, defaults: &Params) -> bool {
        let Ok(format) = render_verbatim(&self.format, params) else { return false };
        let Some(shape) = self.shapes.get(&format) else { return false };
        render_json(shape, params).ok() == render_json(shape, defaults).ok()
    }
}

/// A pack's log rule with the user's parameters filled in. Its sample lines are written in the
/// pack's default line shape: once the user renames a field or changes the timestamp layout they
/// no longer describe the user's lines, so they are dropped rather than failing the spec (the
/// pack's own tests check them with the defaults).
pub fn render_pack_rule(
    rule: &mut LogRule,
    params: &Params,
    defaults: &Params,
    shape_is_default: bool,
) -> Result<(), RenderError> {
    let mut as_default = rule.clone();
    render_log_rule(&mut as_default, defaults)?;
    render_log_rule(rule, params)?;
    if !shape_is_default || *rule != as_default {
        rule.samples.clear();
    }
    Ok(())
}

impl Pack {
    /// Every parameter at its default.
    pub fn defaults(&self) -> Params {
        self.params.iter().map(|(name, def)| (name.clone(), (def.kind, def.default.to_string()))).collect()
    }
}

/// Fills a log rule's field names (`value`, `fields`, `$field` labels) so JSON field names are
/// parameters. `match` is left alone: a regex is not a place for verbatim text.
pub fn render_log_rule(rule: &mut LogRule, params: &Params) -> Result<(), RenderError> {
    if let Some(value) = &rule.value {
        rule.value = Some(render_verbatim(value, params)?);
    }
    let mut fields = BTreeMap::new();
    for (k, v) in &rule.fields {
        fields.insert(render_verbatim(k, params)?, render_verbatim(v, params)?);
    }
    rule.fields = fields;
    for v in rule.labels.values_mut() {
        *v = render_verbatim(v, params)?;
    }
    Ok(())
}

fn render_json(value: &serde_json::Value, params: &Params) -> Result<serde_json::Value, RenderError> {
    use serde_json::Value;
    Ok(match value {
        Value::String(s) => Value::String(render_verbatim(s, params)?),
        Value::Array(items) => Value::Array(items.iter().map(|v| render_json(v, params)).collect::<Result<_, _>>()?),
        Value::Object(map) => Value::Object(
            map.iter().map(|(k, v)| Ok((k.clone(), render_json(v, params)?))).collect::<Result<_, RenderError>>()?,
        ),
        other => other.clone(),
    })
}

/// Parameter values by name, with their kinds.
pub type Params = BTreeMap<String, (ParamKind, String)>;

/// Fills `{{name}}` placeholders. Values are checked and quoted by kind, so a parameter can never
/// inject SQL.
pub fn render(template: &str, params: &Params) -> Result<String, RenderError> {
    render_traced(template, params).map(|(text, _)| text)
}

/// Where a parameter's value landed in a rendered text: `check --database` maps the position of
/// a name the database lacks back to the parameter that wrote it.
#[derive(Clone, Debug, PartialEq)]
pub struct Origin {
    /// The parameter's name.
    pub param: String,
    /// Its kind.
    pub kind: ParamKind,
    /// Its value as the user (or the default) wrote it, before quoting.
    pub value: String,
    /// The bytes of the rendered text the value became.
    pub span: std::ops::Range<usize>,
}

/// [`render`], and where each placeholder's value landed.
pub fn render_traced(template: &str, params: &Params) -> Result<(String, Vec<Origin>), RenderError> {
    render_with(template, params, render_value)
}

/// Fills `{{name}}` placeholders with the values as written: for log sources and field names,
/// where nothing is SQL. An unknown parameter is still an error.
pub fn render_verbatim(template: &str, params: &Params) -> Result<String, RenderError> {
    render_with(template, params, |_, _, value| Ok(value.to_string())).map(|(text, _)| text)
}

fn render_with(
    template: &str,
    params: &Params,
    fill: impl Fn(&str, ParamKind, &str) -> Result<String, RenderError>,
) -> Result<(String, Vec<Origin>), RenderError> {
    let mut out = String::with_capacity(template.len());
    let mut origins = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or(RenderError::Unclosed)?;
        let name = after[..end].trim();
        let (kind, value) = params.get(name).ok_or_else(|| RenderError::UnknownParam(name.to_string()))?;
        let at = out.len();
        out.push_str(&fill(name, *kind, value)?);
        origins.push(Origin { param: name.to_string(), kind: *kind, value: value.clone(), span: at..out.len() });
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok((out, origins))
}

fn render_value(name: &str, kind: ParamKind, value: &str) -> Result<String, RenderError> {
    let written = match kind {
        ParamKind::Identifier => quote_identifier(value).map_err(ValueError::from),
        ParamKind::Interval => PromDuration::parse(value).map(|d| d.sql_interval()).map_err(ValueError::Interval),
        ParamKind::Text => Ok(format!("'{}'", value.replace('\'', "''"))),
        ParamKind::Number => value
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(|_| value.to_string())
            .ok_or_else(|| ValueError::NotANumber(value.to_string())),
        ParamKind::Path => Ok(value.to_string()),
    };
    written.map_err(|problem| RenderError::BadValue { name: name.to_string(), problem })
}

/// `schema.table` -> `"schema"."table"`. Only plain identifiers are accepted: a name that needs
/// more than quoting is a typo, not a table.
pub fn quote_identifier(name: &str) -> Result<String, IdentifierError> {
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() > 2 {
        return Err(IdentifierError::TooManyParts(name.to_string()));
    }
    let mut quoted = Vec::with_capacity(parts.len());
    for part in parts {
        let mut chars = part.chars();
        let valid_start = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if !valid_start || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            return Err(IdentifierError::NotPlain(name.to_string()));
        }
        quoted.push(format!("\"{part}\""));
    }
    Ok(quoted.join("."))
}

/// Fills `{{name}}` placeholders with the values as written, leaving unknown ones alone: label
/// matchers, URLs and paths take parameter values verbatim (PromQL strings are escaped on output).
pub fn render_raw(text: &str, params: &Params) -> String {
    let mut out = text.to_string();
    for (name, (_, value)) in params {
        out = out.replace(&format!("{{{{{name}}}}}"), value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn params(pairs: &[(&str, ParamKind, &str)]) -> BTreeMap<String, (ParamKind, String)> {
        pairs.iter().map(|(n, k, v)| (n.to_string(), (*k, v.to_string()))).collect()
    }

    #[test]
    fn renders_each_kind() {
        let p = params(&[
            ("t", ParamKind::Identifier, "marketing.platform_tokens"),
            ("w", ParamKind::Interval, "10m"),
            ("s", ParamKind::Text, "it's"),
            ("n", ParamKind::Number, "10"),
        ]);
        assert_eq!(
            render("SELECT {{ t }} {{w}} {{s}} {{n}}", &p).unwrap(),
            r#"SELECT "marketing"."platform_tokens" interval '600 seconds' 'it''s' 10"#
        );
        assert!(render("{{missing}}", &p).is_err());
        assert!(render("{{t", &p).is_err());
    }

    #[test]
    fn each_value_is_traced_to_where_it_landed() {
        let p = params(&[("t", ParamKind::Identifier, "marketing.tokens"), ("c", ParamKind::Identifier, "expires")]);
        let (text, origins) = render_traced("SELECT {{c}} FROM {{ t }} WHERE {{c}} < now()", &p).unwrap();
        let landed: Vec<(&str, &str, &str)> =
            origins.iter().map(|o| (o.param.as_str(), o.value.as_str(), &text[o.span.clone()])).collect();
        assert_eq!(
            landed,
            [
                ("c", "expires", "\"expires\""),
                ("t", "marketing.tokens", "\"marketing\".\"tokens\""),
                ("c", "expires", "\"expires\""),
            ]
        );
    }

    #[test]
    fn rejects_identifiers_that_would_need_escaping() {
        for bad in ["a;drop", "a\"b", "", "1abc", "a.b.c", "a b"] {
            assert!(quote_identifier(bad).is_err(), "{bad}");
        }
    }

    fn two_shapes() -> PackLog {
        let shapes = serde_json::json!({
            "text": {"timestamp": {"format": "{{ts_format}}", "timezone": "{{tz}}"}},
            "json": {"message_field": "{{msg}}", "timestamp": {"field": "ts", "format": "rfc3339"}},
        });
        PackLog {
            paths: vec!["{{log}}".into()],
            format: "{{log_format}}".into(),
            shapes: serde_json::from_value(shapes).unwrap(),
        }
    }

    fn log_params(format: &str, msg: &str) -> Params {
        params(&[
            ("log", ParamKind::Path, "/var/log/w.log"),
            ("log_format", ParamKind::Text, format),
            ("ts_format", ParamKind::Text, "%Y-%m-%d %H:%M:%S,%3f"),
            ("tz", ParamKind::Text, "Europe/Berlin"),
            ("msg", ParamKind::Text, msg),
        ])
    }

    #[test]
    fn a_parameter_picks_the_line_shape_and_fills_it_verbatim() {
        let log = two_shapes();
        let text = log.render(&log_params("text", "event")).unwrap();
        assert_eq!(text.format, crate::spec::LogFormat::Text);
        assert_eq!(
            (text.timestamp.format.as_str(), text.timestamp.timezone.as_str()),
            ("%Y-%m-%d %H:%M:%S,%3f", "Europe/Berlin")
        );
        assert_eq!(text.paths, vec!["/var/log/w.log".to_string()]);
        let json = log.render(&log_params("json", "event")).unwrap();
        assert_eq!((json.format, json.message_field.as_str()), (crate::spec::LogFormat::Json, "event"));
        assert_eq!(
            log.render(&log_params("xml", "event")).unwrap_err().to_string(),
            "format `xml` is not one this pack reads (json, text)"
        );
        let mut missing = log_params("json", "event");
        missing.remove("msg");
        assert_eq!(log.render(&missing).unwrap_err().to_string(), "unknown parameter `msg`");
    }

    #[test]
    fn samples_are_kept_only_while_the_shape_is_the_default() {
        let log = two_shapes();
        let defaults = log_params("text", "message");
        assert!(log.shape_is_default(&log_params("text", "event"), &defaults), "the text shape does not read `msg`");
        assert!(log.shape_is_default(&log_params("json", "message"), &defaults));
        assert!(!log.shape_is_default(&log_params("json", "event"), &defaults));
        let mut rule: LogRule = serde_json::from_value(serde_json::json!({
            "metric": "m", "action": "set", "value": "{{msg}}.n", "samples": ["{\"message\": {\"n\": 1}}"]
        }))
        .unwrap();
        let mut renamed = rule.clone();
        render_pack_rule(&mut rule, &defaults, &defaults, true).unwrap();
        assert_eq!((rule.value.as_deref(), rule.samples.len()), (Some("message.n"), 1));
        render_pack_rule(&mut renamed, &log_params("json", "event"), &defaults, true).unwrap();
        assert_eq!((renamed.value.as_deref(), renamed.samples.len()), (Some("event.n"), 0));
    }

    #[test]
    fn render_errors_say_what_they_said_as_text() {
        let p = params(&[
            ("t", ParamKind::Identifier, "a.b.c"),
            ("u", ParamKind::Identifier, "a;b"),
            ("w", ParamKind::Interval, "soon"),
            ("n", ParamKind::Number, "NaN"),
        ]);
        let said = |template: &str| render(template, &p).unwrap_err().to_string();
        assert_eq!(said("{{t"), "unclosed `{{` placeholder");
        assert_eq!(said("{{x}}"), "unknown parameter `x`");
        assert_eq!(said("{{t}}"), "parameter `t`: `a.b.c`: at most `schema.name`");
        assert_eq!(said("{{u}}"), "parameter `u`: `a;b` is not a plain SQL identifier");
        assert_eq!(said("{{w}}"), format!("parameter `w`: {}", PromDuration::parse("soon").unwrap_err()));
        assert_eq!(said("{{n}}"), "parameter `n`: `NaN` is not a number");
        let mut log = two_shapes();
        log.shapes.insert("text".into(), serde_json::json!(["not", "a", "mapping"]));
        assert_eq!(log.render(&log_params("text", "m")).unwrap_err().to_string(), "shape `text` must be a mapping");
        log.shapes.insert("text".into(), serde_json::json!({"bogus": 1}));
        let invalid = log.render(&log_params("text", "m")).unwrap_err().to_string();
        assert!(invalid.starts_with("shape `text`: unknown field `bogus`"), "{invalid}");
    }

    proptest! {
        #[test]
        fn quoted_identifiers_never_break_out(name in ".{0,30}") {
            if let Ok(q) = quote_identifier(&name) {
                // Every quote in the output is one we put around a part.
                let inner = q.replace("\".\"", "");
                prop_assert_eq!(inner.matches('"').count(), 2);
            }
        }

        #[test]
        fn text_literals_never_break_out(value in ".{0,30}") {
            let p = params(&[("v", ParamKind::Text, &value)]);
            let out = render("{{v}}", &p).unwrap();
            let body = &out[1..out.len() - 1];
            prop_assert!(!body.replace("''", "").contains('\''));
        }
    }
}
