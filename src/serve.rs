//! `serve`: wires the spec's sources to the state and the state to HTTP, and runs the process's
//! life: SIGHUP (or `POST /-/reload`) reloads the spec and the web config, SIGTERM and SIGINT stop
//! it, both after the log sources saved a last checkpoint.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::postgres::{PgConnectOptions, PgPool};
use tokio::sync::mpsc;

use crate::exposition::build;
use crate::exposition::http::{Limits, ReloadReply, Server, serve};
use crate::exposition::web_config::WebConfigWatch;
use crate::self_metrics;
use crate::sources::{KINDS, Start, sql, unix_now};
use crate::spec::Model;
use crate::state::State;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("database: {0}")]
    Database(String),
    /// A source kind could not start; the message starts with the kind.
    #[error("sources: {0}")]
    Sources(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error("http: {0}")]
    Http(std::io::Error),
    /// The web config file does not load; the message names the file.
    #[error("{0}")]
    WebConfig(String),
    #[error("signals: {0}")]
    Signals(std::io::Error),
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
    let state = Arc::new(State::default());
    let database = database(&model, &spec_dir).map_err(ServeError::Database)?;
    let sources = Sources::start(&model, database, state.clone()).map_err(ServeError::Sources)?;

    let listener = tokio::net::TcpListener::bind(&model.config.listen)
        .await
        .map_err(|source| ServeError::Listen { addr: model.config.listen.clone(), source })?;
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    match &web {
        Some(w) => {
            let auth = w.current().map(|c| c.requires_auth()).unwrap_or(true);
            tracing::info!(%addr, tls = w.tls_listener(), basic_auth = auth, web_config = %w.path().display(), "serving /metrics");
        }
        None => tracing::info!(%addr, "serving /metrics"),
    }
    let started = unix_now();
    let mut server = Server::new(
        state.clone(),
        vec![build::info_family(), self_metrics::START_TIME.family().with(&[], started)],
        web,
        options.limits.clone(),
    )
    .with_telemetry_path(&options.telemetry_path)
    .with_process_metrics(Arc::default());
    let (reload_sender, mut reloads) = mpsc::channel::<ReloadReply>(4);
    if options.enable_lifecycle {
        server = server.with_lifecycle(reload_sender.clone());
    }
    let server = Arc::new(server);
    let mut running = Running {
        spec: spec.to_path_buf(),
        overrides: options.overrides.clone(),
        model,
        sources,
        state,
        server: server.clone(),
    };
    let mut status = ReloadStatus { successful: true, last_success: started };
    status.publish(&running.state);

    let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut http = tokio::spawn(serve(listener, server, async {
        let _ = stopped.await;
    }));
    let mut http_result = None;
    loop {
        tokio::select! {
            signal = signals.next() => match signal {
                Signal::Reload => {
                    let _ = running.reload(&mut status).await;
                }
                Signal::Stop(name) => {
                    tracing::info!(signal = name, "shutting down");
                    break;
                }
            },
            Some(reply) = reloads.recv() => {
                let _ = reply.send(running.reload(&mut status).await);
            }
            result = &mut http => {
                http_result = Some(result);
                break;
            }
        }
    }
    drop(reload_sender);
    let _ = stop_server.send(());
    // The final checkpoints first: they are what a supervisor's kill deadline must not cut.
    running.sources.stop().await;
    let result = match http_result {
        Some(r) => r,
        None => http.await,
    };
    match result {
        Ok(r) => r.map_err(ServeError::Http),
        Err(e) => Err(ServeError::Http(std::io::Error::other(e.to_string()))),
    }
}

/// What a SIGHUP or `POST /-/reload` may replace.
struct Running {
    spec: PathBuf,
    overrides: Overrides,
    model: Model,
    sources: Sources,
    state: Arc<State>,
    server: Arc<Server>,
}

/// A reload that was checked and can be applied.
struct Prepared {
    model: Model,
    database: Option<(PgConnectOptions, String)>,
    web: Option<Arc<WebConfigWatch>>,
}

impl Running {
    /// Loads the spec and web config again and restarts the sources from them; anything that does
    /// not load leaves the running configuration as it was. The error is logged and returned.
    async fn reload(&mut self, status: &mut ReloadStatus) -> Result<(), String> {
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
        result
    }

