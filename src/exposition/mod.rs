//! From published state to what Prometheus reads.

pub mod build;
mod deadline;
pub mod http;
pub mod process;
pub mod text;
pub mod web_config;
