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

pub(super) fn resolve(config: Config, source: &SourceText) -> Result<Model, SpecErrors> {
    let mut out = Resolved::default();
    for (name, settings) in &config.packs {
        resolve_pack(&config, name, settings, source, &mut out);
    }
    for (name, log) in &config.logs {
        out.logs.insert(name.clone(), log.clone());
    }
    for signal in &config.signals {
        let source = signal.source.spec().resolve(&config.poll_defaults, &SignalOverride::default());
        let runbook_url = signal.runbook_section.as_ref().map(|s| {
            if s.starts_with("http://") || s.starts_with("https://") {
                s.clone()
            } else {
                format!("{}#{}", config.runbook_base_url.trim_end_matches('/'), heading_anchor(s))
            }
        });
        out.signals.push(ResolvedSignal { pack: None, signal: signal.clone(), runbook_url, source });
    }
    // A pack declares rules for each line shape; only those of the source's format apply.
    for resolved in &mut out.signals {
        if let Source::Log(rules) = &mut resolved.signal.source
            && let Some(log) = out.logs.get(&rules.log)
        {
            rules.rules.retain(|rule| rule.format.is_none_or(|f| f == log.format));
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
    if errors.is_empty() { Ok(Model { config, packs, logs, signals }) } else { Err(SpecErrors(errors)) }
}

#[derive(Default)]
struct Resolved {
    errors: Vec<SpecError>,
    packs: Vec<PackInfo>,
    logs: BTreeMap<String, LogSource>,
    /// The log sources packs declared (the user's own are kept whether read or not).
    pack_logs: BTreeSet<String>,
    signals: Vec<ResolvedSignal>,
}

/// One enabled pack, with the user's parameters and overrides applied.
fn resolve_pack(config: &Config, name: &str, settings: &PackSettings, source: &SourceText, out: &mut Resolved) {
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
    let pack_params = PackParams { pack: name, params: &params, defaults: &defaults, default_shapes: &default_shapes };
    let mut used_alert_overrides = std::collections::BTreeSet::new();
    for mut signal in pack.signals.clone() {
        let over = settings.signals.get(&signal.id).cloned().unwrap_or_default();
        if let Some(enabled) = over.enabled {
            signal.enabled = enabled;
        }
        for problem in signal.source.spec_mut().render(&pack_params) {
            out.errors.push(source.locate(name, format!("pack `{name}`, signal `{}`: {problem}", signal.id)));
        }
        let how = signal.source.spec().resolve(&config.poll_defaults, &over);
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
        let runbook_url = Some(runbook_url(&config.runbook_base_url, &pack.runbook, signal.runbook_section.as_deref()));
        out.signals.push(ResolvedSignal { pack: Some(name.to_string()), signal, runbook_url, source: how });
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
    out.packs.push(PackInfo { name: name.to_string(), title: pack.title.clone(), runbook: pack.runbook.clone() });
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

fn condition_selectors_mut(condition: &mut Condition) -> Vec<&mut BTreeMap<String, String>> {
    match condition {
        Condition::GaugeRatio { numerator, denominator } => vec![&mut numerator.matchers, &mut denominator.matchers],
        Condition::Gauge(s) | Condition::Age(s) | Condition::Absent(s) => vec![&mut s.matchers],
        Condition::Ratio(w) | Condition::Increase(w) | Condition::Rise(w) => vec![&mut w.matchers],
        Condition::Quantile(q) => vec![&mut q.matchers],
    }
}
