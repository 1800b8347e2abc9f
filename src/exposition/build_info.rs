//! What this binary is: the version, git revision and branch, build date and compiler stamped by
//! `build.rs`, for `--version` and `integration_exporter_build_info`.

use crate::state::Family;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const REVISION: &str = env!("INTEGRATION_EXPORTER_REVISION");
pub const BRANCH: &str = env!("INTEGRATION_EXPORTER_BRANCH");
pub const BUILD_DATE: &str = env!("INTEGRATION_EXPORTER_BUILD_DATE");
pub const RUSTC: &str = env!("INTEGRATION_EXPORTER_RUSTC");
pub const PLATFORM: &str = env!("INTEGRATION_EXPORTER_PLATFORM");

/// `--version`'s text after the program name, laid out as Prometheus' own binaries print it.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (branch: ",
    env!("INTEGRATION_EXPORTER_BRANCH"),
    ", revision: ",
    env!("INTEGRATION_EXPORTER_REVISION"),
    ")\n  build date:  ",
    env!("INTEGRATION_EXPORTER_BUILD_DATE"),
    "\n  compiler:    ",
    env!("INTEGRATION_EXPORTER_RUSTC"),
    "\n  platform:    ",
    env!("INTEGRATION_EXPORTER_PLATFORM"),
);

/// `integration_exporter_build_info`, always 1, as every Prometheus exporter's `*_build_info`.
pub fn info_family() -> Family {
    crate::self_metrics::BUILD_INFO
        .family()
        .with(&[("version", VERSION), ("revision", REVISION), ("branch", BRANCH), ("rustc", RUSTC)], 1.0)
}

/// The startup line's two fields, in the layout of Prometheus' own exporters
/// (`version="(version=..., branch=..., revision=...)"`, `build_context="(...)"`), so one grep
/// finds what is running across all of them.
pub fn startup_fields() -> (String, String) {
    (
        format!("(version={VERSION}, branch={BRANCH}, revision={REVISION})"),
        format!("(rustc={RUSTC}, platform={PLATFORM}, date={BUILD_DATE})"),
    )
}