    /// Everything that can fail without touching what runs.
    fn prepare(&self) -> Result<Prepared, String> {
        let model = self.overrides.apply(Model::load(&self.spec).map_err(|e| e.to_string())?);
        let spec_dir = Model::spec_dir(&self.spec);
        let database = database(&model, &spec_dir).map_err(|e| format!("database: {e}"))?;
        let current = self.server.web();
        let web = match (&model.config.web_config_file, current) {
            (None, None) => None,
            (Some(file), Some(watch)) if spec_dir.join(file) == watch.path() => {
                // The same file: it is followed on every request already; make sure it loads now.
                watch.current()?;
                Some(watch)
            }
            (Some(file), _) => Some(Arc::new(WebConfigWatch::load(&spec_dir.join(file))?)),
            (None, Some(_)) => None,
        };
        let tls = web.as_ref().is_some_and(|w| w.tls_listener());
        if tls != self.server.tls_listener() {
            return Err(format!(
                "the web config would turn TLS {} on a listener that {}; restart the exporter to change that",
                if tls { "on" } else { "off" },
                if self.server.tls_listener() { "speaks TLS" } else { "speaks plain HTTP" }
            ));
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

    async fn apply(&mut self, prepared: Prepared) -> Result<(), String> {
        let Prepared { model, database: db, web } = prepared;
        let old = std::mem::take(&mut self.sources);
        old.stop().await;
        self.state.begin_epoch();
        match Sources::start(&model, db, self.state.clone()) {
            Ok(sources) => {
                self.sources = sources;
                self.model = model;
                self.server.set_web(web);
                self.state.sweep();
                Ok(())
            }
            Err(e) => {
                // Back to the sources that ran: their spec and database loaded before. A new epoch,
                // so what the failed start published goes at the sweep.
                self.state.begin_epoch();
                let spec_dir = Model::spec_dir(&self.spec);
                let restarted =
                    database(&self.model, &spec_dir).and_then(|db| Sources::start(&self.model, db, self.state.clone()));
                match restarted {
                    Ok(sources) => self.sources = sources,
                    Err(again) => tracing::error!(error = %again, "cannot restart the previous sources either"),
                }
                self.state.sweep();
                Err(format!("sources: {e}"))
            }
        }
    }
}

/// The connection options for the spec's database when a signal reads SQL, with the URL
/// redacted for logs.
fn database(model: &Model, spec_dir: &Path) -> Result<Option<(PgConnectOptions, String)>, String> {
    let has_sql = model.enabled_signals().any(|s| s.signal.source.spec().needs_database());
    let (true, Some(db)) = (has_sql, &model.config.database) else {
        return Ok(None);
    };
    let url = sql::dsn::read_url(db, spec_dir)?;
    let redacted = sql::dsn::redact(&url);
    let options: PgConnectOptions = sql::dsn::parse(&url)?;
    Ok(Some((options, redacted)))
}

/// The running sources: SQL and HTTP tasks, log threads.
#[derive(Default)]
struct Sources {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    stop_logs: Arc<AtomicBool>,
    log_threads: Vec<std::thread::JoinHandle<()>>,
    pool: Option<PgPool>,
}

impl Sources {
    fn start(
        model: &Model,
        database: Option<(PgConnectOptions, String)>,
        state: Arc<State>,
    ) -> Result<Sources, String> {
        let mut sources = Sources::default();
        if let (Some((options, redacted)), Some(db)) = (database, &model.config.database) {
            tracing::info!(database = %redacted, "reading the database in the background");
            sources.pool = Some(sql::pool(options, db.max_connections, db.connect_timeout.0));
        }
        let start = Start { model, state, stop: sources.stop_logs.clone(), pool: sources.pool.as_ref() };
        for (kind, start_kind) in KINDS {
            match start_kind(&start) {
                Ok(running) => {
                    sources.tasks.extend(running.tasks);
                    sources.log_threads.extend(running.threads);
                }
                Err(e) => {
                    // What already started stops: threads on the flag (saving their state), tasks
                    // at once; the caller keeps the sources it had.
                    sources.stop_logs.store(true, Ordering::Relaxed);
                    for task in &sources.tasks {
                        task.abort();
                    }
                    return Err(format!("{kind}: {e}"));
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
        if let Some(pool) = self.pool {
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
