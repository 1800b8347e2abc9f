//! What ships beside the binary: LICENSE, the container image, the systemd unit, the example
//! Prometheus configuration and the Kubernetes manifests, each checked by the tool that reads it
//! (systemd-analyze, promtool, and the Kubernetes and Prometheus Operator schemas).

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use integration_exporter::generate::{self, RuleFormat};
use integration_exporter::spec::Model;
use integration_exporter::spec::config::DEFAULT_PORT;
use serde_json::Value;
use support::exporter_bin;
use support::process::program;

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Runs a tool: whether it succeeded, and what it said.
fn run(command: &mut Command) -> (bool, String) {
    let out = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn license_is_the_apache_2_text_cargo_toml_names() {
    let license = read("LICENSE");
    assert!(license.contains("Apache License") && license.contains("Version 2.0, January 2004"));
    assert!(license.contains("TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION"));
    assert!(license.contains("END OF TERMS AND CONDITIONS"));
    assert!(read("Cargo.toml").contains("\nlicense = \"Apache-2.0\"\n"));
}

/// The README's two commands for a fresh machine name scripts that exist and run, and CI runs the
/// test one: the README shrinks and moves, these two lines stay as they are.
#[test]
fn the_readmes_two_commands_are_the_scripts_ci_runs() {
    use std::os::unix::fs::PermissionsExt;
    let readme = read("README.md");
    for script in ["scripts/demo", "scripts/test"] {
        assert!(
            readme.lines().any(|l| l.starts_with(&format!("{script}   # "))),
            "README.md does not give `{script}` as one of its two commands"
        );
        let mode = std::fs::metadata(repo(script)).unwrap_or_else(|e| panic!("{script}: {e}")).permissions().mode();
        assert_ne!(mode & 0o111, 0, "{script} is not executable");
    }
    assert!(read(".ci/run").lines().any(|l| l.trim() == "exec scripts/test"), ".ci/run does not run scripts/test");
}

#[test]
fn the_default_port_is_the_one_everywhere() {
    let port = DEFAULT_PORT.to_string();
    let files = [
        "Dockerfile",
        "README.md",
        "docs/commands.md",
        "docs/demo.md",
        "docs/deploy.md",
        "scripts/demo",
        "demo/spec.yaml",
        "deploy/systemd/integration-exporter.service",
        "deploy/prometheus/prometheus.yml",
        "deploy/kubernetes/deployment.yaml",
        "deploy/kubernetes/service.yaml",
    ];
    for file in files {
        let text = read(file);
        assert!(text.contains(&port), "{file} does not name port {port}");
        for (n, line) in text.lines().enumerate() {
            // postgres_exporter's port, unless it is a part of ours.
            let stale = line.match_indices("9187").any(|(i, _)| !line[..i].ends_with(&port[..port.len() - 4]));
            assert!(!stale || line.contains("postgres_exporter"), "{file}:{}: {line}", n + 1);
        }
    }
}

#[test]
fn the_image_listens_on_all_interfaces_and_carries_oci_labels() {
    let dockerfile = read("Dockerfile");
    assert!(dockerfile.contains(&format!("\nEXPOSE {DEFAULT_PORT}\n")), "{dockerfile}");
    let cmd = dockerfile.lines().find(|l| l.starts_with("CMD ")).expect("CMD");
    let cmd: Vec<String> = serde_json::from_str(cmd.trim_start_matches("CMD ")).expect("CMD in exec form");
    assert!(cmd.contains(&format!("--web.listen-address=0.0.0.0:{DEFAULT_PORT}")), "{cmd:?}");
    assert!(cmd.iter().any(|a| a.starts_with("--config.file=")), "{cmd:?}");
    for label in ["title", "description", "licenses=\"Apache-2.0\"", "version", "revision", "created"] {
        assert!(dockerfile.contains(&format!("org.opencontainers.image.{label}")), "label {label}");
    }
    // The flags the image passes are ones the binary takes.
    let out = Command::new(exporter_bin()).arg("serve").arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in cmd.iter().filter(|a| a.starts_with("--")) {
        let name = flag.split('=').next().unwrap();
        assert!(help.contains(name), "{name} is not a flag of serve");
    }
}

/// `systemd-analyze verify` of a unit whose ExecStart names the built binary (verify insists the
/// executable exists); everything it says is a failure, since it exits 0 on unknown keys.
fn systemd_verify(unit: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("integration-exporter.service");
    let unit = unit.replace("/usr/local/bin/integration-exporter", &exporter_bin().display().to_string());
    std::fs::write(&path, unit).unwrap();
    let (ok, text) = run(program("systemd-analyze").args(["verify", "--man=no"]).arg(&path));
    if ok { text.trim().to_string() } else { format!("failed: {text}") }
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_and_is_hardened() {
    let unit = read("deploy/systemd/integration-exporter.service");
    assert_eq!(systemd_verify(&unit), "");
    // The check can fail: a misspelt key is reported.
    assert!(systemd_verify(&unit.replace("ProtectHome=", "ProtectHom=")).contains("ProtectHom"));
    let settings: Vec<(&str, &str)> =
        unit.lines().filter(|l| !l.starts_with('#')).filter_map(|l| l.split_once('=')).collect();
    let has = |key: &str, value: &str| settings.iter().any(|(k, v)| *k == key && v.trim() == value);
    assert!(has("DynamicUser", "yes") || settings.iter().any(|(k, _)| *k == "User"));
    for (key, value) in [
        ("StateDirectory", "integration-exporter"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("NoNewPrivileges", "yes"),
        ("PrivateTmp", "yes"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("SystemCallFilter", "@system-service"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ("LimitNOFILE", "65536"),
    ] {
        assert!(has(key, value), "{key}={value}");
    }
    assert!(unit.contains(&format!("--web.listen-address=0.0.0.0:{DEFAULT_PORT}")));
}

/// The repository as a fresh clone has it: its tracked files (as the work tree has them), so a
/// file that the documented commands need but nobody committed fails here as it would for a user.
fn checkout() -> tempfile::TempDir {
    use std::os::unix::ffi::OsStrExt;
    let root = repo("");
    let out = program("git").arg("-C").arg(&root).args(["ls-files", "-z"]).output().expect("git");
    assert!(out.status.success(), "git ls-files in {}: {}", root.display(), String::from_utf8_lossy(&out.stderr));
    let dir = tempfile::tempdir().unwrap();
    for rel in out.stdout.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let rel = Path::new(std::ffi::OsStr::from_bytes(rel));
        let from = root.join(rel);
        // Deleted in the work tree: the next commit will not have it either.
        if !from.is_file() {
            continue;
        }
        let to = dir.path().join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("{}: {e}", rel.display()));
    }
    dir
}

/// `integration-exporter ARGS` run in `top`, as docs/deploy.md has users run it from the
/// repository's top.
fn exporter_in(top: &Path, args: &[&str]) {
    let out = Command::new(exporter_bin()).args(args).current_dir(top).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_shipped_prometheus_config_loads_every_rule_generate_writes_from_the_top_of_a_checkout() {
    // docs/deploy.md's steps: `integration-exporter generate` at the top, then Prometheus (here
    // promtool, which resolves `rule_files` as Prometheus does) with the file where it ships.
    let top = checkout();
    exporter_in(top.path(), &["generate"]);
    let mut rule_files = 0;
    let mut rules = 0;
    for entry in std::fs::read_dir(top.path().join("alerts")).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().ends_with(".rules.yml") {
            let file: Value = serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            rule_files += 1;
            rules +=
                file["groups"].as_array().unwrap().iter().map(|g| g["rules"].as_array().unwrap().len()).sum::<usize>();
        }
    }
    assert!(rules > 0);
    let (ok, text) = run(program("promtool")
        .args(["check", "config", "--lint-fatal", "deploy/prometheus/prometheus.yml"])
        .current_dir(top.path()));
    assert!(ok, "{text}");
    // Every rule file and every rule in it, and no promtool test file.
    assert!(text.contains(&format!("SUCCESS: {rule_files} rule files found")), "{text}");
    let loaded: usize = regex::Regex::new(r"SUCCESS: (\d+) rules found")
        .unwrap()
        .captures_iter(&text)
        .map(|c| c[1].parse::<usize>().unwrap())
        .sum();
    assert_eq!(loaded, rules, "{text}");
    let config: Value = serde_saphyr::from_str(&read("deploy/prometheus/prometheus.yml")).unwrap();
    let job = &config["scrape_configs"][0];
    assert_eq!(job["job_name"], "integration-exporter");
    assert_eq!(job["static_configs"][0]["targets"][0], format!("localhost:{DEFAULT_PORT}"));
}

/// `kubectl kustomize DIR` run in `top`: the objects `kubectl apply -k DIR` would send.
fn kubectl_kustomize(top: &Path, dir: &str) -> Vec<Value> {
    let out = program("kubectl").args(["kustomize", dir]).current_dir(top).output().expect("kubectl");
    assert!(out.status.success(), "kubectl kustomize {dir}: {}", String::from_utf8_lossy(&out.stderr));
    let mut objects: Vec<Value> = serde_saphyr::from_multiple(&String::from_utf8(out.stdout).unwrap()).unwrap();
    objects.retain(|o| !o.is_null());
    // Newer kustomize wraps a Secret's base64 at 76 columns, as base64(1) does. The API server's
    // decoder (Go's encoding/base64) skips line breaks; the schema's `byte` format does not.
    for secret in objects.iter_mut().filter(|o| o["kind"] == "Secret") {
        for value in secret["data"].as_object_mut().into_iter().flat_map(|d| d.values_mut()) {
            *value = value.as_str().unwrap().replace('\n', "").into();
        }
    }
    objects
}

/// What a client-side `kubectl apply` keeps of each object in its
/// `kubectl.kubernetes.io/last-applied-configuration` annotation: the object as JSON. Annotations
/// may hold 262,144 bytes in all, so a larger object cannot be applied that way.
fn assert_fits_the_apply_annotation(objects: &[Value]) {
    for o in objects {
        let size = serde_json::to_string(o).unwrap().len();
        let id = format!("{}/{}", o["kind"].as_str().unwrap(), o["metadata"]["name"].as_str().unwrap());
        assert!(size < 262_144, "{id} is {size} bytes as JSON: too large for `kubectl apply`");
    }
}

/// Where scripts/test installs the npm validators (`kubernetes-models` and
/// `@kubernetes-models/prometheus-operator`: their compiled schemas).
fn node_validators() -> PathBuf {
    std::env::var_os("K8S_VALIDATE_DIR").map(PathBuf::from).unwrap_or_else(|| repo("target/k8s-validate"))
}

const VALIDATE_MJS: &str = r#"
import { readFileSync } from "node:fs";
const objects = JSON.parse(readFileSync(0, "utf8"));
const packages = {
  "v1": "kubernetes-models/v1",
  "apps/v1": "kubernetes-models/apps/v1",
  "monitoring.coreos.com/v1": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1",
  "monitoring.coreos.com/v1alpha1": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1alpha1",
};
let failed = 0;
for (const o of objects) {
  const id = `${o.kind}/${o.metadata?.name}`;
  try {
    const base = packages[o.apiVersion];
    if (!base) throw new Error(`no schema for apiVersion ${o.apiVersion}`);
    const module = await import(`${base}/${o.kind}`);
    new module[o.kind](o).validate();
    console.log(`${id}: valid`);
  } catch (e) {
    console.log(`${id}: ${e.message}`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);
"#;

/// Schema validation of every object: all kinds against the Kubernetes and Prometheus Operator
/// schemas (npm `kubernetes-models`), and the built-in kinds also strictly, unknown fields being
/// errors (PyPI `kubernetes-validate --strict`).
fn validate(objects: &[Value]) -> Result<String, String> {
    let dir = node_validators();
    assert!(
        dir.join("node_modules/@kubernetes-models/prometheus-operator").is_dir(),
        "{}: no validators (scripts/test installs them)",
        dir.display()
    );
    // Beside node_modules, for the imports; one name per test process, which may run side by side.
    let script = dir.join(format!("validate-{}.mjs", std::process::id()));
    std::fs::write(&script, VALIDATE_MJS).unwrap();
    let mut node = program("node")
        .arg(&script)
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node (Debian `nodejs`; scripts/test installs it)");
    use std::io::Write;
    node.stdin.take().unwrap().write_all(serde_json::to_string(objects).unwrap().as_bytes()).unwrap();
    let out = node.wait_with_output().unwrap();
    let _ = std::fs::remove_file(&script);
    let mut said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let mut ok = out.status.success();

    let files = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (i, o) in objects.iter().enumerate().filter(|(_, o)| matches!(o["apiVersion"].as_str(), Some("v1" | "apps/v1")))
    {
        let path = files.path().join(format!("{i}.json"));
        std::fs::write(&path, o.to_string()).unwrap();
        paths.push(path);
    }
    // On PATH, or in the virtualenv scripts/test makes when it is not.
    let venv = dir.join("venv/bin/kubernetes-validate");
    let tool = if venv.is_file() { venv } else { PathBuf::from("kubernetes-validate") };
    let (strict_ok, strict) = run(Command::new(tool).args(["--strict", "--no-warn"]).args(&paths));
    ok &= strict_ok;
    said.push_str(&strict);
    if ok { Ok(said) } else { Err(said) }
}

#[test]
fn kubectl_kustomize_builds_the_shipped_manifests_from_a_clean_checkout() {
    // docs/deploy.md's command at the top of a fresh clone: the committed generated/ is the output for
    // the committed spec (tests/it/generated.rs), so nothing needs generating first.
    let top = checkout();
    let objects = kubectl_kustomize(top.path(), "deploy/kubernetes");
    assert_fits_the_apply_annotation(&objects);
    let said = validate(&objects).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(said.matches(": valid").count(), objects.len(), "{said}");

    // Exactly the spec's rules and dashboards: one PrometheusRule per file `generate` writes
    // for it, one ConfigMap per dashboard.
    let spec = top.path().join("deploy/kubernetes/spec.yaml");
    let model = Model::load(&spec).unwrap_or_else(|e| panic!("{e}"));
    let files = generate::files_as(&model, RuleFormat::PrometheusOperator).unwrap();
    let named = |suffix: &str| files.iter().filter(|(p, _)| p.to_string_lossy().ends_with(suffix)).count();
    let of_kind = |kind: &str| objects.iter().filter(|o| o["kind"] == kind).collect::<Vec<_>>();
    assert_eq!(of_kind("PrometheusRule").len(), named(".prometheusrule.yaml"));
    assert!(of_kind("PrometheusRule").iter().any(|o| o["metadata"]["name"] == "integration-exporter-token-refresh"));
    assert_eq!(of_kind("AlertmanagerConfig").len(), 1);
    let mut boards: Vec<String> = files
        .iter()
        .filter(|(p, _)| p.starts_with("dashboards"))
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().to_string())
        .collect();
    boards.sort();
    let mut shipped: Vec<String> = Vec::new();
    for map in of_kind("ConfigMap").into_iter().filter(|o| o["metadata"]["labels"]["grafana_dashboard"] == "1") {
        let data = map["data"].as_object().unwrap();
        assert_eq!(data.len(), 1, "one dashboard per ConfigMap: {:?}", data.keys());
        shipped.extend(data.keys().cloned());
    }
    shipped.sort();
    assert_eq!(shipped, boards);
    for kind in ["Deployment", "Service", "ServiceMonitor", "ConfigMap", "Secret"] {
        assert!(!of_kind(kind).is_empty(), "no {kind}");
    }

    // The validators catch a broken object.
    let mut broken = objects.clone();
    let deployment = broken.iter_mut().find(|o| o["kind"] == "Deployment").unwrap();
    deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRot"] = true.into();
    let service = broken.iter_mut().find(|o| o["kind"] == "Service").unwrap();
    service["spec"]["ports"][0]["port"] = "metrics".into();
    let monitor = broken.iter_mut().find(|o| o["kind"] == "ServiceMonitor").unwrap();
    monitor["spec"]["endpoints"][0]["port"] = 29187.into();
    let routing = broken.iter_mut().find(|o| o["kind"] == "AlertmanagerConfig").unwrap();
    routing["spec"]["inhibitRules"][0]["sourceMatch"][0]["matchType"] = "==".into();
    let said = validate(&broken).expect_err("broken objects pass");
    assert!(said.contains("Service/integration-exporter: data/spec/ports/0/port must be integer"), "{said}");
    assert!(said.contains("('runAsNonRot' was unexpected)"), "{said}");
    assert!(said.contains("ServiceMonitor/integration-exporter: data/spec/endpoints/0/port"), "{said}");
    assert!(
        said.contains("AlertmanagerConfig/integration-exporter: data/spec/inhibitRules/0/sourceMatch/0/matchType"),
        "{said}"
    );

    // What the schemas do not say: a PodSecurity "restricted" pod, wired to the objects beside it.
    let get = |kind: &str, name: &str| {
        objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{kind}/{name}"))
    };
    let deployment = get("Deployment", "integration-exporter");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    for container in pod["containers"].as_array().unwrap() {
        let security = &container["securityContext"];
        assert_eq!(security["allowPrivilegeEscalation"], false);
        assert_eq!(security["capabilities"]["drop"], serde_json::json!(["ALL"]));
        assert_eq!(security["readOnlyRootFilesystem"], true);
        assert_eq!(container["ports"][0]["containerPort"], DEFAULT_PORT);
    }
    let volumes = pod["volumes"].as_array().unwrap();
    for volume in volumes {
        if let Some(name) = volume["configMap"]["name"].as_str() {
            get("ConfigMap", name);
        }
        if let Some(name) = volume["secret"]["secretName"].as_str() {
            get("Secret", name);
        }
        // The volume types "restricted" allows (no hostPath: a pod that cannot be admitted).
        let kinds: Vec<&String> = volume.as_object().unwrap().keys().filter(|k| *k != "name").collect();
        assert!(
            kinds.iter().all(|k| ["configMap", "secret", "emptyDir", "persistentVolumeClaim"].contains(&k.as_str())),
            "{volume}"
        );
    }
    // Every file the spec reads is inside a read-only mount of the application's log volume, and
    // the state directory is writable: a pack whose log is not there pages "log unreadable".
    let mounts = pod["containers"][0]["volumeMounts"].as_array().unwrap();
    let mount_of = |path: &Path| {
        mounts
            .iter()
            .filter(|m| path.starts_with(m["mountPath"].as_str().unwrap()))
            .max_by_key(|m| m["mountPath"].as_str().unwrap().len())
            .unwrap_or_else(|| panic!("{} is in no volume of the Deployment", path.display()))
    };
    assert!(!model.logs.is_empty(), "the shipped spec reads no log: nothing to check");
    for (id, log) in &model.logs {
        for path in &log.paths {
            let mount = mount_of(Path::new(path));
            assert_eq!(mount["readOnly"], true, "log {id} ({path}): {mount}");
            let volume = volumes.iter().find(|v| v["name"] == mount["name"]).unwrap();
            assert_eq!(volume["persistentVolumeClaim"]["readOnly"], true, "log {id} ({path}): {volume}");
        }
    }
    let state = mount_of(model.config.state_dir.as_deref().expect("the shipped spec sets state_dir"));
    assert_ne!(state["readOnly"], true, "{state}");

    let service = get("Service", "integration-exporter");
    let monitor = get("ServiceMonitor", "integration-exporter");
    for (key, value) in monitor["spec"]["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(&service["metadata"]["labels"][key], value);
    }
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], service["spec"]["ports"][0]["name"]);
    // The example spec loads.
    let (ok, text) = run(Command::new(exporter_bin()).args(["check", "--config"]).arg(&spec));
    assert!(ok, "{text}");

    // Every built-in pack (`generate` without a spec) into the directory docs/deploy.md names: one
    // dashboard alone was 311 KB with all packs in one ConfigMap; each object still fits.
    exporter_in(top.path(), &["generate", "--format", "prometheus-operator", "--out", "deploy/kubernetes/generated"]);
    let every = kubectl_kustomize(top.path(), "deploy/kubernetes");
    assert!(every.len() > objects.len());
    assert_fits_the_apply_annotation(&every);
    let said = validate(&every).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(said.matches(": valid").count(), every.len(), "{said}");
}
