//! `check --database`: every SQL signal's query is prepared (never executed) against the real
//! database, which proves each table and column it reads exists and its result has the columns
//! the metrics take.

use sqlx::postgres::{PgDatabaseError, PgPool};
use sqlx::{AssertSqlSafe, Column, Executor, SqlSafeStr, Statement};

use crate::sources::sql::secret::scrub;
use crate::spec::pack::ParamKind;
use crate::spec::{LabelDef, Model, ResolvedSignal, Source, builtin_pack};

/// One problem found in the database, naming the signal and the place in its query.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryProblem {
    pub signal: String,
    pub message: String,
}

impl std::fmt::Display for QueryProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "signal `{}`: {}", self.signal, self.message)
    }
}

fn position_in(query: &str, byte_or_char: usize) -> (usize, usize) {
    // PostgreSQL reports a 1-based character position.
    let before: String = query.chars().take(byte_or_char.saturating_sub(1)).collect();
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

pub async fn check_database(model: &Model, pool: &PgPool) -> Vec<QueryProblem> {
    let mut problems = Vec::new();
    for signal in model.enabled_signals() {
        let (Source::Sql(sql), Some(schedule)) = (&signal.signal.source, signal.schedule()) else { continue };
        let id = signal.signal.id.clone();
        // Bounded like a run: a database that stops answering must not hang `check`.
        let deadline = crate::sources::sql::deadline(schedule.timeout.0);
        let prepared =
            match tokio::time::timeout(deadline, pool.prepare(AssertSqlSafe(sql.query.clone()).into_sql_str())).await {
                Ok(prepared) => prepared,
                Err(_) => {
                    problems.push(QueryProblem {
                        signal: id,
                        message: format!("the database did not answer within {} ms", deadline.as_millis()),
                    });
                    continue;
                }
            };
        match prepared {
            Err(sqlx::Error::Database(db)) => {
                let mut message = db.message().to_string();
                if let Some(pg) = db.try_downcast_ref::<PgDatabaseError>()
                    && let Some(sqlx::postgres::PgErrorPosition::Original(pos)) = pg.position()
                {
                    let (line, column) = position_in(&sql.query, pos);
                    message = format!("query line {line}, column {column}: {message}");
                }
                if let Some(fix) = remedy(model, signal, db.message()) {
                    message = format!("{message}; {fix}");
                }
                problems.push(QueryProblem { signal: id, message: scrub(&message) });
            }
            Err(e) => {
                problems.push(QueryProblem { signal: id, message: scrub(&format!("cannot check the query: {e}")) })
            }
            Ok(described) => {
                let columns: Vec<&str> = described.columns().iter().map(|c| c.name()).collect();
                for metric in &signal.signal.metrics {
                    let value = metric.column.as_deref().unwrap_or("value");
                    let needed = std::iter::once(value).chain(metric.labels.iter().map(LabelDef::name));
                    for column in needed {
                        if !columns.contains(&column) {
                            problems.push(QueryProblem {
                                signal: id.clone(),
                                message: format!(
                                    "metric `{}` needs result column `{column}`, the query returns {columns:?}",
                                    metric.name
                                ),
                            });
                        }
                    }
                }
            }
        }
    }
    problems
}

/// What fixes a pack's query that names a table or column this database does not have: the
/// parameter that names it (the schema calls it something else), or switching the signal off
/// (the schema has no such thing, as a pack may read a column its runbook never shows).
fn remedy(model: &Model, signal: &ResolvedSignal, error: &str) -> Option<String> {
    let pack_name = signal.pack.as_deref()?;
    let pack = builtin_pack(pack_name)?.ok()?;
    let Source::Sql(sql) = &pack.signals.iter().find(|s| s.id == signal.signal.id)?.source else { return None };
    // PostgreSQL names what is missing in quotes: `column "x" does not exist`, `relation "s.t" ...`.
    let missing = error.split('"').nth(1).filter(|_| error.contains("does not exist"))?;
    let set = model.config.packs.get(pack_name).map(|s| &s.params);
    let named = sql
        .query
        .split("{{")
        .skip(1)
        .filter_map(|p| p.split_once("}}").map(|(name, _)| name.trim()))
        .filter_map(|name| {
            let def = pack.params.get(name).filter(|d| d.kind == ParamKind::Identifier)?;
            let value = set.and_then(|s| s.get(name)).unwrap_or(&def.default).to_string();
            let hit = value == missing || value.rsplit('.').next() == Some(missing);
            hit.then_some((name, value))
        })
        .next();
    let off = format!("`packs: {{{pack_name}: {{signals: {{{}: {{enabled: false}}}}}}}}`", signal.signal.id);
    Some(match named {
        Some((param, value)) => format!(
            "if it has another name here, set parameter `{param}` (now `{value}`): `packs: {{{pack_name}: {{params: {{{param}: <name>}}}}}}`; if there is none, switch the signal off: {off}"
        ),
        None => format!("no parameter names it; switch the signal off: {off}"),
    })
}
