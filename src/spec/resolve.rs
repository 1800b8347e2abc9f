//! Packs and the user's own signals into one [`Model`]: parameters filled in, overrides applied,
//! schedules and runbook links settled. Every problem is collected with its place in the file.

use std::collections::{BTreeMap, BTreeSet};

use super::config::{PackSettings, SignalOverride};
use super::pack::{self, render_raw};
use super::source_kind::PackParams;
use super::*;

fn runbook_url(base: &str, file: &str, section: Option<&str>) -> String {
    let mut url = format!("{}/{}", base.trim_end_matches('/'), file.trim_start_matches('/'));
    if let Some(section) = section {
        url.push('#');
        url.push_str(&heading_anchor(section));
    }
    url
}

pub(super) fn resolve(config: Config, source: &Locator<'_>) -> Result<Model, SpecErrors> {
    let mut out = Resolved::default();
    for (name, enabling) in &config.packs {
        resolve_enabling(&config, name, enabling.instances(), source, &mut out);
    }
    for (name, log) in &config.logs {
        out.logs.insert(name.clone(), log.clone());
    }
    for signal in &config.signals {
        if let Source::Sql(SqlSource { scan: Some(scan), .. }) = &signal.source {
            let message = format!(
                "signal `{}`: `scan: {scan}` names a pack's shared scan; a signal of the spec writes its own `query`",
                signal.id
            );
            out.errors.push(source.locate(&signal.id, message));
        }
        let how = signal.source.settings().resolve(&config.poll_defaults, &SignalOverride::default());
        let runbook_url = signal.runbook_section.as_ref().map(|s| {
            if s.starts_with("http://") || s.starts_with("https://") {
                s.clone()
            } else {
                format!("{}#{}", config.runbook_base_url.trim_end_matches('/'), heading_anchor(s))
            }
        });
        let mut resolved =
            ResolvedSignal { pack: None, signal: signal.clone(), runbook_url, source: how, databases: vec![] };
        if resolved.signal.source.settings().needs_database() {
            let what = format!("signal `{}`", signal.id);
            let database = bind(&config, signal.database.as_deref(), &what, &signal.id, source, &mut out.errors);
            resolved.databases = database.into_iter().map(|d| binding(&resolved, d)).collect();
        }
        out.signals.push(resolved);
    }
    // A pack declares rules for each line shape; only those of the source's format apply.
    for resolved in &mut out.signals {
        if let Source::Log(rules) = &mut resolved.signal.source
            && let Some(log) = out.logs.get(&rules.log)
        {
            rules.rules.retain(|rule| rule.format.is_none_or(|f| f == log.format));
        }
    }
    // With `ha` on, a SQL signal's series come from whichever replica leads: the alert is about
    // the fleet, or a failover would resolve it on the old leader and fire it anew on the next.
    if config.ha.enabled {
        for resolved in out.signals.iter_mut().filter(|s| s.signal.source.settings().needs_database()) {
            resolved.signal.alerts.iter_mut().for_each(|a| a.across_instances = true);
        }
    }
    // A pack declares log sources for its log signals; with all of those off (a variant that
    // reads the same from an API), its files are no part of the exporter: nothing opens or waits
    // for them, and no alert says they are unreadable.
    let read: BTreeSet<&str> = out
        .signals
        .iter()
        .filter(|s| s.signal.enabled)
        .filter_map(|s| match &s.signal.source {
            Source::Log(rules) => Some(rules.log.as_str()),
            _ => None,
        })
        .collect();
    let unread: Vec<String> = out.pack_logs.iter().filter(|log| !read.contains(log.as_str())).cloned().collect();
    for log in unread {
        out.logs.remove(&log);
    }
    let Resolved { errors, packs, logs, signals, .. } = out;
    if errors.is_empty() {
        Ok(Model { config, packs, logs, signals, listen_at: None })
    } else {
        Err(SpecErrors(errors))
    }
}

