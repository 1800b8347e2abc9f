//! Secrets the process knows (the database password) and a filter that takes them out of any text
//! before it is printed. The connection string parser never prints what it cannot place; this is
//! the second line: driver and server error texts are scrubbed too, in case one ever quotes it.

use std::sync::RwLock;

/// Shorter secrets are not scrubbed: replacing every `ab` in a message would make it unreadable,
/// and a one- or two-character password is not a secret worth the name.
const MIN_SCRUBBED_LEN: usize = 3;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Remembers a secret for [`scrub`], as written and in the forms it may be printed in.
pub fn remember(secret: &str) {
    let mut forms = vec![secret.to_string()];
    // Debug output (`{:?}`) escapes quotes and backslashes.
    forms.push(secret.escape_debug().to_string());
    forms.push(super::dsn::percent_encode(secret));
    let Ok(mut known) = SECRETS.write() else { return };
    for form in forms {
        if form.chars().count() >= MIN_SCRUBBED_LEN && !known.contains(&form) {
            known.push(form);
        }
    }
    // Longest first, so a secret that contains another is removed whole.
    known.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// `text` with every remembered secret replaced by `***`.
pub fn scrub(text: &str) -> String {
    let Ok(known) = SECRETS.read() else { return "<message withheld>".into() };
    let mut out = text.to_string();
    for secret in known.iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), "***");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_every_form_of_a_remembered_secret() {
        remember("Pw\"x/7q");
        let text = "a Pw\"x/7q b Pw\\\"x/7q c Pw%22x%2F7q";
        assert_eq!(scrub(text), "a *** b *** c ***");
        assert_eq!(scrub("nothing here"), "nothing here");
    }
}
