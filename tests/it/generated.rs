//! The generated rules, tests and dashboards: committed copies are current, promtool accepts the
//! rules, and every generated promtool unit test passes (and fails when a threshold moves).

use std::path::Path;

use integration_exporter::generate::{RuleFormat, outputs};
use integration_exporter::spec::Model;

fn promtool(args: &[&str], dir: &Path) -> (bool, String) {
    let out = crate::support::program("promtool").args(args).current_dir(dir).output().expect("promtool");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn write_outputs(model: &Model) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    integration_exporter::generate::write_all(model, dir.path()).unwrap();
    dir
}

#[test]
fn committed_outputs_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut stale = Vec::new();
    for (rel, content) in outputs(&Model::builtin_defaults()) {
        let committed = std::fs::read_to_string(root.join(&rel)).unwrap_or_default();
        if committed != content {
            stale.push(rel.display().to_string());
        }
    }
    assert!(stale.is_empty(), "stale generated files {stale:?}: run `cargo run -- generate`");
}

/// Every file under `dir`, relative to it.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path).into_iter().map(|p| Path::new(path.file_name().unwrap()).join(p)));
        } else {
            files.push(Path::new(path.file_name().unwrap()).to_path_buf());
        }
    }
    files
}

/// deploy/kubernetes/generated is committed so that `kubectl apply -k deploy/kubernetes` works
/// from a fresh clone: it must be what `generate` writes for the spec beside it, no file more.
#[test]
fn committed_kubernetes_outputs_are_current() {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes");
    let model = Model::load(&deploy.join("spec.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let files = integration_exporter::generate::files_as(&model, RuleFormat::PrometheusOperator);
    let mut stale = Vec::new();
    for (rel, content) in &files {
        if std::fs::read_to_string(deploy.join("generated").join(rel)).ok().as_ref() != Some(content) {
            stale.push(rel.display().to_string());
        }
    }
    for rel in files_under(&deploy.join("generated")) {
        if !files.iter().any(|(p, _)| *p == rel) {
            stale.push(format!("{} (not generated)", rel.display()));
        }
    }
    assert!(
        stale.is_empty(),
        "stale files in deploy/kubernetes/generated {stale:?}: remove the directory, then run `integration-exporter generate --config deploy/kubernetes/spec.yaml --format prometheus-operator --out deploy/kubernetes/generated`"
    );
}

#[test]
fn promtool_accepts_the_rules_and_their_tests_pass() {
    let dir = write_outputs(&Model::builtin_defaults());
    let alerts = dir.path().join("alerts");
    let mut rule_files = Vec::new();
    let mut test_files = Vec::new();
    for entry in std::fs::read_dir(&alerts).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        if name.ends_with(".rules.yml") {
            rule_files.push(name);
        } else if name.ends_with(".tests.yml") {
            test_files.push(name);
        }
    }
    assert!(!rule_files.is_empty() && rule_files.len() == test_files.len());
    for f in &rule_files {
        let (ok, out) = promtool(&["check", "rules", "--lint-fatal", f], &alerts);
        assert!(ok, "{out}");
    }
    for f in &test_files {
        let (ok, out) = promtool(&["test", "rules", f], &alerts);
        assert!(ok, "{out}");
    }
}

#[test]
fn generated_tests_fail_when_a_threshold_moves() {
    let dir = write_outputs(&Model::builtin_defaults());
    let alerts = dir.path().join("alerts");
    let rules = alerts.join("token-refresh.rules.yml");
    let text = std::fs::read_to_string(&rules).unwrap();
    // The tests were written for the spec's thresholds; a rule file edited by hand must fail them.
    for (from, to) in [("> 20", "> 19"), (") < 0.95", ") < 0.97"), ("> 300", "> 360")] {
        assert!(text.contains(from), "{from}");
        std::fs::write(&rules, text.replacen(from, to, 1)).unwrap();
        let (ok, out) = promtool(&["test", "rules", "token-refresh.tests.yml"], &alerts);
        assert!(!ok, "tests passed with `{to}` instead of `{from}`:\n{out}");
    }
}

#[test]
fn thresholds_and_windows_come_from_the_user_spec() {
    let text = "database: {url_env: X}\nrunbook_base_url: https://wiki.example.org/ops/\npacks:\n  token_refresh:\n    alerts:\n      IntegrationTokenRefreshTokensExpiring: {threshold: 35, for: 2m}\n      IntegrationTokenRefreshSuccessRateLow: {window: 30m, min_events: 50}\n";
    let model =
        Model::from_text(&integration_exporter::spec::SourceText { name: "t.yaml".into(), text: text.into() }).unwrap();
    let dir = write_outputs(&model);
    let rules = std::fs::read_to_string(dir.path().join("alerts/token-refresh.rules.yml")).unwrap();
    assert!(rules.contains("integration_token_refresh_tokens_expiring{job=\"integration-exporter\"} > 35"), "{rules}");
    assert!(rules.contains("[30m]") && rules.contains(">= 50"), "{rules}");
    assert!(
        rules.contains("https://wiki.example.org/ops/token-refresh.md#2-token-refresh-heartbeat-not-running"),
        "{rules}"
    );
    assert!(rules.contains("(alert above 35)"), "{rules}");
    let (ok, out) = promtool(&["test", "rules", "token-refresh.tests.yml"], &dir.path().join("alerts"));
    assert!(ok, "{out}");
}

#[test]
fn readme_signal_table_is_the_catalog() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let table = integration_exporter::generate::catalog::markdown(&Model::builtin_defaults());
    let expected = format!("<!-- catalog:start -->\n{table}<!-- catalog:end -->");
    assert!(
        readme.contains(&expected),
        "README's signal table is stale: paste `integration-exporter catalog` between the markers"
    );
}