#[derive(Default)]
struct Resolved {
    errors: Vec<SpecError>,
    packs: Vec<PackInfo>,
    logs: BTreeMap<String, LogFiles>,
    /// The log sources packs declared (the user's own are kept whether read or not).
    pack_logs: BTreeSet<String>,
    signals: Vec<ResolvedSignal>,
}

/// The database a SQL signal or pack reads: the one it names, or the only one. `None` when it
/// cannot be told (the error is pushed) or there is no database at all (validation says so).
fn bind(
    config: &Config,
    named: Option<&str>,
    what: &str,
    at: &str,
    source: &Locator<'_>,
    errors: &mut Vec<SpecError>,
) -> Option<String> {
    let databases = config.databases();
    let names = || databases.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ");
    match named {
        Some(name) if databases.iter().any(|(n, _)| *n == name) => Some(name.to_string()),
        Some(name) if databases.is_empty() => {
            errors.push(source.locate(at, format!("{what}: reads database `{name}`, but no database is configured")));
            None
        }
        Some(name) => {
            errors.push(source.locate(at, format!("{what}: no database `{name}` (databases: {})", names())));
            None
        }
        None if databases.len() > 1 => {
            let message = format!("{what} reads SQL: say which database with `database: NAME` ({})", names());
            errors.push(source.locate(at, message));
            None
        }
        None => databases.first().map(|(n, _)| n.to_string()),
    }
}

fn binding(signal: &ResolvedSignal, database: String) -> DatabaseBinding {
    let query = match &signal.signal.source {
        Source::Sql(sql) => sql.query.clone(),
        _ => String::new(),
    };
    DatabaseBinding { database, query }
}

/// A pack enabled once, or once per database. The first enabling gives the pack's signals,
/// alerts and logs; each further one only adds its database, with its own query, to the SQL
/// signals: one set of alerts and panels watches every database, the series told apart by the
/// database label. So the enablings may differ only in what the queries read.
fn resolve_enabling(config: &Config, name: &str, instances: &[PackSettings], source: &Locator<'_>, out: &mut Resolved) {
    let mut first_done = false;
    let mut databases = BTreeSet::new();
    for settings in instances {
        let mut part = Resolved::default();
        resolve_pack(config, name, settings, source, &mut part);
        out.errors.append(&mut part.errors);
        if !settings.enabled {
            continue;
        }
        let reads_sql = part.signals.iter().any(|s| s.signal.source.settings().needs_database());
        let database = if reads_sql {
            let what = format!("pack `{name}`");
            let at = settings.database.as_deref().unwrap_or(name);
            bind(config, settings.database.as_deref(), &what, at, source, &mut out.errors)
        } else {
            None
        };
        if let Some(db) = &database
            && !databases.insert(db.clone())
        {
            out.errors.push(source.locate(db, format!("pack `{name}` is enabled twice on database `{db}`")));
            continue;
        }
        for signal in &mut part.signals {
            if signal.signal.source.settings().needs_database() {
                signal.databases = database.iter().map(|d| binding(signal, d.clone())).collect();
            }
        }
        if !first_done {
            first_done = true;
            out.packs.append(&mut part.packs);
            out.logs.append(&mut part.logs);
            out.pack_logs.append(&mut part.pack_logs);
            out.signals.append(&mut part.signals);
            continue;
        }
        let at = settings.database.as_deref().unwrap_or(name);
        for (log, files) in &part.logs {
            if out.logs.get(log) != Some(files) {
                let message = format!(
                    "pack `{name}`: its enablings read log `{log}` differently; the log sources of a pack enabled per database are one for all"
                );
                out.errors.push(source.locate(at, message));
            }
        }
        for signal in part.signals {
            let Some(kept) =
                out.signals.iter_mut().find(|s| s.pack.as_deref() == Some(name) && s.signal.id == signal.signal.id)
            else {
                continue;
            };
            if without_query(kept) != without_query(&signal) {
                let message = format!(
                    "pack `{name}`, signal `{}`: its enablings differ in more than what the query reads (alerts, metrics, schedule, log rules); a pack enabled per database has one set of alerts and panels",
                    signal.signal.id
                );
                out.errors.push(source.locate(at, message));
            } else {
                kept.databases.extend(signal.databases);
            }
        }
    }
}

