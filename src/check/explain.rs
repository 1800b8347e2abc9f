//! `check --database --explain`: each SQL signal's query (a shared scan once, with its readers) planned by the database
//! (`EXPLAIN (FORMAT JSON)`, never run unless `--analyze` asks), with the plan's cost and
//! estimated rows, and a warning for each sequential scan of a large table naming the columns
//! the query filters or sorts that table on and the index that would help.
//!
//! Advice only: the user owns the schema, so nothing is ever created. Each query is planned in a
//! read-only transaction under the signal's own `statement_timeout`, as a collection runs it.

use std::time::Duration;

use serde_json::Value;
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Row};

use super::connect;
use crate::spec::{Model, Source};

/// A sequential scan of a table with at least this many rows (`pg_class.reltuples`) is warned
/// about: below it a whole read costs less than an index's upkeep.
pub const LARGE_TABLE_ROWS: f64 = 10_000.0;

/// A scan whose filter is estimated to keep more than this share of the table's rows reads most of
/// it anyway: an index would not make it cheaper, so none is advised.
const SELECTIVE_SHARE: f64 = 0.1;

/// How to plan: estimates only, or also executing each query (`EXPLAIN ANALYZE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Estimate,
    /// Runs each query (still read-only) and reports its execution time.
    Analyze,
}

/// One query's plan, or why it could not be planned: a signal's own, or a shared scan's, planned
/// once for all its readers (as a collection runs it once).
#[derive(Debug, Clone, PartialEq)]
pub struct Explained {
    /// The signal, or the first reader of the scan.
    pub signal: String,
    /// The shared scan (`<pack>.<scan>`) and every enabled signal that reads it.
    pub scan: Option<(String, Vec<String>)>,
    pub outcome: Result<Planned, String>,
}

