//! `integration-exporter replay`: runs files once, from their first byte, through the rule engine
//! of one log source and prints the log metrics they produce, to try rules on a real log.
//!
//! Lines are cut by the tailer's own [`LineSplitter`] (a trailing `\r` is removed; lines longer
//! than the source's `max_line_bytes` and lines that are not UTF-8 are dropped and counted), and
//! a last line without a newline counts too, as it does for `grep -c`: a replay does not wait
//! for the rest of it. Nothing is saved: no checkpoint is read or written.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tailer::{Cut, DropReason, LineSplitter};

use crate::exposition::text::{Format, encode};
use crate::sources::logs::rules::{LineClock, LineOutcome, RuleEngine};
use crate::sources::logs::{rule_engine, used_logs};
use crate::sources::unix_now;
use crate::spec::{LogFiles, Model};
use crate::state::Family;

/// Bytes read at a time; a big buffer keeps syscalls and line-carrying rare.
pub const READ_BUFFER: usize = 4 << 20;

/// What a replay read, for the summary line on stderr.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReplayStats {
    pub bytes: u64,
    /// Lines handed to the rules.
    pub lines: u64,
    /// Lines that matched at least one rule.
    pub matched: u64,
    /// Lines a rule took but could not use (bad JSON, number or timestamp).
    pub unparsable: u64,
    /// Lines longer than the source's `max_line_bytes`, dropped.
    pub too_long: u64,
    /// Lines that are not UTF-8, dropped.
    pub invalid_utf8: u64,
}

/// Why `replay` has no log source to run, or could not read a file through it.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// `--log` names a source no enabled signal reads; `used` are those read, in order.
    #[error("no enabled signal reads a log source `{id}`; log sources: {}", list(used))]
    NotRead { id: String, used: Vec<String> },
    #[error("no enabled signal reads a log source")]
    NoneRead,
    #[error("the spec has several log sources, pick one with --log: {}", list(used))]
    Several { used: Vec<String> },
    #[error("log source `{0}` is not defined")]
    NotDefined(String),
    #[error("cannot read {}: {source}", path.display())]
    Unreadable { path: PathBuf, source: std::io::Error },
}

fn list(used: &[String]) -> String {
    if used.is_empty() { "none".to_string() } else { used.join(", ") }
}

/// The log source whose rules apply: `requested`, or the only one the spec's signals read.
pub fn pick_log<'m>(model: &'m Model, requested: Option<&str>) -> Result<(&'m str, &'m LogFiles), ReplayError> {
    let used = used_logs(model);
    let listed = || used.iter().map(|id| id.to_string()).collect();
    let id = match (requested, used.len()) {
        (Some(id), _) if used.contains(id) => id,
        (Some(id), _) => return Err(ReplayError::NotRead { id: id.to_string(), used: listed() }),
        (None, 1) => used.first().copied().unwrap_or_default(),
        (None, 0) => return Err(ReplayError::NoneRead),
        (None, _) => return Err(ReplayError::Several { used: listed() }),
    };
    model.logs.get_key_value(id).map(|(k, v)| (k.as_str(), v)).ok_or_else(|| ReplayError::NotDefined(id.to_string()))
}

/// Runs `reader` to its end through `engine`.
pub fn replay_reader(
    engine: &mut RuleEngine,
    reader: impl Read,
    max_line_bytes: usize,
    stats: &mut ReplayStats,
) -> std::io::Result<()> {
    replay_with_buffer(engine, reader, max_line_bytes, READ_BUFFER, stats)
}

/// Runs each file (`-` is stdin) once, from its first byte, through `engine`.
pub fn replay_files(
    engine: &mut RuleEngine,
    files: &[PathBuf],
    max_line_bytes: usize,
) -> Result<ReplayStats, ReplayError> {
    let mut stats = ReplayStats::default();
    for path in files {
        let result = if path == Path::new("-") {
            replay_reader(engine, std::io::stdin().lock(), max_line_bytes, &mut stats)
        } else {
            std::fs::File::open(path).and_then(|f| replay_reader(engine, f, max_line_bytes, &mut stats))
        };
        result.map_err(|source| ReplayError::Unreadable { path: path.clone(), source })?;
    }
    Ok(stats)
}

/// The engine's metrics, plus the overflow counter when a metric reached its series limit.
pub fn families(engine: &RuleEngine) -> Vec<Family> {
    let mut families = engine.families();
    if !engine.overflows().is_empty() {
        let mut overflow = crate::self_metrics::LABEL_OVERFLOW.family();
        for (metric, n) in engine.overflows() {
            overflow.push(&[("metric", metric)], *n as f64);
        }
        families.push(overflow);
    }
    families
}

