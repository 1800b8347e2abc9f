//! The `check` command: the spec loaded and validated (by the caller), the web config it names
//! loaded, and with `--database` every SQL signal's query prepared against the real database
//! ([`database`]); with `--explain` also planned, with advice on sequential scans ([`explain`]).
//!
//! Exit status: 0 all good, 2 something in the files is wrong (as a spec that does not load), 1
//! the database could not be asked.

mod catalog;
pub mod connect;
pub mod database;
pub mod explain;
mod names;

use std::path::Path;
use std::process::ExitCode;

pub use database::{Problem, check_database};

use crate::sources;
use crate::spec::Model;

/// Exit status for a file that is wrong: the one of a spec that does not load.
const BAD_SPEC: u8 = 2;

/// Runs `check` on `model`, loaded from `config`; what it finds goes to stderr, "ok" to stdout.
/// `explain`: with `database`, also print each query's plan ([`explain::Mode`] says whether
/// the queries are run too).
pub fn main(config: &Path, model: &Model, database: bool, explain: Option<explain::Mode>) -> ExitCode {
    let signals = model.enabled_signals().count();
    if let Some(file) = &model.config.web_config_file {
        let path = Model::spec_dir(config).join(file);
        match crate::exposition::web_config::load(&path) {
            Ok(web) => {
                if let Some(problem) = web.certificate_problem() {
                    eprintln!("warning: web config {}: {problem}", path.display());
                }
            }
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(BAD_SPEC);
            }
        }
    }
    if database {
        let databases = model.config.databases();
        if databases.is_empty() {
            eprintln!("{}: --database needs a `database:` section", config.display());
            return ExitCode::from(BAD_SPEC);
        }
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(r) => r,
            Err(e) => {
                eprintln!("cannot start runtime: {e}");
                return ExitCode::FAILURE;
            }
        };
        // Every database is checked, even after one fails, so one run shows everything to fix;
        // the worst outcome decides the exit status.
        let mut status = ExitCode::SUCCESS;
        let several = databases.len() > 1;
        for (name, db) in databases {
            let at = if several {
                format!("{} (database `{name}`)", config.display())
            } else {
                config.display().to_string()
            };
            let checked = sources::sql::dsn::load(db, &Model::spec_dir(config)).map_err(|e| e.to_string());
            let options = match checked {
                Ok(dsn) => sources::sql::session_options(dsn.options),
                Err(e) => {
                    eprintln!("{}{e}", if several { format!("database `{name}`: ") } else { String::new() });
                    status = ExitCode::FAILURE;
                    continue;
                }
            };
            let model = model.for_database(name);
            match runtime.block_on(check_database(&model, &options, db.connect_timeout.0)) {
                Ok(problems) if problems.is_empty() => {
                    let Some(mode) = explain else { continue };
                    if several {
                        println!("database `{name}`:");
                    }
                    match runtime.block_on(explain_database(&model, &options, db.connect_timeout.0, mode)) {
                        Ok(text) => print!("{text}"),
                        Err(unreachable) => {
                            eprintln!("{at}: {unreachable}");
                            status = ExitCode::FAILURE;
                        }
                    }
                }
                Ok(problems) => {
                    for p in &problems {
                        eprintln!("{at}: {p}");
                    }
                    if status == ExitCode::SUCCESS {
                        status = ExitCode::from(BAD_SPEC);
                    }
                }
                Err(unreachable) => {
                    eprintln!("{at}: {unreachable}");
                    status = ExitCode::FAILURE;
                }
            }
        }
        if status != ExitCode::SUCCESS {
            return status;
        }
    }
    println!("{}: ok ({signals} signals)", config.display());
    ExitCode::SUCCESS
}

/// The plans of `model`'s queries, as text, over a connection of their own: `check_database`
/// has proved every query prepares, so a failure here is the database going away.
async fn explain_database(
    model: &Model,
    options: &sqlx::postgres::PgConnectOptions,
    connect_timeout: std::time::Duration,
    mode: explain::Mode,
) -> Result<String, String> {
    // `--analyze` runs queries that may well take a second: that is what is being measured, not
    // something for the driver to warn about on stderr.
    let options = sqlx::ConnectOptions::disable_statement_logging(options.clone());
    let mut conn = connect::connect(&options, connect_timeout).await.map_err(|e| e.to_string())?;
    let explained = explain::explain_all(&mut conn, model, mode, &connect::address(&options)).await?;
    Ok(explain::render(&explained))
}