/// A signal with what may differ between the enablings of a pack left out.
fn without_query(signal: &ResolvedSignal) -> ResolvedSignal {
    let mut signal = signal.clone();
    signal.databases.clear();
    if let Source::Sql(sql) = &mut signal.signal.source {
        sql.query.clear();
        sql.origins.clear();
    }
    signal
}

/// One enabled pack, with the user's parameters and overrides applied.
fn resolve_pack(config: &Config, name: &str, settings: &PackSettings, source: &Locator<'_>, out: &mut Resolved) {
    let pack =
        match builtin_pack(name) {
            None => {
                let known: Vec<&str> = pack::BUILTIN.iter().map(|(n, _)| *n).collect();
                out.errors.push(source.locate(
                    &format!("{name}:"),
                    format!("unknown pack `{name}` (built-in packs: {})", known.join(", ")),
                ));
                return;
            }
            Some(Err(e)) => {
                out.errors.push(e);
                return;
            }
            Some(Ok(pack)) => pack,
        };
    if !settings.enabled {
        return;
    }
    let mut params = pack::Params::new();
    for (param, def) in &pack.params {
        let value = settings.params.get(param).unwrap_or(&def.default).to_string();
        params.insert(param.clone(), (def.kind, value));
    }
    for param in settings.params.keys() {
        if !pack.params.contains_key(param) {
            out.errors.push(source.locate(&format!("{param}:"), format!("pack `{name}` has no parameter `{param}`")));
        }
    }
    let defaults = pack.defaults();
    let default_shapes: BTreeMap<&str, bool> =
        pack.logs.iter().map(|(n, log)| (n.as_str(), log.shape_is_default(&params, &defaults))).collect();
    for (log_name, log) in &pack.logs {
        match log.render(&params) {
            Ok(log) => {
                out.logs.insert(format!("{name}.{log_name}"), log);
                out.pack_logs.insert(format!("{name}.{log_name}"));
            }
            Err(e) => {
                let set_here = log.format_params().into_iter().find(|p| settings.params.contains_key(*p));
                let path: Vec<&str> = [name].into_iter().chain(set_here).collect();
                out.errors.push(source.locate_path(&path, format!("pack `{name}`, log `{log_name}`: {e}")));
            }
        }
    }
    let pack_params = PackParams {
        pack: name,
        params: &params,
        defaults: &defaults,
        default_shapes: &default_shapes,
        scans: &pack.scans,
    };
    let mut used_alert_overrides = std::collections::BTreeSet::new();
    for mut signal in pack.signals.clone() {
        let over = settings.signals.get(&signal.id).cloned().unwrap_or_default();
        if let Some(enabled) = over.enabled {
            signal.enabled = enabled;
        }
        for problem in signal.source.settings_mut().render(&pack_params) {
            out.errors.push(source.locate(name, format!("pack `{name}`, signal `{}`: {problem}", signal.id)));
        }
        let how = signal.source.settings().resolve(&config.poll_defaults, &over);
        for alert in &mut signal.alerts {
            let guards: Vec<_> =
                alert.while_.iter_mut().flat_map(|g| condition_selectors_mut(&mut g.condition)).collect();
            for selector in condition_selectors_mut(&mut alert.condition).into_iter().chain(guards) {
                for value in selector.values_mut() {
                    *value = render_raw(value, &params);
                }
            }
            for key in [alert.name.clone(), format!("{}:{}", alert.name, alert.severity.as_str())] {
                if let Some(o) = settings.alerts.get(&key) {
                    used_alert_overrides.insert(key.clone());
                    apply_alert_override(alert, o);
                }
            }
        }
        if let Some(slo) = &mut signal.slo {
            for value in slo.errors.matchers.values_mut().chain(slo.total.matchers.values_mut()) {
                *value = render_raw(value, &params);
            }
            if let Some(o) = settings.alerts.get(&slo.alert) {
                used_alert_overrides.insert(slo.alert.clone());
                if let Err(e) = apply_slo_override(slo, o) {
                    out.errors.push(source.locate(&format!("{}:", slo.alert), format!("pack `{name}`: {e}")));
                }
            }
        }
        let runbook_url = Some(runbook_url(&config.runbook_base_url, &pack.runbook, signal.runbook_section.as_deref()));
        let databases = Vec::new();
        out.signals.push(ResolvedSignal { pack: Some(name.to_string()), signal, runbook_url, source: how, databases });
    }
    for key in settings.alerts.keys() {
        if !used_alert_overrides.contains(key) {
            out.errors.push(source.locate(&format!("{key}:"), format!("pack `{name}` has no alert `{key}`")));
        }
    }
    for id in settings.signals.keys() {
        if !pack.signals.iter().any(|s| &s.id == id) {
            out.errors.push(source.locate(id, format!("pack `{name}` has no signal `{id}`")));
        }
    }
    out.packs.push(PackInfo {
        name: name.to_string(),
        title: pack.title.clone(),
        runbook: pack.runbook.clone(),
        playbook: pack.playbook.clone(),
    });
}

