//! The spec: what to read, what to export, what to alert on. Built-in packs and the user's file
//! are merged here into one [`Model`] that every source and generator reads.

pub mod config;
pub mod duration;
pub mod listen;
mod locate;
pub mod model;
pub mod pack;
mod resolve;
pub mod schema;
pub mod source_kind;
mod timing;
mod validate;
pub mod yaml_error;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub use config::Config;
pub use duration::PromDuration;
pub use model::*;
pub use pack::Pack;

use locate::Locator;

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
    /// Best position for an error about a nested key: each of `path` is looked for, as a whole
    /// word, after the previous one (`["packs", "token_refresh", "signals", id, "interval"]`), so
    /// the same key under another parent is not taken for it. Stops at the deepest one found.
    pub fn locate_path(&self, path: &[&str], message: impl Into<String>) -> SpecError {
        Locator::new(self).locate_path(path, message)
    }

    /// Best position for an error about `needle`: its first occurrence, or the top of the file.
    pub fn locate(&self, needle: &str, message: impl Into<String>) -> SpecError {
        Locator::new(self).locate(needle, message)
    }
}

fn parse_yaml<T: serde::de::DeserializeOwned>(source: &SourceText) -> Result<T, SpecError> {
    serde_saphyr::from_str(&source.text).map_err(|e| {
        let (at, message) = yaml_error::describe(&e);
        let (line, column) = at.unwrap_or((1, 1));
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
    /// How the source runs, with what only its kind has.
    pub source: ResolvedSource,
    /// For a signal that reads a database: each database it reads, with the query it runs
    /// there (a pack enabled once per database fills its parameters per database). Empty for
    /// the other kinds.
    pub databases: Vec<DatabaseBinding>,
}

/// One database a SQL signal reads, and its query there.
#[derive(Clone, Debug, PartialEq)]
pub struct DatabaseBinding {
    /// The database's name (`default` for `database:`).
    pub database: String,
    /// The query with the parameters of the pack's enabling on that database.
    pub query: String,
}

/// How a signal's source runs once packs and overrides are applied.
#[derive(Clone, Debug, PartialEq)]
pub enum ResolvedSource {
    /// Polled (a query, an endpoint): every `interval`, each poll given up after `timeout`.
    Polled(Schedule),
    /// Fed by the lines of log source `log` (its full id, `<pack>.<name>` for a pack's).
    Log { log: String },
}

/// When a polled source runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    pub interval: PromDuration,
    pub timeout: PromDuration,
}

impl ResolvedSignal {
    /// The schedule of a polled signal; `None` for a log signal.
    pub fn schedule(&self) -> Option<Schedule> {
        match &self.source {
            ResolvedSource::Polled(schedule) => Some(*schedule),
            ResolvedSource::Log { .. } => None,
        }
    }

    /// The log source a log signal reads; `None` for a polled one.
    pub fn log_id(&self) -> Option<&str> {
        match &self.source {
            ResolvedSource::Log { log } => Some(log),
            ResolvedSource::Polled(_) => None,
        }
    }
}

/// An enabled pack, for dashboards and the catalog.
#[derive(Clone, Debug, PartialEq)]
pub struct PackInfo {
    pub name: String,
    pub title: String,
    pub runbook: String,
    /// The next step for each alert, in the runbook's order.
    pub playbook: Vec<pack::PlaybookStep>,
}

/// A spec is kilobytes; the YAML budget stops a huge one anyway, this stops it before it is read.
const MAX_SPEC_BYTES: u64 = 64 << 20;

/// Everything the exporter and the generators need, resolved from one file.
#[derive(Clone, Debug)]
pub struct Model {
    pub config: Config,
    pub packs: Vec<PackInfo>,
    pub logs: BTreeMap<String, LogFiles>,
    pub signals: Vec<ResolvedSignal>,
    /// Where the spec sets `listen` (`file:line:col`), for the error when it cannot be bound,
    /// which only `serve` finds, long after the text was read. `None` when it is not set.
    pub listen_at: Option<String>,
}

impl Model {
    /// Reads and validates a spec file.
    pub fn load(path: &Path) -> Result<Model, SpecErrors> {
        let text = crate::bounded_read::read_to_string(path, MAX_SPEC_BYTES).map_err(|e| {
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
        // Indexed once: every error below is located in it.
        let at = Locator::new(source);
        let mut model = resolve::resolve(config, &at)?;
        validate::validate(&model, &at)?;
        model.listen_at = listen::place(source);
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

    /// Every enabled SLO with its signal.
    pub fn slos(&self) -> impl Iterator<Item = (&ResolvedSignal, &Slo)> {
        self.enabled_signals().filter_map(|s| s.signal.slo.as_ref().filter(|slo| slo.enabled).map(|slo| (s, slo)))
    }

    /// Every metric family with the signal that exports it.
    pub fn metrics(&self) -> impl Iterator<Item = (&ResolvedSignal, &MetricDef)> {
        self.enabled_signals().flat_map(|s| s.signal.metrics.iter().map(move |m| (s, m)))
    }

    pub fn metric(&self, name: &str) -> Option<&MetricDef> {
        self.metrics().find(|(_, m)| m.name == name).map(|(_, m)| m)
    }

    /// The model as seen from one database: its SQL signals are those bound to it, each with
    /// its query there; other signals are kept as they are. What one pool's tasks and one
    /// database's check run.
    pub fn for_database(&self, name: &str) -> Model {
        let mut model = self.clone();
        model.signals.retain_mut(|s| {
            if s.databases.is_empty() {
                return true;
            }
            let Some(binding) = s.databases.iter().find(|b| b.database == name).cloned() else {
                return false;
            };
            if let Source::Sql(sql) = &mut s.signal.source {
                sql.query = binding.query.clone();
            }
            s.databases = vec![binding];
            true
        });
        model
    }

    /// The label naming the database on series read from one, when there is more than one.
    pub fn database_label(&self) -> Option<&str> {
        self.config.labels_databases().then_some(self.config.database_label.as_str())
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

/// The anchor GitHub renders for a heading: lower case, every character that is not a letter,
/// mark, decimal digit, connector (`_`), `-` or space dropped, then spaces to dashes. A symbol
/// vanishes but the space after it stays: `🚨 Alert Thresholds` is `-alert-thresholds`, and a
/// heading whose emoji were mis-encoded keeps the letters they became (`üö-alert-thresholds`).
pub fn heading_anchor(heading: &str) -> String {
    static DROPPED: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"[^\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\- ]").expect("a valid constant pattern")
    });
    DROPPED.replace_all(&heading.trim().to_lowercase(), "").replace(' ', "-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const VALID: &str = "listen: 127.0.0.1:29187\ndatabase: {url_env: DATABASE_URL}\npacks:\n  token_refresh:\n    params:\n      tokens_table: mail.tokens\n    alerts:\n      IntegrationTokenRefreshTokensExpiring: {threshold: 30, for: 10m}\n";

    fn load(text: &str) -> Result<Model, SpecErrors> {
        Model::from_text(&SourceText { name: "spec.yaml".into(), text: text.into() })
    }

    #[test]
    fn errors_name_the_file_line_and_column() {
        let err = load("packs:\n  token_refresh:\n    alerts:\n      NoSuchAlert: {threshold: 1}\n").unwrap_err();
        assert_eq!(err.to_string(), "spec.yaml:4:7: pack `token_refresh` has no alert `NoSuchAlert`");
        let err = load("listen: 127.0.0.1:1\nlisten: 127.0.0.1:2\n").unwrap_err();
        assert!(err.to_string().starts_with("spec.yaml:2:"), "{err}");
        let err = load("packs:\n  token_refresh: {}\n").unwrap_err();
        assert!(err.to_string().contains("no `database:` section"), "{err}");
    }

    #[test]
    fn heading_anchors_are_the_ones_github_renders() {
        for (heading, anchor) in [
            ("Runbook 1 — API Rate-Limit Exceeded", "runbook-1--api-rate-limit-exceeded"),
            ("🚨 Alert Thresholds", "-alert-thresholds"),
            ("\u{f8ff}üö® Alert Thresholds", "üö-alert-thresholds"),
            ("‚úÖ Prevention Mechanisms Implemented", "úö-prevention-mechanisms-implemented"),
            ("If You See This Error:", "if-you-see-this-error"),
            (
                "1. **Workflow Keep-Alive** (`.github/workflows/keep-alive.yml`)",
                "1-workflow-keep-alive-githubworkflowskeep-aliveyml",
            ),
            ("Issue: Webhooks Expired", "issue-webhooks-expired"),
            ("x² and ½", "x-and-"),
        ] {
            assert_eq!(heading_anchor(heading), anchor, "{heading}");
        }
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
