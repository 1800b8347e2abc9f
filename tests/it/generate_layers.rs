//! The modules of src/generate are layered: the output shapes (`output::*`) import nothing but
//! each other, the writers render the plan without building alerts, and no two modules import
//! each other, directly or around a loop. A module graph with a cycle is how the shapes once came
//! to live inside the builders; this reads the `use` lines and paths of every module (test code
//! aside) and fails naming the loop.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The root module (`src/generate/mod.rs`).
const ROOT: &str = "generate";

/// Modules that render the plan: they may not import what builds an alert.
const WRITERS: &[&str] = &["alertmanager", "rule_files", "prometheus_operator", "kustomize"];
const ALERT_BUILDERS: &[&str] = &["rules", "rule_tests", "source_health", "slo", "slo_tests", "dashboards"];

/// Every `.rs` file under `dir`, by module path (`generate`, `plan`, `output`, `output::rules`).
fn modules(dir: &Path) -> BTreeMap<String, String> {
    fn walk(dir: &Path, prefix: &[String], out: &mut BTreeMap<String, String>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        entries.sort();
        for path in entries {
            let name = path.file_stem().unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                let mut inner = prefix.to_vec();
                inner.push(name);
                walk(&path, &inner, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let mut module = prefix.to_vec();
                if name != "mod" {
                    module.push(name);
                }
                let key = if module.is_empty() { ROOT.to_string() } else { module.join("::") };
                out.insert(key, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, &[], &mut out);
    out
}

/// The code of a module: no comments (doc links name modules without importing them), no test
/// module (tests may import anything).
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    text.lines().map(|l| l.split("//").next().unwrap_or_default()).collect::<Vec<_>>().join("\n")
}

/// `a::{b, c::{d, e}}` as `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str) -> Vec<String> {
    let tree: String = tree.split_whitespace().collect();
    let Some(open) = tree.find('{') else { return vec![tree] };
    let (prefix, rest) = tree.split_at(open);
    let inner = &rest[1..rest.rfind('}').unwrap_or(rest.len())];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts.into_iter().filter(|p| !p.is_empty()).flat_map(expand).map(|p| format!("{prefix}{p}")).collect()
}

/// Every path a module names: its `use` trees expanded, and the paths in its code.
fn paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = String::new();
    let mut text = code;
    while let Some(at) = text.find("use ") {
        let Some(end) = text[at..].find(';').map(|e| at + e) else { break };
        let starts_word = text[..at].chars().last().is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        if starts_word {
            out.extend(expand(&text[at + 4..end]));
            rest.push_str(&text[..at]);
        } else {
            rest.push_str(&text[..end]);
        }
        text = &text[end..];
    }
    rest.push_str(text);
    let chars: Vec<char> = rest.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let starts_word = i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_' || chars[i - 1] == ':');
        if starts_word && (chars[i].is_alphabetic() || chars[i] == '_') {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == ':') {
                i += 1;
            }
            let path: String = chars[start..i].iter().collect();
            if path.contains("::") {
                out.push(path.trim_end_matches(':').to_string());
            }
        } else {
            i += 1;
        }
    }
    out
}

/// The module of `known` a path from `module` leads to, if it leads into src/generate: the
/// deepest module it names (`super::output::rules::Rule` from `plan` is `output::rules`; a
/// parent's item, `super::yaml`, is the parent).
fn target(module: &str, path: &str, known: &BTreeSet<String>) -> Option<String> {
    let mut segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let mut at: Vec<String> = if module == ROOT { Vec::new() } else { module.split("::").map(String::from).collect() };
    match segments.first().copied() {
        Some("crate") if segments.get(1) == Some(&"generate") => {
            at.clear();
            segments.drain(..2);
        }
        Some("self") => {
            segments.remove(0);
        }
        Some("super") => {
            while segments.first() == Some(&"super") {
                segments.remove(0);
                // The root's parent is outside src/generate.
                at.pop()?;
            }
        }
        // A child module, named from its parent; any other name was imported by a `use`.
        Some(first) => {
            let mut child = at.clone();
            child.push(first.to_string());
            if !known.contains(&child.join("::")) {
                return None;
            }
        }
        None => return None,
    }
    for segment in segments {
        at.push(segment.to_string());
        if !known.contains(&at.join("::")) {
            at.pop();
            break;
        }
    }
    Some(if at.is_empty() { ROOT.to_string() } else { at.join("::") })
}

