//! Reading a text line against a source's rules without touching any metric: which rules take
//! it, the byte ranges of their captured labels, their value and its time.
//!
//! Reading depends only on the line, the rules and the clock, never on the values held, so a
//! batch of lines can be read on several threads and its hits stored afterwards in line order:
//! the result is the same as reading and storing line by line.

use std::cell::OnceCell;

use regex_automata::meta::Cache;
use regex_automata::util::captures::Captures;
use regex_automata::{Anchored, Input};

use super::compiled::CompiledRule;
use super::engine::LineClock;
use super::prefilter::LiteralFilter;
use crate::sources::logs::timestamp::TimestampParser;
use crate::spec::LogAction;

/// What one rule took from one line, ready to be stored.
#[derive(Debug, Clone, Copy)]
pub(super) struct Hit {
    /// The line's index in its batch.
    pub(super) line: usize,
    pub(super) rule: usize,
    /// `None`: the rule took the line but could not use it (a bad number or timestamp).
    pub(super) value: Option<f64>,
    /// `set` and `timestamp` rules: the time the value is of.
    pub(super) updated: Option<f64>,
    /// Where the hit's label ranges start in [`Hits::spans`], one per label of its rule.
    pub(super) spans: usize,
}

/// The hits of a batch of lines, in line order and, within a line, in rule order.
#[derive(Debug, Default, Clone)]
pub(super) struct Hits {
    pub(super) hits: Vec<Hit>,
    /// Byte ranges of captured label values in their line; `(0, 0)` for a literal label or a
    /// group that took no part in the match (the label is then empty).
    pub(super) spans: Vec<(usize, usize)>,
}

impl Hits {
    pub(super) fn clear(&mut self) {
        self.hits.clear();
        self.spans.clear();
    }
}

/// What is known of a shared pattern on the current line.
#[derive(Debug, Clone, Copy, Default)]
struct Known {
    /// The line it is known for (lines are numbered from 1 per reader).
    line: u64,
    matched: bool,
    /// The capture locations hold this line's groups.
    captured: bool,
}

/// A reader's buffers, kept from line to line so that reading allocates nothing.
#[derive(Debug, Clone, Default)]
pub(super) struct Scratch {
    candidates: Vec<usize>,
    /// Per rule: where its first literal starts in the line.
    first: Vec<usize>,
    /// Per rule that others share a pattern with (indexed by [`CompiledRule::shares`]): the
    /// regex's cache and the line's capture groups.
    searches: Vec<Option<(Cache, Captures)>>,
    known: Vec<Known>,
    line: u64,
}

/// The read-only half of an engine: enough to read lines on any thread.
pub(super) struct Reader<'a> {
    pub(super) rules: &'a [CompiledRule],
    pub(super) filter: &'a LiteralFilter,
    pub(super) timestamp: &'a TimestampParser,
    pub(super) clock: LineClock,
    pub(super) future_tolerance: f64,
    pub(super) seeding: bool,
}

impl Reader<'_> {
    /// Appends to `out` the hits of line `index` of a batch, whose text is `raw`.
    pub(super) fn read(&self, scratch: &mut Scratch, index: usize, raw: &str, out: &mut Hits) {
        self.filter.candidates(raw, &mut scratch.candidates, &mut scratch.first);
        if scratch.candidates.is_empty() {
            return;
        }
        let n = self.rules.len();
        if scratch.known.len() != n {
            scratch.known = vec![Known::default(); n];
            scratch.searches = (0..n).map(|_| None).collect();
        }
        scratch.line += 1;
        let line_no = scratch.line;
        // Parsed at most once per line, and only when a rule needs the line's time.
        let ts = OnceCell::new();
        let line_time = || *ts.get_or_init(|| self.timestamp.from_line(raw));
        for &i in &scratch.candidates {
            let rule = &self.rules[i];
            if self.seeding && !matches!(rule.action, LogAction::Set | LogAction::Timestamp) {
                continue;
            }
            let Some(search) = &rule.search else { continue };
            let shared = rule.shares;
            // No match starts before the rule's first literal.
            let at = scratch.first[i].min(raw.len());
            let known = &mut scratch.known[shared];
            let (cache, caps) =
                scratch.searches[shared].get_or_insert_with(|| (search.create_cache(), search.create_captures()));
            if known.line != line_no {
                *known = Known { line: line_no, matched: false, captured: false };
                // Finding the literal is the match for an exact rule that captures nothing.
                known.matched = !rule.captures && self.filter.is_exact(i);
                if !known.matched {
                    if rule.captures {
                        known.matched = capture(search, cache, caps, raw, at);
                        known.captured = true;
                    } else {
                        known.matched = search.is_match_with(cache, &Input::new(raw).range(at..));
                    }
                }
            } else if rule.captures && known.matched && !known.captured {
                known.matched = capture(search, cache, caps, raw, at);
                known.captured = true;
            }
            if !known.matched {
                continue;
            }
            let group = |g: usize| caps.get_group(g).filter(|_| rule.captures).map(|s| (s.start, s.end));
            // A value whose group took no part in the match: the rule does not take the line.
            let value_text = match (&rule.value, rule.value_group) {
                (None, _) => None,
                (Some(_), Some(g)) => match group(g) {
                    Some((s, e)) => Some(&raw[s..e]),
                    None => continue,
                },
                (Some(_), None) => continue,
            };
            let (value, updated) = value_of(rule, value_text, line_time, self.clock, self.future_tolerance);
            let spans = out.spans.len();
            out.spans.extend(rule.label_groups.iter().map(|g| g.and_then(group).unwrap_or((0, 0))));
            out.hits.push(Hit { line: index, rule: i, value, updated, spans });
        }
    }
}

