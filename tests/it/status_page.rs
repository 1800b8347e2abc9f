//! The live status page at `/`, in a real headless browser (Debian's `chromium`), on the
//! scenario library's system (every pack at its defaults, `tests/scenarios/healthy.yaml`) put
//! into the token-refresh runbook's "worker crashed" incident: every value the page shows for a
//! metric series is the value `/metrics` serves for it, every check is there with the verdict
//! `/status.json` gives, it reads without JavaScript and refreshes itself with it. A screenshot
//! is kept under the target directory (docs/testing.md). With a source down, a second load
//! shows its health and its checks unknown, as `/status.json`; the markup is the accessible one
//! the page claims. Behind the web config's TLS and basic auth, as `/metrics`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use integration_exporter::spec::Model;
use serde_json::Value;

use crate::scenarios::{Change, World, healthy, scenarios_of};
use crate::support;
use support::http::get;

/// A browser run ends within this.
const WITHIN: Duration = Duration::from_secs(90);

/// `chromium --headless` with its own profile, run to its end: its stdout.
fn chromium(args: &[&str], url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = profile.path().join("stdout");
    let mut child = support::program("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"])
        .arg(format!("--user-data-dir={}", profile.path().join("profile").display()))
        .args(args)
        .arg(url)
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium");
    let status = support::wait::until("chromium to finish", WITHIN, || child.try_wait().unwrap(), |s| *s);
    assert!(status.success(), "chromium {args:?} {url}: {status}");
    String::from_utf8_lossy(&std::fs::read(&out).unwrap()).into_owned()
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"").replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