/// The subcommand: metrics on stdout in Prometheus text format, the summary on stderr. Exits 2
/// when `--log` names no usable log source, 1 when a file cannot be read.
pub fn main(model: &Model, log: Option<&str>, files: &[PathBuf]) -> ExitCode {
    let (id, source) = match pick_log(model, log) {
        Ok(picked) => picked,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let mut engine = match rule_engine(model, id, source) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("log `{id}`: {e}");
            return ExitCode::from(2);
        }
    };
    let stats = match replay_files(&mut engine, files, source.max_line_bytes) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let text = encode(&families(&engine), Format::Prometheus);
    if let Err(e) = std::io::stdout().lock().write_all(text.as_bytes())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("cannot write metrics: {e}");
        return ExitCode::FAILURE;
    }
    eprintln!("# lines {} matched {} unparsable {}", stats.lines, stats.matched, stats.unparsable);
    if stats.too_long + stats.invalid_utf8 > 0 {
        eprintln!("# dropped too_long {} invalid_utf8 {}", stats.too_long, stats.invalid_utf8);
    }
    ExitCode::SUCCESS
}

/// Cuts everything `reader` gives into lines with the tailer's own [`LineSplitter`]; a last
/// line without a newline counts too. Returns the bytes read.
pub fn split_reader(
    reader: impl Read,
    max_line: usize,
    buffer: usize,
    out: &mut dyn FnMut(Cut<'_>),
) -> std::io::Result<u64> {
    let mut lines = LineSplitter::new(false);
    let bytes = lines.feed_reader(reader, buffer, max_line, out)?;
    lines.finish(max_line, out);
    Ok(bytes)
}

fn replay_with_buffer(
    engine: &mut RuleEngine,
    mut reader: impl Read,
    max_line: usize,
    buffer: usize,
    stats: &mut ReplayStats,
) -> std::io::Result<()> {
    let mut splitter = LineSplitter::new(false);
    let mut buf = vec![0u8; buffer.max(1)];
    // The lines of the chunk being read, as byte ranges of it.
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        stats.bytes += n as u64;
        let chunk = &buf[..n];
        // One clock reading per chunk: its lines are read at the same moment.
        let clock = LineClock::at(unix_now());
        ranges.clear();
        let start = chunk.as_ptr() as usize;
        splitter.feed(chunk, max_line, &mut |cut| match cut {
            Ok(text) => match (text.as_ptr() as usize).checked_sub(start).filter(|at| *at < n) {
                // A line wholly inside the chunk is a slice of it: batched below.
                Some(at) => ranges.push((at, at + text.len())),
                // The line begun in the previous chunk comes before every line of this one.
                None => stats.count(engine.process_at(text, clock)),
            },
            Err(reason) => stats.dropped(reason),
        });
        let counts = engine.process_lines(&lines_of(chunk, &ranges), clock);
        stats.lines += counts.lines;
        stats.matched += counts.matched;
        stats.unparsable += counts.unparsable;
    }
    // `finish` hands a partial last line out as a line: nothing is left unterminated.
    let clock = LineClock::at(unix_now());
    splitter.finish(max_line, &mut |cut| match cut {
        Ok(text) => stats.count(engine.process_at(text, clock)),
        Err(reason) => stats.dropped(reason),
    });
    Ok(())
}

/// The lines at `ranges` of `chunk`, each already checked to be UTF-8 by the splitter: checked
/// again here at once, and line by line only when the chunk holds a dropped invalid line.
fn lines_of<'c>(chunk: &'c [u8], ranges: &[(usize, usize)]) -> Vec<&'c str> {
    let (Some(first), Some(last)) = (ranges.first(), ranges.last()) else { return Vec::new() };
    match std::str::from_utf8(&chunk[first.0..last.1]) {
        Ok(text) => ranges.iter().filter_map(|(s, e)| text.get(s - first.0..e - first.0)).collect(),
        Err(_) => ranges.iter().filter_map(|(s, e)| std::str::from_utf8(&chunk[*s..*e]).ok()).collect(),
    }
}

impl ReplayStats {
    fn count(&mut self, outcome: LineOutcome) {
        self.lines += 1;
        match outcome {
            LineOutcome::Matched => self.matched += 1,
            LineOutcome::Unparsable => self.unparsable += 1,
            LineOutcome::Unmatched => {}
        }
    }

