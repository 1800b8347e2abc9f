//! Log lines as the Prometheus ecosystem writes them (promslog): `logfmt` by default, `json` on
//! request, one event per line on stderr. Neither format has colour codes, so logs read the same
//! in a terminal, a file, journald or a container runtime. Field values are escaped: a log line
//! read by a source (or any other input) cannot forge a second log line.

use std::fmt::{self, Write as _};

use clap::ValueEnum;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// `--log.format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `time=... level=info source=serve.rs:61 msg="serving /metrics" addr=...`
    #[default]
    Logfmt,
    /// One JSON object per line with the same keys.
    Json,
}

/// `--log.level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    /// At `info` the database driver's own events (a failed ping on an idle connection, ...) stay
    /// out: the sources log each failure once, with its cause; `debug` shows them.
    fn directive(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info,sqlx=warn",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// Installs the global subscriber. `--log.level`, when given, decides; without it `RUST_LOG`
/// (tracing's `EnvFilter` syntax, e.g. `info,integration_exporter::sources=debug`) does, and
/// without either the level is `info`.
pub fn init(level: Option<LogLevel>, format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = match level {
        Some(level) => EnvFilter::new(level.directive()),
        None => match std::env::var("RUST_LOG") {
            Ok(spec) if !spec.trim().is_empty() => EnvFilter::try_new(&spec).unwrap_or_else(|e| {
                eprintln!("RUST_LOG: {e}; logging at info");
                EnvFilter::new(LogLevel::Info.directive())
            }),
            _ => EnvFilter::new(LogLevel::Info.directive()),
        },
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .event_format(Promslog(format))
        .init();
}

/// The event formatter for both formats.
pub struct Promslog(pub LogFormat);

/// A field value: text (quoted as needed) or a number or boolean (written as is).
enum Value {
    Text(String),
    Raw(String),
}

#[derive(Default)]
struct Fields {
    message: Option<String>,
    rest: Vec<(&'static str, Value)>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_string());
        } else {
            self.rest.push((field.name(), Value::Text(value.to_string())));
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.rest.push((field.name(), Value::Raw(value.to_string())));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.rest.push((field.name(), Value::Raw(value.to_string())));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.rest.push((field.name(), Value::Raw(value.to_string())));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.rest.push((field.name(), Value::Raw(value.to_string())));
        } else {
            self.rest.push((field.name(), Value::Text(value.to_string())));
        }
    }
}

fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "debug",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

impl<S, N> FormatEvent<S, N> for Promslog
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let file = meta.file().map(|f| f.rsplit('/').next().unwrap_or(f));
        let source = match (file, meta.line()) {
            (Some(f), Some(l)) => format!("{f}:{l}"),
            _ => meta.target().to_string(),
        };
        let mut head: Vec<(&str, Value)> = vec![
            ("time", Value::Text(time)),
            ("level", Value::Text(level_name(meta.level()).into())),
            ("source", Value::Text(source)),
            ("msg", Value::Text(fields.message.unwrap_or_default())),
        ];
        head.extend(fields.rest);
        let line = match self.0 {
            LogFormat::Logfmt => logfmt(&head),
            LogFormat::Json => json(&head),
        };
        writeln!(writer, "{line}")
    }
}

fn logfmt(pairs: &[(&str, Value)]) -> String {
    let mut out = String::new();
    for (i, (key, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(key);
        out.push('=');
        match value {
            Value::Raw(v) => out.push_str(v),
            Value::Text(v) => logfmt_value(&mut out, v),
        }
    }
    out
}

/// Bare when it is plain, else quoted with `\"`, `\\` and control characters escaped.
fn logfmt_value(out: &mut String, v: &str) {
    let plain =
        !v.is_empty() && v.chars().all(|c| !c.is_whitespace() && c != '"' && c != '=' && c != '\\' && !c.is_control());
    if plain {
        out.push_str(v);
        return;
    }
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn json(pairs: &[(&str, Value)]) -> String {
    let mut object = serde_json::Map::new();
    for (key, value) in pairs {
        let value = match value {
            Value::Text(v) => serde_json::Value::String(v.clone()),
            Value::Raw(v) => serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::String(v.clone())),
        };
        // A field named like a head key does not replace it.
        object.entry(key.to_string()).or_insert(value);
    }
    serde_json::Value::Object(object).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Reads one logfmt line back into pairs (the inverse of [`logfmt`] for text values).
    fn parse(line: &str) -> Vec<(String, String)> {
        let mut pairs = Vec::new();
        let mut chars = line.chars().peekable();
        while chars.peek().is_some() {
            let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
            let mut value = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.next() {
                            Some('n') => value.push('\n'),
                            Some('r') => value.push('\r'),
                            Some('t') => value.push('\t'),
                            Some('u') => {
                                let hex: String = chars.by_ref().take(4).collect();
                                value.push(char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap());
                            }
                            Some(other) => value.push(other),
                            None => {}
                        },
                        c => value.push(c),
                    }
                }
                chars.next();
            } else {
                value = chars.by_ref().take_while(|&c| c != ' ').collect();
            }
            pairs.push((key, value));
        }
        pairs
    }

    #[test]
    fn plain_values_stay_bare_and_others_are_quoted() {
        let line = logfmt(&[
            ("a", Value::Text("x".into())),
            ("b", Value::Text("two words".into())),
            ("c", Value::Text(String::new())),
            ("d", Value::Raw("3".into())),
        ]);
        assert_eq!(line, "a=x b=\"two words\" c=\"\" d=3");
    }

    proptest! {
        #[test]
        fn any_value_stays_on_one_line_and_reads_back(value in "\\PC*|[\\x00-\\x1f\"\\\\= \u{7f}\u{85}\u{2028}]{0,12}") {
            let line = logfmt(&[("msg", Value::Text(value.clone())), ("k", Value::Text("v".into()))]);
            prop_assert!(!line.contains(['\n', '\r', '\x1b']), "{}", line);
            let pairs = parse(&line);
            prop_assert_eq!(pairs, vec![("msg".to_string(), value), ("k".to_string(), "v".to_string())]);
        }

        #[test]
        fn json_lines_parse_back(value in "\\PC*|[\\x00-\\x1f\"\\\\]{0,12}") {
            let line = json(&[("msg", Value::Text(value.clone())), ("n", Value::Raw("7".into()))]);
            prop_assert!(!line.contains('\n'));
            let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
            prop_assert_eq!(parsed["msg"].as_str(), Some(value.as_str()));
            prop_assert_eq!(parsed["n"].as_u64(), Some(7));
        }
    }
}
