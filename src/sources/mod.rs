//! Where values come from. Each source kind lives in its own module and publishes snapshots into
//! [`crate::state::State`]; adding a kind means adding a module here and a variant to
//! [`crate::spec::Source`].

pub mod health;
pub mod http;
pub mod logs;
pub mod sql;