/// The anchors GitHub renders for a runbook's headings, duplicates numbered `-1`, `-2`, ... as
/// GitHub does; headings inside code fences are not headings.
fn github_anchors(markdown: &str) -> Vec<(String, String)> {
    let link = regex::Regex::new(r"\[([^\]]*)\]\([^)]*\)").unwrap();
    let dropped = regex::Regex::new(r"[^\p{L}\p{Nl}\p{M}\p{Nd}\p{Pc}\- ]").unwrap();
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    let mut out = Vec::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if fenced || hashes == 0 || hashes > 6 || !line[hashes..].starts_with(' ') {
            continue;
        }
        let text = link.replace_all(line[hashes..].trim(), "$1").to_string();
        let base = dropped.replace_all(&text.to_lowercase(), "").replace(' ', "-");
        let n = seen.entry(base.clone()).or_insert(0);
        let anchor = if *n == 0 { base.clone() } else { format!("{base}-{n}") };
        *n += 1;
        out.push((text, anchor));
    }
    out
}

#[test]
fn every_generated_runbook_link_is_a_heading_github_renders() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/runbooks");
    let url = regex::Regex::new(r#"https://runbooks\.example\.com/([a-z-]+\.md)(?:#([^\s"'\\]+))?"#).unwrap();
    let model = Model::builtin_defaults();
    let mut checked = 0;
    for (rel, content) in outputs(&model) {
        for m in url.captures_iter(&content) {
            let file = &m[1];
            let markdown = std::fs::read_to_string(fixtures.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
            let Some(anchor) = m.get(2).map(|a| a.as_str()) else { continue };
            let anchors = github_anchors(&markdown);
            assert!(
                anchors.iter().any(|(_, a)| a == anchor),
                "{}: {file}#{anchor} is no heading of {file}; its headings render as {:?}",
                rel.display(),
                anchors.iter().map(|(_, a)| a.as_str()).collect::<Vec<_>>()
            );
            checked += 1;
        }
    }
    assert!(checked > 50, "only {checked} links found");
    // Each signal's link is its own runbook's heading, named as the spec names it.
    for signal in model.enabled_signals() {
        let (Some(section), Some(pack)) = (&signal.signal.runbook_section, &signal.pack) else { continue };
        let info = model.packs.iter().find(|p| &p.name == pack).unwrap();
        let markdown = std::fs::read_to_string(fixtures.join(&info.runbook)).unwrap();
        let headings = github_anchors(&markdown);
        let (_, anchor) = headings
            .iter()
            .find(|(text, _)| text.replace(['*', '`'], "") == section.replace(['*', '`'], ""))
            .unwrap_or_else(|| panic!("{}: `{section}` is no heading of {}", signal.signal.id, info.runbook));
        assert!(
            signal.runbook_url.as_deref().is_some_and(|u| u.ends_with(&format!("#{anchor}"))),
            "{}: {:?} should end in #{anchor}",
            signal.signal.id,
            signal.runbook_url
        );
    }
}

/// Evaluates the generated expression of `alert` in `rules_file` with promtool on `input`
/// (a `promql_expr_test` per (minute, expected value or none)).
fn promql_expr_test(rules_file: &Path, alert: &str, input: &str, at: &[(u64, Option<f64>)]) -> (bool, String) {
    let rules: serde_json::Value = serde_saphyr::from_str(&std::fs::read_to_string(rules_file).unwrap()).unwrap();
    let rule = rules["groups"][0]["rules"].as_array().unwrap().iter().find(|r| r["alert"] == alert).unwrap();
    let expr = rule["expr"].as_str().unwrap();
    let labels = r#"{instance="exporter:9187", job="integration-exporter"}"#;
    let cases: Vec<serde_json::Value> = at
        .iter()
        .map(|(minute, value)| {
            serde_json::json!({
                "expr": expr,
                "eval_time": format!("{minute}m"),
                "exp_samples": value.map(|v| vec![serde_json::json!({"labels": labels, "value": v})]).unwrap_or_default(),
            })
        })
        .collect();
    let (series, values) = input.split_once(' ').unwrap();
    let doc = serde_json::json!({
        "tests": [{"interval": "1m", "input_series": [{"series": series, "values": values}], "promql_expr_test": cases}]
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.yml"), serde_json::to_string(&doc).unwrap()).unwrap();
    promtool(&["test", "rules", "t.yml"], dir.path())
}

#[test]
fn failed_calendar_events_alert_on_new_failures_not_on_the_backlog() {
    let dir = write_outputs(&Model::builtin_defaults());
    let rules = dir.path().join("alerts/calendar-sync.rules.yml");
    // A backlog of 5 for two hours, 3 new failures, then most of the backlog reset by hand.
    let series = r#"integration_calendar_sync_failed_events{instance="exporter:9187", job="integration-exporter"} 5x120 8x60 3x60"#;
    let (ok, out) = promql_expr_test(
        &rules,
        "IntegrationCalendarSyncFailedEvents",
        series,
        // Quiet on the standing backlog; 3 new ones fire for the hour after; clearing is no failure.
        &[(60, None), (119, None), (121, Some(3.0)), (175, Some(3.0)), (190, None), (240, None)],
    );
    assert!(ok, "{out}");
}

/// Every built-in pack and the user signals of the golden spec, scraped as job `billing-ie` of
/// the `prod` cluster.
fn selected_model() -> Model {
    let mut text = String::from(
        "database: {url_env: DATABASE_URL}\ngenerate: {job: billing-ie, matchers: {cluster: prod, team: 'a \"b\" \\ c'}}\npacks:\n",
    );
    for (name, _) in integration_exporter::spec::pack::BUILTIN {
        text.push_str(&format!("  {name}: {{}}\n"));
    }
    text.push_str(include_str!("../fixtures/graph_errors.yaml"));
    Model::from_text(&integration_exporter::spec::SourceText { name: "selected.yaml".into(), text })
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The label matchers of every vector selector in `expr`, found without the generator's own
/// scanner: an identifier outside braces, brackets, strings and `by (...)`-style label lists
/// that is no keyword, aggregation or function call is a metric name, and the braces right
/// after it (if any) are its matchers.
fn vector_selectors(expr: &str) -> Vec<(String, String)> {
    const KEYWORDS: &[&str] = &[
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "offset",
        "bool",
        "inf",
        "nan",
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    ];
    const GROUPING: &[&str] = &["by", "without", "on", "ignoring", "group_left", "group_right"];
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut label_list = false;
    let mut after_grouping = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c == '[' {
            while i < chars.len() && chars[i] != ']' {
                i += 1;
            }
            i += 1;
        } else if c == '{' {
            // Braces without a metric name before them: a selector by matchers alone.
            let end = expr_brace_end(&chars, i);
            out.push((String::new(), chars[i + 1..end].iter().collect()));
            i = end + 1;
        } else if c == '(' {
            label_list = after_grouping;
            after_grouping = false;
            i += 1;
        } else if c == ')' {
            label_list = false;
            i += 1;
        } else if c.is_ascii_digit() || c == '.' {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.' || chars[i] == '_') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut j = i;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            if label_list {
                continue;
            }
            after_grouping = GROUPING.contains(&word.as_str());
            if KEYWORDS.contains(&word.as_str()) || chars.get(j) == Some(&'(') {
                continue;
            }
            if chars.get(j) == Some(&'{') {
                let end = expr_brace_end(&chars, j);
                out.push((word, chars[j + 1..end].iter().collect()));
                i = end + 1;
            } else {
                out.push((word, String::new()));
            }
        } else {
            i += 1;
        }
    }
    out
}

fn expr_brace_end(chars: &[char], open: usize) -> usize {
    let mut i = open + 1;
    while i < chars.len() && chars[i] != '}' {
        if chars[i] == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
        }
        i += 1;
    }
    i.min(chars.len() - 1)
}

#[test]
fn vector_selector_scanner_finds_every_selector() {
    let found = vector_selectors(
        "sum without (a, b) (increase(m_total{x=\"}\"}[5m])) / on (c) group_left () time() - max by (d) (g) \
         and absent(n{y=\"1\"} offset 1m) or label_replace(up, \"dst\", \"$1\", \"src\", \"(.*)\") > bool 3e1",
    );
    let names: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["m_total", "g", "n", "up"], "{found:?}");
    assert_eq!(found[0].1, "x=\"}\"");
}