impl Explained {
    /// How the output names the query.
    fn what(&self) -> String {
        match &self.scan {
            None => format!("signal `{}`", self.signal),
            Some((scan, readers)) => {
                let readers: Vec<String> = readers.iter().map(|r| format!("`{r}`")).collect();
                format!("scan `{scan}` (read by {})", readers.join(", "))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// The top node's total cost, in the planner's units.
    pub total_cost: f64,
    /// The top node's estimated rows.
    pub rows: f64,
    /// Execution time in milliseconds, with [`Mode::Analyze`].
    pub executed_ms: Option<f64>,
    pub warnings: Vec<SeqScanWarning>,
}

/// A sequential scan of a large table.
#[derive(Debug, Clone, PartialEq)]
pub struct SeqScanWarning {
    pub schema: String,
    pub table: String,
    pub reltuples: f64,
    /// The rows the planner expects the scan to keep.
    pub kept: f64,
    /// Columns of the table the query filters (first) or sorts on, in order of appearance.
    pub columns: Vec<String>,
    /// Of `columns`, those that already lead an index: the planner chose to read the table anyway.
    pub indexed: Vec<String>,
}

impl std::fmt::Display for SeqScanWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let table = format!("{}.{}", quote(&self.schema), quote(&self.table));
        write!(f, "warning: sequential scan of {table} ({:.0} rows)", self.reltuples)?;
        if self.columns.is_empty() {
            return write!(f, " with no filter or sort on its columns: an index would not help");
        }
        write!(f, ", filtering or sorting on {}", self.columns.join(", "))?;
        if self.kept > self.reltuples * SELECTIVE_SHARE {
            return write!(
                f,
                "\n    the filter keeps about {:.0} of its rows: an index would not help; reading less needs a narrower query",
                self.kept
            );
        }
        let fresh: Vec<&String> = self.columns.iter().filter(|c| !self.indexed.contains(c)).collect();
        if fresh.is_empty() {
            // An index exists: the filter keeps too many rows, or the statistics are stale.
            return write!(
                f,
                "\n    an index on {} exists; the planner reads the table anyway (the filter keeps many rows, or run ANALYZE {table})",
                self.indexed.join(", ")
            );
        }
        let list: Vec<String> = fresh.iter().map(|c| quote(c)).collect();
        write!(f, "\n    an index may help (advice only): CREATE INDEX ON {table} ({});", list.join(", "))
    }
}

/// A name as SQL must write it: bare when it is a plain lower-case identifier.
fn quote(name: &str) -> String {
    let plain = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain { name.to_string() } else { format!("\"{}\"", name.replace('"', "\"\"")) }
}

/// Plans every enabled SQL signal's query over `conn`. `Err` is one line: the database stopped
/// answering.
pub async fn explain_all(
    conn: &mut PgConnection,
    model: &Model,
    mode: Mode,
    at: &str,
) -> Result<Vec<Explained>, String> {
    let mut out: Vec<Explained> = Vec::new();
    let mut planned_scans: Vec<(String, String)> = Vec::new();
    for signal in model.enabled_signals() {
        let (Source::Sql(sql), Some(schedule)) = (&signal.signal.source, signal.schedule()) else { continue };
        let id = signal.signal.id.clone();
        let scan = match &sql.scan {
            // A scan runs once for its readers; its plan is the same whoever reads it.
            Some(scan) if planned_scans.contains(&(scan.clone(), sql.query.clone())) => {
                let seen = out.iter_mut().filter_map(|e| e.scan.as_mut()).find(|(s, _)| s == scan);
                if let Some((_, readers)) = seen {
                    readers.push(id);
                }
                continue;
            }
            Some(scan) => {
                planned_scans.push((scan.clone(), sql.query.clone()));
                Some((scan.clone(), vec![id.clone()]))
            }
            None => None,
        };
        let deadline = crate::sources::sql::deadline(schedule.timeout.0);
        let planned = tokio::time::timeout(deadline, plan(conn, &sql.query, schedule.timeout.0, mode)).await;
        let outcome = match planned {
            Err(_) => {
                return Err(format!(
                    "the database at {at} did not answer within {} ms (explaining signal `{id}`'s query)",
                    deadline.as_millis()
                ));
            }
            Ok(Err(sqlx::Error::Database(db))) => Err(db.message().to_string()),
            Ok(Err(e)) => {
                return Err(format!("lost the connection to the database at {at}: {}", connect::cause(&e)));
            }
            Ok(Ok(plan)) => match warnings(conn, &plan).await {
                Ok(warnings) => Ok(summary(&plan, warnings)),
                Err(e) => Err(format!("cannot read the catalog: {}", connect::cause(&e))),
            },
        };
        out.push(Explained { signal: id, scan, outcome });
    }
    Ok(out)
}

/// The `EXPLAIN` output, read-only and bounded like a collection.
async fn plan(conn: &mut PgConnection, query: &str, timeout: Duration, mode: Mode) -> Result<Value, sqlx::Error> {
    let options = match mode {
        Mode::Estimate => "VERBOSE, FORMAT JSON",
        // VERBOSE: only then does a scan name its table's schema. Per-node timing costs a clock
        // read per row; the total is what is wanted.
        Mode::Analyze => "ANALYZE, TIMING OFF, VERBOSE, FORMAT JSON",
    };
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    sqlx::query("SET TRANSACTION READ ONLY").execute(&mut *tx).await?;
    let set_timeout = format!("SET LOCAL statement_timeout = {}", timeout.as_millis().max(1));
    sqlx::query(AssertSqlSafe(set_timeout)).execute(&mut *tx).await?;
    let row = sqlx::query(AssertSqlSafe(format!("EXPLAIN ({options}) {query}"))).fetch_one(&mut *tx).await?;
    // `json` is not a type sqlx decodes without its json feature; its wire form is the text.
    let text: String = row.try_get_unchecked(0)?;
    tx.rollback().await?;
    serde_json::from_str(&text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn summary(plan: &Value, warnings: Vec<SeqScanWarning>) -> Planned {
    let top = &plan[0];
    Planned {
        total_cost: top["Plan"]["Total Cost"].as_f64().unwrap_or(0.0),
        rows: top["Plan"]["Plan Rows"].as_f64().unwrap_or(0.0),
        executed_ms: top["Execution Time"].as_f64(),
        warnings,
    }
}

/// A sequential scan in a plan, with the sort keys of the nodes above it.
#[derive(Debug, Clone, PartialEq)]
struct SeqScan {
    schema: String,
    table: String,
    /// The rows the planner expects the scan to return.
    rows: f64,
    /// The scan's filter, then the sort keys above it: where its columns are looked for.
    expressions: Vec<String>,
}

fn seq_scans(node: &Value, sorts: &[String], out: &mut Vec<SeqScan>) {
    let mut sorts = sorts.to_vec();
    for key in ["Sort Key", "Group Key"] {
        if let Some(keys) = node[key].as_array() {
            sorts.extend(keys.iter().filter_map(Value::as_str).map(str::to_string));
        }
    }
    if node["Node Type"].as_str() == Some("Seq Scan")
        && let (Some(table), Some(schema)) = (node["Relation Name"].as_str(), node["Schema"].as_str())
    {
        let mut expressions: Vec<String> = node["Filter"].as_str().map(str::to_string).into_iter().collect();
        expressions.extend(sorts.iter().cloned());
        let rows = node["Plan Rows"].as_f64().unwrap_or(0.0);
        out.push(SeqScan { schema: schema.to_string(), table: table.to_string(), rows, expressions });
    }
    for child in node["Plans"].as_array().into_iter().flatten() {
        seq_scans(child, &sorts, out);
    }
}

/// The identifiers in a plan expression, string literals left out (`'degraded'::text` names no
/// column), quotes removed, in order.
fn identifiers(expression: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = expression.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            // '' inside a literal is a quote, and reads as the literal ending and a new one opening.
            for d in chars.by_ref() {
                if d == '\'' {
                    break;
                }
            }
        } else if c == '"' {
            let mut name = String::new();
            while let Some(d) = chars.next() {
                if d == '"' {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        name.push('"');
                        continue;
                    }
                    break;
                }
                name.push(d);
            }
            out.push(name);
        } else if c.is_alphabetic() || c == '_' {
            let mut name = c.to_string();
            while let Some(&d) = chars.peek() {
                if d.is_alphanumeric() || d == '_' || d == '$' {
                    name.push(d);
                    chars.next();
                } else {
                    break;
                }
            }
            out.push(name);
        }
    }
    out
}