/// Runs a capturing pattern on `raw`, whose leftmost match starts at `at` or later: first
/// anchored at `at`, where the literal scan found the pattern's first literal (a match there is
/// the leftmost, and no reverse scan is needed to find where it starts), else from `at` on.
fn capture(search: &regex_automata::meta::Regex, cache: &mut Cache, caps: &mut Captures, raw: &str, at: usize) -> bool {
    search.search_captures_with(cache, &Input::new(raw).range(at..).anchored(Anchored::Yes), caps);
    if !caps.is_match() {
        search.search_captures_with(cache, &Input::new(raw).range(at..), caps);
    }
    caps.is_match()
}

/// The value a rule stores for a line and the time it is of; a `None` value when the line
/// cannot be used. `line_time` is the line's own time, asked only when the rule needs it.
pub(super) fn value_of(
    rule: &CompiledRule,
    value_text: Option<&str>,
    line_time: impl Fn() -> Option<f64>,
    clock: LineClock,
    future_tolerance: f64,
) -> (Option<f64>, Option<f64>) {
    let value = match rule.action {
        LogAction::Inc => 1.0,
        // A clock far ahead would hold the heartbeat in the future, where no age alert sees it.
        LogAction::Timestamp => match line_time() {
            Some(t) if t <= clock.now + future_tolerance => t,
            _ => return (None, None),
        },
        LogAction::Add | LogAction::Set | LogAction::Observe => {
            match value_text.map(str::trim).and_then(|v| v.parse::<f64>().ok()) {
                // `1e308` with `scale: 1000` is as unusable as `abc`: a value that is not
                // finite would be exported as such and cannot be saved in a checkpoint.
                Some(v) if (v * rule.scale).is_finite() => v * rule.scale,
                _ => return (None, None),
            }
        }
    };
    if rule.action == LogAction::Add && value < 0.0 {
        return (None, None);
    }
    // A `set` value's age: its line's own time, never later than when it was read.
    let updated = match rule.action {
        LogAction::Set => Some(line_time().map_or(clock.read_at, |t| t.min(clock.read_at))),
        LogAction::Timestamp => Some(value.min(clock.read_at)),
        _ => None,
    };
    (Some(value), updated)
}

/// A batch is cut into parts of at least this many lines, one per core: fewer lines are read
/// on the caller's thread, where a thread would cost more than it saves. Unit tests cut their
/// small batches too.
pub(super) const MIN_PART_LINES: usize = if cfg!(test) { 2 } else { 4096 };

/// How many parts a batch of `lines` lines is read in.
fn parts_for(lines: usize) -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let cores = *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    (lines / MIN_PART_LINES).clamp(1, cores)
}

impl Reader<'_> {
    /// Appends the hits of every line of a batch to `out`, in line order. A large batch is cut
    /// into runs of consecutive lines read on their own threads, and their hits joined in order.
    pub(super) fn read_batch(&self, lines: &[&str], scratch: &mut Scratch, out: &mut Hits) {
        let parts = parts_for(lines.len());
        if parts <= 1 {
            for (i, line) in lines.iter().enumerate() {
                self.read(scratch, i, line, out);
            }
            return;
        }
        let size = lines.len().div_ceil(parts);
        std::thread::scope(|scope| {
            let others: Vec<_> = lines
                .chunks(size)
                .enumerate()
                .skip(1)
                .map(|(part, chunk)| {
                    scope.spawn(move || {
                        let (mut scratch, mut hits) = (Scratch::default(), Hits::default());
                        for (j, line) in chunk.iter().enumerate() {
                            self.read(&mut scratch, part * size + j, line, &mut hits);
                        }
                        hits
                    })
                })
                .collect();
            for (i, line) in lines.iter().take(size).enumerate() {
                self.read(scratch, i, line, out);
            }
            for part in others {
                match part.join() {
                    Ok(hits) => out.append(hits),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
        });
    }
}

impl Hits {
    /// Adds the hits of the lines after this batch's.
    fn append(&mut self, more: Hits) {
        let base = self.spans.len();
        self.hits.extend(more.hits.into_iter().map(|h| Hit { spans: h.spans + base, ..h }));
        self.spans.extend(more.spans);
    }
}