#[test]
fn every_rule_and_panel_selects_the_configured_job_and_matchers() {
    let model = selected_model();
    // Values are PromQL strings: quotes and backslashes escaped.
    let team = r#"team="a \"b\" \\ c""#;
    let rule_matchers = ["job=\"billing-ie\"", "cluster=\"prod\"", team];
    // `instance=~"$instance|"` for `ALERTS`, whose fleet-wide alerts have no instance.
    let panel_matchers = ["job=~\"$job\"", "instance=~\"$instance", "cluster=\"prod\"", team];
    let (mut rules_seen, mut panels_seen) = (0, 0);
    let check = |what: &str, expr: &str, wanted: &[&str]| -> usize {
        let selectors = vector_selectors(expr);
        assert!(!selectors.is_empty(), "{what}: no selector found in {expr}");
        for (metric, matchers) in &selectors {
            for m in wanted {
                assert!(matchers.contains(m), "{what}: `{metric}{{{matchers}}}` lacks {m} in\n{expr}");
            }
        }
        selectors.len()
    };
    for (rel, content) in outputs(&model) {
        let name = rel.display().to_string();
        if name.ends_with(".rules.yml") {
            let doc: serde_json::Value = serde_saphyr::from_str(&content).unwrap();
            for rule in doc["groups"][0]["rules"].as_array().unwrap() {
                let what = format!("{name}: {}", rule["alert"]);
                rules_seen += check(&what, rule["expr"].as_str().unwrap(), &rule_matchers);
            }
        } else if name.ends_with(".json") {
            let doc: serde_json::Value = serde_json::from_str(&content).unwrap();
            for panel in doc["panels"].as_array().unwrap() {
                for target in panel["targets"].as_array().into_iter().flatten() {
                    let what = format!("{name}: panel {}", panel["title"]);
                    panels_seen += check(&what, target["expr"].as_str().unwrap(), &panel_matchers);
                }
            }
            let job_query = doc["templating"]["list"][1]["query"].as_str().unwrap_or_default();
            assert_eq!(
                job_query,
                format!("label_values(integration_exporter_build_info{{cluster=\"prod\", {team}}}, job)")
            );
        }
    }
    assert!(rules_seen > 80 && panels_seen > 60, "{rules_seen} rule and {panels_seen} panel selectors");

    // promtool agrees: the rules parse, and their generated tests (series carrying the
    // matchers) pass.
    let dir = write_outputs(&model);
    let alerts = dir.path().join("alerts");
    for entry in std::fs::read_dir(&alerts).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        let args: &[&str] = if name.ends_with(".rules.yml") {
            &["check", "rules", "--lint-fatal", &name]
        } else {
            &["test", "rules", &name]
        };
        let (ok, out) = promtool(args, &alerts);
        assert!(ok, "{name}: {out}");
    }
}

