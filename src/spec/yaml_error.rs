//! The YAML parser's errors in our words: its position, and a message a user can act on. Most of
//! the parser's own messages are that already; the ones that speak of its API ("set
//! DuplicateKeyPolicy in Options", "budget breached: Nodes { nodes: 250001 }") are said here
//! instead.

use std::borrow::Cow;

use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::{DefaultMessageFormatter, Error, MessageFormatter};

/// `(line, column)` when the parser knows it (1-based), and the message.
pub fn describe(error: &Error) -> (Option<(u64, u64)>, String) {
    let at = error.location().map(|l| (l.line().max(1), l.column().max(1)));
    // The text may quote the file: keep control characters from reaching a terminal or log.
    let mut clean = String::new();
    for c in message(original(error)).chars() {
        if c.is_control() {
            clean.extend(c.escape_debug());
        } else {
            clean.push(c);
        }
    }
    (at, clean)
}

/// The error under the wrappers that only add a snippet or an alias's place.
fn original(mut error: &Error) -> &Error {
    loop {
        match error {
            Error::WithSnippet { error: inner, .. } | Error::AliasError { error: inner, .. } => error = inner,
            _ => return error,
        }
    }
}

fn message(error: &Error) -> Cow<'_, str> {
    match error {
        Error::DuplicateMappingKey { key: Some(key), .. } => {
            Cow::Owned(format!("`{key}` is given twice in the same mapping; keep one"))
        }
        Error::DuplicateMappingKey { key: None, .. } => {
            Cow::Borrowed("a key is given twice in the same mapping; keep one")
        }
        Error::Budget { breach, .. } => Cow::Owned(budget(breach)),
        other => DefaultMessageFormatter.format_message(other),
    }
}

/// What a breached parse budget means for the file.
fn budget(breach: &BudgetBreach) -> String {
    match breach {
        BudgetBreach::Nodes { nodes } => {
            format!("the file holds more than {} values; no configuration needs that many", nodes.saturating_sub(1))
        }
        BudgetBreach::Events { .. } | BudgetBreach::InputBytes { .. } | BudgetBreach::ScalarBytes { .. } => {
            "the file is too large to be a configuration".into()
        }
        BudgetBreach::Depth { depth } => format!("nested {depth} levels deep; no configuration needs that"),
        BudgetBreach::Aliases { .. }
        | BudgetBreach::Anchors { .. }
        | BudgetBreach::AliasAnchorRatio { .. }
        | BudgetBreach::RecordedAnchorEvents { .. }
        | BudgetBreach::RecordedAnchorBytes { .. } => {
            "too many aliases (`*name`) for its anchors (`&name`): aliases that expand to a huge document are refused"
                .into()
        }
        BudgetBreach::MergeKeys { .. } => "too many merge keys (`<<`)".into(),
        BudgetBreach::Documents { .. } => "more YAML documents (`---`) than one configuration has".into(),
        _ => "too large or too deeply built to be a configuration".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn describe_text(text: &str) -> (Option<(u64, u64)>, String) {
        let error = serde_saphyr::from_str::<std::collections::BTreeMap<String, serde_json::Value>>(text)
            .expect_err("an error");
        describe(&error)
    }

    #[test]
    fn library_words_never_reach_the_user() {
        let (at, message) = describe_text("a: 1\nb: 2\na: 3\n");
        assert_eq!(at.map(|(line, _)| line), Some(3));
        assert_eq!(message, "`a` is given twice in the same mapping; keep one");
        let many = format!("a: [{}]\n", vec!["1"; 250_001].join(","));
        let (at, message) = describe_text(&many);
        assert!(at.is_some());
        assert_eq!(message, "the file holds more than 250000 values; no configuration needs that many");
        for (_, message) in [describe_text("a: 1\na: 2\n"), describe_text(&many)] {
            for leak in ["Options", "Policy", "budget", "{", "breach"] {
                assert!(!message.contains(leak), "{message}");
            }
        }
    }
}