fn apply_alert_override(alert: &mut Alert, o: &config::AlertOverride) {
    let basis = alert.basis.get_or_insert_with(AlertBasis::default);
    let chosen = || Some(Basis::Chosen("set in the spec".into()));
    if o.threshold.is_some() || o.min_events.is_some() {
        basis.threshold = chosen();
    }
    if o.severity.is_some() {
        basis.severity = chosen();
    }
    if o.window.is_some() {
        basis.window = chosen();
    }
    if o.for_.is_some() {
        basis.for_ = chosen();
    }
    if let Some(t) = o.threshold {
        alert.threshold = t;
    }
    if let Some(f) = o.for_ {
        alert.for_ = f;
    }
    if let Some(s) = o.severity {
        alert.severity = s;
    }
    if let Some(e) = o.enabled {
        alert.enabled = e;
    }
    if let Some(a) = o.across_instances {
        alert.across_instances = a;
    }
    if let Some(w) = o.window
        && let Some(window) = alert.condition.window_mut()
    {
        *window = w;
    }
    if let (Some(m), Condition::Ratio(r)) = (o.min_events, &mut alert.condition) {
        r.min_events = m;
    }
}

/// An SLO's burn alerts are its objective's: only whether they exist and the volume guard are
/// the spec's to change (the tiers' windows, factors and `for` are the workbook's).
fn apply_slo_override(slo: &mut Slo, o: &config::AlertOverride) -> Result<(), String> {
    if o.threshold.is_some()
        || o.for_.is_some()
        || o.window.is_some()
        || o.severity.is_some()
        || o.across_instances.is_some()
    {
        return Err(format!("`{}` is an SLO's burn-rate alert: it takes only `enabled` and `min_events`", slo.alert));
    }
    if let Some(e) = o.enabled {
        slo.enabled = e;
    }
    if let Some(m) = o.min_events {
        slo.basis.get_or_insert_with(SloBasis::default).min_events = Some(Basis::Chosen("set in the spec".into()));
        slo.min_events = m;
    }
    Ok(())
}

fn condition_selectors_mut(condition: &mut Condition) -> Vec<&mut BTreeMap<String, String>> {
    match condition {
        Condition::GaugeRatio { numerator, denominator } => vec![&mut numerator.matchers, &mut denominator.matchers],
        Condition::Gauge(s) | Condition::Age(s) | Condition::Absent(s) => vec![&mut s.matchers],
        Condition::Ratio(w) | Condition::Increase(w) | Condition::Rise(w) => vec![&mut w.matchers],
        Condition::Quantile(q) => vec![&mut q.matchers],
    }
}
