//! An incident replayed through the generated rules: what the exporter exported minute by minute
//! (from a real database, from real log files) becomes promtool's input series, and promtool,
//! evaluating the rules `generate` writes for the pack, says which alerts fire when. A test then
//! asserts the right page, and only that page.

use integration_exporter::spec::Model;
use std::collections::{BTreeMap, BTreeSet};

use super::fidelity::{Exported, collect, drain, log_runner};

/// (alertname, severity)
pub type Firing = BTreeSet<(String, String)>;

/// The exporter's series minute by minute, as Prometheus would have scraped them.
#[derive(Default)]
pub struct Timeline {
    minutes: Vec<Exported>,
    /// Subtracted from `*_timestamp_seconds` values: promtool's clock starts at 0, so a
    /// timestamp from a line written at `epoch` must read 0 there for `time() - ts` to be its age.
    epoch: f64,
    /// Whether Prometheus scraped the exporter (`up` 1): the condition of the `absent` alerts of
    /// log signals, which a timeline of database values alone leaves out.
    up: bool,
}

impl Timeline {
    /// A timeline whose minute 0 is the unix time `epoch` (for timestamps read from lines).
    pub fn starting_at(epoch: f64) -> Timeline {
        Timeline { minutes: Vec::new(), epoch, up: true }
    }

    /// A timeline of database values alone: the log sources' `absent` alerts stay out of it.
    pub fn of_database() -> Timeline {
        Timeline::default()
    }

    /// The next minute's scrape.
    pub fn push(&mut self, exported: Exported) {
        self.minutes.push(exported);
    }

    /// The same scrape for `n` minutes (a database that does not change).
    pub fn hold(&mut self, exported: &Exported, n: usize) {
        for _ in 0..n {
            self.minutes.push(exported.clone());
        }
    }

    /// promtool's input series: every series seen in any minute, `_` where it was not served,
    /// with the scrape target's labels the generated rules select.
    fn input_series(&self, model: &Model) -> Vec<serde_json::Value> {
        let mut target = model.config.generate.matchers.clone();
        target.insert("job".into(), model.config.generate.job.clone());
        target.insert("instance".into(), "exporter:9187".into());
        let mut series: BTreeMap<String, Vec<Option<f64>>> = BTreeMap::new();
        for (minute, exported) in self.minutes.iter().enumerate() {
            for (metric, samples) in exported {
                for (labels, value) in samples {
                    let mut all = target.clone();
                    all.extend(labels.iter().cloned());
                    let inner: Vec<String> = all
                        .iter()
                        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
                        .collect();
                    let value = if metric.ends_with("_timestamp_seconds") { value - self.epoch } else { *value };
                    let values = series.entry(format!("{metric}{{{}}}", inner.join(", "))).or_default();
                    values.resize(minute, None);
                    values.push(Some(value));
                }
            }
        }
        if self.up {
            let up: Vec<String> = target.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            series.insert(format!("up{{{}}}", up.join(", ")), vec![Some(1.0); self.minutes.len()]);
        }
        series
            .into_iter()
            .map(|(name, mut values)| {
                values.resize(self.minutes.len(), None);
                let text: Vec<String> = values.iter().map(|v| v.map_or("_".to_string(), |v| format!("{v}"))).collect();
                serde_json::json!({"series": name, "values": text.join(" ")})
            })
            .collect()
    }

    /// The alerts of `pack`'s generated rules firing at each of `minutes`.
    pub fn firing(&self, model: &Model, pack: &str, minutes: &[usize]) -> Vec<Firing> {
        let dir = tempfile::tempdir().expect("tempdir");
        integration_exporter::generate::write_all(model, dir.path()).expect("generate");
        let rules = dir.path().join("alerts").join(format!("{}.rules.yml", pack.replace('_', "-")));
        assert!(rules.exists(), "{} was not generated", rules.display());
        let expr = r#"group by (alertname, severity) (ALERTS{alertstate="firing"})"#;
        let cases: Vec<serde_json::Value> = minutes
            .iter()
            .map(|m| serde_json::json!({"expr": expr, "eval_time": format!("{m}m"), "exp_samples": []}))
            .collect();
        let doc = serde_json::json!({
            "rule_files": [rules.display().to_string()],
            "evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": self.input_series(model), "promql_expr_test": cases}],
        });
        let test = dir.path().join("replay.tests.yml");
        std::fs::write(&test, serde_json::to_string(&doc).unwrap()).unwrap();
        let out = super::program("promtool").arg("test").arg("rules").arg(&test).output().expect("promtool");
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let got = parse_got(&said);
        assert!(out.status.success() || !got.is_empty(), "promtool failed:\n{said}");
        minutes.iter().map(|m| got.get(&(*m as u64 * 60)).cloned().unwrap_or_default()).collect()
    }
}

/// promtool prints each failed expectation as `time: <Go duration>,` then `got: {labels} value, ...`:
/// the alerts firing at that time, by the time in seconds.
fn parse_got(said: &str) -> BTreeMap<u64, Firing> {
    let label = regex::Regex::new(r#"alertname="([^"]*)", severity="([^"]*)""#).unwrap();
    let mut out = BTreeMap::new();
    let mut at = None;
    for line in said.lines() {
        if let Some(rest) = line.split("time: ").nth(1) {
            at = Some(go_duration(rest.trim_end_matches(',').trim()));
        } else if let (Some(t), Some(got)) = (at, line.trim().strip_prefix("got:")) {
            let firing: Firing = label.captures_iter(got).map(|c| (c[1].to_string(), c[2].to_string())).collect();
            out.insert(t, firing);
        }
    }
    out
}

/// `1h30m`, `10m`, `0s` in seconds.
fn go_duration(text: &str) -> u64 {
    let mut total = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
        } else {
            let n: u64 = number.parse().unwrap_or(0);
            number.clear();
            total += n * match c {
                'h' => 3600,
                'm' => 60,
                _ => 1,
            };
        }
    }
    total
}

/// `(alertname, severity)` pairs, for comparing with [`Timeline::firing`].
pub fn alerts(pairs: &[(&str, &str)]) -> Firing {
    pairs.iter().map(|(a, s)| (a.to_string(), s.to_string())).collect()
}

/// Two scrapes as one: a log signal's series beside a database signal's.
pub fn merged(a: &Exported, b: &Exported) -> Exported {
    let mut out = a.clone();
    for (metric, samples) in b {
        out.entry(metric.clone()).or_default().extend(samples.clone());
    }
    out
}

/// A log written minute by minute from `epoch` (unix seconds) on: each minute's `lines` appended to
/// `path`, read by the exporter's runner of log source `log`, and scraped at the minute's end as
/// Prometheus would have, `also` (database values) served beside them.
pub fn replay_log(
    model: &Model,
    log: &str,
    path: &std::path::Path,
    epoch: u64,
    minutes: u64,
    also: &Exported,
    lines: impl Fn(u64) -> Vec<String>,
) -> Timeline {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("log file");
    let mut runner = log_runner(model, log);
    let mut timeline = Timeline::starting_at(epoch as f64);
    for minute in 0..minutes {
        for line in lines(minute) {
            writeln!(file, "{line}").unwrap();
        }
        file.flush().unwrap();
        drain(&mut runner);
        let mut exported = Exported::new();
        collect(&mut exported, runner.families_at((epoch + minute * 60 + 59) as f64));
        timeline.push(merged(&exported, also));
    }
    timeline
}
