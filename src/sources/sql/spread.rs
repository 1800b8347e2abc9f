//! Spreading leaderships over replicas, with several databases: PostgreSQL keeps the count of
//! live replicas, this module decides, per database and per round, whether this replica may try
//! for the leader lock, should give a leadership up, or should ask for one.
//!
//! On each database every replica's lock session holds a *shared* "candidate" advisory lock, so
//! the granted holders in `pg_locks` are the live replicas, `R` (a replica that dies loses its
//! session and with it the lock). With `D` databases, a replica's share is `ceil(D/R)`:
//! - a standby tries for the leader lock only while it leads fewer than its share;
//! - a leader above its share (a replica joined) gives up one leadership per round;
//! - a replica leading fewer than `floor(D/R)` holds a shared "want" lock on every database; a
//!   leader above `floor(D/R)` that sees another replica's want gives one leadership up, and a
//!   replica that does not want leaves the lock to the one that does.
//!
//! The leadership given up is the one with the lowest rendezvous score of (replica name,
//! database), so the same databases move each time and choices do not ping-pong.
//!
//! Convergence: a replica never takes past its share, and once every replica leads between
//! `floor(D/R)` and `ceil(D/R)` nobody wants and nobody gives up, so the state is stable; until
//! then each give-up moves one leadership from a replica above the floor to one below it (or off
//! a replica above its share), which strictly lowers the sum of squares of the counts. Every
//! database has a candidate below its share while one is unled (R shares cover D), so nothing is
//! left without a leader for longer than one `retry`.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

use sha2::{Digest, Sha256};

/// The leaderships of this replica across its databases, shared by their elections.
#[derive(Debug)]
pub struct Spread {
    /// Databases with an election (with SQL queries) in this spec: `D`.
    databases: usize,
    /// `ha.replica`: orders which leadership is given up first.
    replica: String,
    led: Mutex<BTreeSet<String>>,
}

/// What one election read on its database this round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    /// Replicas holding the candidate lock: `R`, this one included.
    pub live: usize,
    /// Whether a replica other than this one holds the want lock.
    pub others_want: bool,
}

impl Spread {
    pub fn new(databases: usize, replica: String) -> Arc<Spread> {
        Arc::new(Spread { databases, replica, led: Mutex::default() })
    }

    /// With one database there is nothing to spread: no candidate or want locks are taken, and
    /// the election is the plain one.
    pub fn active(&self) -> bool {
        self.databases > 1
    }

    fn led(&self) -> MutexGuard<'_, BTreeSet<String>> {
        self.led.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `ceil(D/R)`: the most this replica leads once settled.
    pub fn share(&self, live: usize) -> usize {
        self.databases.div_ceil(live.max(1))
    }

    /// `floor(D/R)`: below it, a replica asks for a leadership.
    fn floor(&self, live: usize) -> usize {
        self.databases / live.max(1)
    }

    /// Whether this replica should hold the want lock.
    pub fn wants(&self, live: usize) -> bool {
        self.led().len() < self.floor(live)
    }

    /// Whether a standby may try for the leader lock this round.
    pub fn may_try(&self, view: View) -> bool {
        let led = self.led().len();
        led < self.share(view.live) && (!view.others_want || led < self.floor(view.live))
    }

    /// Records a leadership just taken; false when another database's election took the last
    /// place of the share meanwhile (the caller then gives the lock back).
    pub fn claim(&self, database: &str, live: usize) -> bool {
        let mut led = self.led();
        if led.len() >= self.share(live) && !led.contains(database) {
            return false;
        }
        led.insert(database.to_string());
        true
    }

    /// Whether the leader of `database` should give it up this round; if so it is no longer
    /// counted as led.
    pub fn release(&self, database: &str, view: View) -> bool {
        let mut led = self.led();
        let n = led.len();
        let over = n > self.share(view.live) || (view.others_want && n > self.floor(view.live));
        if !over || !led.contains(database) {
            return false;
        }
        let first = led.iter().min_by_key(|db| self.score(db)).cloned();
        if first.as_deref() != Some(database) {
            return false;
        }
        led.remove(database);
        true
    }

    /// The leadership of `database` is gone (session lost, pooler found, stood by).
    pub fn forget(&self, database: &str) {
        self.led().remove(database);
    }

