//! Every duration the user can write, checked against its bounds at load and located in the file:
//! a zero interval would spin or panic a source, a zero rotate wait would drop the last lines of a
//! rotated file, a zero window is no PromQL range, and a typo like `30d` for a timeout would hold
//! a connection for a month.
//!
//! A timeout longer than its interval is allowed: a source never overlaps its own runs (the next
//! run waits for the previous one), so such a timeout only slows that signal down.

#![warn(missing_docs)]

use std::time::Duration;

use super::config::{AlertOverride, ParamValue, SignalOverride};
use super::*;

/// What a duration is for, and the range it must be in.
struct Bound {
    what: &'static str,
    min: Duration,
    max: Duration,
}

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

const HOUR: u64 = 3_600_000;

/// How often a query or an endpoint is polled: a faster poll is a load test, a slower one shows
/// nothing a dashboard could use.
const INTERVAL: Bound = Bound { what: "an interval", min: ms(100), max: ms(24 * HOUR) };
/// How long one query or request may take.
const TIMEOUT: Bound = Bound { what: "a timeout", min: ms(10), max: ms(HOUR) };
/// How long connecting to the database may take.
const CONNECT_TIMEOUT: Bound = Bound { what: "a connect timeout", min: ms(100), max: ms(HOUR / 6) };
/// How often a standby tries for the leader's lock: faster is a load on the database, slower a
/// long failover.
const HA_RETRY: Bound = Bound { what: "a lock retry", min: ms(100), max: ms(HOUR / 6) };
/// How long a rotated file is still read: zero would drop lines still being written to it.
const ROTATE_WAIT: Bound = Bound { what: "a rotate wait", min: ms(100), max: ms(24 * HOUR) };
/// How long a value `set` from a log line is served: zero would serve nothing.
const MAX_AGE: Bound = Bound { what: "a max age", min: ms(1_000), max: ms(366 * 24 * HOUR) };
/// How far ahead of the clock a line may be dated: zero refuses lines of a clock a little ahead.
const FUTURE_TOLERANCE: Bound = Bound { what: "a future tolerance", min: ms(1_000), max: ms(366 * 24 * HOUR) };
/// A PromQL range: must not be empty.
const WINDOW: Bound = Bound { what: "a window", min: ms(1_000), max: ms(366 * 24 * HOUR) };
/// An alert's `for`: zero fires at once, which is allowed.
const FOR: Bound = Bound { what: "a `for` duration", min: ms(0), max: ms(366 * 24 * HOUR) };
/// Alertmanager's group_interval and repeat_interval: it refuses zero.
const NOTIFY_INTERVAL: Bound = Bound { what: "a notification interval", min: ms(1_000), max: ms(366 * 24 * HOUR) };
/// Alertmanager's group_wait: zero sends the first notification at once.
const GROUP_WAIT: Bound = Bound { what: "a group wait", min: ms(0), max: ms(24 * HOUR) };

fn check(d: PromDuration, bound: &Bound, name: &str, path: &[&str], source: &Locator<'_>, errors: &mut Vec<SpecError>) {
    if d.0 < bound.min || d.0 > bound.max {
        let range = format!("{} to {}", PromDuration(bound.min), PromDuration(bound.max));
        errors.push(source.locate_path(path, format!("`{name}` is {d}; {} is from {range}", bound.what)));
    }
}

