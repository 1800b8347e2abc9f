//! What can go wrong between the model and the files on disk: a query built here that PromQL's
//! parser refuses, a shape that does not serialize, a file that cannot be written. Returned, never
//! written into a generated file.

use std::fmt;
use std::path::PathBuf;

use super::promql::InvalidQuery;
use crate::spec::ResolvedSignal;

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// A generated expression the parser refuses. The spec's own queries are checked when it is
    /// loaded, so this names what was being built: the bug is in how its query was put together.
    #[error("{subject}: the generated query does not parse: {source}")]
    Query { subject: Box<Subject>, source: Box<InvalidQuery> },
    #[error("{file}: cannot serialize as YAML: {source}")]
    Yaml { file: PathBuf, source: serde_saphyr::SerializeError },
    #[error("{file}: cannot serialize as JSON: {source}")]
    Json { file: PathBuf, source: serde_json::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

impl GenerateError {
    pub fn query(subject: Subject, source: InvalidQuery) -> Self {
        // Boxed: the error stays small on the `Ok` path every builder returns through.
        Self::Query { subject: Box::new(subject), source: Box::new(source) }
    }
}

/// What a generated query belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    /// The pack of its signal (`None`: the user's own signals, or the exporter itself).
    pub pack: Option<String>,
    pub signal: Option<String>,
    pub item: Item,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// An alerting rule, by alert name.
    Alert(String),
    /// A recording rule, by the series it records.
    Record(String),
    /// A dashboard panel, by title.
    Panel(String),
}

impl Subject {
    pub fn new(pack: Option<&str>, signal: Option<&str>, item: Item) -> Self {
        Self { pack: pack.map(str::to_string), signal: signal.map(str::to_string), item }
    }

    pub fn of_signal(signal: &ResolvedSignal, item: Item) -> Self {
        Self::new(signal.pack.as_deref(), Some(&signal.signal.id), item)
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.item {
            Item::Alert(name) => write!(f, "alert `{name}`")?,
            Item::Record(name) => write!(f, "recording rule `{name}`")?,
            Item::Panel(title) => write!(f, "panel `{title}`")?,
        }
        if let Some(signal) = &self.signal {
            write!(f, " of signal `{signal}`")?;
        }
        if let Some(pack) = &self.pack {
            write!(f, " (pack `{pack}`)")?;
        }
        Ok(())
    }
}
