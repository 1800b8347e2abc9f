//! The spec's JSON Schema and its reference page: the committed copies are what the model gives,
//! every spec the project ships validates, and the mistakes the loader refuses (a misspelt key, a
//! wrong type, a malformed duration) the schema refuses too.

use std::path::{Path, PathBuf};

use integration_exporter::spec::schema;
use integration_exporter::spec::{Model, SourceText};
use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::validator_for(schema).unwrap_or_else(|e| panic!("the schema does not compile: {e}"))
}

/// YAML as a YAML language server hands it to the schema: the same reader the exporter uses,
/// into plain JSON values.
fn as_json(name: &str, yaml: &str) -> Value {
    serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("{name} is not YAML: {e}"))
}

/// Every schema error of `yaml`, located, empty when it validates.
fn errors(validator: &jsonschema::Validator, name: &str, yaml: &str) -> Vec<String> {
    let instance = as_json(name, yaml);
    validator.iter_errors(&instance).map(|e| format!("{name}: {} at {}", e, e.instance_path)).collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    files
}

#[test]
fn committed_schema_is_current() {
    let committed = std::fs::read_to_string(root().join("docs/spec.schema.json")).unwrap_or_default();
    assert!(
        committed == schema::json(),
        "docs/spec.schema.json is stale: run `cargo run -- schema > docs/spec.schema.json`"
    );
}

#[test]
fn committed_reference_is_current() {
    let committed = std::fs::read_to_string(root().join("docs/spec.md")).unwrap_or_default();
    assert!(
        committed == schema::markdown(),
        "docs/spec.md is stale: run `cargo run -- schema --format markdown > docs/spec.md`"
    );
}

/// The shipped specs: the deployment's, the demo's (with the values scripts/demo puts in), the
/// test fixtures and every YAML example of the README and docs/.
fn shipped_specs() -> Vec<(String, String)> {
    let mut specs = Vec::new();
    let kubernetes = root().join("deploy/kubernetes/spec.yaml");
    specs.push(("deploy/kubernetes/spec.yaml".to_string(), read(&kubernetes)));
    let demo = read(&root().join("demo/spec.yaml")).replace("DEMO_WINDOW", "30s").replace("DEMO_FOR", "15s");
    specs.push(("demo/spec.yaml".to_string(), demo));
    for path in yaml_files(&root().join("tests/fixtures")) {
        specs.push((path.strip_prefix(root()).unwrap().display().to_string(), read(&path)));
    }
    let mut docs = vec![root().join("README.md")];
    let mut pages: Vec<_> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    docs.extend(pages);
    for doc in docs {
        let name = doc.strip_prefix(root()).unwrap().display().to_string();
        let mut block: Option<(usize, String)> = None;
        for (n, line) in read(&doc).lines().enumerate() {
            match &mut block {
                None if line == "```yaml" => block = Some((n + 1, String::new())),
                Some((start, text)) if line == "```" => {
                    specs.push((format!("{name}:{start}"), std::mem::take(text)));
                    block = None;
                }
                Some((_, text)) => {
                    text.push_str(line);
                    text.push('\n');
                }
                None => {}
            }
        }
    }
    specs
}

