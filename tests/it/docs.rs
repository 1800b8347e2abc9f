//! The README stays one screen that points into docs/, and the links between them keep working
//! when text moves: every relative link and anchor in README.md and docs/*.md resolves.

use std::path::{Path, PathBuf};

use crate::generated::github_anchors;

/// Longest README a reader takes in without scrolling far: the tour and the contents list.
const README_MAX_LINES: usize = 80;
/// Longest README paragraph; a longer one belongs in docs/.
const PARAGRAPH_MAX_LINES: usize = 8;

fn top() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every docs/*.md, as paths relative to the repository's top.
fn markdown_files() -> Vec<PathBuf> {
    let mut files = vec![PathBuf::from("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(top().join("docs"))
        .expect("docs/")
        .map(|e| Path::new("docs").join(e.expect("a docs/ entry").file_name()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

fn read(rel: &Path) -> String {
    std::fs::read_to_string(top().join(rel)).unwrap_or_else(|e| panic!("{}: {e}", rel.display()))
}

/// The text outside code fences, code spans blanked: a link shown as code is no link.
fn prose(markdown: &str) -> String {
    let mut out = String::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            out.push('\n');
            continue;
        }
        if !fenced {
            out.push_str(line);
        }
        out.push('\n');
    }
    let code = regex::Regex::new(r"`[^`]*`").unwrap();
    code.replace_all(&out, "").into_owned()
}

/// Every link target (`[text](target)`, images too) with the line it is on.
fn links(markdown: &str) -> Vec<(usize, String)> {
    let link = regex::Regex::new(r#"\]\(([^)\s]+)(?:\s+"[^"]*")?\)"#).unwrap();
    prose(markdown)
        .lines()
        .enumerate()
        .flat_map(|(n, line)| link.captures_iter(line).map(move |c| (n + 1, c[1].to_string())).collect::<Vec<_>>())
        .collect()
}

/// What is wrong with `target`, a link in `from`; `None` when it resolves.
fn broken(from: &Path, target: &str) -> Option<String> {
    if target.contains("://") || target.starts_with("mailto:") {
        return None;
    }
    let (path, anchor) = target.split_once('#').map_or((target, None), |(p, a)| (p, Some(a)));
    let file = if path.is_empty() { from.to_path_buf() } else { from.parent().unwrap_or(Path::new("")).join(path) };
    if !top().join(&file).exists() {
        return Some(format!("{} does not exist", file.display()));
    }
    let anchor = anchor?;
    if file.extension().is_none_or(|x| x != "md") {
        return Some(format!("an anchor into {}, which is no Markdown file", file.display()));
    }
    let anchors = github_anchors(&read(&file));
    (!anchors.iter().any(|(_, a)| a == anchor))
        .then(|| format!("{} has no heading with anchor #{anchor}", file.display()))
}

#[test]
fn every_relative_link_in_readme_and_docs_resolves() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in markdown_files() {
        for (line, target) in links(&read(&file)) {
            checked += 1;
            if let Some(why) = broken(&file, &target) {
                problems.push(format!("{}:{line}: ({target}): {why}", file.display()));
            }
        }
    }
    assert!(checked >= 10, "only {checked} links found: is the link pattern still right?");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Blocks of prose: a list item, a table row, a heading starts a new one; a blank line ends one.
fn paragraphs(markdown: &str) -> Vec<(usize, usize)> {
    let starts_block = regex::Regex::new(r"^(\s{0,3}[-*+] |\s{0,3}\d+\. |\||#|<!--|!\[)").unwrap();
    let mut out: Vec<(usize, usize)> = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    let mut fenced = false;
    for (n, line) in markdown.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            out.extend(current.take());
            continue;
        }
        if fenced || line.trim().is_empty() {
            out.extend(current.take());
            continue;
        }
        match current.as_mut() {
            Some((_, len)) if !starts_block.is_match(line) => *len += 1,
            _ => {
                out.extend(current.take());
                current = Some((n + 1, 1));
            }
        }
    }
    out.extend(current);
    out
}

#[test]
fn readme_fits_on_a_screen() {
    let readme = read(Path::new("README.md"));
    let lines = readme.lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines, at most {README_MAX_LINES}: move detail into docs/"
    );
    let long: Vec<String> = paragraphs(&readme)
        .into_iter()
        .filter(|(_, len)| *len > PARAGRAPH_MAX_LINES)
        .map(|(start, len)| format!("README.md:{start}: a paragraph of {len} lines"))
        .collect();
    assert!(long.is_empty(), "paragraphs over {PARAGRAPH_MAX_LINES} lines:\n{}", long.join("\n"));
}

#[test]
fn every_doc_says_what_it_covers_links_back_and_is_listed_in_the_readme() {
    let readme = read(Path::new("README.md"));
    let mut problems = Vec::new();
    for file in markdown_files().into_iter().skip(1) {
        let text = read(&file);
        let mut lines = text.lines();
        if !lines.next().is_some_and(|l| l.starts_with("# ")) {
            problems.push(format!("{}:1: no `# Title`", file.display()));
        }
        let what = lines.find(|l| !l.trim().is_empty()).unwrap_or_default();
        if !what.contains("](../README.md)") || what.starts_with('#') {
            problems.push(format!(
                "{}: the line after the title should say what it covers and link ../README.md",
                file.display()
            ));
        }
        if !readme.contains(&format!("]({})", file.display())) {
            problems.push(format!("README.md does not link {}", file.display()));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A test command quoted in the docs selects a test: `--test it module::name` names a test
/// function of tests/it/module.rs by its whole name or a prefix of it (how the figures are re-run).
#[test]
fn every_quoted_test_command_selects_a_test() {
    let mut checked = 0;
    for file in markdown_files() {
        let text = read(&file).replace('\n', " ");
        for (at, _) in text.match_indices("--test it ") {
            let filter: String = text[at + "--test it ".len()..]
                .trim_start()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let (module, name) = filter.split_once("::").unwrap_or((&filter, ""));
            let source =
                std::fs::read_to_string(top().join("tests/it").join(format!("{module}.rs"))).unwrap_or_default();
            assert!(
                !name.is_empty() && source.contains(&format!("fn {name}")),
                "{}: `--test it {filter}` selects no test",
                file.display()
            );
            checked += 1;
        }
    }
    assert!(checked > 0);
}
