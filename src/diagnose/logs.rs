//! A log source read once for `diagnose`: the newest lines of its files, at most a budget of
//! bytes, through the source's own rules. Gauges and timestamps come from every line read (the
//! newest wins, as when following); counts over a window only from lines whose own timestamp
//! falls within it, so "10 failures in the last 10 minutes" means what the alert means.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use tailer::LineSplitter;

use crate::sources::logs::rule_engine;
use crate::sources::logs::rules::{LineClock, RuleEngine};
use crate::spec::{LogFiles, Model};
use crate::state::Family;
use crate::verdict::Windowed;

/// Bytes read of one log source, newest first: enough for an hour of a busy worker's log, and a
/// bound on what one run costs.
pub const READ_BUDGET: u64 = 32 << 20;

/// What one log source gave.
pub struct LogRead {
    /// Every value from every line read; `set` values past the source's `max_age` left out.
    pub all: Vec<Family>,
    /// Per window: the values of the lines within it (counters count from zero).
    pub windows: BTreeMap<Duration, Windowed<Vec<Family>>>,
    pub files: usize,
    pub bytes: u64,
    pub lines: u64,
    /// Lines without a timestamp the source can read: counted in every window.
    pub untimed: u64,
    /// The own time of the oldest line read.
    pub oldest: Option<f64>,
    /// Whether older content was left unread for the budget.
    pub cut: bool,
}

