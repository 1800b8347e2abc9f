//! Health of a polled source (a query, an endpoint), exported beside its values in the same shape
//! for every kind: did the last poll work, how long it took, when it last worked, errors by kind.

use std::collections::BTreeMap;

use crate::self_metrics::PollHealthMetrics;
use crate::state::Family;

/// A source kind's error classes: a fixed label set, every value exported from the start.
pub trait ErrorKind: Copy + Ord + 'static {
    const ALL: &'static [Self];
    fn as_str(self) -> &'static str;
}

#[derive(Debug, Clone)]
pub struct PollHealth<K> {
    pub ok: bool,
    pub duration: f64,
    pub last_success: Option<f64>,
    pub errors: BTreeMap<K, u64>,
}

impl<K> Default for PollHealth<K> {
    fn default() -> Self {
        Self { ok: false, duration: 0.0, last_success: None, errors: BTreeMap::new() }
    }
}

impl<K: ErrorKind> PollHealth<K> {
    pub fn succeeded(&mut self, duration: f64) {
        self.ok = true;
        self.duration = duration;
        self.last_success = Some(super::unix_now());
    }

    pub fn failed(&mut self, kinds: &[K], duration: f64) {
        self.ok = false;
        self.duration = duration;
        for kind in kinds {
            *self.errors.entry(*kind).or_default() += 1;
        }
    }

    pub fn families(&self, names: &PollHealthMetrics, signal: &str) -> Vec<Family> {
        let l = [("signal", signal)];
        let mut errors = names.errors.family();
        for kind in K::ALL {
            let count = *self.errors.get(kind).unwrap_or(&0) as f64;
            errors.push(&[("signal", signal), ("kind", kind.as_str())], count);
        }
        let mut out = vec![
            names.ok.family().with(&l, if self.ok { 1.0 } else { 0.0 }),
            names.duration.family().with(&l, self.duration),
            errors,
        ];
        if let Some(ts) = self.last_success {
            out.push(names.last_success.family().with(&l, ts));
        }
        out
    }
}
