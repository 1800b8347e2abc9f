//! From published state to what Prometheus reads.

mod deadline;
pub mod http;
pub mod text;
pub mod web_config;
