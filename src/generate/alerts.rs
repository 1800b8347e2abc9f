//! Which of the spec's alerts `generate` writes: the enabled alerts of enabled signals, and their
//! enabled SLOs. Every builder asks here, so a disabled alert is left out everywhere at once; the
//! alerts of the exporter's own are the plan's ([`super::plan::Plan::alert_names`] lists every
//! alert written).

use crate::spec::{Alert, Model, ResolvedSignal, Slo};

/// The enabled alerts of one signal, in the spec's order.
pub fn of_signal(signal: &ResolvedSignal) -> impl Iterator<Item = &Alert> {
    signal.signal.alerts.iter().filter(|a| a.enabled)
}

/// The enabled alerts of every enabled signal.
pub fn all(model: &Model) -> impl Iterator<Item = (&ResolvedSignal, &Alert)> {
    model.enabled_signals().flat_map(|s| of_signal(s).map(move |a| (s, a)))
}

/// Alerts of one pack (or of the user's own signals when `pack` is `None`).
pub fn of_pack<'a>(model: &'a Model, pack: Option<&'a str>) -> impl Iterator<Item = (&'a ResolvedSignal, &'a Alert)> {
    all(model).filter(move |(s, _)| s.pack.as_deref() == pack)
}

/// The SLO of one signal, when it states one and it is enabled.
pub fn slo_of_signal(signal: &ResolvedSignal) -> Option<&Slo> {
    signal.signal.slo.as_ref().filter(|slo| slo.enabled)
}

/// The enabled SLOs of one pack (of the user's own signals when `pack` is `None`).
pub fn slos_of<'a>(model: &'a Model, pack: Option<&'a str>) -> impl Iterator<Item = (&'a ResolvedSignal, &'a Slo)> {
    model.slos().filter(move |(s, _)| s.pack.as_deref() == pack)
}

/// Whether the model has any alert or SLO, i.e. whether the exporter's own alerts and an
/// Alertmanager configuration are worth writing.
pub fn any(model: &Model) -> bool {
    all(model).next().is_some() || model.slos().next().is_some()
}
