//! integration-exporter: runbook signals for OAuth integrations as Prometheus metrics, alert rules,
//! promtool tests and Grafana dashboards, all from one spec.
//!
//! Layout: `spec` (what to watch) -> `sources` (sql, logs) -> `state` -> `exposition` (HTTP), and
//! `spec` -> `generate` (rules, rule tests, dashboards).

pub mod bounded_read;
pub mod check;
pub mod diagnose;
pub mod exposition;
pub mod fds;
pub mod generate;
pub mod params;
pub mod replay;
pub mod self_metrics;
pub mod serve;
pub mod sources;
pub mod spec;
pub mod state;
pub mod status;
pub mod verdict;
