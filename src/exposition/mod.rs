//! From published state to what Prometheus reads.

pub mod http;
pub mod text;
pub mod web_config;
