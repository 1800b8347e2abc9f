//! From published state to what Prometheus reads.

mod body;
pub mod build_info;
mod deadline;
pub mod http;
mod negotiate;
pub mod process;
mod slots;
pub mod text;
pub mod web_config;