    fn dropped(&mut self, reason: DropReason) {
        match reason {
            DropReason::TooLong => self.too_long += 1,
            DropReason::InvalidUtf8 => self.invalid_utf8 += 1,
            // Only a line the input ended inside is unterminated, and `finish` hands it out.
            DropReason::Unterminated => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::SourceText;

    fn model() -> Model {
        let text =
            "database: {url_env: UNUSED}\npacks:\n  token_refresh:\n    params:\n      worker_log: /nonexistent.log\n";
        Model::from_text(&SourceText { name: "t.yaml".into(), text: text.into() }).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A reader that hands out at most `chunk` bytes per read, like a pipe.
    struct Chunked<'a>(&'a [u8], usize);

    impl Read for Chunked<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.len().min(self.1).min(out.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn run(input: &[u8], max_line: usize, buffer: usize, chunk: usize) -> (ReplayStats, Vec<Family>) {
        let model = model();
        let (id, log) = pick_log(&model, None).unwrap();
        let mut engine = rule_engine(&model, id, log).unwrap();
        let mut stats = ReplayStats::default();
        replay_with_buffer(&mut engine, Chunked(input, chunk), max_line, buffer, &mut stats).unwrap();
        (stats, families(&engine))
    }

    fn successes(families: &[Family]) -> f64 {
        let f = families.iter().find(|f| f.name == "integration_token_refresh_proactive_refreshes_total").unwrap();
        let s = f.samples.iter().find(|s| s.label_pairs() == [("result", "success")]).unwrap();
        match s.value {
            crate::state::SampleValue::Scalar(v) => v,
            _ => panic!("not a scalar"),
        }
    }

    #[test]
    fn lines_are_cut_like_the_tailer_cuts_them_whatever_the_buffer_size() {
        let ok = "2026-02-06 12:00:01,234 INFO ProactiveRefresh ✓ user=a";
        let mut input = Vec::new();
        input.extend_from_slice(format!("{ok}\r\n").as_bytes());
        input.extend_from_slice(format!("{ok} {}\n", "x".repeat(200)).as_bytes()); // too long
        input.extend_from_slice(b"\xff\xfe ProactiveRefresh \xe2\x9c\x93\n"); // not UTF-8
        input.extend_from_slice(b"\n");
        input.extend_from_slice(format!("{ok}\n").as_bytes());
        input.extend_from_slice(format!("{ok} {}", "y".repeat(300)).as_bytes()); // too long, unterminated
        input.extend_from_slice(format!("\n{ok}").as_bytes()); // unterminated: counts
        for (buffer, chunk) in [(1, 1), (1, 7), (1, 64), (250, 1000), (READ_BUFFER, 3), (READ_BUFFER, usize::MAX)] {
            let (stats, families) = run(&input, 100, buffer, chunk);
            let expected = ReplayStats {
                bytes: input.len() as u64,
                lines: 4,
                matched: 3,
                unparsable: 0,
                too_long: 2,
                invalid_utf8: 1,
            };
            assert_eq!(stats, expected, "buffer {buffer}, chunk {chunk}");
            assert_eq!(successes(&families), 3.0, "buffer {buffer}, chunk {chunk}");
        }
    }

    #[test]
    fn the_log_source_is_the_only_one_or_named() {
        let text = "database: {url_env: UNUSED}\npacks:\n  token_refresh: {}\n  calendar_sync: {}\n";
        let model = Model::from_text(&SourceText { name: "t.yaml".into(), text: text.into() }).unwrap();
        let err = pick_log(&model, None).unwrap_err().to_string();
        assert!(
            err.contains("--log") && err.contains("calendar_sync.app") && err.contains("token_refresh.worker"),
            "{err}"
        );
        assert_eq!(pick_log(&model, Some("calendar_sync.app")).unwrap().0, "calendar_sync.app");
        let err = pick_log(&model, Some("nope")).unwrap_err().to_string();
        assert!(err.contains("`nope`") && err.contains("token_refresh.worker"), "{err}");
    }

    #[test]
    fn replay_errors_say_what_they_said_as_text() {
        let used = vec!["a.app".to_string(), "b.worker".to_string()];
        assert_eq!(
            ReplayError::NotRead { id: "x".into(), used: used.clone() }.to_string(),
            "no enabled signal reads a log source `x`; log sources: a.app, b.worker"
        );
        assert_eq!(
            ReplayError::NotRead { id: "x".into(), used: Vec::new() }.to_string(),
            "no enabled signal reads a log source `x`; log sources: none"
        );
        assert_eq!(ReplayError::NoneRead.to_string(), "no enabled signal reads a log source");
        assert_eq!(
            ReplayError::Several { used }.to_string(),
            "the spec has several log sources, pick one with --log: a.app, b.worker"
        );
        assert_eq!(ReplayError::NotDefined("x".into()).to_string(), "log source `x` is not defined");
        let io = || std::io::Error::from(std::io::ErrorKind::NotFound);
        assert_eq!(
            ReplayError::Unreadable { path: "l.log".into(), source: io() }.to_string(),
            format!("cannot read l.log: {}", io())
        );
    }
}
