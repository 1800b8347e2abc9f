//! `serve`: wires the spec's sources to the state and the state to HTTP, and runs the process's
//! life: SIGHUP (or `POST /-/reload`) reloads the spec and the web config, SIGTERM and SIGINT stop
//! it, both after the log sources saved a last checkpoint.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::postgres::{PgConnectOptions, PgPool};
use tokio::sync::mpsc;

use crate::exposition::build_info;
use crate::exposition::http::{Limits, ReloadReply, Server, serve};
use crate::exposition::web_config::{self, WebConfigError, WebConfigWatch};
use crate::sources::logs::handover::Handover;
use crate::sources::sql::dsn::DsnError;
use crate::sources::{KINDS, KindError, Start, sql, unix_now};
use crate::spec::{Model, SpecErrors};
use crate::state::State;
use crate::{fds, self_metrics};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("database: {0}")]
    Database(DsnError),
    /// A source kind could not start; the message starts with the kind.
    #[error("sources: {0}")]
    Sources(KindError),
    /// `origin` says where the address was given (the flag, or the spec's `listen`).
    #[error("cannot listen on {addr} ({origin}): {source}")]
    Listen { addr: String, origin: String, source: std::io::Error },
    #[error("http: {0}")]
    Http(std::io::Error),
    /// The web config file does not load; the message names the file.
    #[error("{0}")]
    WebConfig(WebConfigError),
    #[error("signals: {0}")]
    Signals(std::io::Error),
}

/// Why a reload left the running configuration as it was. Turned into text for the log line and
/// for `POST /-/reload`'s answer.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The spec does not load; every error with its file:line:col.
    #[error("{0}")]
    Spec(SpecErrors),
    #[error("database: {0}")]
    Database(DsnError),
    #[error("{0}")]
    WebConfigLoad(WebConfigError),
    /// The web config file is not in force as it is now (broken, unreadable or refused), or the
    /// new one would lower the protection in force; the message names the file.
    #[error("{0}")]
    WebConfig(web_config::NotInForce),
    #[error(
        "the web config would turn TLS {} on a listener that {}; restart the exporter to change that",
        if *tls { "on" } else { "off" },
        if *tls_listener { "speaks TLS" } else { "speaks plain HTTP" }
    )]
    TlsChange { tls: bool, tls_listener: bool },
    #[error("sources: {0}")]
    Sources(KindError),
}

/// How the endpoint runs, from the command line.
#[derive(Clone, Debug)]
pub struct Options {
    pub limits: Limits,
    /// Whether `POST /-/reload` reloads (as Prometheus' `--web.enable-lifecycle`).
    pub enable_lifecycle: bool,
    /// Settings of the spec the command line replaces, at start and at every reload.
    pub overrides: Overrides,
    /// Where `/metrics` is served (`--web.telemetry-path`).
    pub telemetry_path: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            enable_lifecycle: false,
            overrides: Overrides::default(),
            telemetry_path: "/metrics".into(),
        }
    }
}

/// `--web.listen-address` and `--web.config.file`: they win over the spec's `listen` and
/// `web_config_file`.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    /// Absolute, or relative to the spec's directory.
    pub web_config_file: Option<PathBuf>,
}

impl Overrides {
    fn apply(&self, mut model: Model) -> Model {
        if let Some(listen) = &self.listen {
            model.config.listen = listen.clone();
        }
        if let Some(file) = &self.web_config_file {
            model.config.web_config_file = Some(file.clone());
        }
        model
    }
}

