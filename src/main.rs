use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use integration_exporter::exposition::build_info;
use integration_exporter::exposition::http::Limits;
use integration_exporter::generate::RuleFormat;
use integration_exporter::spec::{Model, SpecErrors};
use integration_exporter::{check, generate, serve};

mod logging;

use logging::{LogFormat, LogLevel};

/// Runbook signals for OAuth integrations: metrics from your database and logs, and the alert
/// rules, promtool tests and Grafana dashboards that go with them.
#[derive(Parser)]
#[command(version, long_version = build_info::LONG_VERSION, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Only log messages of this level or above. Without it, `RUST_LOG` (tracing's filter syntax,
    /// e.g. `info,integration_exporter::sources=debug`) decides; without either, `info`.
    #[arg(long = "log.level", value_enum, global = true, value_name = "LEVEL")]
    log_level: Option<LogLevel>,
    /// `logfmt` or `json`, one event per line on stderr, never with colour codes.
    #[arg(long = "log.format", value_enum, global = true, default_value_t = LogFormat::Logfmt, value_name = "FORMAT")]
    log_format: LogFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Read the database and logs in the background and serve /metrics. SIGHUP reloads the spec
    /// and the web config (a change of `listen` needs a restart); SIGTERM and SIGINT stop, after
    /// saving the log checkpoints.
    Serve {
        /// The spec file (`--config` works too).
        #[arg(short = 'c', long = "config.file", visible_alias = "config", env = "INTEGRATION_EXPORTER_CONFIG")]
        config: PathBuf,
        /// Address to listen on, instead of the spec's `listen` (e.g. `0.0.0.0:29187` in a
        /// container).
        #[arg(long = "web.listen-address", value_name = "ADDRESS", value_parser = listen_address)]
        listen_address: Option<String>,
        /// exporter-toolkit web config file (TLS, basic auth), instead of the spec's
        /// `web_config_file`; a relative path is relative to the working directory.
        #[arg(long = "web.config.file", value_name = "FILE")]
        web_config_file: Option<PathBuf>,
        /// Path under which metrics are served.
        #[arg(long = "web.telemetry-path", value_name = "PATH", default_value = "/metrics", value_parser = telemetry_path)]
        telemetry_path: String,
        /// Most scrapes (status pages and reloads too) served at once; more get 503 at once (0: no limit).
        /// /healthz, /ready and password checks (bounded on their own) do not count.
        #[arg(long = "web.max-requests", value_name = "N", default_value_t = Limits::default().max_requests)]
        max_requests: usize,
        /// Most open connections (0: as many as the open-file limit allows), lowered to half of
        /// what the open-file limit leaves when that is less. At the limit, a new client takes the
        /// place of the oldest idle one (no complete request yet) of the address holding the most;
        /// only while all are answering requests do new ones wait to be accepted.
        #[arg(long = "web.max-connections", value_name = "N", default_value_t = Limits::default().max_connections)]
        max_connections: usize,
        /// Reload on `POST /-/reload` (or PUT) as on SIGHUP; off by default, as Prometheus'
        /// `--web.enable-lifecycle`. The web config's basic auth applies to it.
        #[arg(long = "web.enable-lifecycle")]
        enable_lifecycle: bool,
    },
    /// Write alert rules, their promtool tests, dashboards and the Alertmanager configuration.
    Generate {
        /// The spec file; omitted, every built-in pack at its defaults.
        #[arg(short, long, visible_alias = "config.file")]
        config: Option<PathBuf>,
        /// Directory to write `alerts/`, `dashboards/` and `alertmanager/` into.
        #[arg(short, long, default_value = ".")]
        out: PathBuf,
        /// `prometheus`: rule files and their promtool tests; `prometheus-operator`:
        /// `PrometheusRule` objects instead (no promtool tests), and a `kustomization.yaml`
        /// listing them with one ConfigMap per dashboard.
        #[arg(long, value_enum, default_value_t = RuleFormat::Prometheus)]
        format: RuleFormat,
    },
    /// List every signal: id, metrics, source, alerts with thresholds, runbook section.
    Catalog {
        /// The spec file; omitted, every built-in pack at its defaults.
        #[arg(short, long, visible_alias = "config.file")]
        config: Option<PathBuf>,
        /// How the catalog is written.
        #[arg(long, value_enum, default_value_t = CatalogFormat::Markdown)]
        format: CatalogFormat,
    },
    /// List every built-in pack's parameters: kind, default and what each means. Set them in the
    /// spec as `packs: {PACK: {params: {NAME: VALUE}}}`.
    Params {
        /// Only these packs (default: every built-in pack).
        packs: Vec<String>,
        /// How the list is written.
        #[arg(long, value_enum, default_value_t = ParamsFormat::Text)]
        format: ParamsFormat,
    },
    /// Print the spec's JSON Schema (for editors: `# yaml-language-server: $schema=...`), or the
    /// spec reference generated from it (docs/spec.md).
    Schema {
        /// `json`: the JSON Schema; `markdown`: the reference page.
        #[arg(long, value_enum, default_value_t = SchemaFormat::Json)]
        format: SchemaFormat,
    },
    /// Validate the spec, compile every pattern and try each log rule on its samples; with
    /// --database, check every table and column the queries read exists.
    Check {
        #[arg(short, long, visible_alias = "config.file")]
        config: PathBuf,
        /// Also prepare every query against the database.
        #[arg(long)]
        database: bool,
        /// With --database, print each query's plan (`EXPLAIN`: cost and estimated rows, never
        /// run) and warn about sequential scans of large tables, naming the index that may help.
        #[arg(long, requires = "database")]
        explain: bool,
        /// With --explain, also run each query (`EXPLAIN ANALYZE`, read-only) and print how long
        /// it took: it costs the database what a collection cycle costs.
        #[arg(long, requires = "explain")]
        analyze: bool,
    },
    /// Read every source once, now, and judge each alert's condition: a triage report in the
    /// runbook's order (value, threshold, verdict, next step, runbook link). Exit status 0 all
    /// ok, 1 a warning, 2 a critical, 3 something could not be checked (a source failed, or the spec
    /// does not load); 64 a command line it cannot take.
    Diagnose {
        #[arg(short, long, visible_alias = "config.file")]
        config: PathBuf,
        /// Only this pack's checks (and the sources they read).
        #[arg(long)]
        pack: Option<String>,
        /// `text` for people (colours on a terminal), `json` for tools.
        #[arg(long, value_enum, default_value_t = DiagnoseFormat::Text)]
        format: DiagnoseFormat,
    },
    /// Run log files once, from their first byte, through one log source's rules and print the
    /// metrics they produce (Prometheus text on stdout, line counts on stderr).
    Replay {
        #[arg(short, long, visible_alias = "config.file")]
        config: PathBuf,
        /// The log source whose rules apply; needed when the spec reads several.
        #[arg(long)]
        log: Option<String>,
        /// Files to read (`-` is standard input).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// How `catalog` writes the list of signals.
#[derive(Clone, Copy, ValueEnum)]
enum CatalogFormat {
    /// A Markdown table, as the signal table of docs/packs.md.
    Markdown,
    /// One JSON document, for tools.
    Json,
}

/// What `schema` prints.
#[derive(Clone, Copy, ValueEnum)]
enum SchemaFormat {
    /// The JSON Schema of a spec file (docs/spec.schema.json).
    Json,
    /// The spec reference (docs/spec.md).
    Markdown,
}

/// How `params` writes the list of parameters.
#[derive(Clone, Copy, ValueEnum)]
enum ParamsFormat {
    /// Per pack, a line per parameter with its kind and default, its doc below.
    Text,
    /// One JSON document, for tools.
    Json,
}

/// How `diagnose` writes its report.
#[derive(Clone, Copy, ValueEnum)]
enum DiagnoseFormat {
    /// Aligned text, pack by pack.
    Text,
    /// One JSON document.
    Json,
}

/// `host:port`, checked as the spec's `listen` is.
fn listen_address(address: &str) -> Result<String, String> {
    integration_exporter::spec::listen::check(address).map(|()| address.to_string())
}

/// A path of its own: not a probe's, not the landing page's.
fn telemetry_path(path: &str) -> Result<String, String> {
    if !path.starts_with('/') {
        return Err("must start with `/`".into());
    }
    // It goes into the landing page's link as it is: keep it to characters that need no escaping.
    if let Some(c) = path.chars().find(|c| !(c.is_ascii_alphanumeric() || "/-_.~".contains(*c))) {
        return Err(format!("`{c}` is not allowed (letters, digits and `/-_.~` are)"));
    }
    if matches!(path, "/" | "/healthz" | "/ready" | "/-/reload" | "/status.json") {
        return Err(format!("`{path}` is taken by the exporter itself"));
    }
    Ok(path.to_string())
}

/// Exit status for a spec that does not load.
const BAD_SPEC: u8 = 2;

fn load(path: &std::path::Path) -> Result<Model, ExitCode> {
    Model::load(path).map_err(|e: SpecErrors| {
        eprintln!("{e}");
        ExitCode::from(BAD_SPEC)
    })
}

/// Exit status of `diagnose` for a command line it cannot take (BSD's `EX_USAGE`): clap's 2 is
/// `diagnose`'s "a critical", and 0 to 3 are its verdicts.
const DIAGNOSE_USAGE: u8 = 64;

/// The command line, or the exit status of one that is wrong: clap's own (2) for every command
/// but `diagnose`, whose statuses 0 to 3 are verdicts.
fn parse() -> Result<Cli, ExitCode> {
    use clap::CommandFactory;
    let error = match Cli::try_parse() {
        Ok(cli) => return Ok(cli),
        Err(e) => e,
    };
    let _ = error.print();
    // `--help` and `--version` end here too, successfully.
    if !error.use_stderr() {
        return Err(ExitCode::SUCCESS);
    }
    // Which command was meant, from a parse that goes as far as it can past the error.
    let meant = Cli::command().ignore_errors(true).try_get_matches().ok();
    if meant.as_ref().and_then(|m| m.subcommand_name()) == Some("diagnose") {
        return Err(ExitCode::from(DIAGNOSE_USAGE));
    }
    Err(ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(BAD_SPEC)))
}

fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    // The report is what `diagnose` says; a failing source's warning would only repeat it.
    let quiet = matches!(cli.command, Command::Diagnose { .. }).then_some(LogLevel::Error);
    logging::init(cli.log_level.or(quiet), cli.log_format);
    match cli.command {
        Command::Serve {
            config,
            listen_address,
            web_config_file,
            telemetry_path,
            max_requests,
            max_connections,
            enable_lifecycle,
        } => {
            // Relative to where the exporter was started, as every other command-line path.
            let web_config_file = match web_config_file.map(|f| std::path::absolute(&f).map_err(|e| (f, e))).transpose()
            {
                Ok(f) => f,
                Err((f, e)) => {
                    eprintln!("--web.config.file {}: {e}", f.display());
                    return ExitCode::from(BAD_SPEC);
                }
            };
            let model = match load(&config) {
                Ok(m) => m,
                Err(code) => return code,
            };
            // After the spec loaded: a spec error stays the only thing a failed start prints.
            let (version, build_context) = build_info::startup_fields();
            tracing::info!(%version, %build_context, "starting integration-exporter");
            let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("cannot start runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let options = serve::Options {
                limits: Limits { max_requests, max_connections, ..Limits::default() },
                enable_lifecycle,
                overrides: serve::Overrides { listen: listen_address, web_config_file },
                telemetry_path,
            };
            match runtime.block_on(serve::run(&config, model, options)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Generate { config, out, format } => {
            let model = match config {
                Some(path) => match load(&path) {
                    Ok(m) => m,
                    Err(code) => return code,
                },
                None => Model::builtin_defaults(),
            };
            match generate::write_all_as(&model, &out, format) {
                Ok(paths) => {
                    for p in paths {
                        println!("{}", p.display());
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Catalog { config, format } => {
            let model = match config {
                Some(path) => match load(&path) {
                    Ok(m) => m,
                    Err(code) => return code,
                },
                None => Model::builtin_defaults(),
            };
            match format {
                CatalogFormat::Markdown => print!("{}", generate::catalog::markdown(&model)),
                CatalogFormat::Json => print!("{}", generate::catalog::json(&model)),
            }
            ExitCode::SUCCESS
        }
        Command::Params { packs, format } => match integration_exporter::params::list(&packs) {
            Ok(list) => {
                match format {
                    ParamsFormat::Text => print!("{}", integration_exporter::params::text(&list)),
                    ParamsFormat::Json => print!("{}", integration_exporter::params::json(&list)),
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(BAD_SPEC)
            }
        },
        Command::Schema { format } => {
            match format {
                SchemaFormat::Json => print!("{}", integration_exporter::spec::schema::json()),
                SchemaFormat::Markdown => print!("{}", integration_exporter::spec::schema::markdown()),
            }
            ExitCode::SUCCESS
        }
        Command::Check { config, database, explain, analyze } => match load(&config) {
            Ok(model) => {
                let mode = match (explain, analyze) {
                    (false, _) => None,
                    (true, false) => Some(check::explain::Mode::Estimate),
                    (true, true) => Some(check::explain::Mode::Analyze),
                };
                check::main(&config, &model, database, mode)
            }
            Err(code) => code,
        },
        Command::Diagnose { config, pack, format } => {
            // Nothing can be checked without a spec: the "could not check" status, not 2,
            // which here means a critical verdict.
            let model = match load(&config) {
                Ok(m) => m,
                Err(_) => return ExitCode::from(3),
            };
            let format = match format {
                DiagnoseFormat::Text => integration_exporter::diagnose::Format::Text,
                DiagnoseFormat::Json => integration_exporter::diagnose::Format::Json,
            };
            ExitCode::from(integration_exporter::diagnose::main(&config, &model, pack.as_deref(), format))
        }
        Command::Replay { config, log, files } => match load(&config) {
            Ok(model) => integration_exporter::replay::main(&model, log.as_deref(), &files),
            Err(code) => code,
        },
    }
}