/// Checks every duration of the user's file; built-in packs are covered by their own tests.
pub(super) fn check_durations(config: &Config, source: &Locator<'_>) -> Vec<SpecError> {
    let mut errors = Vec::new();
    let e = &mut errors;
    let d = &config.poll_defaults;
    // Errors name the key the user wrote: the current one or its deprecated alias.
    let key = if source.text().contains("sql_defaults") { "sql_defaults" } else { "poll_defaults" };
    check(d.interval, &INTERVAL, &format!("{key}.interval"), &[key, "interval"], source, e);
    check(d.timeout, &TIMEOUT, &format!("{key}.timeout"), &[key, "timeout"], source, e);
    if let Some(db) = &config.database {
        let path = ["database", "connect_timeout"];
        check(db.connect_timeout, &CONNECT_TIMEOUT, "database.connect_timeout", &path, source, e);
    }
    for (name, db) in &config.databases {
        let path = ["databases", name, "connect_timeout"];
        let what = format!("databases.{name}.connect_timeout");
        check(db.connect_timeout, &CONNECT_TIMEOUT, &what, &path, source, e);
    }
    check(config.ha.retry, &HA_RETRY, "ha.retry", &["ha", "retry"], source, e);
    for (name, log) in &config.logs {
        for (key, value, bound) in [
            ("rotate_wait", log.rotate_wait, &ROTATE_WAIT),
            ("max_age", log.max_age, &MAX_AGE),
            ("future_tolerance", log.future_tolerance, &FUTURE_TOLERANCE),
        ] {
            check(value, bound, &format!("logs.{name}.{key}"), &["logs", name, key], source, e);
        }
    }
    let am = &config.generate.alertmanager;
    for (key, value, bound) in [
        ("group_wait", am.group_wait, &GROUP_WAIT),
        ("group_interval", am.group_interval, &NOTIFY_INTERVAL),
        ("repeat_interval", am.repeat_interval, &NOTIFY_INTERVAL),
    ] {
        check(value, bound, &format!("alertmanager.{key}"), &["alertmanager", key], source, e);
    }
    for signal in &config.signals {
        let id = signal.id.as_str();
        let (interval, timeout) = signal.source.settings().own_schedule().unwrap_or_default();
        if let Some(v) = interval {
            check(v, &INTERVAL, &format!("{id}: interval"), &["signals", id, "interval"], source, e);
        }
        if let Some(v) = timeout {
            check(v, &TIMEOUT, &format!("{id}: timeout"), &["signals", id, "timeout"], source, e);
        }
        for alert in &signal.alerts {
            let name = alert.name.as_str();
            check(alert.for_, &FOR, &format!("{name}: for"), &["signals", id, name, "for"], source, e);
            if let Some(w) = alert.condition.window() {
                check(w, &WINDOW, &format!("{name}: window"), &["signals", id, name, "window"], source, e);
            }
        }
    }
    for (pack, settings) in config.packs.iter().flat_map(|(pack, e)| e.instances().iter().map(move |s| (pack, s))) {
        for (param, value) in &settings.params {
            check_pack_duration(pack, param, value, source, e);
        }
        for (id, over) in &settings.signals {
            check_signal_override(pack, id, over, source, e);
        }
        for (key, over) in &settings.alerts {
            check_alert_override(pack, key, over, source, e);
        }
    }
    errors
}

/// Pack parameters that become a log source's durations are bounded like the log source's own
/// keys (a pack's `max_age` of 0 would serve nothing). Other parameters are checked where used.
fn check_pack_duration(pack: &str, param: &str, value: &ParamValue, source: &Locator<'_>, e: &mut Vec<SpecError>) {
    let Some(pack_def) = super::pack::BUILTIN.iter().find(|(name, _)| *name == pack) else { return };
    let used_as = |key: &str| pack_def.1.contains(&format!("{key}: \"{{{{{param}}}}}\""));
    for (key, bound) in [("max_age", &MAX_AGE), ("future_tolerance", &FUTURE_TOLERANCE), ("rotate_wait", &ROTATE_WAIT)]
    {
        if !used_as(key) {
            continue;
        }
        let path = ["packs", pack, "params", param];
        match PromDuration::parse(&value.to_string()) {
            Ok(d) => check(d, bound, &format!("{pack}: {param} ({key})"), &path, source, e),
            Err(err) => e.push(source.locate_path(&path, format!("`{pack}: {param}` ({key}): {err}"))),
        }
    }
}

fn check_signal_override(pack: &str, id: &str, over: &SignalOverride, source: &Locator<'_>, e: &mut Vec<SpecError>) {
    if let Some(v) = over.interval {
        check(v, &INTERVAL, &format!("{id}: interval"), &["packs", pack, "signals", id, "interval"], source, e);
    }
    if let Some(v) = over.timeout {
        check(v, &TIMEOUT, &format!("{id}: timeout"), &["packs", pack, "signals", id, "timeout"], source, e);
    }
}

