//! Content negotiation of `/metrics` on the binary: q-values decide, names are case-insensitive.
//! A client that refuses gzip (`q=0`) gets plain bytes it can read, and one that weighs the text
//! format above OpenMetrics gets the text format.

use std::io::Read;

use crate::support;
use support::exporter::Exporter;
use support::http::{Response, request};

fn get(port: u16, headers: &[(&str, &str)]) -> Response {
    request(port, "GET", "/metrics", headers).unwrap_or_else(|| panic!("no answer to GET /metrics with {headers:?}"))
}

fn is_open_metrics(r: &Response) -> bool {
    r.header("content-type").is_some_and(|t| t.starts_with("application/openmetrics-text"))
}

fn gunzip(body: &[u8]) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(body).read_to_string(&mut text).expect("a gzip body");
    text
}

#[test]
fn q_values_and_case_decide_format_and_compression() {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let spec = dir.path().join("spec.yaml");
    let paths = format!("\"{}/app.log\"", dir.path().display());
    std::fs::write(&spec, format!("listen: 127.0.0.1:{port}\n{}", support::ticks_spec(&paths))).unwrap();
    let exporter = Exporter::serve(&spec, port).start();
    exporter.wait_for("the log source's gauge", |m| m.get("integration_exporter_log_files{log=\"app\"}").is_some());

    // Refused gzip: not compressed, whatever the spelling of the refusal.
    for refusal in ["gzip;q=0", "gzip; q=0.0", "GZIP;Q=0", "deflate, gzip;q=0"] {
        let r = get(port, &[("Accept-Encoding", refusal)]);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-encoding"), None, "Accept-Encoding: {refusal}");
        assert!(r.text().contains("integration_exporter_log_files{log=\"app\"}"), "{refusal}: {r:?}");
    }
    // Accepted gzip in any case, and with a weight.
    for acceptance in ["gzip", "GZIP", "Gzip", "br, gzip;q=0.5", "x-gzip"] {
        let r = get(port, &[("Accept-Encoding", acceptance)]);
        assert_eq!(r.header("content-encoding"), Some("gzip"), "Accept-Encoding: {acceptance}");
        assert!(gunzip(&r.body).contains("integration_exporter_log_files"), "{acceptance}");
    }

    // The text format weighed above OpenMetrics wins; OpenMetrics refused is not sent.
    for accept in [
        "application/openmetrics-text;q=0.1, text/plain;q=0.9",
        "application/openmetrics-text;version=1.0.0;q=0",
        "application/openmetrics-text;q=0.5, */*",
        "*/*",
    ] {
        let r = get(port, &[("Accept", accept)]);
        assert!(!is_open_metrics(&r) && !r.text().contains("# EOF"), "Accept: {accept}: {r:?}");
    }
    // OpenMetrics when weighed first, in any case, and as Prometheus asks for it.
    for accept in [
        "APPLICATION/OPENMETRICS-TEXT; version=1.0.0",
        "application/openmetrics-text;q=0.9, text/plain;q=0.1",
        "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    ] {
        let r = get(port, &[("Accept", accept)]);
        assert!(is_open_metrics(&r) && r.text().ends_with("# EOF\n"), "Accept: {accept}: {r:?}");
    }
}
