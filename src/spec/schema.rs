//! The spec's JSON Schema, derived from the structs serde reads the spec into, so an editor's
//! completion and checks (`# yaml-language-server: $schema=...`) and `docs/spec.md` say what the
//! loader does. Draft-07: the draft every YAML language server and `jsonschema` implementation
//! reads, where `$ref` with siblings (a field's description beside its type) is wrapped by the
//! generator rather than silently ignored.
//!
//! The types below are never built: they only stand for the string formats of fields whose serde
//! type is a plain `String` checked by hand (`#[schemars(with = ...)]` on the field).

use std::borrow::Cow;

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::Value;

use super::config::Config;
use super::pack::Pack;

mod reference;

pub use reference::markdown;

/// The schema of a spec file: what `integration-exporter schema` prints.
pub fn spec() -> Value {
    let mut schema = root_for::<Config>();
    schema["title"] = "integration-exporter spec".into();
    // serde's `alias` is invisible to the generator: the old name is still read, so it must not be
    // flagged as a typo.
    if let Some(properties) = schema["properties"].as_object_mut() {
        let mut old_name = properties.get("poll_defaults").cloned().unwrap_or_default();
        old_name["description"] = "Old name of `poll_defaults`, still read.".into();
        old_name["deprecated"] = true.into();
        properties.insert("sql_defaults".into(), old_name);
    }
    schema
}

/// The schema of a built-in pack file (`packs/*.yaml`). Packs are compiled in, so it is not
/// shipped: the tests hold every pack to it.
pub fn pack() -> Value {
    let mut schema = root_for::<Pack>();
    // A pack's secret is a parameter the user sets (`bearer: "{{github_token}}"`), filled in before
    // the check that it names an `env:` or `file:`.
    if let Some(secret) = schema["definitions"].get_mut("SecretRef") {
        secret["pattern"] = r"^((env|file):.|\{\{)".into();
    }
    schema
}

/// [`spec`] as the committed `docs/spec.schema.json` holds it.
pub fn json() -> String {
    let mut text = serde_json::to_string_pretty(&spec()).unwrap_or_default();
    text.push('\n');
    text
}

fn root_for<T: JsonSchema>() -> Value {
    let mut schema = SchemaSettings::draft07().into_generator().into_root_schema_for::<T>().to_value();
    unwrap_descriptions(&mut schema);
    schema
}

/// `///` docs are wrapped at 120 columns; a description is one paragraph per line, which editors
/// then wrap to their own width.
fn unwrap_descriptions(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match v {
                    Value::String(text) if key == "description" => {
                        *text = text
                            .split("\n\n")
                            .map(|p| p.split('\n').map(str::trim).collect::<Vec<_>>().join(" "))
                            .collect::<Vec<_>>()
                            .join("\n\n");
                    }
                    _ => unwrap_descriptions(v),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(unwrap_descriptions),
        _ => {}
    }
}

/// `host:port` as [`super::listen::check`] reads it.
pub struct ListenAddress;

impl JsonSchema for ListenAddress {
    fn schema_name() -> Cow<'static, str> {
        "ListenAddress".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "`host:port`: an IPv4 address, an IPv6 address in brackets or a host name, and a port 0-65535 (`127.0.0.1:29187`, `0.0.0.0:29187` for every interface, `[::1]:29187`).",
            "type": "string",
            "pattern": r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$"
        })
    }
}

/// A secret named, never written: `env:NAME` or `file:PATH`, as the HTTP source's check demands.
pub struct SecretRef;

impl JsonSchema for SecretRef {
    fn schema_name() -> Cow<'static, str> {
        "SecretRef".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Where a secret is, never the secret itself: `env:NAME` (an environment variable) or `file:PATH` (a file's content, trimmed; a mounted secret). Read again before every use, never logged or exported.",
            "type": "string",
            "pattern": "^(env|file):."
        })
    }
}

/// A Prometheus label name, as `validate` checks it.
pub struct LabelName;

impl JsonSchema for LabelName {
    fn schema_name() -> Cow<'static, str> {
        "LabelName".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A Prometheus label name: a letter or `_`, then letters, digits or `_`; not `__`-prefixed.",
            "type": "string",
            "pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$"
        })
    }
}

/// A pattern compiled with the `regex` crate when the spec loads.
pub struct Regex;

impl JsonSchema for Regex {
    fn schema_name() -> Cow<'static, str> {
        "Regex".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        // No `format: regex`: that names ECMA 262 syntax, which rejects the Rust crate's
        // `(?P<name>...)` groups that packs and users write.
        json_schema!({
            "description": "A regular expression in the syntax of Rust's `regex` crate (named captures as `(?P<name>...)` or `(?<name>...)`; no look-around or back-references). Checked when the spec loads; `check` names the position of an error.",
            "type": "string"
        })
    }
}

/// A label or field value: serde's YAML reader takes any scalar as text.
pub struct Scalar;

impl JsonSchema for Scalar {
    fn schema_name() -> Cow<'static, str> {
        "Scalar".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A text value. A number or `true`/`false` written without quotes is read as its text (`500` is `\"500\"`).",
            "type": ["string", "number", "boolean"]
        })
    }
}

/// `generate.matchers`: label names as `label_matchers` in `config.rs` accepts them.
pub struct LabelMatchers;

impl JsonSchema for LabelMatchers {
    fn schema_name() -> Cow<'static, str> {
        "LabelMatchers".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "propertyNames": {
                "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
                "not": {"anyOf": [{"const": "job"}, {"pattern": "^__"}]}
            },
            "additionalProperties": generator.subschema_for::<Scalar>()
        })
    }
}

// Mirrors `tailer::StartAt`, whose crate knows nothing of schemas; a test holds them equal.
/// Where a log source starts reading.
#[derive(JsonSchema)]
#[schemars(rename_all = "lowercase")]
pub enum StartAt {
    /// Count the lines already in the files.
    Beginning,
    /// Count only the lines written from now on.
    End,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value the schema offers for `start_at` is one the tailer's own type reads, and the
    /// other way round.
    #[test]
    fn start_at_values_are_the_tailers() {
        let schema = serde_json::to_value(schemars::schema_for!(StartAt)).unwrap();
        let offered: Vec<&str> =
            schema["oneOf"].as_array().unwrap().iter().map(|v| v["const"].as_str().unwrap()).collect();
        for value in &offered {
            let read: tailer::StartAt = serde_json::from_value((*value).into()).unwrap();
            assert_eq!(serde_json::to_value(read).unwrap(), *value);
        }
        for start in [tailer::StartAt::Beginning, tailer::StartAt::End] {
            let value = serde_json::to_value(start).unwrap();
            assert!(offered.contains(&value.as_str().unwrap()), "{value}");
        }
    }
}
