//! `serve`: wires the spec's sources to the state and the state to HTTP.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::postgres::PgConnectOptions;

use crate::exposition::http::{Server, serve};
use crate::exposition::web_config::WebConfigWatch;
use crate::sources::{http, logs, sql};
use crate::spec::{MetricType, Model, Source};
use crate::state::{Family, State};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("database: {0}")]
    Database(String),
    #[error("logs: {0}")]
    Logs(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error("http: {0}")]
    Http(std::io::Error),
    /// The web config file does not load; the message names the file.
    #[error("{0}")]
    WebConfig(String),
}

pub async fn run(model: Model, spec_dir: &Path) -> Result<(), ServeError> {
    // Checked before anything starts: a bad file stops the exporter instead of serving open.
    let web = match &model.config.web_config_file {
        Some(path) => Some(Arc::new(WebConfigWatch::load(&spec_dir.join(path)).map_err(ServeError::WebConfig)?)),
        None => None,
    };
    let state = Arc::new(State::default());
    let has_sql = model.enabled_signals().any(|s| matches!(s.signal.source, Source::Sql(_)));
    if let (true, Some(db)) = (has_sql, &model.config.database) {
        let url = sql::dsn::read_url(db, spec_dir).map_err(ServeError::Database)?;
        let options: PgConnectOptions = sql::dsn::parse(&url).map_err(ServeError::Database)?;
        tracing::info!(database = %sql::dsn::redact(&url), "reading the database in the background");
        let pool = sql::pool(options, db.max_connections, db.connect_timeout.0);
        sql::spawn_all(&model, pool, state.clone());
    }
    http::spawn_all(&model, state.clone());
    let stop_logs = Arc::new(AtomicBool::new(false));
    let log_threads = logs::spawn_all(&model, state.clone(), stop_logs.clone()).map_err(ServeError::Logs)?;

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
    let started = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    let server = Arc::new(Server {
        state,
        static_families: vec![
            Family::new("integration_exporter_build_info", "Version of the running exporter.", MetricType::Gauge)
                .with(&[("version", env!("CARGO_PKG_VERSION"))], 1.0),
            Family::new(
                "integration_exporter_start_time_seconds",
                "When the exporter started, in unix seconds.",
                MetricType::Gauge,
            )
            .with(&[], started),
        ],
        web,
    });
    let result = serve(listener, server, shutdown_signal()).await;
    stop_logs.store(true, Ordering::Relaxed);
    for t in log_threads {
        let _ = tokio::task::spawn_blocking(move || t.join()).await;
    }
    result.map_err(ServeError::Http)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(t) => t,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
}
