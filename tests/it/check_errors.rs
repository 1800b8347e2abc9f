//! `check` and `serve` on specs a person got wrong: each is refused at load with `file:line:col` and
//! words a person can act on, never the YAML library's own (its API names, debug dumps), and
//! `serve` stops with the same message and status 2 instead of failing later with a bare OS error.

use crate::support;

use std::path::Path;
use std::process::Command;

use support::exporter::Exporter;
use support::{exporter_bin, free_port};

/// `check`'s exit code and everything it printed.
fn check(spec: &Path) -> (Option<i32>, String) {
    let out = Command::new(exporter_bin()).args(["check", "--config"]).arg(spec).output().expect("run check");
    (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

const LIBRARY_WORDS: &[&str] = &["DuplicateKeyPolicy", "Options", "budget breached", "Nodes {", "chrono", "serde"];

#[test]
fn wrong_specs_are_refused_at_their_place_in_our_words() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = format!("logs:\n  app:\n    paths: [{}]\n", d.join("app.log").display());
    let many_paths = format!("logs:\n  app:\n    paths: [{}]\n", vec!["a"; 250_001].join(","));
    // (spec, line:col, what the message says)
    let cases: Vec<(String, &str, &str)> = vec![
        (format!("{log}listen: garbage\n"), "4:9", "has no port"),
        ("listen: 127.0.0.1:99999\n".into(), "1:9", "port 99999 is out of range"),
        ("listen: '[::1]:80'\nlisten: 127.0.0.1:1\n".into(), "2:1", "`listen` is given twice"),
        (format!("{log}    timestamp:\n      format: '%Q%Y'\n"), "5:16", "`%Q` is not a strftime specifier"),
        (many_paths, "3:", "more than 250000 values"),
    ];
    for (i, (text, at, says)) in cases.iter().enumerate() {
        let spec = d.join(format!("spec-{i}.yaml"));
        std::fs::write(&spec, text).unwrap();
        let (code, output) = check(&spec);
        let first = output.lines().next().unwrap_or_default();
        assert_eq!(code, Some(2), "{first}");
        assert!(first.starts_with(&format!("{}:{at}", spec.display())), "case {i}: not at {at}: {first}");
        assert!(first.contains(says), "case {i}: {first}");
        for word in LIBRARY_WORDS {
            assert!(!output.contains(word), "case {i}: library text `{word}`: {output}");
        }
        // `serve` refuses the same spec the same way, at once, before listening.
        let (status, served) = Exporter::serve(&spec, free_port()).exit();
        assert_eq!(status.code(), Some(2), "case {i}: {served}");
        assert!(served.contains(&format!("{}:{at}", spec.display())) && served.contains(says), "case {i}: {served}");
    }

    // The web config's YAML speaks the same words.
    std::fs::write(d.join("web.yml"), "basic_auth_users:\n  a: x\n  a: y\n").unwrap();
    let spec = d.join("with-web.yaml");
    std::fs::write(&spec, "web_config_file: web.yml\n").unwrap();
    let (code, output) = check(&spec);
    assert_eq!(code, Some(2), "{output}");
    assert!(
        output.contains(&format!("{}:3:3", d.join("web.yml").display())) && output.contains("`a` is given twice"),
        "{output}"
    );
    assert!(!LIBRARY_WORDS.iter().any(|w| output.contains(w)), "{output}");
}

#[test]
fn a_listen_address_that_cannot_be_bound_names_where_it_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let spec = dir.path().join("spec.yaml");
    // The key's line and column, as every other spec error gives them.
    let at = format!("`listen` at {}:3:1", spec.display());
    std::fs::write(&spec, format!("# listen: where to serve\n\nlisten: 127.0.0.1:{port}\n")).unwrap();
    // Taken by someone else: a well-formed address the exporter still cannot use.
    let _holder = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let (status, output) = Exporter::serve(&spec, port).exit();
    assert_eq!(status.code(), Some(1), "{output}");
    assert!(output.contains(&at), "{output}");
    // An address this host does not have (TEST-NET-1, never assigned).
    std::fs::write(&spec, "# listen: where to serve\n\nlisten: 192.0.2.1:29187\n").unwrap();
    let (status, output) = Exporter::serve(&spec, port).exit();
    assert_eq!(status.code(), Some(1), "{output}");
    assert!(output.contains(&at) && output.contains("192.0.2.1:29187"), "{output}");
    std::fs::write(&spec, format!("listen: 127.0.0.1:{port}\n")).unwrap();
    let (status, output) =
        Exporter::serve(&spec, port).args(["--web.listen-address", &format!("127.0.0.1:{port}")]).exit();
    assert_eq!(status.code(), Some(1), "{output}");
    assert!(output.contains("--web.listen-address"), "{output}");
    let (status, output) = Exporter::serve(&spec, port).args(["--web.listen-address", "127.0.0.1:99999"]).exit();
    assert_eq!(status.code(), Some(2), "{output}");
    assert!(output.contains("port 99999 is out of range"), "{output}");
}