/// Module -> the modules it imports.
fn graph(dir: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules(dir);
    let known: BTreeSet<String> = modules.keys().filter(|k| *k != ROOT).cloned().collect();
    modules
        .iter()
        .map(|(module, text)| {
            let imports =
                paths(&code(text)).iter().filter_map(|p| target(module, p, &known)).filter(|t| t != module).collect();
            (module.clone(), imports)
        })
        .collect()
}

/// A loop of imports, as `a -> b -> a`, if there is one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<String> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<String> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut path = stack[at..].to_vec();
            path.push(node.to_string());
            return Some(path.join(" -> "));
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, stack, done) {
                return Some(found);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

/// Every breach of the layering: a cycle, an output shape importing a builder, a writer
/// importing what builds an alert.
fn breaches(dir: &Path) -> Vec<String> {
    let graph = graph(dir);
    let mut out: Vec<String> = cycle(&graph).map(|c| format!("import cycle: {c}")).into_iter().collect();
    for (module, imports) in &graph {
        if module == "output" || module.starts_with("output::") {
            for import in imports.iter().filter(|i| !(i.starts_with("output") || *i == "error")) {
                out.push(format!("output shape {module} imports {import}"));
            }
        }
        if WRITERS.contains(&module.as_str()) {
            for import in imports.iter().filter(|i| ALERT_BUILDERS.contains(&i.as_str())) {
                out.push(format!("writer {module} imports the builder {import}: it should render the plan"));
            }
        }
    }
    out
}

#[test]
fn generate_modules_import_no_cycle_and_keep_their_layers() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/generate");
    let graph = graph(&dir);
    // The reader sees the imports it must: a module graph without edges would pass vacuously.
    assert!(graph["plan"].contains("rules") && graph["plan"].contains("output::rules"), "{graph:?}");
    assert!(graph[ROOT].contains("plan") && graph["output::operator"].contains("output::rules"), "{graph:?}");
    let breaches = breaches(&dir);
    assert!(breaches.is_empty(), "{}", breaches.join("\n"));
}

/// The check itself: a loop through `super::`, `crate::generate::`, a `use` group and a
/// parent's item, and a shape importing a builder, are all found.
#[test]
fn the_layer_check_finds_cycles_and_shapes_that_import_builders() {
    let dir = tempfile::tempdir().unwrap();
    let write = |rel: &str, text: &str| {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("mod.rs", "pub mod a;\npub mod b;\npub mod output;\nfn f() { a::x(); }\n");
    write("a.rs", "use super::{output::rules::Rule, b::{self, y}};\n");
    write("b.rs", "fn g() { crate::generate::a::x(); }\n");
    write("output/mod.rs", "pub mod rules;\n");
    write("output/rules.rs", "use super::super::a::Thing;\n#[cfg(test)]\nmod tests { use crate::generate::b; }\n");
    let found = breaches(dir.path());
    assert!(found.iter().any(|b| b == "import cycle: a -> b -> a"), "{found:?}");
    assert!(found.iter().any(|b| b == "output shape output::rules imports a"), "{found:?}");
    assert!(!found.iter().any(|b| b.contains("imports b")), "test modules do not count: {found:?}");

    // Through the root: a child using its parent's item while the parent uses the child.
    write("a.rs", "fn h() { super::helper(); }\n");
    write("b.rs", "");
    write("output/rules.rs", "");
    assert_eq!(breaches(dir.path()), ["import cycle: a -> generate -> a"]);
}
