//! The triage report as text (pack by pack in the runbook's order, the sources after) or JSON.
//! Colours only when asked for: the caller gives them when stdout is a terminal and `NO_COLOR`
//! is unset, so a piped report or a CI log holds no escape codes.

use std::fmt::Write;
use std::io::IsTerminal;
use std::path::Path;

use super::Diagnosis;
use crate::spec::Model;
use crate::verdict::{Finding, Level};

/// How the report is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// Whether stdout takes colours: a terminal, and `NO_COLOR` unset or empty.
pub fn colours_on_stdout() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// A piece of text, coloured when colours are on.
struct Paint(bool);

impl Paint {
    fn level(&self, level: Level, text: &str) -> String {
        let code = match level {
            Level::Critical => "1;31",
            Level::Warning => "1;33",
            Level::Unknown => "35",
            Level::Ok => "32",
        };
        self.code(code, text)
    }

    fn dim(&self, text: &str) -> String {
        self.code("2", text)
    }

    fn bold(&self, text: &str) -> String {
        self.code("1", text)
    }

    fn code(&self, code: &str, text: &str) -> String {
        if self.0 { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
    }
}

/// `ok`, `WARNING`, `CRITICAL`, `UNKNOWN`: the ones to act on stand out without colours too.
/// A condition one reading cannot judge is `unknown` in lower case: nothing failed.
fn word(f: &Finding) -> String {
    match f.verdict {
        Level::Ok => "ok".into(),
        Level::Unknown if !f.source_blind() => "unknown".into(),
        other => other.as_str().to_uppercase(),
    }
}

fn when(at: f64) -> String {
    chrono::DateTime::from_timestamp(at.floor() as i64, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| format!("{at}"))
}

/// The report of `diagnosis`, read from `spec`.
pub fn render(model: &Model, spec: &Path, diagnosis: &Diagnosis, format: Format, colours: bool) -> String {
    match format {
        Format::Json => json(spec, diagnosis),
        Format::Text => text(model, spec, diagnosis, &Paint(colours)),
    }
}

fn json(spec: &Path, d: &Diagnosis) -> String {
    let doc = serde_json::json!({
        "spec": spec.display().to_string(),
        "at": chrono::DateTime::from_timestamp(d.at.floor() as i64, 0).map(|t| t.to_rfc3339()),
        "status": d.status,
        "checks": d.checks,
        "sources": d.sources,
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}

fn text(model: &Model, spec: &Path, d: &Diagnosis, paint: &Paint) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} {} at {}", paint.bold("diagnose"), spec.display(), when(d.at));
    let name_width = d.checks.iter().filter_map(|f| f.alert.as_ref()).map(|a| a.chars().count()).max().unwrap_or(0);
    let value_width = d.checks.iter().map(|f| f.value_text.chars().count()).max().unwrap_or(1).min(16);
    let mut pack: Option<Option<&str>> = None;
    for f in &d.checks {
        if pack != Some(f.pack.as_deref()) {
            pack = Some(f.pack.as_deref());
            let heading = match model.packs.iter().find(|p| Some(p.name.as_str()) == f.pack.as_deref()) {
                Some(p) => format!("{} ({})", p.title, p.runbook),
                None => "Your own signals".to_string(),
            };
            let _ = writeln!(out, "\n{}", paint.bold(&heading));
        }
        check(&mut out, f, name_width, value_width, paint);
    }
    if !d.sources.is_empty() {
        let _ = writeln!(out, "\n{}", paint.bold("Sources"));
        // Every failure and every log on its own line (a log's line says how much of it was
        // read); queries and endpoints that answered, one line per kind.
        let shown: Vec<_> = d.sources.iter().filter(|s| !s.ok || s.kind == "log" || s.kind == "database").collect();
        let name_width = shown.iter().map(|s| s.name.chars().count()).max().unwrap_or(0);
        for s in shown {
            let state = if s.ok { paint.level(Level::Ok, "ok    ") } else { paint.level(Level::Unknown, "FAILED") };
            let _ = writeln!(out, "  {state}  {:<8}  {:<name_width$}  {}", s.kind, s.name, s.detail);
        }
        for (kind, what) in [("sql", "queries"), ("http", "endpoints")] {
            let answered = d.sources.iter().filter(|s| s.ok && s.kind == kind).count();
            if answered > 0 {
                let _ = writeln!(out, "  {}  {kind:<8}  {answered} {what} answered", paint.level(Level::Ok, "ok    "));
            }
        }
    }
    let count = |level: Level| d.checks.iter().filter(|f| f.verdict == level).count();
    let _ = writeln!(
        out,
        "\n{} critical, {} warning, {} unknown, {} ok: exit status {}",
        count(Level::Critical),
        count(Level::Warning),
        count(Level::Unknown),
        count(Level::Ok),
        d.status
    );
    out
}

fn check(out: &mut String, f: &Finding, name_width: usize, value_width: usize, paint: &Paint) {
    let name = f.alert.as_deref().unwrap_or(&f.title);
    let verdict = paint.level(f.verdict, &format!("{:<8}", word(f)));
    let _ = writeln!(out, "  {verdict}  {name:<name_width$}  {:<value_width$}  {}", f.value_text, f.threshold);
    if f.verdict == Level::Ok {
        return;
    }
    let detail = |out: &mut String, label: &str, text: &str| {
        let _ = writeln!(out, "            {}  {text}", paint.dim(&format!("{label:<7}")));
    };
    let why = if f.series.is_empty() { f.why.clone() } else { format!("{} [{}]", f.why, f.series) };
    detail(out, "why", &why);
    if f.verdict == Level::Unknown {
        return;
    }
    if let Some(step) = &f.step {
        detail(out, "next", step);
    }
    if let Some(url) = &f.runbook_url {
        detail(out, "runbook", url);
    }
}