/// Serves `model`, loaded from `spec`, until SIGTERM or SIGINT.
pub async fn run(spec: &Path, model: Model, options: Options) -> Result<(), ServeError> {
    let model = options.overrides.apply(model);
    // First of all: from here on SIGHUP reloads instead of killing the process.
    let mut signals = Signals::install().map_err(ServeError::Signals)?;
    let spec_dir = Model::spec_dir(spec);
    // Checked before anything starts: a bad file stops the exporter instead of serving open.
    let web = match &model.config.web_config_file {
        Some(path) => Some(Arc::new(WebConfigWatch::load(&spec_dir.join(path)).map_err(ServeError::WebConfig)?)),
        None => None,
    };
    let limits = fd_budget(&model, &options.limits);
    let state = Arc::new(State::default());
    if let Some(w) = &web {
        w.attach(&state);
    }
    let database = database(&model, &spec_dir).map_err(ServeError::Database)?;
    let handover = Handover::default();
    let sources = Sources::start(&model, database, state.clone(), &handover).map_err(ServeError::Sources)?;

    let listener =
        crate::exposition::http::listen(&model.config.listen).await.map_err(|source| ServeError::Listen {
            addr: model.config.listen.clone(),
            origin: match options.overrides.listen {
                Some(_) => "--web.listen-address".into(),
                // Placed as a spec error is, so an editor jumps to the line.
                None => match &model.listen_at {
                    Some(at) => format!("`listen` at {at}"),
                    None => format!("the default `listen`, not set in {}", spec.display()),
                },
            },
            source,
        })?;
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    match &web {
        Some(w) => {
            let auth = w.applied().requires_auth();
            tracing::info!(%addr, tls = w.tls_listener(), basic_auth = auth, web_config = %w.path().display(), "serving /metrics");
        }
        None => tracing::info!(%addr, "serving /metrics"),
    }
    let started = unix_now();
    let mut server = Server::new(
        state.clone(),
        vec![build_info::info_family(), self_metrics::START_TIME.family().with(&[], started)],
        web,
        limits,
    )
    .with_telemetry_path(&options.telemetry_path)
    .with_process_metrics(Arc::default());
    let board = crate::status::StatusBoard::new(model.clone(), state.clone());
    let sampler = tokio::spawn(board.clone().run());
    server = server.with_status(board);
    let (reload_sender, mut reloads) = mpsc::channel::<ReloadReply>(4);
    if options.enable_lifecycle {
        server = server.with_lifecycle(reload_sender.clone());
    }
    let server = Arc::new(server);
    let mut reloadable = Reloadable {
        spec: spec.to_path_buf(),
        overrides: options.overrides.clone(),
        model,
        sources,
        handover,
        state,
        server: server.clone(),
    };
    let mut status = ReloadStatus { successful: true, last_success: started };
    status.publish(&reloadable.state);

    let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut http = tokio::spawn(serve(listener, server, async {
        let _ = stopped.await;
    }));
    let mut http_result = None;
    loop {
        tokio::select! {
            signal = signals.next() => match signal {
                Signal::Reload => {
                    let _ = reloadable.reload(&mut status).await;
                }
                Signal::Stop(name) => {
                    tracing::info!(signal = name, "shutting down");
                    break;
                }
            },
            Some(reply) = reloads.recv() => {
                // Text from here on: it is the answer's body.
                let _ = reply.send(reloadable.reload(&mut status).await.map_err(|e| e.to_string()));
            }
            result = &mut http => {
                http_result = Some(result);
                break;
            }
        }
    }
    drop(reload_sender);
    sampler.abort();
    let _ = stop_server.send(());
    // The final checkpoints first: they are what a supervisor's kill deadline must not cut.
    reloadable.sources.stop().await;
    let result = match http_result {
        Some(r) => r,
        None => http.await,
    };
    match result {
        Ok(r) => r.map_err(ServeError::Http),
        Err(e) => Err(ServeError::Http(std::io::Error::other(e.to_string()))),
    }
}

/// Raises the open-file limit and fits the connections into it (see [`crate::fds`]), saying so.
fn fd_budget(model: &Model, requested: &Limits) -> Limits {
    let (before, limit) = fds::raise_open_file_limit();
    let show = |n: Option<u64>| n.map_or_else(|| "unlimited".to_string(), |n| n.to_string());
    let connections = fds::connections(limit, requested.max_connections, model);
    tracing::info!(
        soft = %show(limit.soft),
        hard = %show(limit.hard),
        soft_at_start = %show(before.soft),
        log_files = fds::log_files(model),
        max_connections = connections,
        "open-file limit"
    );
    if requested.max_connections != 0 && connections < requested.max_connections {
        tracing::warn!(
            requested = requested.max_connections,
            max_connections = connections,
            soft_limit = %show(limit.soft),
            "--web.max-connections does not fit the open-file limit beside the log files; raise the limit \
             (LimitNOFILE= in the systemd unit) to serve more"
        );
    }
    warn_over_committed(model);
    Limits { max_connections: connections, ..requested.clone() }
}