fn check_alert_override(pack: &str, key: &str, over: &AlertOverride, source: &Locator<'_>, e: &mut Vec<SpecError>) {
    if let Some(v) = over.for_ {
        check(v, &FOR, &format!("{key}: for"), &["packs", pack, "alerts", key, "for"], source, e);
    }
    if let Some(v) = over.window {
        check(v, &WINDOW, &format!("{key}: window"), &["packs", pack, "alerts", key, "window"], source, e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn load(text: &str) -> Result<Model, SpecErrors> {
        Model::from_text(&SourceText { name: "spec.yaml".into(), text: text.into() })
    }

    const HEAD: &str = "database: {url_env: DATABASE_URL}\n";

    #[test]
    fn zero_and_absurd_durations_are_located() {
        for (body, line, column, says) in [
            ("sql_defaults:\n  interval: 0s\n", 3, 3, "`sql_defaults.interval` is 0s; an interval is from 100ms to 1d"),
            ("sql_defaults: {timeout: 2h}\n", 2, 16, "`sql_defaults.timeout` is 2h"),
            ("poll_defaults: {timeout: 2h}\n", 2, 17, "`poll_defaults.timeout` is 2h"),
            (
                "packs:\n  token_refresh:\n    signals:\n      token_refresh.degraded_watchers: {interval: 0}\n",
                5,
                41,
                "`token_refresh.degraded_watchers: interval` is 0s",
            ),
            (
                "packs:\n  token_refresh:\n    alerts:\n      IntegrationTokenRefreshTokensExpiring: {for: 1000d}\n",
                5,
                47,
                "for` is 142w6d",
            ),
            ("generate:\n  alertmanager: {repeat_interval: 0s}\n", 3, 18, "`alertmanager.repeat_interval` is 0s"),
            ("logs:\n  app: {paths: [x.log], max_age: 0s}\n", 3, 25, "`logs.app.max_age` is 0s"),
        ] {
            let err = load(&format!("{HEAD}{body}")).expect_err(body).0.remove(0);
            assert_eq!((err.line, err.column), (line, column), "{body}: {err}");
            assert!(err.message.contains(says), "{body}: {err}");
        }
        let db = load("database: {url_env: X, connect_timeout: 0s}\n").unwrap_err().to_string();
        assert!(db.starts_with("spec.yaml:1:24: `database.connect_timeout` is 0s"), "{db}");
        let ha = load("ha: {enabled: true, retry: 0s}\n").unwrap_err().to_string();
        assert!(ha.starts_with("spec.yaml:1:21: `ha.retry` is 0s"), "{ha}");
    }

    #[test]
    fn a_timeout_longer_than_its_interval_is_allowed() {
        assert!(load(&format!("{HEAD}sql_defaults: {{interval: 1s, timeout: 2s}}\n")).is_ok());
    }

    /// Every duration a source or generator reads, after packs and overrides are applied.
    fn every_duration_in_bounds(model: &Model) -> bool {
        let inside = |d: PromDuration, b: &Bound| d.0 >= b.min && d.0 <= b.max;
        model.enabled_signals().all(|s| {
            s.schedule().is_none_or(|every| inside(every.interval, &INTERVAL) && inside(every.timeout, &TIMEOUT))
        }) && model.logs.values().all(|l| {
            inside(l.rotate_wait, &ROTATE_WAIT)
                && inside(l.max_age, &MAX_AGE)
                && inside(l.future_tolerance, &FUTURE_TOLERANCE)
        }) && model.config.databases().iter().all(|(_, db)| inside(db.connect_timeout, &CONNECT_TIMEOUT))
    }

    fn duration_text() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("0".to_string()),
            Just("0s".to_string()),
            Just("0ms".to_string()),
            (0u64..100_000, prop::sample::select(vec!["ms", "s", "m", "h", "d", "w"]))
                .prop_map(|(n, u)| format!("{n}{u}")),
            "[0-9a-z.-]{0,6}",
            Just("99999999999999999999w".to_string()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Any text in any duration field: an error with a place, or a model whose every duration
        /// is in bounds. Never a panic, never a zero that reaches a source.
        #[test]
        fn durations_are_bounded_or_rejected(
            interval in duration_text(), timeout in duration_text(), connect in duration_text(),
            rotate in duration_text(), over in duration_text(), window in duration_text(),
        ) {
            let text = format!(
                "database: {{url_env: DATABASE_URL, connect_timeout: '{connect}'}}\n\
                 sql_defaults: {{interval: '{interval}', timeout: '{timeout}'}}\n\
                 logs:\n  app: {{paths: [x.log], rotate_wait: '{rotate}'}}\n\
                 packs:\n  token_refresh:\n    signals:\n      token_refresh.degraded_watchers: {{interval: '{over}', timeout: '{over}'}}\n\
                 \x20   alerts:\n      IntegrationTokenRefreshTokensExpiring: {{for: '{window}'}}\n"
            );
            match load(&text) {
                Ok(model) => prop_assert!(every_duration_in_bounds(&model)),
                Err(errors) => {
                    for e in errors.0 {
                        prop_assert!(e.line >= 1 && e.column >= 1 && !e.message.is_empty());
                    }
                }
            }
        }
    }
}