#[test]
fn every_shipped_spec_validates() {
    let validator = validator(&schema::spec());
    let specs = shipped_specs();
    assert!(specs.len() >= 8, "found only {:?}", specs.iter().map(|(n, _)| n).collect::<Vec<_>>());
    assert!(specs.iter().any(|(n, _)| n.starts_with("README.md:")), "no README example found");
    assert!(
        specs.iter().any(|(n, _)| n.starts_with("docs/configuration.md:")),
        "no docs/configuration.md example found"
    );
    let problems: Vec<String> = specs.iter().flat_map(|(name, yaml)| errors(&validator, name, yaml)).collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Packs are a format of their own (a pack file is not a spec): each built-in pack validates
/// against the pack schema, and not against the spec's, which would be the wrong schema for it.
#[test]
fn every_pack_validates_against_the_pack_schema() {
    let pack = validator(&schema::pack());
    let spec = validator(&schema::spec());
    let files = yaml_files(&root().join("packs"));
    assert!(!files.is_empty());
    for path in files {
        let name = path.display().to_string();
        let yaml = read(&path);
        let problems = errors(&pack, &name, &yaml);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
        assert!(!errors(&spec, &name, &yaml).is_empty(), "{name} passes as a spec");
    }
}

/// A spec using most sections, which both the loader and the schema accept.
const VALID: &str = r#"listen: 127.0.0.1:29187
database: {url_env: DATABASE_URL, max_connections: 2, connect_timeout: 5s}
poll_defaults: {interval: 30s, timeout: 5s}
generate:
  matchers: {cluster: prod}
  alertmanager: {group_wait: 0, group_interval: 5m}
packs:
  token_refresh:
    params: {tokens_table: mail.tokens}
    alerts:
      IntegrationTokenRefreshTokensExpiring: {threshold: 30, for: 10m}
    signals:
      token_refresh.tokens_in_backoff: {interval: 2m}
logs:
  api: {paths: [/var/log/api/*.log], format: json, timestamp: {field: time, format: rfc3339}}
signals:
  - id: api.graph_errors
    title: Graph API errors
    metrics:
      - name: myapp_graph_errors_total
        type: counter
        help: Graph API errors by status.
        labels: [status]
    source:
      log:
        log: api
        rules:
          - fields: {category: graph, level: 40}
            metric: myapp_graph_errors_total
            action: inc
            labels: {status: $status}
    alerts:
      - name: IntegrationGraphErrors
        severity: warning
        condition: {increase: {metric: myapp_graph_errors_total, window: 1h}}
        op: ">"
        threshold: 10
        summary: The Graph API returns errors.
        description: "{value} errors in the last {window}."
  - id: api.limits
    title: API limits
    metrics:
      - {name: myapp_api_used, type: gauge, help: Requests used.}
    source:
      http:
        url: https://api.example.com/limits
        auth: {bearer: "env:API_TOKEN"}
        values:
          - {metric: myapp_api_used, path: .used}
"#;

/// Mistakes the loader refuses, each made once in [`VALID`]: (what, text replaced, replacement).
const BROKEN: &[(&str, &str, &str)] = &[
    ("unknown top-level key", "poll_defaults:", "poll_default:"),
    ("unknown key in database", "max_connections: 2", "max_conections: 2"),
    ("unknown key in generate", "matchers: {cluster", "matcher: {cluster"),
    ("unknown key in an alert override", "{threshold: 30", "{treshold: 30"),
    ("unknown key in a signal override", "{interval: 2m}", "{intervall: 2m}"),
    ("unknown key in a log source", "format: json, timestamp", "fromat: json, timestamp"),
    ("unknown key in a metric", "type: counter", "typ: counter"),
    ("unknown key in a log rule", "action: inc", "action: inc\n            actoin: inc"),
    ("unknown key in an alert", "op: \">\"", "operator: \">\""),
    ("unknown key in a condition", "window: 1h}", "window: 1h, windw: 1h}"),
    ("unknown key in an http source", "url: https", "uri: https"),
    ("wrong type: number", "max_connections: 2", "max_connections: two"),
    ("wrong type: threshold", "threshold: 10\n", "threshold: ten\n"),
    ("wrong type: list", "labels: [status]", "labels: {status: 1}"),
    ("wrong type: mapping", "params: {tokens_table: mail.tokens}", "params: [mail.tokens]"),
    ("bad duration: words", "{interval: 2m}", "{interval: 2 minutes}"),
    ("bad duration: no unit", "for: 10m", "for: 10"),
    ("bad duration: unknown unit", "window: 1h", "window: 1y"),
    ("bad duration: a number", "group_wait: 0", "group_wait: 5"),
    ("unknown severity", "severity: warning", "severity: urgent"),
    ("unknown action", "action: inc", "action: increment"),
    ("unknown condition", "{increase: {", "{increases: {"),
    ("two sources", "    source:\n      log:", "    source:\n      sql: {query: SELECT 1}\n      log:"),
    ("no port in listen", "listen: 127.0.0.1:29187", "listen: 127.0.0.1"),
    ("a literal bearer token", "env:API_TOKEN", "ghp_secret"),
    ("no database url", "{url_env: DATABASE_URL, ", "{"),
    ("both database urls", "url_env: DATABASE_URL", "url_env: DATABASE_URL, url_file: /run/dsn"),
    ("a required key missing", "    title: Graph API errors\n", ""),
    ("job among the matchers", "{cluster: prod}", "{job: other}"),
];

fn loads(text: &str) -> Result<Model, String> {
    Model::from_text(&SourceText { name: "spec.yaml".into(), text: text.into() }).map_err(|e| e.to_string())
}

#[test]
fn the_valid_spec_passes_the_loader_and_the_schema() {
    loads(VALID).unwrap_or_else(|e| panic!("{e}"));
    let problems = errors(&validator(&schema::spec()), "VALID", VALID);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn mistakes_the_loader_refuses_the_schema_refuses() {
    let validator = validator(&schema::spec());
    let mut missed = Vec::new();
    for (what, from, to) in BROKEN {
        assert_eq!(VALID.matches(from).count(), 1, "{what}: `{from}` must occur once in VALID");
        let broken = VALID.replacen(from, to, 1);
        assert!(loads(&broken).is_err(), "{what}: the loader accepts it, so the schema need not refuse it");
        if errors(&validator, what, &broken).is_empty() {
            missed.push(*what);
        }
    }
    assert!(missed.is_empty(), "the schema accepts: {missed:?}");
}

/// `integration-exporter schema` prints the committed schema, `--format markdown` the reference.
#[test]
fn the_schema_command_prints_both() {
    let bin = env!("CARGO_BIN_EXE_integration-exporter");
    for (args, expected) in
        [(&["schema"][..], schema::json()), (&["schema", "--format", "markdown"][..], schema::markdown())]
    {
        let out = std::process::Command::new(bin).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8(out.stdout).unwrap(), expected, "{args:?}");
    }
}
