//! `check --database`: every SQL signal's query is prepared (never executed) against the real
//! database, which proves each table and column it reads exists and its result has the columns
//! the metrics take.

use sqlx::postgres::{PgDatabaseError, PgPool};
use sqlx::{AssertSqlSafe, Column, Executor, SqlSafeStr, Statement};

use crate::sources::sql::secret::scrub;
use crate::spec::pack::ParamKind;
use crate::spec::{LabelDef, Model, ResolvedSignal, Source};

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

/// What fixes a pack signal whose query names a table or column the database lacks: the pack
/// parameter that holds the missing name, set to the database's own, or the signal switched off.
/// `None` for the user's own signals (their query is theirs to edit) and other errors.
fn fix_for(model: &Model, signal: &ResolvedSignal, message: &str) -> Option<String> {
    let pack = signal.pack.as_deref()?;
    let missing = ["column \"", "relation \""]
        .iter()
        .find_map(|kind| message.strip_prefix(kind))
        .and_then(|rest| rest.strip_suffix("\" does not exist"))?;
    let off = format!("`packs: {{{pack}: {{signals: {{{}: {{enabled: false}}}}}}}}`", signal.signal.id);
    let def = match crate::spec::builtin_pack(pack) {
        Some(Ok(def)) => def,
        _ => return Some(format!("or switch the signal off: {off}")),
    };
    let template = def.signals.iter().find(|s| s.id == signal.signal.id).and_then(|s| match &s.source {
        Source::Sql(sql) => Some(sql.query.clone()),
        _ => None,
    });
    let settings = model.config.packs.get(pack);
    let holding: Vec<String> = template
        .iter()
        .flat_map(|query| query.split("{{").skip(1).filter_map(|p| p.split_once("}}")).map(|(name, _)| name.trim()))
        .filter(|name| def.params.get(*name).is_some_and(|p| p.kind == ParamKind::Identifier))
        .filter_map(|name| {
            let value = settings.and_then(|s| s.params.get(name)).unwrap_or(&def.params[name].default).to_string();
            (value == missing).then(|| format!("`{name}`"))
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    Some(match holding.as_slice() {
        [] => format!("the signal needs it; switch the signal off where the database has none: {off}"),
        names => format!(
            "set pack parameter {} of `{pack}` to the name this database uses, or switch the signal off: {off}",
            names.join(" or ")
        ),
    })
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
                if let Some(fix) = fix_for(model, signal, db.message()) {
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
