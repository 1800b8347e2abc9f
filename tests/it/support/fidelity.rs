//! What every pack's fidelity tests share: run a model's SQL signals and log rules the way the
//! exporter does, and read the runbook's own numbers (SQL scalars, `grep -c`) to compare.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use integration_exporter::sources::logs::LogRunner;
use integration_exporter::sources::sql::{pool, rows_to_families, run_query};
use integration_exporter::spec::{Model, Source, SourceText};
use integration_exporter::state::{Family, SampleValue};

/// Exported samples by metric name, then label set.
pub type Exported = BTreeMap<String, BTreeMap<Vec<(String, String)>, f64>>;

pub fn model(text: &str) -> Model {
    Model::from_text(&SourceText { name: "test.yaml".into(), text: text.into() }).unwrap_or_else(|e| panic!("{e}"))
}

/// Every SQL signal of the model, run once as the exporter runs it.
pub async fn export_sql(url: &str, model: &Model) -> Exported {
    let pool = pool(integration_exporter::sources::sql::dsn::parse(url).expect("url"), 2, Duration::from_secs(5));
    let mut out = Exported::new();
    for signal in model.enabled_signals() {
        let Source::Sql(sql) = &signal.signal.source else { continue };
        let rows = run_query(&pool, &sql.query, Duration::from_secs(5))
            .await
            .unwrap_or_else(|e| panic!("{}: {e:?}", signal.signal.id));
        assert!(!rows.truncated, "{}: more rows than the series cap", signal.signal.id);
        collect(&mut out, rows_to_families(signal, &rows.rows).expect("families"));
    }
    out
}

pub fn collect(out: &mut Exported, families: Vec<Family>) {
    for f in families {
        let samples = out.entry(f.name.clone()).or_default();
        for s in f.samples {
            if let SampleValue::Scalar(v) = s.value {
                samples.insert(s.label_pairs().into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), v);
            }
        }
    }
}

pub fn value(exported: &Exported, metric: &str, labels: &[(&str, &str)]) -> f64 {
    let key: Vec<(String, String)> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    *exported
        .get(metric)
        .and_then(|m| m.get(&key))
        .unwrap_or_else(|| panic!("{metric} {labels:?} not exported: {exported:#?}"))
}

/// The log runner of one log source of the model, counting the lines already in its files as
/// the runbook's greps do (`start_at: beginning`).
pub fn log_runner(model: &Model, id: &str) -> LogRunner {
    let mut log = model.logs[id].clone();
    log.start_at = Some(tailer::StartAt::Beginning);
    LogRunner::new(model, id, &log).expect("runner")
}

/// Polls until nothing new arrives for a few rounds.
pub fn drain(runner: &mut LogRunner) {
    let mut idle = 0;
    while idle < 3 {
        if runner.poll() {
            idle = 0
        } else {
            idle += 1
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn exported_logs(runner: &LogRunner) -> Exported {
    let mut out = Exported::new();
    collect(&mut out, runner.families());
    out
}

/// `grep -c PATTERN FILE...` as the runbook runs it (basic regex, case-sensitive).
pub fn grep_count(pattern: &str, files: &[&Path]) -> f64 {
    files
        .iter()
        .map(|file| {
            let out = super::program("grep").arg("-c").arg(pattern).arg(file).output().expect("grep");
            String::from_utf8_lossy(&out.stdout).trim().parse::<f64>().unwrap_or(0.0)
        })
        .sum()
}
