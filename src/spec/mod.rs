//! The spec: what to read, what to export, what to alert on. Built-in packs and the user's file
//! are merged here into one [`Model`] that every source and generator reads.

pub mod config;
pub mod duration;
pub mod model;
pub mod pack;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub use config::Config;
pub use duration::PromDuration;
pub use model::*;
pub use pack::Pack;

use pack::{ParamKind, render};

/// A spec error, located in the file it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecError {
    pub file: String,
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
    }
}

impl std::error::Error for SpecError {}

/// Errors found after parsing, all of them, so one `check` run shows everything to fix.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecErrors(pub Vec<SpecError>);

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecErrors {}

/// Where a YAML text came from, so later errors can point into it.
#[derive(Debug, Clone)]
pub struct SourceText {
    pub name: String,
    pub text: String,
}

impl SourceText {
    /// Best position for an error about `needle`: its first occurrence, or the top of the file.
    pub fn locate(&self, needle: &str, message: impl Into<String>) -> SpecError {
        let (line, column) = self
            .text
            .find(needle)
            .filter(|_| !needle.is_empty())
            .map(|at| {
                let before = &self.text[..at];
                let line = before.matches('\n').count() as u64 + 1;
                let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u64 + 1;
                (line, column)
            })
            .unwrap_or((1, 1));
        SpecError { file: self.name.clone(), line, column, message: message.into() }
    }
}

fn parse_yaml<T: serde::de::DeserializeOwned>(source: &SourceText) -> Result<T, SpecError> {
    serde_saphyr::from_str(&source.text).map_err(|e| {
        let (line, column) = e.location().map_or((1, 1), |l| (l.line().max(1), l.column().max(1)));
        // saphyr's Display renders a snippet; the first line is the message itself.
        let full = e.to_string();
        let first = full.lines().next().unwrap_or("invalid YAML").trim();
        // The position is reported separately; drop saphyr's own "error: line X column Y:" prefix.
        let message = match first.find(": ").filter(|_| first.starts_with("error: line ")) {
            Some(_) => first.splitn(3, ": ").nth(2).unwrap_or(first).to_string(),
            None => first.to_string(),
        };
        SpecError { file: source.name.clone(), line, column, message }
    })
}

/// A signal after packs and overrides are applied: ready for sources and generators.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedSignal {
    /// The pack it came from (`None` for the user's own signals).
    pub pack: Option<String>,
    pub signal: Signal,
    /// Full runbook link for the signal's section, when there is a runbook.
    pub runbook_url: Option<String>,
    /// SQL and HTTP signals: effective interval and timeout.
    pub interval: PromDuration,
    pub timeout: PromDuration,
    /// Log signals: the full id of the log source (`<pack>.<name>`).
    pub log_id: Option<String>,
}

/// An enabled pack, for dashboards and the catalog.
#[derive(Clone, Debug, PartialEq)]
pub struct PackInfo {
    pub name: String,
    pub title: String,
    pub runbook: String,
}

/// Everything the exporter and the generators need, resolved from one file.
#[derive(Clone, Debug)]
pub struct Model {
    pub config: Config,
    pub packs: Vec<PackInfo>,
    pub logs: BTreeMap<String, LogSource>,
    pub signals: Vec<ResolvedSignal>,
}

impl Model {
    /// Reads and validates a spec file.
    pub fn load(path: &Path) -> Result<Model, SpecErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            SpecErrors(vec![SpecError {
                file: path.display().to_string(),
                line: 1,
                column: 1,
                message: format!("cannot read spec: {e}"),
            }])
        })?;
        Model::from_text(&SourceText { name: path.display().to_string(), text })
    }

    pub fn from_text(source: &SourceText) -> Result<Model, SpecErrors> {
        let config: Config = parse_yaml(source).map_err(|e| SpecErrors(vec![e]))?;
        let model = resolve(config, source)?;
        validate::validate(&model, source)?;
        Ok(model)
    }

    /// A model with every built-in pack enabled at its defaults: what `generate` commits.
    pub fn builtin_defaults() -> Model {
        let mut yaml = String::from("database: {url_env: DATABASE_URL}\npacks:\n");
        for (name, _) in pack::BUILTIN {
            yaml.push_str(&format!("  {name}: {{}}\n"));
        }
        let source = SourceText { name: "<built-in defaults>".into(), text: yaml };
        match Model::from_text(&source) {
            Ok(model) => model,
            // The packs are compiled in and covered by tests; failing here is a build defect.
            Err(e) => panic!("built-in packs do not validate: {e}"),
        }
    }

    pub fn enabled_signals(&self) -> impl Iterator<Item = &ResolvedSignal> {
        self.signals.iter().filter(|s| s.signal.enabled)
    }

    /// Every metric family with the signal that exports it.
    pub fn metrics(&self) -> impl Iterator<Item = (&ResolvedSignal, &MetricDef)> {
        self.enabled_signals().flat_map(|s| s.signal.metrics.iter().map(move |m| (s, m)))
    }

    pub fn metric(&self, name: &str) -> Option<&MetricDef> {
        self.metrics().find(|(_, m)| m.name == name).map(|(_, m)| m)
    }

    pub fn spec_dir(path: &Path) -> PathBuf {
        path.parent().map(Path::to_path_buf).unwrap_or_default()
    }
}

