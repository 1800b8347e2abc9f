//! The generated rules, tests and dashboards: committed copies are current, promtool accepts the
//! rules, and every generated promtool unit test passes (and fails when a threshold moves).

use std::path::Path;

use integration_exporter::generate::{RuleFormat, outputs};
use integration_exporter::spec::Model;
use promql_parser::parser::{Expr, VectorSelector};

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
    for (rel, content) in outputs(&Model::builtin_defaults()).unwrap() {
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
    let files = integration_exporter::generate::files_as(&model, RuleFormat::PrometheusOperator).unwrap();
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
fn packs_doc_signal_table_is_the_catalog() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/packs.md")).unwrap();
    let table = integration_exporter::generate::catalog::markdown(&Model::builtin_defaults());
    let expected = format!("<!-- catalog:start -->\n{table}<!-- catalog:end -->");
    assert!(
        doc.contains(&expected),
        "docs/packs.md's signal table is stale: paste `integration-exporter catalog` between the markers"
    );
}

/// The anchors GitHub renders for a runbook's headings, duplicates numbered `-1`, `-2`, ... as
/// GitHub does; headings inside code fences are not headings.
pub(crate) fn github_anchors(markdown: &str) -> Vec<(String, String)> {
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

/// The runbook a generated link points into: the packs' runbooks are copies under
/// `tests/fixtures/runbooks/`; the exporter's own is one of the generated outputs.
fn runbook_markdown(outputs: &[(std::path::PathBuf, String)], file: &str) -> String {
    if let Some((_, text)) = outputs.iter().find(|(rel, _)| rel == &Path::new("runbooks").join(file)) {
        return text.clone();
    }
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/runbooks");
    std::fs::read_to_string(fixtures.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn every_generated_runbook_link_is_a_heading_github_renders() {
    let url = regex::Regex::new(r#"https://runbooks\.example\.com/([a-z-]+\.md)(?:#([^\s"'\\]+))?"#).unwrap();
    let model = Model::builtin_defaults();
    let outputs = outputs(&model).unwrap();
    let mut checked = 0;
    for (rel, content) in &outputs {
        for m in url.captures_iter(content) {
            let file = &m[1];
            let markdown = runbook_markdown(&outputs, file);
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
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/runbooks");
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

/// The sections of a generated markdown runbook: (heading text, anchor, body up to the next
/// heading of the same level or above).
fn sections(markdown: &str) -> Vec<(String, String, String)> {
    let anchors = github_anchors(markdown);
    let mut out: Vec<(String, String, String)> = Vec::new();
    let mut at = 0;
    for line in markdown.lines() {
        if line.starts_with("## ") {
            let (text, anchor) = anchors.iter().find(|(t, _)| line[3..].trim() == t).cloned().unwrap();
            out.push((text, anchor, String::new()));
            at += 1;
        } else if at > 0 && !line.starts_with("# ") {
            let body = &mut out.last_mut().unwrap().2;
            body.push_str(line);
            body.push('\n');
        }
    }
    out
}

/// The exporter's own alerts (about 40 rules: source health, the database, the exporter itself)
/// link one runbook, which `generate` writes from the same definitions: every one of them has a
/// section under the heading its link names, saying what it means, what it holds back and what
/// to do, and the runbook has no section for an alert that does not exist. For the built-in
/// packs and for a spec of the user's own signals.
#[test]
fn the_exporters_own_runbook_explains_every_own_alert_at_its_link() {
    let custom = Model::from_text(&integration_exporter::spec::SourceText {
        name: "custom.yaml".into(),
        text: include_str!("../fixtures/graph_errors.yaml").into(),
    })
    .unwrap();
    for model in [Model::builtin_defaults(), custom] {
        let outputs = outputs(&model).unwrap();
        let runbook = runbook_markdown(&outputs, "integration-exporter.md");
        let sections = sections(&runbook);
        let mut linked = std::collections::BTreeSet::new();
        for (rel, content) in &outputs {
            if !rel.to_string_lossy().ends_with(".rules.yml") {
                continue;
            }
            let file: serde_json::Value = serde_saphyr::from_str(content).unwrap();
            for rule in file["groups"][0]["rules"].as_array().unwrap() {
                // Recording rules (an SLO's error ratios) link nothing.
                if rule.get("record").is_some() {
                    continue;
                }
                let link = rule["annotations"]["runbook_url"].as_str().unwrap();
                let Some(anchor) = link.strip_prefix(&format!(
                    "{}/integration-exporter.md#",
                    model.config.runbook_base_url.trim_end_matches('/')
                )) else {
                    continue;
                };
                let name = rule["alert"].as_str().unwrap();
                let (text, _, body) = sections
                    .iter()
                    .find(|(_, a, _)| a == anchor)
                    .unwrap_or_else(|| panic!("{name}: #{anchor} is no heading of the runbook:\n{runbook}"));
                assert_eq!(text, name, "#{anchor} is the section of another alert");
                for part in ["**What it means.** ", "**Holds back.** ", "**What to do.**\n\n- "] {
                    assert!(body.contains(part), "{name}: no `{part}` in its section:\n{body}");
                }
                assert!(body.contains(rule["annotations"]["summary"].as_str().unwrap()), "{name}: {body}");
                linked.insert(name.to_string());
            }
        }
        let headed: std::collections::BTreeSet<String> = sections.iter().map(|(t, _, _)| t.clone()).collect();
        assert_eq!(headed, linked, "sections without an alert, or alerts without a section");
        assert!(linked.contains("IntegrationExporterDown"), "{linked:?}");
    }
    let builtin = outputs(&Model::builtin_defaults()).unwrap();
    let own = builtin
        .iter()
        .filter(|(rel, _)| rel.to_string_lossy().ends_with(".rules.yml"))
        .map(|(_, c)| c.matches("/integration-exporter.md#").count())
        .sum::<usize>();
    assert!(own > 35, "only {own} own alerts link the exporter's runbook");
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

/// Every built-in pack with every signal on (the opt-in ones too, but for an alternative source
/// of metrics already read) and the user signals of the golden spec, scraped as job `billing-ie`
/// of the `prod` cluster.
fn selected_model() -> Model {
    let mut text = String::from(
        "database: {url_env: DATABASE_URL}\ngenerate: {job: billing-ie, matchers: {cluster: prod, team: 'a \"b\" \\ c'}}\npacks:\n",
    );
    for (name, _) in integration_exporter::spec::pack::BUILTIN {
        let def = integration_exporter::spec::builtin_pack(name).unwrap().unwrap();
        let mut read: std::collections::BTreeSet<&str> =
            def.signals.iter().filter(|s| s.enabled).flat_map(|s| s.metrics.iter().map(|m| m.name.as_str())).collect();
        let opt_in = def.signals.iter().filter(|s| !s.enabled);
        let others: Vec<_> = opt_in.filter(|s| s.metrics.iter().all(|m| read.insert(m.name.as_str()))).collect();
        let on: Vec<String> = others.iter().map(|s| format!("{}: {{enabled: true}}", s.id)).collect();
        text.push_str(&format!("  {name}:\n    signals: {{{}}}\n", on.join(", ")));
    }
    text.push_str(include_str!("../fixtures/graph_errors.yaml"));
    Model::from_text(&integration_exporter::spec::SourceText { name: "selected.yaml".into(), text })
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Every vector selector in `expr` (Grafana's `$__rate_interval` read as the `1m` it stands for),
/// as PromQL's parser reads it: found by the parser, not by a scanner of our own.
fn vector_selectors(expr: &str) -> Result<Vec<VectorSelector>, String> {
    fn walk(e: &Expr, out: &mut Vec<VectorSelector>) {
        match e {
            Expr::VectorSelector(vs) => out.push(vs.clone()),
            Expr::MatrixSelector(ms) => out.push(ms.vs.clone()),
            Expr::Aggregate(a) => {
                a.param.iter().for_each(|p| walk(p, out));
                walk(&a.expr, out);
            }
            Expr::Binary(b) => {
                walk(&b.lhs, out);
                walk(&b.rhs, out);
            }
            Expr::Unary(u) => walk(&u.expr, out),
            Expr::Paren(p) => walk(&p.expr, out),
            Expr::Subquery(s) => walk(&s.expr, out),
            Expr::Call(c) => c.args.args.iter().for_each(|a| walk(a, out)),
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
        }
    }
    let tree = promql_parser::parser::parse(&expr.replace("$__rate_interval", "1m"))?;
    let mut out = Vec::new();
    walk(&tree, &mut out);
    Ok(out)
}

/// Whether `vs` has the matcher `name` `op` `value` (`op` as written: `=`, `=~`).
fn has_matcher(vs: &VectorSelector, (name, op, value): (&str, &str, &str)) -> bool {
    vs.matchers.matchers.iter().any(|m| m.name == name && m.op.to_string() == op && m.value == value)
}

#[test]
fn every_rule_and_panel_selects_the_configured_job_and_matchers() {
    let model = selected_model();
    let team = ("team", "=", r#"a "b" \ c"#);
    let rule_matchers = [("job", "=", "billing-ie"), ("cluster", "=", "prod"), team];
    let panel_matchers = [("job", "=~", "$job"), ("instance", "=~", "$instance"), ("cluster", "=", "prod"), team];
    let (mut rules_seen, mut panels_seen) = (0, 0);
    let mut panel_exprs = Vec::new();
    let check = |what: &str, expr: &str, wanted: &[(&str, &str, &str)]| -> usize {
        let selectors = vector_selectors(expr).unwrap_or_else(|e| panic!("{what}: {e} in\n{expr}"));
        assert!(!selectors.is_empty(), "{what}: no selector found in {expr}");
        for vs in &selectors {
            // Every one: the model's metrics, Prometheus' and the SLO's recording rules alike.
            for m in wanted {
                // Series without an instance (`ALERTS` of a fleet-wide alert, an SLO's records) are
                // picked by `$instance` or none.
                let or_none = m.2 == "$instance" && has_matcher(vs, ("instance", "=~", "$instance|"));
                assert!(has_matcher(vs, *m) || or_none, "{what}: `{vs}` lacks {m:?} in\n{expr}");
            }
        }
        selectors.len()
    };
    for (rel, content) in outputs(&model).unwrap() {
        let name = rel.display().to_string();
        if name.ends_with(".rules.yml") {
            let doc: serde_json::Value = serde_saphyr::from_str(&content).unwrap();
            for rule in doc["groups"].as_array().unwrap().iter().flat_map(|g| g["rules"].as_array().unwrap()) {
                let what = format!("{name}: {}{}", rule["alert"], rule["record"]);
                rules_seen += check(&what, rule["expr"].as_str().unwrap(), &rule_matchers);
            }
        } else if name.ends_with(".json") {
            let doc: serde_json::Value = serde_json::from_str(&content).unwrap();
            let panels = doc["panels"].as_array().unwrap();
            // A collapsed row holds its panels.
            let nested = panels.iter().flat_map(|p| p["panels"].as_array().into_iter().flatten());
            for panel in panels.iter().chain(nested) {
                for target in panel["targets"].as_array().into_iter().flatten() {
                    let what = format!("{name}: panel {}", panel["title"]);
                    let expr = target["expr"].as_str().unwrap();
                    panels_seen += check(&what, expr, &panel_matchers);
                    panel_exprs.push(expr.replace("$__rate_interval", "1m"));
                }
            }
            let job_query = doc["templating"]["list"][1]["query"].as_str().unwrap_or_default();
            assert_eq!(
                job_query,
                r#"label_values(integration_exporter_build_info{cluster="prod", team="a \"b\" \\ c"}, job)"#
            );
        }
    }
    assert!(rules_seen > 80 && panels_seen > 60, "{rules_seen} rule and {panels_seen} panel selectors");

    // promtool agrees: the rules and every panel's query parse, and the rules' generated tests
    // (series carrying the matchers) pass.
    let dir = write_outputs(&model);
    let alerts = dir.path().join("alerts");
    let panel_rules: Vec<serde_json::Value> = panel_exprs
        .iter()
        .enumerate()
        .map(|(i, e)| serde_json::json!({"record": format!("panel:expr_{i}"), "expr": e}))
        .collect();
    let panels_file = serde_json::json!({"groups": [{"name": "panels", "rules": panel_rules}]});
    std::fs::write(dir.path().join("panels.json"), panels_file.to_string()).unwrap();
    let (ok, out) = promtool(&["check", "rules", "panels.json"], dir.path());
    assert!(ok, "panel queries: {out}");
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
    for (rel, content) in outputs(model).unwrap() {
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