/// Each sequential scan of a table of [`LARGE_TABLE_ROWS`] or more, once per table.
async fn warnings(conn: &mut PgConnection, plan: &Value) -> Result<Vec<SeqScanWarning>, sqlx::Error> {
    let mut scans = Vec::new();
    seq_scans(&plan[0]["Plan"], &[], &mut scans);
    let mut out: Vec<SeqScanWarning> = Vec::new();
    for scan in scans {
        let (reltuples, columns, leading): (f64, Vec<String>, Vec<String>) = sqlx::query_as(
            "SELECT c.reltuples::float8, \
               ARRAY(SELECT attname::text FROM pg_attribute WHERE attrelid = c.oid AND attnum > 0 AND NOT attisdropped), \
               ARRAY(SELECT a.attname::text FROM pg_index i \
                     JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] \
                     WHERE i.indrelid = c.oid) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2",
        )
        .bind(&scan.schema)
        .bind(&scan.table)
        .fetch_optional(&mut *conn)
        .await?
        .unwrap_or((0.0, Vec::new(), Vec::new()));
        // -1 is a table never analyzed: its size is unknown, so it is not called large.
        if reltuples < LARGE_TABLE_ROWS {
            continue;
        }
        let mut named: Vec<String> = Vec::new();
        for name in scan.expressions.iter().flat_map(|e| identifiers(e)) {
            if columns.contains(&name) && !named.contains(&name) {
                named.push(name);
            }
        }
        let indexed = named.iter().filter(|c| leading.contains(c)).cloned().collect();
        let warning = SeqScanWarning {
            schema: scan.schema,
            table: scan.table,
            reltuples,
            kept: scan.rows,
            columns: named,
            indexed,
        };
        match out.iter_mut().find(|w| w.schema == warning.schema && w.table == warning.table) {
            // The same table read twice in one query (a self-join, two CTEs): one warning, all columns.
            Some(seen) => {
                seen.kept = seen.kept.max(warning.kept);
                for c in warning.columns {
                    if !seen.columns.contains(&c) {
                        seen.columns.push(c);
                    }
                }
                seen.indexed = seen.columns.iter().filter(|c| leading.contains(c)).cloned().collect();
            }
            None => out.push(warning),
        }
    }
    Ok(out)
}