/// Logs when the log sources' `max_files` together exceed their share of the open-file limit.
fn warn_over_committed(model: &Model) {
    if let Some(total) = fds::over_committed(model) {
        tracing::warn!(
            max_files_total = total,
            log_files = fds::log_files(model),
            "the log sources' max_files exceed their share of the open-file limit: at that many files, \
             connections may find no file descriptor"
        );
    }
}

/// What a SIGHUP or `POST /-/reload` may replace.
struct Reloadable {
    spec: PathBuf,
    overrides: Overrides,
    model: Model,
    sources: Sources,
    /// Where stopped log threads leave their runners, so a reload goes on with the unchanged ones.
    handover: Handover,
    state: Arc<State>,
    server: Arc<Server>,
}

/// A reload that was checked and can be applied.
struct Prepared {
    model: Model,
    database: Databases,
    web: Option<Arc<WebConfigWatch>>,
}

impl Reloadable {
    /// Loads the spec and web config again and restarts the sources from them; anything that does
    /// not load leaves the running configuration as it was. The error is logged and returned.
    async fn reload(&mut self, status: &mut ReloadStatus) -> Result<(), ReloadError> {
        tracing::info!(spec = %self.spec.display(), "reloading the configuration");
        let result = match self.prepare() {
            Ok(prepared) => self.apply(prepared).await,
            Err(e) => Err(e),
        };
        match &result {
            Ok(()) => {
                status.successful = true;
                status.last_success = unix_now();
                tracing::info!(spec = %self.spec.display(), "configuration reloaded");
            }
            Err(e) => {
                status.successful = false;
                tracing::error!(error = %e, "reload failed; the running configuration stays in force");
            }
        }
        status.publish(&self.state);
        // The sweep of a reload drops what was published before it.
        if let Some(web) = self.server.web() {
            web.attach(&self.state);
        }
        result
    }

    /// Everything that can fail without touching what runs.
    fn prepare(&self) -> Result<Prepared, ReloadError> {
        let model = self.overrides.apply(Model::load(&self.spec).map_err(ReloadError::Spec)?);
        let spec_dir = Model::spec_dir(&self.spec);
        let database = database(&model, &spec_dir).map_err(ReloadError::Database)?;
        let current = self.server.web();
        let web = match (&model.config.web_config_file, current.clone()) {
            (None, None) => None,
            (Some(file), Some(watch)) if spec_dir.join(file) == watch.path() => {
                // The same file: it is followed on every request already; make sure it is in
                // force now (it loads, and was not refused for lowering protection).
                watch.check_now().map_err(ReloadError::WebConfig)?;
                Some(watch)
            }
            (Some(file), _) => {
                Some(Arc::new(WebConfigWatch::load(&spec_dir.join(file)).map_err(ReloadError::WebConfigLoad)?))
            }
            (None, Some(_)) => None,
        };
        web_config::replacing(current.as_deref(), web.as_deref()).map_err(ReloadError::WebConfig)?;
        let tls = web.as_ref().is_some_and(|w| w.tls_listener());
        if tls != self.server.tls_listener() {
            return Err(ReloadError::TlsChange { tls, tls_listener: self.server.tls_listener() });
        }
        if model.config.listen != self.model.config.listen {
            tracing::warn!(
                running = %self.model.config.listen,
                configured = %model.config.listen,
                "the listen address changed; it applies after a restart"
            );
        }
        Ok(Prepared { model, database, web })
    }

    async fn apply(&mut self, prepared: Prepared) -> Result<(), ReloadError> {
        let Prepared { model, database: db, web } = prepared;
        let old = std::mem::take(&mut self.sources);
        old.stop().await;
        self.state.begin_epoch();
        match Sources::start(&model, db, self.state.clone(), &self.handover) {
            Ok(sources) => {
                self.sources = sources;
                if let Some(board) = self.server.status() {
                    board.set_model(model.clone());
                }
                self.model = model;
                warn_over_committed(&self.model);
                self.server.set_web(web);
                self.state.sweep();
                Ok(())
            }
            Err(e) => {
                // Back to the sources that ran: their spec and database loaded before. A new epoch,
                // so what the failed start published goes at the sweep.
                self.state.begin_epoch();
                let spec_dir = Model::spec_dir(&self.spec);
                let restarted = database(&self.model, &spec_dir).map_err(ReloadError::Database).and_then(|db| {
                    Sources::start(&self.model, db, self.state.clone(), &self.handover).map_err(ReloadError::Sources)
                });
                match restarted {
                    Ok(sources) => self.sources = sources,
                    Err(again) => tracing::error!(error = %again, "cannot restart the previous sources either"),
                }
                self.state.sweep();
                Err(ReloadError::Sources(e))
            }
        }
    }
}