#[test]
fn matchers_that_are_no_label_names_are_refused_with_their_position() {
    for (text, position, message) in [
        ("generate: {matchers: {\"bad-name\": x}}\n", "t.yaml:1:22", "`bad-name` is not a valid label name"),
        ("generate:\n  matchers: {__name__: x}\n", "t.yaml:2:13", "`__name__` is not a valid label name"),
        ("generate:\n  matchers: {job: x}\n", "t.yaml:2:13", "set the job with `generate.job`"),
    ] {
        let source = integration_exporter::spec::SourceText { name: "t.yaml".into(), text: text.into() };
        let err = Model::from_text(&source).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains(position) && err.contains(message), "{text}: {err}");
    }
}

/// monitoring-mixins' alert lint rules over every generated alert, of the built-in packs and of
/// a spec's own signals: a `severity` label, `summary`, `description` and `runbook_url`
/// annotations, CamelCase names, and a description that names what fired (a template of the
/// alert's value or labels).
fn mixin_lint(model: &Model) -> Vec<String> {
    let mut found = Vec::new();
    let camel = regex::Regex::new(r"^(?:[A-Z][a-z0-9]*)+$").unwrap();
    for (rel, content) in outputs(model) {
        if !rel.to_string_lossy().ends_with(".rules.yml") {
            continue;
        }
        let file: serde_json::Value = serde_saphyr::from_str(&content).unwrap();
        for rule in file["groups"].as_array().unwrap().iter().flat_map(|g| g["rules"].as_array().unwrap()) {
            let Some(name) = rule["alert"].as_str() else { continue };
            let at = format!("{}: {name}", rel.display());
            if !camel.is_match(name) {
                found.push(format!("{at}: name not CamelCase"));
            }
            if !["critical", "warning", "info"].contains(&rule["labels"]["severity"].as_str().unwrap_or("")) {
                found.push(format!("{at}: no severity label"));
            }
            for key in ["summary", "description", "runbook_url"] {
                if rule["annotations"][key].as_str().is_none_or(|v| v.trim().is_empty()) {
                    found.push(format!("{at}: no {key} annotation"));
                }
            }
            let description = rule["annotations"]["description"].as_str().unwrap_or("");
            if !description.contains("{{ $labels.") && !description.contains("{{ $value") {
                found.push(format!("{at}: description not templated: {description}"));
            }
        }
    }
    found
}

