//! The content a log file had before the start, read once for its gauges. Counters start where
//! the tailer starts (the end, by default); a heartbeat `timestamp` or a `set` value still
//! needs the last line written before the start, or the alerts on them would be blind (or
//! absent) until the application logs again.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::time::UNIX_EPOCH;

use tailer::LineSplitter;

use super::rules::{LineClock, RuleEngine};
use crate::sources::unix_now;

/// Bytes read at a time.
const CHUNK: usize = 1 << 16;

/// Runs the complete lines of `path` before byte `end` through `engine` (a seeding engine).
/// A line without a timestamp counts as written at the file's last modification: it cannot be
/// younger. Lines longer than `max_line` or not UTF-8 are skipped, as the tailer drops them.
pub fn read_head(engine: &mut RuleEngine, path: &Path, end: u64, max_line: usize) -> std::io::Result<()> {
    let file = File::open(path)?;
    let modified = file.metadata()?.modified()?;
    let read_at = modified.duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    let clock = LineClock { now: unix_now(), read_at };
    // The tailer's own cutting rules; a dropped line is skipped here, as the tailer drops it.
    // What follows the last newline is a line still being written, which the tailer skips too.
    LineSplitter::new(false).feed_reader(file.take(end), CHUNK, max_line, &mut |cut| {
        if let Ok(text) = cut {
            engine.process_at(text, clock);
        }
    })?;
    Ok(())
}
