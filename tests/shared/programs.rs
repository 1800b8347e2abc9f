//! Which Debian package provides a program the tests start: the table in `scripts/test`, which
//! installs them. Included by the integration tests of every crate of the workspace.

/// The package of `program`, when the table names it.
pub fn package_of(program: &str) -> Option<&'static str> {
    include_str!("../../scripts/test")
        .split("# programs:start")
        .nth(1)
        .and_then(|rest| rest.split("# programs:end").next())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(char::is_whitespace))
        .find(|(p, _)| *p == program)
        .map(|(_, package)| package.trim())
}
