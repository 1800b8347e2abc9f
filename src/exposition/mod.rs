//! From published state to what Prometheus reads.

pub mod build_info;
mod body;
mod deadline;
pub mod http;
mod negotiate;
pub mod process;
mod slots;
pub mod text;
pub mod web_config;
