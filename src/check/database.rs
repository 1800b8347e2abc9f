//! `check --database`: every SQL signal's query is prepared (never executed) against the real
//! database over one connection, which proves each table and column it reads exists and its
//! result has the columns the metrics take.
//!
//! A table or column the database lacks is reported once, however many signals read it, with
//! the pack parameter that wrote the name (traced when the parameters were filled in), the
//! database's closest names and the line to put in the spec. A database that cannot be reached
//! is one line naming where and why.

use std::collections::BTreeSet;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgDatabaseError};
use sqlx::{AssertSqlSafe, Column, Executor, SqlSafeStr, Statement};

use super::catalog::Catalog;
use super::connect;
use super::names::{self, Chain};
use crate::sources::sql::secret::scrub;
use crate::spec::pack::{Origin, ParamKind};
use crate::spec::{LabelDef, Model, ResolvedSignal, Source};

/// One finding: what is wrong, and the lines that say where it comes from and what fixes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub headline: String,
    pub details: Vec<String>,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.headline)?;
        for line in &self.details {
            write!(f, "\n  {line}")?;
        }
        Ok(())
    }
}

impl Problem {
    fn one_line(headline: String) -> Problem {
        Problem { headline: scrub(&headline), details: Vec::new() }
    }
}

/// Line and column (1-based) of PostgreSQL's 1-based character position in the query.
fn position_in(query: &str, position: usize) -> (usize, usize) {
    let before: String = query.chars().take(position.saturating_sub(1)).collect();
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The byte offset of PostgreSQL's 1-based character position.
fn byte_at(query: &str, position: usize) -> Option<usize> {
    query.char_indices().nth(position.checked_sub(1)?).map(|(i, _)| i)
}

/// A name the database lacks, as the query wrote it.
#[derive(Debug, Clone, PartialEq)]
enum Missing {
    Relation(Chain),
    /// `qualifier` is what came before the column's name (`t` in `t.expires`), often nothing.
    Column {
        name: String,
        qualifier: Chain,
    },
}

/// One signal's query naming something the database lacks.
struct Miss<'a> {
    signal: &'a ResolvedSignal,
    missing: Missing,
    /// The pack parameter whose value is the missing name.
    origin: Option<&'a Origin>,
    /// Where in the query the server pointed (line, column).
    at: Option<(usize, usize)>,
    query: &'a str,
}

/// The missing name, from the query text at the error's position (a translated server message
/// quotes it otherwise), else from the message.
fn missing_in<'a>(
    signal: &'a ResolvedSignal,
    query: &'a str,
    origins: &'a [Origin],
    db: &PgDatabaseError,
) -> Option<Miss<'a>> {
    let position = match db.position() {
        Some(sqlx::postgres::PgErrorPosition::Original(p)) => Some(p),
        _ => None,
    };
    let byte = position.and_then(|p| byte_at(query, p));
    let chain = byte.and_then(|b| names::chain_at(query, b)).or_else(|| names::quoted_in_message(db.message()))?;
    let missing = match db.code() {
        "42P01" | "3F000" => Missing::Relation(chain),
        "42703" => {
            let (name, qualifier) = chain.split_last()?;
            Missing::Column { name: name.clone(), qualifier: qualifier.to_vec() }
        }
        _ => return None,
    };
    // The parameter whose value is the missing name; of several, the one the server pointed at.
    let wrote = |o: &&Origin| {
        o.kind == ParamKind::Identifier
            && match &missing {
                Missing::Relation(chain) => o.value.split('.').eq(chain.iter().map(String::as_str)),
                Missing::Column { name, .. } => o.value == *name,
            }
    };
    let from = byte.unwrap_or(0);
    let origin = origins.iter().filter(wrote).min_by_key(|o| (o.span.end <= from, o.span.start.abs_diff(from)));
    Some(Miss { signal, missing, origin, at: position.map(|p| position_in(query, p)), query })
}