/// The text `check --explain` prints for one database.
pub fn render(explained: &[Explained]) -> String {
    let mut out = String::new();
    let (mut cost, mut ms, mut warned) = (0.0, 0.0, 0);
    let mut analyzed = false;
    for e in explained {
        match &e.outcome {
            Ok(p) => {
                cost += p.total_cost;
                out.push_str(&format!("{}: cost {:.2}, {:.0} rows estimated", e.what(), p.total_cost, p.rows));
                if let Some(t) = p.executed_ms {
                    analyzed = true;
                    ms += t;
                    out.push_str(&format!(", executed in {t:.3} ms"));
                }
                out.push('\n');
                for w in &p.warnings {
                    warned += 1;
                    out.push_str(&format!("  {w}\n"));
                }
            }
            Err(why) => out.push_str(&format!("{}: cannot explain: {why}\n", e.what())),
        }
    }
    out.push_str(&format!("{} queries, total cost {cost:.2}", explained.len()));
    if analyzed {
        out.push_str(&format!(", {ms:.3} ms executing"));
    }
    out.push_str(&format!(", {warned} sequential scans of large tables\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_skip_literals_and_unquote_names() {
        assert_eq!(
            identifiers("((sync_status = 'degraded'::text) AND (\"Odd \"\"x\" > now()))"),
            ["sync_status", "text", "AND", "Odd \"x", "now"]
        );
        assert_eq!(
            identifiers("(t.expires_at < (now() + '00:10:00'::interval))"),
            ["t", "expires_at", "now", "interval"]
        );
    }

    #[test]
    fn seq_scans_carry_the_sort_keys_above_them() {
        let plan: Value = serde_json::from_str(
            r#"{"Node Type": "Sort", "Sort Key": ["updated_at DESC"], "Plans": [
                 {"Node Type": "Seq Scan", "Relation Name": "w", "Schema": "public", "Filter": "(kind = 'x'::text)"},
                 {"Node Type": "Index Scan", "Relation Name": "v", "Schema": "public"}]}"#,
        )
        .unwrap();
        let mut scans = Vec::new();
        seq_scans(&plan, &[], &mut scans);
        assert_eq!(
            scans,
            [SeqScan {
                schema: "public".into(),
                table: "w".into(),
                rows: 0.0,
                expressions: vec!["(kind = 'x'::text)".into(), "updated_at DESC".into()]
            }]
        );
    }

    #[test]
    fn the_advice_names_the_index_unless_one_exists() {
        let mut w = SeqScanWarning {
            schema: "public".into(),
            table: "Events".into(),
            reltuples: 50_000.0,
            kept: 500.0,
            columns: vec!["kind".into(), "at".into()],
            indexed: vec![],
        };
        assert_eq!(
            w.to_string(),
            "warning: sequential scan of public.\"Events\" (50000 rows), filtering or sorting on kind, at\n    \
             an index may help (advice only): CREATE INDEX ON public.\"Events\" (kind, at);"
        );
        w.kept = 20_000.0;
        assert!(
            w.to_string().ends_with(
                "keeps about 20000 of its rows: an index would not help; reading less needs a narrower query"
            ),
            "{w}"
        );
        w.kept = 500.0;
        w.indexed = w.columns.clone();
        assert!(w.to_string().contains("an index on kind, at exists"), "{w}");
        w.columns.clear();
        assert!(w.to_string().ends_with("an index would not help"), "{w}");
    }
}