/// The connection options of each database a SQL signal reads, by name, with the URL redacted
/// for logs.
fn database(model: &Model, spec_dir: &Path) -> Result<Databases, DsnError> {
    let mut out = Vec::new();
    for (name, db) in model.config.databases() {
        let read = model.enabled_signals().any(|s| s.databases.iter().any(|b| b.database == name));
        if !read {
            continue;
        }
        let dsn = sql::dsn::load(db, spec_dir)?;
        out.push(DatabaseTarget {
            name: name.to_string(),
            options: dsn.options,
            redacted: dsn.redacted,
            config: db.clone(),
        });
    }
    Ok(out)
}

/// One database to open a pool on.
struct DatabaseTarget {
    name: String,
    options: PgConnectOptions,
    redacted: String,
    config: crate::spec::config::DatabaseConfig,
}

type Databases = Vec<DatabaseTarget>;

/// The running sources: SQL and HTTP tasks, log threads.
#[derive(Default)]
struct Sources {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    stop_logs: Arc<AtomicBool>,
    log_threads: Vec<std::thread::JoinHandle<()>>,
    pools: Vec<(String, PgPool)>,
}

impl Sources {
    fn start(
        model: &Model,
        databases: Databases,
        state: Arc<State>,
        handover: &Handover,
    ) -> Result<Sources, KindError> {
        let mut sources = Sources::default();
        let several = databases.len() > 1;
        for DatabaseTarget { name, options, redacted, config } in databases {
            if several {
                tracing::info!(database = %redacted, name = %name, "reading the database in the background");
            } else {
                tracing::info!(database = %redacted, "reading the database in the background");
            }
            sources.pools.push((name, sql::pool(options, config.max_connections, config.connect_timeout.0)));
        }
        let start = Start { model, state, stop: sources.stop_logs.clone(), pools: &sources.pools, logs: handover };
        for (kind, start_kind) in KINDS {
            match start_kind(&start) {
                Ok(workers) => {
                    sources.tasks.extend(workers.tasks);
                    sources.log_threads.extend(workers.threads);
                }
                Err(e) => {
                    // What already started stops: threads on the flag (saving their state), tasks
                    // at once; the caller keeps the sources it had.
                    sources.stop_logs.store(true, Ordering::Relaxed);
                    for task in &sources.tasks {
                        task.abort();
                    }
                    return Err(KindError { kind, source: e });
                }
            }
        }
        Ok(sources)
    }

    /// Stops everything and waits for it: log threads save their last checkpoint, and no old
    /// task publishes after this returns.
    async fn stop(self) {
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks {
            let _ = task.await;
        }
        self.stop_logs.store(true, Ordering::Relaxed);
        for thread in self.log_threads {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        for (_, pool) in self.pools {
            pool.close().await;
        }
    }
}

/// The outcome of the last reload, exported as Prometheus exports its own.
struct ReloadStatus {
    successful: bool,
    last_success: f64,
}

impl ReloadStatus {
    fn publish(&self, state: &State) {
        state.publish(
            "exporter:reload",
            vec![
                self_metrics::CONFIG_RELOAD_SUCCESSFUL.family().with(&[], if self.successful { 1.0 } else { 0.0 }),
                self_metrics::CONFIG_RELOAD_SUCCESS_TIMESTAMP.family().with(&[], self.last_success),
            ],
        );
    }
}

enum Signal {
    Reload,
    Stop(&'static str),
}

/// SIGHUP, SIGTERM and SIGINT, caught from start to end.
struct Signals {
    #[cfg(unix)]
    hangup: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            hangup: signal(SignalKind::hangup())?,
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    #[cfg(not(unix))]
    fn install() -> std::io::Result<Signals> {
        Ok(Signals {})
    }

    #[cfg(unix)]
    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.hangup.recv() => Signal::Reload,
            _ = self.terminate.recv() => Signal::Stop("SIGTERM"),
            _ = self.interrupt.recv() => Signal::Stop("SIGINT"),
        }
    }

    #[cfg(not(unix))]
    async fn next(&mut self) -> Signal {
        let _ = tokio::signal::ctrl_c().await;
        Signal::Stop("Ctrl-C")
    }
}
