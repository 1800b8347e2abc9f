//! Follows log files by path or glob. See the crate README for the guarantees.