/// What is missing, with the table a column was looked for in: the key misses are grouped by.
#[derive(Debug, Clone, PartialEq)]
enum What {
    Relation(Chain),
    Column { name: String, tables: Vec<(String, String)> },
}

impl What {
    fn of(miss: &Miss<'_>, catalog: Option<&Catalog>) -> What {
        match &miss.missing {
            Missing::Relation(chain) => What::Relation(chain.clone()),
            Missing::Column { name, qualifier } => {
                let tables = catalog.map(|c| tables_of(c, miss.query, qualifier)).unwrap_or_default();
                What::Column { name: name.clone(), tables }
            }
        }
    }

    fn headline(&self, catalog: Option<&Catalog>) -> String {
        let quoted = |t: &(String, String)| format!("\"{}\"", catalog.map_or_else(|| t.1.clone(), |c| c.display(t)));
        match self {
            What::Relation(chain) => format!("relation \"{}\" does not exist", chain.join(".")),
            What::Column { name, tables } => match tables.as_slice() {
                [] => format!("column \"{name}\" does not exist"),
                [table] => format!("column \"{name}\" of relation {} does not exist", quoted(table)),
                several => {
                    let names: Vec<String> = several.iter().map(quoted).collect();
                    format!("column \"{name}\" does not exist in relation {}", names.join(" or "))
                }
            },
        }
    }
}

/// The tables a column reference may belong to: those the query's `FROM` and `JOIN` name that
/// the database has; the one a qualifier (`t.` or `tokens.`) names, when there is one.
fn tables_of(catalog: &Catalog, query: &str, qualifier: &[String]) -> Vec<(String, String)> {
    let read: Vec<((String, String), Option<String>)> = names::from_references(query)
        .into_iter()
        .filter_map(|r| catalog.resolve(&r.name).map(|key| (key, r.alias)))
        .collect();
    let mut tables: Vec<(String, String)> = match qualifier {
        [] => read.into_iter().map(|(key, _)| key).collect(),
        [.., last] => {
            let named: Vec<_> = read
                .iter()
                .filter(|(key, alias)| alias.as_ref().map_or(&key.1 == last, |a| a == last))
                .map(|(key, _)| key.clone())
                .collect();
            if named.is_empty() { catalog.resolve(qualifier).into_iter().collect() } else { named }
        }
    };
    let mut seen = BTreeSet::new();
    tables.retain(|t| seen.insert(t.clone()));
    tables
}