/// `(series, reading, shown value)` of every value the page ties to a metric series.
fn readings(dom: &str) -> Vec<(String, f64, f64)> {
    let data = regex::Regex::new(r#"<data value="([^"]*)" data-series="([^"]*)" data-reading="([^"]*)">"#).unwrap();
    data.captures_iter(dom).map(|c| (unescape(&c[2]), c[3].parse().unwrap(), c[1].parse().unwrap())).collect()
}

/// `(signal, alert, severity) -> verdict` of every row.
fn rows(dom: &str) -> BTreeMap<(String, String, String), String> {
    let row = regex::Regex::new(
        r#"<tr class="row-\w+" data-signal="([^"]*)" data-alert="([^"]*)" data-severity="([^"]*)" data-verdict="(\w+)">"#,
    )
    .unwrap();
    row.captures_iter(dom).map(|c| ((c[1].into(), c[2].into(), c[3].into()), c[4].into())).collect()
}

fn screenshot_path() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_shows_what_metrics_serves_with_the_exporters_verdicts() {
    let healthy = healthy();
    let mut world = World::start(&healthy).await;
    world.minute();
    // The board may read the healthy rows before the incident's: its history starts with them.
    let healthy_expiring = world.exporter.metrics().get("integration_token_refresh_tokens_expiring");
    let scenario = scenarios_of("token-refresh").scenarios.into_iter().find(|s| s.name == "worker-crashed").unwrap();
    world.apply(&scenario.incident).await;
    let port = world.exporter.port;
    world.exporter.wait_for("the incident's rows read, and every endpoint answered", |m| {
        // The endpoints start answering a poll after the first: the page must not read a value
        // the scrape before it could not have had.
        let mut endpoints_up = m.series.iter().filter(|(s, _)| s.starts_with("integration_exporter_http_up{"));
        m.get("integration_token_refresh_tokens_expiring") == Some(21.0)
            && m.get("integration_exporter_query_success{signal=\"token_refresh.heartbeat_lock\"}") == Some(1.0)
            && endpoints_up.clone().count() > 0
            && endpoints_up.all(|(_, up)| *up == 1.0)
    });
    support::wait::until(
        "every source read once",
        Duration::from_secs(30),
        || get(port, "/ready"),
        |r| r.as_ref().filter(|r| r.status == 200).map(|_| ()),
    );

    let url = format!("http://127.0.0.1:{port}/");
    let before = world.exporter.metrics();
    let dom = chromium(&["--dump-dom"], &url);
    let after = world.exporter.metrics();

    // Every value tied to a series is the one /metrics serves (a timestamp an API answer moves
    // at each poll lies between the scrape before and the one after).
    let shown = readings(&dom);
    assert!(shown.len() > 20, "{} values tied to series:\n{dom}", shown.len());
    for (series, reading, value) in &shown {
        let (Some(b), Some(a)) = (before.get(series), after.get(series)) else {
            panic!("{series} = {reading} on the page is not in /metrics");
        };
        assert!((b.min(a)..=b.max(a)).contains(reading), "{series}: page {reading}, /metrics {b} then {a}");
        if !series.contains("_timestamp_seconds") {
            assert_eq!(reading, value, "{series}: a gauge's value is its reading");
        }
    }
    assert!(shown.iter().any(|(s, r, _)| s == "integration_token_refresh_tokens_expiring" && *r == 21.0));

    // Every check is a row, with the verdict /status.json gives; worst pack first.
    let model = Model::load(&world.dir.path().join("spec.yaml")).unwrap();
    let alerts: usize = model.enabled_signals().map(|s| s.signal.alerts.iter().filter(|a| a.enabled).count()).sum();
    let without = model.enabled_signals().filter(|s| !s.signal.alerts.iter().any(|a| a.enabled)).count();
    let page = rows(&dom);
    assert_eq!(page.len(), alerts + without, "{dom}");
    let json: Value = serde_json::from_str(&get(port, "/status.json").unwrap().text()).unwrap();
    let mut listed = BTreeMap::new();
    for pack in json["packs"].as_array().unwrap() {
        for row in pack["rows"].as_array().unwrap() {
            let key = (
                row["signal"].as_str().unwrap().to_string(),
                row["alert"].as_str().unwrap_or("").to_string(),
                row["severity"].as_str().unwrap_or("").to_string(),
            );
            listed.insert(key, row["verdict"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(page, listed);
    let verdict = |alert: &str| page.iter().find(|((_, a, _), _)| a == alert).map(|(_, v)| v.as_str());
    assert_eq!(verdict("IntegrationTokenRefreshTokensExpiring"), Some("critical"));
    assert_eq!(verdict("IntegrationTokenRefreshLockStuck"), Some("warning"));
    assert_eq!(json["packs"][0]["pack"], "token_refresh", "the worst pack first");
    assert_eq!(json["verdict"], "critical");
    let first = dom.find("data-pack=\"token_refresh\"").unwrap();
    assert!(dom[first..].find("row-critical") < dom[first..].find("row-ok"), "worst rows first");
    assert!(dom.contains("Next:</strong> Tokens are running out"), "the next step of a critical check");
    assert!(
        dom.contains("href=\"https://runbooks.example.com/token-refresh.md#2-token-refresh-heartbeat-not-running\""),
        "runbook links"
    );
    assert!(dom.contains("<svg class=\"spark\""), "sparklines");

    // Self-contained: nothing loaded from elsewhere.
    let raw = get(port, "/").unwrap().text();
    for outside in ["src=\"http", "href=\"//", "@import", "url(", "<link "] {
        assert!(!raw.contains(outside), "{outside} in the page");
    }

    // Without JavaScript the same rows are there (the server writes them all, no script builds
    // them); with it the page refetches itself.
    assert_eq!(rows(&raw), page, "rows as served, before any script");
    let live = chromium(&["--virtual-time-budget=40000", "--dump-dom"], &url);
    let refreshes = regex::Regex::new(r#"data-refreshes="(\d+)""#).unwrap();
    let n: u32 = refreshes.captures(&live).map_or(0, |c| c[1].parse().unwrap());
    assert!(n >= 1, "the page did not refresh itself: {}", &live[..live.len().min(600)]);
    assert_eq!(rows(&live).len(), page.len(), "a refresh keeps every row");

    // The board reads the state every 15 s: the sparklines fill, and a rise, which one reading
    // cannot judge, is judged over what was kept.
    let row = |doc: &Value, alert: &str| -> Option<Value> {
        doc["packs"]
            .as_array()?
            .iter()
            .flat_map(|p| p["rows"].as_array().into_iter().flatten())
            .find(|r| r["alert"] == alert)
            .cloned()
    };
    let (rise, expiring) = support::wait::until(
        "the page's readings over time",
        Duration::from_secs(75),
        || serde_json::from_str::<Value>(&get(port, "/status.json").map(|r| r.text()).unwrap_or_default()).ok(),
        |doc| {
            let doc = doc.as_ref()?;
            let rise = row(doc, "IntegrationCalendarSyncErrorCountRising")?;
            let expiring = row(doc, "IntegrationTokenRefreshTokensExpiring")?;
            let incident_readings = expiring["history"].as_array()?.iter().filter(|p| p[1] == 21.0).count();
            (rise["verdict"] == "ok" && incident_readings >= 3).then_some((rise, expiring))
        },
    );
    assert!(rise["why"].as_str().is_some_and(|w| w.contains("of the 1h window")), "{rise}");
    // Readings in order: the healthy rows' value (if the board read them), then the incident's.
    let history: Vec<f64> = expiring["history"].as_array().unwrap().iter().filter_map(|p| p[1].as_f64()).collect();
    let first = history.iter().position(|v| *v == 21.0).unwrap();
    assert!(
        history[..first].iter().all(|v| Some(*v) == healthy_expiring) && history[first..].iter().all(|v| *v == 21.0),
        "healthy {healthy_expiring:?}, then 21: {expiring}"
    );

    screenshot(&url, &screenshot_path());

    // The accessible markup the page claims, as the browser parsed it.
    accessible(&dom);

    // A source down: the queue's API answers 503. A second load shows its health (failing, and
    // the kind of error) and its checks unknown, as /status.json says.
    let mut api_down = Change::default();
    api_down.http.insert("/api/metrics/queue".to_string(), "503 {}".to_string());
    world.apply(&api_down).await;
    const QUEUE: &str = "microsoft_integration.job_queue";
    let down = support::wait::until(
        "the queue's API seen failing",
        Duration::from_secs(60),
        || serde_json::from_str::<Value>(&get(port, "/status.json").map(|r| r.text()).unwrap_or_default()).ok(),
        |doc| {
            let doc = doc.as_ref()?;
            let rows: Vec<Value> = doc["packs"]
                .as_array()?
                .iter()
                .flat_map(|p| p["rows"].as_array().into_iter().flatten())
                .filter(|r| r["signal"] == QUEUE)
                .cloned()
                .collect();
            (!rows.is_empty() && rows.iter().all(|r| r["source"]["ok"] == false && r["verdict"] == "unknown"))
                .then(|| doc.clone())
        },
    );
    let dom = chromium(&["--dump-dom"], &url);
    let json = get(port, "/status.json").unwrap().text();
    let json: Value = serde_json::from_str(&json).unwrap();
    let listed: BTreeMap<_, _> = json["packs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["rows"].as_array().unwrap())
        .map(|row| {
            let key = (
                row["signal"].as_str().unwrap().to_string(),
                row["alert"].as_str().unwrap_or("").to_string(),
                row["severity"].as_str().unwrap_or("").to_string(),
            );
            (key, row["verdict"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(rows(&dom), listed, "the page's verdicts are /status.json's");
    let queue_rows: Vec<&Value> = down["packs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["rows"].as_array().unwrap())
        .filter(|r| r["signal"] == QUEUE)
        .collect();
    let kind = queue_rows[0]["source"]["error_kind"].as_str().expect("an error kind").to_string();
    assert_eq!(kind, "status", "{:#}", queue_rows[0]);
    let cells = sources(&dom);
    let on_page: Vec<&(String, String, String)> = cells.iter().filter(|(signal, _, _)| signal == QUEUE).collect();
    assert_eq!(on_page.len(), queue_rows.len(), "{cells:?}");
    for (_, verdict, source) in on_page {
        assert_eq!(verdict, "unknown");
        assert!(source.contains(&format!("http failing: {kind}")), "{source}");
    }
    // The other sources are still read: every row of another signal whose source worked says ok.
    assert!(cells.iter().any(|(signal, _, source)| signal != QUEUE && source.starts_with("http ok")), "{cells:?}");
    accessible(&dom);
    screenshot(&url, &screenshot_path().with_file_name("status-page-source-down.png"));
}

/// Saves a screenshot of `url` at `shot`: a test artefact (docs/testing.md).
fn screenshot(url: &str, shot: &Path) {
    let _ = std::fs::remove_file(shot);
    chromium(&["--window-size=1400,1800", "--hide-scrollbars", &format!("--screenshot={}", shot.display())], url);
    let png = std::fs::read(shot).unwrap_or_default();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 20_000, "screenshot at {}", shot.display());
}

/// `(signal, verdict, source cell's text)` of every row.
fn sources(dom: &str) -> Vec<(String, String, String)> {
    let row = regex::Regex::new(
        r#"(?s)<tr class="row-\w+" data-signal="([^"]*)"[^>]*data-verdict="(\w+)">.*?<td class="src"><span class="\w+">([^<]*)</span>"#,
    )
    .unwrap();
    row.captures_iter(dom).map(|c| (c[1].to_string(), c[2].to_string(), unescape(&c[3]))).collect()
}

/// The accessible markup of the page: its language, a caption on every table, a scope on every
/// header cell, sparklines that are images with a name, and every verdict written as a word.
fn accessible(dom: &str) {
    assert!(dom.contains("<html lang=\"en\""), "the page's language");
    let tables = dom.matches("<table").count();
    assert!(tables >= 5, "a table per pack: {tables}");
    let captioned = regex::Regex::new(r"<table[^>]*><caption[^>]*>[^<]+</caption>").unwrap();
    assert_eq!(captioned.find_iter(dom).count(), tables, "a caption on every table");
    let th = regex::Regex::new(r"<th(\s[^>]*)?>").unwrap();
    let cells: Vec<&str> = th.find_iter(dom).map(|m| m.as_str()).collect();
    assert!(!cells.is_empty());
    for cell in &cells {
        assert!(cell.contains("scope=\"col\"") || cell.contains("scope=\"row\""), "{cell}");
    }
    let svg = regex::Regex::new(r#"<svg class="spark"[^>]*>"#).unwrap();
    let named = regex::Regex::new(r#"role="img".*aria-label="[^"]+""#).unwrap();
    let sparks: Vec<&str> = svg.find_iter(dom).map(|m| m.as_str()).collect();
    assert!(!sparks.is_empty(), "sparklines");
    for spark in sparks {
        assert!(named.is_match(spark), "a sparkline without a name: {spark}");
    }
    // A verdict's badge says it in words: colour alone is not read by everyone.
    let badge = regex::Regex::new(r#"<span class="badge (\w+)">([^<]*)</span>"#).unwrap();
    let badges: Vec<(String, String)> =
        badge.captures_iter(dom).map(|c| (c[1].to_string(), c[2].to_string())).collect();
    assert!(badges.len() > 20, "{badges:?}");
    for (class, text) in &badges {
        // A row's or a pack's verdict, or the summary's count of them (`1 critical`).
        let word = text.rsplit(' ').next().unwrap_or_default();
        assert_eq!(class, word, "a verdict written as a word: {text}");
        assert!(["ok", "warning", "critical", "unknown"].contains(&word), "{text}");
    }
}

#[test]
fn the_page_and_its_data_are_behind_the_same_tls_and_basic_auth_as_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let openssl = support::program("openssl")
        .current_dir(d)
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
        .args(["-keyout", "server.key", "-out", "server.crt", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .output()
        .unwrap();
    assert!(openssl.status.success(), "{}", String::from_utf8_lossy(&openssl.stderr));
    let hash = bcrypt::hash_with_result("s3cret", 4).unwrap().format_for_version(bcrypt::Version::TwoY);
    std::fs::write(
        d.join("web-config.yml"),
        format!("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  alice: '{hash}'\n"),
    )
    .unwrap();
    std::fs::write(d.join("app.log"), "tick\n").unwrap();
    let port = support::free_port();
    let spec = d.join("spec.yaml");
    let log = format!("{}/app.log", d.display());
    std::fs::write(
        &spec,
        format!("listen: 127.0.0.1:{port}\nweb_config_file: web-config.yml\n{}", support::ticks_spec(&log)),
    )
    .unwrap();
    let _exporter = support::exporter::Exporter::serve(&spec, port).start();

    let curl = |path: &str, user: Option<&str>| -> (u16, String) {
        let mut c = support::program("curl");
        c.args(["-sk", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}"]);
        if let Some(u) = user {
            c.args(["-u", u]);
        }
        let out = c.arg(format!("https://127.0.0.1:{port}{path}")).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.parse().unwrap_or(0), body.to_string())
    };
    for path in ["/", "/status.json", "/metrics"] {
        for user in [None, Some("alice:wrong")] {
            let (code, body) = curl(path, user);
            assert_eq!(code, 401, "{path} {user:?}");
            assert!(!body.contains("app.ticks") && !body.contains("app_ticks_total"), "{path}: {body}");
        }
        let (code, body) = curl(path, Some("alice:s3cret"));
        assert_eq!(code, 200, "{path}");
        assert!(body.contains("app.ticks") || body.contains("app_ticks_total"), "{path}: {body}");
    }
}