/// Why a log source could not be read for `diagnose`; shown beside the source.
#[derive(Debug, thiserror::Error)]
pub enum LogReadError {
    #[error("not defined")]
    NotDefined,
    #[error("cannot list its files: {0}")]
    CannotList(std::io::Error),
    #[error("no file matches {}", paths.join(", "))]
    NoFile { paths: Vec<String> },
    #[error("{}: {source}", path.display())]
    File { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Source(crate::sources::logs::LogSourceError),
}

/// How many times a read starts over when a file it listed was renamed or removed under it.
const ATTEMPTS: usize = 3;

/// Reads the newest `budget` bytes of log source `id` at `now` (unix seconds), counting each
/// window of `windows` apart.
///
/// A rotation between listing the files and reading them (the file renamed away, its name not yet
/// created again) is not a failure of the source: the read starts over from the listing, so the
/// rotated file is read under its new name.
pub fn read(
    model: &Model,
    id: &str,
    log: &LogFiles,
    windows: &BTreeSet<Duration>,
    now: f64,
    budget: u64,
) -> Result<LogRead, LogReadError> {
    let mut attempt = 1;
    loop {
        match read_once(model, id, log, windows, now, budget) {
            Err(LogReadError::File { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound && attempt < ATTEMPTS =>
            {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            result => return result,
        }
    }
}

fn read_once(
    model: &Model,
    id: &str,
    log: &LogFiles,
    windows: &BTreeSet<Duration>,
    now: f64,
    budget: u64,
) -> Result<LogRead, LogReadError> {
    let files = tailer::files_matching(&log.paths).map_err(LogReadError::CannotList)?;
    if files.is_empty() {
        return Err(LogReadError::NoFile { paths: log.paths.clone() });
    }
    // Oldest first, so the newest line of a gauge is the last one applied.
    let mut found: Vec<(std::time::SystemTime, PathBuf, u64)> = Vec::new();
    for path in files {
        let meta = std::fs::metadata(&path).map_err(|source| LogReadError::File { path: path.clone(), source })?;
        found.push((meta.modified().unwrap_or(std::time::UNIX_EPOCH), path, meta.len()));
    }
    found.sort();
    let mut left = budget;
    let mut plan = Vec::new();
    let mut cut = false;
    for (_, path, size) in found.iter().rev() {
        if left == 0 {
            cut = true;
            break;
        }
        let take = (*size).min(left);
        cut |= take < *size;
        left -= take;
        plan.push((path.clone(), size - take, take));
    }
    plan.reverse();

    let mut all = rule_engine(model, id, log).map_err(LogReadError::Source)?;
    let mut counted: Vec<(Duration, RuleEngine)> = windows.iter().map(|w| (*w, all.clone())).collect();
    let clock = LineClock::at(now);
    let mut read = LogRead {
        all: Vec::new(),
        windows: BTreeMap::new(),
        files: plan.len(),
        bytes: 0,
        lines: 0,
        untimed: 0,
        oldest: None,
        cut,
    };
    for (path, start, len) in &plan {
        let failed = |source: std::io::Error| LogReadError::File { path: path.clone(), source };
        let mut file = std::fs::File::open(path).map_err(failed)?;
        // Started inside a line: that partial line is skipped (a start right after a newline
        // skips nothing). What follows the last newline is a line still being written, which the
        // tailer would wait for too.
        let mut inside = false;
        if *start > 0 {
            file.seek(SeekFrom::Start(start - 1)).map_err(failed)?;
            let mut before = [0u8; 1];
            file.read_exact(&mut before).map_err(failed)?;
            inside = before[0] != b'\n';
        }
        file.seek(SeekFrom::Start(*start)).map_err(failed)?;
        let mut lines = LineSplitter::new(inside);
        read.bytes += lines
            .feed_reader(file.take(*len), 1 << 16, log.max_line_bytes, &mut |cut| {
                let Ok(text) = cut else { return };
                let at = all.line_time(text);
                read.lines += 1;
                match at {
                    Some(t) => read.oldest = Some(read.oldest.map_or(t, |o: f64| o.min(t))),
                    None => read.untimed += 1,
                }
                all.process_at(text, clock);
                for (window, engine) in &mut counted {
                    if at.is_none_or(|t| t >= now - window.as_secs_f64()) {
                        engine.process_at(text, clock);
                    }
                }
            })
            .map_err(failed)?;
    }
    read.all = all.fresh_families(now);
    for (window, engine) in counted {
        // Cut short and the oldest line read is within the window: only that much was seen.
        let seen = match read.oldest {
            Some(oldest) if read.cut && oldest > now - window.as_secs_f64() => {
                Some(Duration::from_secs_f64((now - oldest).max(0.0)))
            }
            _ => None,
        };
        read.windows.insert(window, Windowed { value: engine.families(), seen });
    }
    Ok(read)
}

impl LogRead {
    /// `2 files, 1.2 MiB, lines from the last 58m` as the report shows it.
    pub fn describe(&self, now: f64) -> String {
        let files = if self.files == 1 { "1 file".to_string() } else { format!("{} files", self.files) };
        let size = if self.bytes >= 1 << 20 {
            format!("{:.1} MiB", self.bytes as f64 / f64::from(1 << 20))
        } else {
            format!("{:.1} KiB", self.bytes as f64 / 1024.0)
        };
        let span = match self.oldest {
            Some(oldest) if self.cut => format!(
                ", the newest {size} (lines from the last {})",
                crate::generate::go_format::duration((now - oldest).max(0.0).round())
            ),
            _ => String::new(),
        };
        let untimed = if self.untimed > 0 {
            format!("; {} lines without a timestamp counted in every window", self.untimed)
        } else {
            String::new()
        };
        format!("{files}, {} lines, {size} read{span}{untimed}", self.lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::SourceText;
    use crate::state::SampleValue;

    fn counted(families: &[Family], result: &str) -> f64 {
        let family = families.iter().find(|f| f.name == "integration_token_refresh_proactive_refreshes_total").unwrap();
        let sample = family.samples.iter().find(|s| s.labels.iter().any(|(_, v)| &**v == result)).unwrap();
        match sample.value {
            SampleValue::Scalar(v) => v,
            SampleValue::Histogram { .. } => panic!("a counter"),
        }
    }

    /// Lines an hour, 20 minutes and 1 minute old: each window counts those whose own time is in
    /// it, and a read cut by its budget says how much of a window it saw.
    #[test]
    fn windows_count_lines_by_their_own_time_and_a_cut_read_says_what_it_saw() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.log");
        let now = 1_800_000_000.0;
        let line = |ago: f64, mark: &str| {
            let at = chrono::DateTime::from_timestamp((now - ago) as i64, 0).unwrap();
            format!("{} INFO [graph_client] ProactiveRefresh {mark} user=1\n", at.format("%Y-%m-%d %H:%M:%S,000"))
        };
        let text = [line(3500.0, "✗"), line(1200.0, "✓"), line(60.0, "✓"), line(60.0, "✗")].concat();
        std::fs::write(&path, &text).unwrap();
        let spec = format!(
            "database: {{url_env: UNUSED}}\npacks:\n  token_refresh:\n    params: {{worker_log: {}}}\n",
            path.display()
        );
        let model = Model::from_text(&SourceText { name: "t.yaml".into(), text: spec }).unwrap();
        let log = &model.logs["token_refresh.worker"];
        let windows: BTreeSet<Duration> = [600, 3600].map(Duration::from_secs).into();
        let read = read(&model, "token_refresh.worker", log, &windows, now, READ_BUDGET).unwrap();
        let ten = &read.windows[&Duration::from_secs(600)];
        let hour = &read.windows[&Duration::from_secs(3600)];
        assert_eq!((counted(&ten.value, "success"), counted(&ten.value, "failure")), (1.0, 1.0));
        assert_eq!((counted(&hour.value, "success"), counted(&hour.value, "failure")), (2.0, 2.0));
        assert_eq!((ten.seen, hour.seen, read.cut, read.lines), (None, None, false, 4));

        // Only the newest bytes: the first line is left out, the hour was not seen whole.
        let budget = (text.len() - text.find('\n').unwrap() - 1) as u64;
        let cut = super::read(&model, "token_refresh.worker", log, &windows, now, budget).unwrap();
        assert!(cut.cut);
        assert_eq!(counted(&cut.windows[&Duration::from_secs(3600)].value, "failure"), 1.0);
        assert_eq!(cut.windows[&Duration::from_secs(3600)].seen, Some(Duration::from_secs(1200)));
        assert_eq!(cut.windows[&Duration::from_secs(600)].seen, None, "the 10 minutes were read whole");
        // Starting inside the first line: its rest is skipped, not taken for a line.
        let inside = super::read(&model, "token_refresh.worker", log, &windows, now, budget + 5).unwrap();
        assert_eq!((inside.lines, counted(&inside.windows[&Duration::from_secs(3600)].value, "failure")), (3, 1.0));

        std::fs::remove_file(&path).unwrap();
        let missing = super::read(&model, "token_refresh.worker", log, &windows, now, READ_BUDGET).err().unwrap();
        assert!(missing.to_string().contains("no file matches"), "{missing}");
    }
}

#[cfg(test)]
mod error_tests {
    use super::*;

    #[test]
    fn log_read_errors_say_what_they_said_as_text() {
        let io = || std::io::Error::from(std::io::ErrorKind::NotFound);
        assert_eq!(LogReadError::NotDefined.to_string(), "not defined");
        assert_eq!(LogReadError::CannotList(io()).to_string(), format!("cannot list its files: {}", io()));
        assert_eq!(
            LogReadError::NoFile { paths: vec!["/a/*.log".into(), "/b.log".into()] }.to_string(),
            "no file matches /a/*.log, /b.log"
        );
        assert_eq!(
            LogReadError::File { path: "/a/x.log".into(), source: io() }.to_string(),
            format!("/a/x.log: {}", io())
        );
    }
}
