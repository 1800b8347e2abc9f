//! The database's own list of tables and columns (`information_schema`, so only what the login
//! may see), and the names in it closest to one the database lacks.
//!
//! Closeness is the optimal string alignment distance (Levenshtein with adjacent transpositions
//! counted as one edit: `microsft` is one edit from `microsoft`, `expries` one from `expires`),
//! case-insensitive; a name is suggested when at most two fifths of the longer name's characters
//! differ, so `expires` (3 edits from `expires_at`) is suggested and `kind` for `sync_type` is not.

use std::collections::BTreeMap;

use sqlx::postgres::PgConnection;

/// Tables and views by schema and name, each with its columns in table order.
pub struct Catalog {
    tables: BTreeMap<(String, String), Vec<String>>,
    /// The schemas an unqualified name is looked up in, in order.
    search_path: Vec<String>,
}

/// At most this many suggestions for one name.
const MAX_SUGGESTIONS: usize = 3;

impl Catalog {
    pub async fn load(conn: &mut PgConnection) -> Result<Catalog, sqlx::Error> {
        const USER_SCHEMAS: &str = "table_schema NOT IN ('pg_catalog', 'information_schema')";
        let mut tables: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        let listed: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT table_schema::text, table_name::text FROM information_schema.tables WHERE {USER_SCHEMAS}"
        )))
        .fetch_all(&mut *conn)
        .await?;
        for key in listed {
            tables.entry(key).or_default();
        }
        let columns: Vec<(String, String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT table_schema::text, table_name::text, column_name::text FROM information_schema.columns \
             WHERE {USER_SCHEMAS} ORDER BY table_schema, table_name, ordinal_position"
        )))
        .fetch_all(&mut *conn)
        .await?;
        for (schema, table, column) in columns {
            tables.entry((schema, table)).or_default().push(column);
        }
        let search_path: Vec<(String,)> =
            sqlx::query_as("SELECT unnest(current_schemas(false))::text").fetch_all(&mut *conn).await?;
        Ok(Catalog { tables, search_path: search_path.into_iter().map(|(s,)| s).collect() })
    }

    #[cfg(test)]
    fn of(tables: &[(&str, &str, &[&str])], search_path: &[&str]) -> Catalog {
        Catalog {
            tables: tables
                .iter()
                .map(|(s, t, cols)| ((s.to_string(), t.to_string()), cols.iter().map(|c| c.to_string()).collect()))
                .collect(),
            search_path: search_path.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// The table a name in a query means: `schema.table`, or the first schema of the search path
    /// that has `table`.
    pub fn resolve(&self, name: &[String]) -> Option<(String, String)> {
        match name {
            [schema, table] => {
                self.tables.contains_key(&(schema.clone(), table.clone())).then(|| (schema.clone(), table.clone()))
            }
            [table] => self
                .search_path
                .iter()
                .map(|schema| (schema.clone(), table.clone()))
                .find(|key| self.tables.contains_key(key)),
            _ => None,
        }
    }

    /// How a table is written in a spec: without its schema when the search path finds it so.
    pub fn display(&self, (schema, table): &(String, String)) -> String {
        if self.resolve(std::slice::from_ref(table)).as_ref().is_some_and(|(s, _)| s == schema) {
            table.clone()
        } else {
            format!("{schema}.{table}")
        }
    }

    /// The columns of a table, in table order.
    pub fn columns(&self, table: &(String, String)) -> &[String] {
        self.tables.get(table).map_or(&[], Vec::as_slice)
    }

    /// Tables and views named like `missing` (compared with its schema when it has one), each
    /// as a spec would write it, closest first.
    pub fn similar_tables(&self, missing: &[String]) -> Vec<(String, usize)> {
        let wanted = missing.join(".");
        let candidates = self.tables.keys().map(|key| {
            let compared = if missing.len() > 1 { format!("{}.{}", key.0, key.1) } else { key.1.clone() };
            (self.display(key), compared)
        });
        closest(&wanted, candidates)
    }

    /// The columns of `table` named like `missing`, closest first.
    pub fn similar_columns(&self, table: &(String, String), missing: &str) -> Vec<(String, usize)> {
        closest(missing, self.columns(table).iter().map(|c| (c.clone(), c.clone())))
    }
}

/// Of `(shown, compared)` candidates, the shown names whose compared name is close to `wanted`,
/// with their distance, closest first.
fn closest(wanted: &str, candidates: impl Iterator<Item = (String, String)>) -> Vec<(String, usize)> {
    let mut found: Vec<(usize, String)> = candidates
        .filter_map(|(shown, compared)| {
            let d = distance(&wanted.to_lowercase(), &compared.to_lowercase());
            let longer = wanted.chars().count().max(compared.chars().count());
            (shown != wanted && d * 5 <= longer * 2).then_some((d, shown))
        })
        .collect();
    found.sort();
    found.dedup();
    found.into_iter().take(MAX_SUGGESTIONS).map(|(d, shown)| (shown, d)).collect()
}

/// Optimal string alignment distance: insertions, deletions, substitutions and swaps of two
/// adjacent characters, each one edit.
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    rows[0] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (rows[i - 1][j] + 1).min(rows[i][j - 1] + 1).min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = d;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(found: Vec<(String, usize)>) -> Vec<String> {
        found.into_iter().map(|(n, _)| n).collect()
    }

    #[test]
    fn distance_counts_a_swap_as_one_edit() {
        assert_eq!(distance("auth_microsft_tokens", "auth_microsoft_tokens"), 1);
        assert_eq!(distance("expries", "expires"), 1);
        assert_eq!(distance("expires", "expires_at"), 3);
        assert_eq!(distance("", "abc"), 3);
    }

    #[test]
    fn suggests_close_names_only_and_writes_them_as_a_spec_would() {
        let catalog = Catalog::of(
            &[
                ("public", "auth_microsoft_tokens", &["id", "expires_at", "is_revoked"]),
                ("public", "email_watchers", &["sync_status"]),
                ("marketing", "platform_tokens", &["expires_at"]),
            ],
            &["public"],
        );
        let one = |s: &str| vec![s.to_string()];
        assert_eq!(names(catalog.similar_tables(&one("auth_microsft_tokens"))), ["auth_microsoft_tokens"]);
        assert_eq!(names(catalog.similar_tables(&one("platform_tokens"))), ["marketing.platform_tokens"]);
        assert_eq!(
            names(catalog.similar_tables(&["marketing".into(), "platform_token".into()])),
            ["marketing.platform_tokens"]
        );
        assert!(catalog.similar_tables(&one("graph_subscriptions")).is_empty());
        let tokens = ("public".to_string(), "auth_microsoft_tokens".to_string());
        assert_eq!(catalog.similar_columns(&tokens, "expires"), [("expires_at".to_string(), 3)]);
        assert!(catalog.similar_columns(&tokens, "kind").is_empty());
        assert_eq!(catalog.resolve(&one("platform_tokens")), None);
        assert_eq!(catalog.display(&("marketing".into(), "platform_tokens".into())), "marketing.platform_tokens");
    }
}
