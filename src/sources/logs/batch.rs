//! Lines of one file gathered between the tailer's events, so that a backlog reaches the rule
//! engine in large batches ([`RuleEngine::process_lines`] reads those on every core) while the
//! order of lines, across files too, stays the order they were read in.

use super::rules::{LineClock, LineCounts, RuleEngine};

/// Flushed at this many bytes: large enough for a batch to be spread over the cores, small
/// enough that its copy stays in cache-sized blocks (the tailer reads 1 MiB while behind).
const MAX_BYTES: usize = 4 << 20;

#[derive(Default)]
pub(super) struct LineBatch {
    /// The file the gathered lines are from.
    path: String,
    text: String,
    /// Where each line ends in `text`.
    ends: Vec<usize>,
}

impl LineBatch {
    /// Adds a line of `path`; the lines gathered so far are applied first when they are of
    /// another file or the batch is full. Returns what was applied, with its file.
    pub fn push(
        &mut self,
        engine: &mut RuleEngine,
        clock: LineClock,
        path: &str,
        line: &str,
    ) -> Option<(String, LineCounts)> {
        let flushed = if (!self.ends.is_empty() && self.path != path) || self.text.len() >= MAX_BYTES {
            self.flush(engine, clock)
        } else {
            None
        };
        if self.ends.is_empty() && self.path != path {
            self.path.clear();
            self.path.push_str(path);
        }
        self.text.push_str(line);
        self.ends.push(self.text.len());
        flushed
    }

    /// Applies the gathered lines, in their order, and empties the batch.
    pub fn flush(&mut self, engine: &mut RuleEngine, clock: LineClock) -> Option<(String, LineCounts)> {
        if self.ends.is_empty() {
            return None;
        }
        let mut start = 0;
        let lines: Vec<&str> = self
            .ends
            .iter()
            .map(|&end| {
                let line = &self.text[start..end];
                start = end;
                line
            })
            .collect();
        let counts = engine.process_lines(&lines, clock);
        self.text.clear();
        self.ends.clear();
        Some((self.path.clone(), counts))
    }
}