/// Loads a built-in pack by name.
pub fn builtin_pack(name: &str) -> Option<Result<Pack, SpecError>> {
    pack::BUILTIN
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, text)| parse_yaml(&SourceText { name: format!("<built-in pack {n}>"), text: (*text).to_string() }))
}

/// GitHub-style heading anchor: lower case, spaces to dashes, punctuation dropped.
pub fn heading_anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn runbook_url(base: &str, file: &str, section: Option<&str>) -> String {
    let mut url = format!("{}/{}", base.trim_end_matches('/'), file.trim_start_matches('/'));
    if let Some(section) = section {
        url.push('#');
        url.push_str(&heading_anchor(section));
    }
    url
}

fn resolve(config: Config, source: &SourceText) -> Result<Model, SpecErrors> {
    let mut errors = Vec::new();
    let mut packs = Vec::new();
    let mut logs = BTreeMap::new();
    let mut signals = Vec::new();
    let defaults = config.sql_defaults.clone();

    for (name, settings) in &config.packs {
        let pack = match builtin_pack(name) {
            None => {
                let known: Vec<&str> = pack::BUILTIN.iter().map(|(n, _)| *n).collect();
                errors.push(source.locate(
                    &format!("{name}:"),
                    format!("unknown pack `{name}` (built-in packs: {})", known.join(", ")),
                ));
                continue;
            }
            Some(Err(e)) => {
                errors.push(e);
                continue;
            }
            Some(Ok(pack)) => pack,
        };
        if !settings.enabled {
            continue;
        }
        let mut params: BTreeMap<String, (ParamKind, String)> = BTreeMap::new();
        for (param, def) in &pack.params {
            let value = settings.params.get(param).unwrap_or(&def.default).to_string();
            params.insert(param.clone(), (def.kind, value));
        }
        for param in settings.params.keys() {
            if !pack.params.contains_key(param) {
                errors.push(source.locate(&format!("{param}:"), format!("pack `{name}` has no parameter `{param}`")));
            }
        }
        let mut render_here = |what: &str, text: &str| -> String {
            render(text, &params).unwrap_or_else(|e| {
                errors.push(source.locate(name, format!("pack `{name}`, {what}: {e}")));
                text.to_string()
            })
        };
        for (log_name, log) in &pack.logs {
            let mut log = log.clone();
            log.paths = log.paths.iter().map(|p| render_here("log paths", p)).collect();
            logs.insert(format!("{name}.{log_name}"), log);
        }
        let mut used_alert_overrides = std::collections::BTreeSet::new();
        for mut signal in pack.signals.clone() {
            let over = settings.signals.get(&signal.id).cloned().unwrap_or_default();
            if let Some(enabled) = over.enabled {
                signal.enabled = enabled;
            }
            let (mut interval, mut timeout) = (defaults.interval, defaults.timeout);
            let mut log_id = None;
            match &mut signal.source {
                Source::Sql(sql) => {
                    sql.query = render_here(&format!("signal `{}` query", signal.id), &sql.query);
                    interval = over.interval.or(sql.interval).unwrap_or(interval);
                    timeout = over.timeout.or(sql.timeout).unwrap_or(timeout);
                }
                Source::Log(rules) => {
                    rules.log = format!("{name}.{}", rules.log);
                    log_id = Some(rules.log.clone());
                }
                Source::Http(http) => {
                    http.url = render_raw(&http.url, &params);
                    for header in http.headers.values_mut() {
                        *header = render_raw(header, &params);
                    }
                    for value in &mut http.values {
                        value.path = render_raw(&value.path, &params);
                        value.minus = value.minus.as_deref().map(|m| render_raw(m, &params));
                    }
                    interval = over.interval.or(http.interval).unwrap_or(interval);
                    timeout = over.timeout.or(http.timeout).unwrap_or(timeout);
                }
            }
            for alert in &mut signal.alerts {
                for selector in condition_selectors_mut(&mut alert.condition) {
                    for value in selector.values_mut() {
                        *value = render_raw(value, &params);
                    }
                }
                for key in [alert.name.clone(), format!("{}:{}", alert.name, alert.severity.as_str())] {
                    if let Some(o) = settings.alerts.get(&key) {
                        used_alert_overrides.insert(key.clone());
                        apply_alert_override(alert, o);
                    }
                }
            }
            let runbook_url =
                Some(runbook_url(&config.runbook_base_url, &pack.runbook, signal.runbook_section.as_deref()));
            signals.push(ResolvedSignal { pack: Some(name.clone()), signal, runbook_url, interval, timeout, log_id });
        }
        for key in settings.alerts.keys() {
            if !used_alert_overrides.contains(key) {
                errors.push(source.locate(&format!("{key}:"), format!("pack `{name}` has no alert `{key}`")));
            }
        }
        for id in settings.signals.keys() {
            if !pack.signals.iter().any(|s| &s.id == id) {
                errors.push(source.locate(id, format!("pack `{name}` has no signal `{id}`")));
            }
        }
        packs.push(PackInfo { name: name.clone(), title: pack.title.clone(), runbook: pack.runbook.clone() });
    }

    for (name, log) in &config.logs {
        logs.insert(name.clone(), log.clone());
    }
    for signal in &config.signals {
        let (interval, timeout, log_id) = match &signal.source {
            Source::Sql(sql) => {
                (sql.interval.unwrap_or(defaults.interval), sql.timeout.unwrap_or(defaults.timeout), None)
            }
            Source::Log(rules) => (defaults.interval, defaults.timeout, Some(rules.log.clone())),
            Source::Http(http) => {
                (http.interval.unwrap_or(defaults.interval), http.timeout.unwrap_or(defaults.timeout), None)
            }
        };
        let runbook_url = signal.runbook_section.as_ref().map(|s| {
            if s.starts_with("http://") || s.starts_with("https://") {
                s.clone()
            } else {
                format!("{}#{}", config.runbook_base_url.trim_end_matches('/'), heading_anchor(s))
            }
        });
        signals.push(ResolvedSignal { pack: None, signal: signal.clone(), runbook_url, interval, timeout, log_id });
    }

    if errors.is_empty() { Ok(Model { config, packs, logs, signals }) } else { Err(SpecErrors(errors)) }
}