/// Prepares every enabled SQL signal's query over one connection. `Err` is one line: the
/// database could not be reached, or stopped answering.
pub async fn check_database(
    model: &Model,
    options: &PgConnectOptions,
    connect_timeout: Duration,
) -> Result<Vec<Problem>, String> {
    let mut conn = connect::connect(options, connect_timeout).await.map_err(|e| e.to_string())?;
    let at = connect::address(options);
    let mut problems = Vec::new();
    let mut misses = Vec::new();
    for signal in model.enabled_signals() {
        let (Source::Sql(sql), Some(schedule)) = (&signal.signal.source, signal.schedule()) else { continue };
        let id = &signal.signal.id;
        // Bounded like a run: a database that stops answering must not hang `check`.
        let deadline = crate::sources::sql::deadline(schedule.timeout.0);
        let statement = AssertSqlSafe(sql.query.clone()).into_sql_str();
        let prepared = match tokio::time::timeout(deadline, conn.prepare(statement)).await {
            Ok(prepared) => prepared,
            Err(_) => {
                return Err(format!(
                    "the database at {at} did not answer within {} ms (preparing signal `{id}`'s query)",
                    deadline.as_millis()
                ));
            }
        };
        let described = match prepared {
            Ok(described) => described,
            Err(sqlx::Error::Database(db)) => {
                let pg = db.try_downcast_ref::<PgDatabaseError>();
                if let Some(miss) = pg.and_then(|pg| missing_in(signal, &sql.query, &sql.origins, pg)) {
                    misses.push(miss);
                    continue;
                }
                let mut message = db.message().to_string();
                if let Some(pg) = pg
                    && let Some(sqlx::postgres::PgErrorPosition::Original(pos)) = pg.position()
                {
                    let (line, column) = position_in(&sql.query, pos);
                    message = format!("query line {line}, column {column}: {message}");
                }
                problems.push(Problem::one_line(format!("signal `{id}`: {message}")));
                continue;
            }
            Err(e) => return Err(format!("lost the connection to the database at {at}: {}", connect::cause(&e))),
        };
        let columns: Vec<&str> = described.columns().iter().map(|c| c.name()).collect();
        for metric in &signal.signal.metrics {
            let value = metric.column.as_deref().unwrap_or("value");
            let needed = std::iter::once(value).chain(metric.labels.iter().map(LabelDef::name));
            for column in needed.filter(|c| !columns.contains(c)) {
                problems.push(Problem::one_line(format!(
                    "signal `{id}`: metric `{}` needs result column `{column}`, the query returns {columns:?}",
                    metric.name
                )));
            }
        }
    }
    if misses.is_empty() {
        return Ok(problems);
    }
    // Only now: a database that has every name never pays for reading its catalog.
    let catalog =
        match tokio::time::timeout(connect_timeout.max(Duration::from_secs(5)), Catalog::load(&mut conn)).await {
            Ok(Ok(catalog)) => Some(catalog),
            _ => None,
        };
    let mut groups: Vec<(What, Vec<Miss<'_>>)> = Vec::new();
    for miss in misses {
        let what = What::of(&miss, catalog.as_ref());
        match groups.iter_mut().find(|(w, _)| *w == what) {
            Some((_, group)) => group.push(miss),
            None => groups.push((what, vec![miss])),
        }
    }
    let mut out: Vec<Problem> = groups.iter().map(|(what, group)| report(what, group, catalog.as_ref())).collect();
    out.extend(problems);
    Ok(out)
}

/// A pack signal that is off unless the user switches it on: switching it off again is a fix.
fn opt_in(signal: &ResolvedSignal) -> bool {
    let Some(pack) = signal.pack.as_deref() else { return false };
    matches!(crate::spec::builtin_pack(pack), Some(Ok(def)) if def.signals.iter().any(|s| s.id == signal.signal.id && !s.enabled))
}

/// `packs: {a: {KEY: {x: V, y: V}}, b: {...}}`, as one line of YAML.
fn packs_yaml<'a>(key: &str, entries: impl Iterator<Item = (&'a str, String)>) -> String {
    let mut by_pack: Vec<(&str, Vec<String>)> = Vec::new();
    for (pack, entry) in entries {
        match by_pack.iter_mut().find(|(p, _)| *p == pack) {
            Some((_, list)) if list.contains(&entry) => {}
            Some((_, list)) => list.push(entry),
            None => by_pack.push((pack, vec![entry])),
        }
    }
    let packs: Vec<String> =
        by_pack.iter().map(|(pack, list)| format!("{pack}: {{{key}: {{{}}}}}", list.join(", "))).collect();
    format!("packs: {{{}}}", packs.join(", "))
}