#[test]
fn alerts_pass_the_monitoring_mixin_lint_rules() {
    let custom = Model::from_text(&integration_exporter::spec::SourceText {
        name: "custom.yaml".into(),
        text: include_str!("../fixtures/graph_errors.yaml").into(),
    })
    .unwrap();
    for model in [Model::builtin_defaults(), custom] {
        let found = mixin_lint(&model);
        assert!(found.is_empty(), "{}", found.join("\n"));
    }
}

/// The three runbook packs with every signal on, the opt-in ones too.
fn every_signal_of(packs: &[&str]) -> Model {
    let mut text = String::from("database: {url_env: X}\npacks:\n");
    for pack in packs {
        let def = integration_exporter::spec::builtin_pack(pack).unwrap().unwrap();
        let on: Vec<String> = def.signals.iter().map(|s| format!("{}: {{enabled: true}}", s.id)).collect();
        text.push_str(&format!("  {pack}:\n    signals: {{{}}}\n", on.join(", ")));
    }
    Model::from_text(&integration_exporter::spec::SourceText { name: "t.yaml".into(), text }).unwrap()
}

/// A runbook's text under each heading (to the next heading of the same or a higher level), with
/// Markdown's emphasis and code marks dropped and whitespace collapsed, as a reader reads it.
fn runbook_sections(markdown: &str) -> Vec<(String, String)> {
    let plain = |s: &str| s.replace("**", "").replace('`', "").split_whitespace().collect::<Vec<_>>().join(" ");
    let lines: Vec<&str> = markdown.lines().collect();
    let level = |l: &str| {
        let n = l.chars().take_while(|c| *c == '#').count();
        (n > 0 && l[n..].starts_with(' ')).then_some(n)
    };
    let mut fenced = false;
    let mut headings = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if let (false, Some(n)) = (fenced, level(line)) {
            headings.push((i, n));
        }
    }
    headings
        .iter()
        .map(|&(i, n)| {
            let end = headings.iter().find(|&&(j, m)| j > i && m <= n).map_or(lines.len(), |&(j, _)| j);
            (plain(&lines[i][n..]), plain(&lines[i + 1..end].join("\n")))
        })
        .collect()
}