fn apply_alert_override(alert: &mut Alert, o: &config::AlertOverride) {
    if let Some(t) = o.threshold {
        alert.threshold = t;
    }
    if let Some(f) = o.for_ {
        alert.for_ = f;
    }
    if let Some(s) = o.severity {
        alert.severity = s;
    }
    if let Some(e) = o.enabled {
        alert.enabled = e;
    }
    if let Some(w) = o.window
        && let Some(window) = alert.condition.window_mut()
    {
        *window = w;
    }
    if let (Some(m), Condition::Ratio(r)) = (o.min_events, &mut alert.condition) {
        r.min_events = m;
    }
}

fn condition_selectors_mut(condition: &mut Condition) -> Vec<&mut BTreeMap<String, String>> {
    match condition {
        Condition::GaugeRatio { numerator, denominator } => vec![&mut numerator.matchers, &mut denominator.matchers],
        Condition::Gauge(s) | Condition::Age(s) | Condition::Absent(s) => vec![&mut s.matchers],
        Condition::Ratio(w) | Condition::Increase(w) => vec![&mut w.matchers],
        Condition::Quantile(q) => vec![&mut q.matchers],
    }
}

/// Label matchers take parameter values verbatim (they are PromQL strings, escaped on output).
fn render_raw(text: &str, params: &BTreeMap<String, (ParamKind, String)>) -> String {
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

    const VALID: &str = "listen: 127.0.0.1:9187\ndatabase: {url_env: DATABASE_URL}\npacks:\n  token_refresh:\n    params:\n      tokens_table: mail.tokens\n    alerts:\n      IntegrationTokenRefreshTokensExpiring: {threshold: 30, for: 10m}\n";

    fn load(text: &str) -> Result<Model, SpecErrors> {
        Model::from_text(&SourceText { name: "spec.yaml".into(), text: text.into() })
    }

    #[test]
    fn errors_name_the_file_line_and_column() {
        let err = load("packs:\n  token_refresh:\n    alerts:\n      NoSuchAlert: {threshold: 1}\n").unwrap_err();
        assert_eq!(err.to_string(), "spec.yaml:4:7: pack `token_refresh` has no alert `NoSuchAlert`");
        let err = load("listen: 1\nlisten: 2\n").unwrap_err();
        assert!(err.to_string().starts_with("spec.yaml:2:"), "{err}");
        let err = load("packs:\n  token_refresh: {}\n").unwrap_err();
        assert!(err.to_string().contains("no `database:` section"), "{err}");
    }

    #[test]
    fn every_builtin_pack_loads() {
        let model = Model::builtin_defaults();
        assert_eq!(model.packs.len(), pack::BUILTIN.len());
        assert!(load(VALID).is_ok());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Arbitrary text is an error, never a panic.
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
            let _ = load(&text);
        }

        /// A valid spec with a slice cut out or junk put in: an error with a location, or a model.
        #[test]
        fn damaged_specs_never_panic(at in 0usize..VALID.len(), len in 0usize..20, junk in "[ \\n:{}\\[\\],'\"a-z0-9-]{0,8}") {
            let at = (0..=at).rev().find(|i| VALID.is_char_boundary(*i)).unwrap_or(0);
            let end = (at + len..=VALID.len()).find(|i| VALID.is_char_boundary(*i)).unwrap_or(VALID.len());
            let damaged = format!("{}{}{}", &VALID[..at], junk, &VALID[end..]);
            if let Err(errors) = load(&damaged) {
                for e in errors.0 {
                    prop_assert!(e.line >= 1 && e.column >= 1 && !e.message.is_empty());
                }
            }
        }
    }
}
