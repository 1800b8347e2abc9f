//! The `process_*` metrics every Prometheus client library exports about its own process: CPU
//! time, memory, file descriptors and start time, read from /proc (Linux; elsewhere there are
//! none). Read at scrape time, at most once a second: concurrent scrapes share one reading, and
//! so one encoded body.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::spec::MetricType;
use crate::state::Family;

/// How old a reading may be before a scrape takes a new one.
const FRESH: Duration = Duration::from_secs(1);

/// The latest reading.
#[derive(Default)]
pub struct Collector {
    latest: Mutex<Option<Reading>>,
}

struct Reading {
    at: Instant,
    /// Changes with every new reading.
    generation: u64,
    families: Arc<Vec<Family>>,
}

impl Collector {
    /// The process families as of at most a second ago, and their generation.
    pub fn current(&self) -> (u64, Arc<Vec<Family>>) {
        let mut latest = self.latest.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match &*latest {
            Some(r) if r.at.elapsed() < FRESH => (r.generation, r.families.clone()),
            previous => {
                let generation = previous.as_ref().map_or(0, |r| r.generation + 1);
                let families = Arc::new(read());
                *latest = Some(Reading { at: Instant::now(), generation, families: families.clone() });
                (generation, families)
            }
        }
    }
}

fn gauge(name: &str, help: &str, value: f64) -> Family {
    Family::new(name, help, MetricType::Gauge).with(&[], value)
}

/// One reading. A part /proc does not give (a hardened kernel, another OS) is left out rather than
/// exported as a wrong zero.
#[cfg(target_os = "linux")]
pub fn read() -> Vec<Family> {
    use procfs::process::{LimitValue, Process};
    let mut families = Vec::new();
    let Ok(me) = Process::myself() else {
        return families;
    };
    if let Ok(stat) = me.stat() {
        let ticks = procfs::ticks_per_second() as f64;
        families.push(
            Family::new(
                "process_cpu_seconds_total",
                "Total user and system CPU time spent in seconds.",
                MetricType::Counter,
            )
            .with(&[], (stat.utime + stat.stime) as f64 / ticks),
        );
        families.push(gauge(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            (stat.rss * procfs::page_size()) as f64,
        ));
        families.push(gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", stat.vsize as f64));
        if let Ok(boot) = procfs::boot_time_secs() {
            families.push(gauge(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                boot as f64 + stat.starttime as f64 / ticks,
            ));
        }
    }
    if let Ok(open) = me.fd_count() {
        families.push(gauge("process_open_fds", "Number of open file descriptors.", open as f64));
    }
    if let Ok(limits) = me.limits() {
        if let LimitValue::Value(max) = limits.max_open_files.soft_limit {
            families.push(gauge("process_max_fds", "Maximum number of open file descriptors.", max as f64));
        }
        if let LimitValue::Value(max) = limits.max_address_space.soft_limit {
            families.push(gauge(
                "process_virtual_memory_max_bytes",
                "Maximum amount of virtual memory available in bytes.",
                max as f64,
            ));
        }
    }
    families
}

#[cfg(not(target_os = "linux"))]
pub fn read() -> Vec<Family> {
    Vec::new()
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_reading_is_shared_for_a_second_then_renewed() {
        let collector = Collector::default();
        let (first, families) = collector.current();
        assert!(families.iter().any(|f| f.name == "process_cpu_seconds_total"));
        assert_eq!(collector.current().0, first);
        std::thread::sleep(FRESH);
        assert_eq!(collector.current().0, first + 1);
    }
}