fn report(what: &What, group: &[Miss<'_>], catalog: Option<&Catalog>) -> Problem {
    let signals: Vec<String> = group
        .iter()
        .map(|m| match (&m.signal.pack, m.at) {
            // The query is the user's own: where in it is theirs to find.
            (None, Some((line, column))) => format!("{} (query line {line}, column {column})", m.signal.signal.id),
            _ => m.signal.signal.id.clone(),
        })
        .collect();
    let read_by = match signals.as_slice() {
        [one] => format!("read by signal {one}"),
        many => format!("read by {} signals: {}", many.len(), many.join(", ")),
    };
    let headline = format!("{}, {read_by}", what.headline(catalog));
    let mut details = Vec::new();

    let params: Vec<(&str, &str)> = {
        let mut seen = Vec::new();
        for m in group {
            if let (Some(pack), Some(origin)) = (&m.signal.pack, m.origin)
                && !seen.contains(&(pack.as_str(), origin.param.as_str()))
            {
                seen.push((pack.as_str(), origin.param.as_str()));
            }
        }
        seen
    };
    let from_packs = group.iter().all(|m| m.signal.pack.is_some());
    let named: Vec<String> = params.iter().map(|(pack, param)| format!("`{param}` of pack `{pack}`")).collect();
    details.push(match (named.as_slice(), from_packs) {
        ([one], _) => format!("the name comes from parameter {one}"),
        ([], true) => "the pack's query names it itself (no parameter sets it)".to_string(),
        ([], false) => "the name is written in the signal's own query".to_string(),
        (several, _) => format!("the name comes from parameters {}", several.join(", ")),
    });

    let suggestions: Vec<(String, usize)> = match (what, catalog) {
        (_, None) => Vec::new(),
        (What::Relation(chain), Some(c)) => c.similar_tables(chain),
        (What::Column { name, tables }, Some(c)) if tables.len() == 1 => c.similar_columns(&tables[0], name),
        // Of several tables, each column is named with its table.
        (What::Column { name, tables }, Some(c)) => tables
            .iter()
            .flat_map(|t| c.similar_columns(t, name).into_iter().map(|(col, d)| (format!("{}.{col}", c.display(t)), d)))
            .collect(),
    };
    let listed: Vec<String> = suggestions.iter().map(|(name, d)| format!("{name} ({d})")).collect();
    details.push(match (what, catalog) {
        (_, None) => "the database's catalog could not be read, so no similar names are suggested".to_string(),
        (What::Relation(_), Some(_)) if listed.is_empty() => {
            "no table or view of the database has a similar name".to_string()
        }
        (What::Relation(_), Some(_)) => {
            format!("closest tables of the database (edit distance): {}", listed.join(", "))
        }
        (What::Column { tables, .. }, Some(c)) => match (tables.as_slice(), listed.is_empty()) {
            ([], _) => "the query's tables could not be told, so no similar columns are suggested".to_string(),
            ([table], true) => {
                let columns = c.columns(table);
                let shown: Vec<&str> = columns.iter().take(20).map(String::as_str).collect();
                let more = if columns.len() > shown.len() { ", ..." } else { "" };
                format!("{} has no column of a similar name; its columns: {}{more}", c.display(table), shown.join(", "))
            }
            (_, true) => "none of those tables has a column of a similar name".to_string(),
            ([table], false) => {
                format!("closest columns of {} (edit distance): {}", c.display(table), listed.join(", "))
            }
            (_, false) => format!("closest columns of those tables (edit distance): {}", listed.join(", ")),
        },
    });

    if from_packs {
        let off = packs_yaml(
            "signals",
            group.iter().filter_map(|m| {
                Some((m.signal.pack.as_deref()?, format!("{}: {{enabled: false}}", m.signal.signal.id)))
            }),
        );
        let them = if group.len() == 1 { "signal" } else { "signals" };
        // A column of one of several tables is named with its table: no value to set as is.
        let best = match what {
            What::Column { tables, .. } if tables.len() != 1 => None,
            _ => suggestions.first(),
        };
        let offer_off = best.is_none() || group.iter().any(|m| opt_in(m.signal));
        let fix = match (best, params.is_empty()) {
            (Some((best, _)), false) => {
                let set = packs_yaml("params", params.iter().map(|(pack, param)| (*pack, format!("{param}: {best}"))));
                if offer_off { format!("fix: {set}, or switch the {them} off: {off}") } else { format!("fix: {set}") }
            }
            (None, false) => format!(
                "fix: set {} to the name this database uses, or switch the {them} off: {off}",
                named.join(" and ")
            ),
            (_, true) => format!("fix: switch the {them} off where the database has none: {off}"),
        };
        details.push(fix);
    }
    Problem { headline: scrub(&headline), details: details.iter().map(|d| scrub(d)).collect() }
}