/// Every alert of the token refresh, Microsoft integration and calendar sync packs says where its
/// threshold, severity, window (when it has one) and `for` come from, and each runbook quote is
/// the runbook's own words under the heading it names.
#[test]
fn every_alert_says_where_each_number_comes_from_in_the_runbooks_words() {
    use integration_exporter::spec::Basis;
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/runbooks");
    let packs = ["token_refresh", "microsoft_integration", "calendar_sync"];
    let model = every_signal_of(&packs);
    let mut quotes = 0;
    for signal in model.enabled_signals() {
        let pack = signal.pack.as_deref().unwrap();
        let runbook = &model.packs.iter().find(|p| p.name == pack).unwrap().runbook;
        let sections = runbook_sections(&std::fs::read_to_string(fixtures.join(runbook)).unwrap());
        for alert in &signal.signal.alerts {
            let who = format!("{} ({})", alert.name, alert.severity.as_str());
            let basis = alert.basis.clone().unwrap_or_default();
            let stated: Vec<&str> = basis.stated().into_iter().map(|(aspect, _)| aspect).collect();
            let wanted: Vec<&str> = if alert.condition.window().is_some() {
                vec!["threshold", "severity", "window", "for"]
            } else {
                vec!["threshold", "severity", "for"]
            };
            assert_eq!(stated, wanted, "{who}: basis");
            for (aspect, b) in basis.stated() {
                match b {
                    Basis::Runbook { section, quote } => {
                        let (_, text) = sections
                            .iter()
                            .find(|(heading, _)| heading == section)
                            .unwrap_or_else(|| panic!("{who}: `{section}` is no heading of {runbook}"));
                        let quote = quote.replace('`', "");
                        assert!(text.contains(&quote), "{who}: {aspect}: {quote:?} is not under `{section}`");
                        quotes += 1;
                    }
                    Basis::Chosen(why) => assert!(why.len() > 20, "{who}: {aspect}: say why: {why:?}"),
                }
            }
        }
    }
    assert!(quotes > 15, "only {quotes} runbook quotes");
}