    pub fn leads(&self) -> usize {
        self.led().len()
    }

    /// Rendezvous score of this replica for `database`.
    fn score(&self, database: &str) -> u64 {
        let digest = Sha256::digest(format!("{}\0{database}", self.replica).as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(first)
    }
}

/// The replica's name when `ha.replica` is unset: the host name (a pod's name on Kubernetes).
pub fn default_replica() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "replica".to_string())
}

/// `(classid, objid)` of a 64-bit advisory key as `pg_locks` shows it (with `objsubid = 1`).
pub fn lock_columns(key: i64) -> (u32, u32) {
    ((key as u64 >> 32) as u32, key as u64 as u32)
}

/// One statement reading the [`View`] on the current database: candidate holders, and want
/// holders other than this session. Its answer is `"<live> <others_want>"`.
pub fn view_sql(candidate: i64, want: i64) -> String {
    let holders = |key: i64, extra: &str| {
        let (high, low) = lock_columns(key);
        format!(
            "(SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = d.oid \
             AND classid = '{high}'::oid AND objid = '{low}'::oid AND objsubid = 1{extra})::text"
        )
    };
    format!(
        "SELECT {} || ' ' || {} FROM pg_database d WHERE d.datname = current_database()",
        holders(candidate, ""),
        holders(want, " AND pid <> pg_backend_pid()")
    )
}

/// Parses [`view_sql`]'s answer.
pub fn parse_view(text: &str) -> Option<View> {
    let (live, want) = text.split_once(' ')?;
    Some(View { live: live.parse().ok()?, others_want: want.parse::<u64>().ok()? > 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs rounds of every replica over every database, in an order that changes each round,
    /// against one lock table, until nothing changes; returns the counts per replica.
    fn settle(replicas: &[Arc<Spread>], databases: &[&str], holder: &mut Vec<Option<usize>>) -> Vec<usize> {
        let live = replicas.len();
        for round in 0..200 {
            let before = holder.clone();
            for step in 0..replicas.len() * databases.len() {
                let r = (step + round) % replicas.len();
                let d = (step / replicas.len() + round) % databases.len();
                let spread = &replicas[r];
                let wanting: Vec<bool> = replicas.iter().map(|s| s.wants(live)).collect();
                let view = View { live, others_want: wanting.iter().enumerate().any(|(i, w)| *w && i != r) };
                if holder[d] == Some(r) {
                    if spread.release(databases[d], view) {
                        holder[d] = None;
                    }
                } else if holder[d].is_none() && spread.may_try(view) && spread.claim(databases[d], live) {
                    holder[d] = Some(r);
                }
            }
            if round > 2 && *holder == before {
                break;
            }
        }
        assert!(holder.iter().all(Option::is_some), "every database led: {holder:?}");
        replicas.iter().map(|s| s.leads()).collect()
    }

    #[test]
    fn leaderships_settle_within_the_share_whatever_the_counts() {
        let names: Vec<String> = (0..10).map(|n| format!("db{n}")).collect();
        for d in 2..=10 {
            let databases: Vec<&str> = names[..d].iter().map(String::as_str).collect();
            for r in 1..=4 {
                // The first replica leads everything, then the others join.
                let replicas: Vec<Arc<Spread>> = (0..r).map(|n| Spread::new(d, format!("r{n}"))).collect();
                let mut holder = vec![None; d];
                settle(&replicas[..1], &databases, &mut holder);
                let counts = settle(&replicas, &databases, &mut holder);
                let (floor, ceil) = (d / r, d.div_ceil(r));
                assert!(counts.iter().all(|&c| c >= floor && c <= ceil), "d={d} r={r}: {counts:?}");
            }
        }
    }

    #[test]
    fn the_view_is_read_from_its_text() {
        assert_eq!(parse_view("2 0"), Some(View { live: 2, others_want: false }));
        assert_eq!(parse_view("3 1"), Some(View { live: 3, others_want: true }));
        assert_eq!(parse_view("x"), None);
    }

    #[test]
    fn one_database_is_not_spread() {
        assert!(!Spread::new(1, "a".into()).active());
        assert!(Spread::new(2, "a".into()).active());
    }
}
