//! A generated query PromQL's parser refuses stops `generate` with an error naming what it was
//! for (the alert, recording rule or panel, its signal and pack) and the query with the parser's
//! reason; it never panics. The spec's checks keep such pieces out of a loaded model, so these
//! models are a loaded one with a piece put in afterwards, as a builder bug would make it.

use integration_exporter::generate::error::{Item, Subject};
use integration_exporter::generate::{self, GenerateError, source_health};
use integration_exporter::spec::{Condition, Model, Panel, PanelKind, PanelQuery, Selector};

/// Not a label name: a selector holding it is no PromQL.
const BAD_LABEL: &str = "not a label";

fn model() -> Model {
    Model::builtin_defaults()
}

/// `generate`'s files for `model`, as the error it must stop with.
fn refused(model: &Model) -> GenerateError {
    match generate::outputs(model) {
        Ok(files) => panic!("generated {} files from a model with a broken query", files.len()),
        Err(e) => e,
    }
}

fn query_error(e: GenerateError) -> (Subject, String) {
    let text = e.to_string();
    match e {
        GenerateError::Query { subject, source } => {
            assert!(text.contains(&source.query), "{text}: does not quote the query");
            assert!(!source.reason.is_empty(), "{text}: no reason");
            (*subject, text)
        }
        other => panic!("not a query error: {other}"),
    }
}

#[test]
fn an_alert_whose_expression_does_not_parse_is_an_error_naming_it() {
    let mut model = model();
    let signal = model.signals.iter_mut().find(|s| s.signal.enabled && !s.signal.alerts.is_empty()).unwrap();
    let (pack, id) = (signal.pack.clone(), signal.signal.id.clone());
    let mut alert = signal.signal.alerts[0].clone();
    let metric = signal.signal.metrics[0].name.clone();
    alert.name = "CraftedSeriesMissing".into();
    // `absent` draws no line on the panel: only the rule's expression holds the selector.
    alert.condition =
        Condition::Absent(Selector { metric, matchers: [(BAD_LABEL.to_string(), "x".to_string())].into() });
    signal.signal.alerts.push(alert);

    let (subject, text) = query_error(refused(&model));
    assert_eq!(subject, Subject::new(pack.as_deref(), Some(&id), Item::Alert("CraftedSeriesMissing".into())), "{text}");
    assert!(text.contains("alert `CraftedSeriesMissing`") && text.contains(&format!("signal `{id}`")), "{text}");
}

#[test]
fn a_panel_whose_query_does_not_parse_is_an_error_naming_it() {
    let mut model = model();
    let signal = model.signals.iter_mut().find(|s| s.signal.enabled).unwrap();
    let (pack, id, title) = (signal.pack.clone(), signal.signal.id.clone(), signal.signal.title.clone());
    signal.signal.panel = Some(Panel {
        kind: PanelKind::Timeseries,
        unit: "short".into(),
        queries: vec![PanelQuery { expr: "sum(rate(".into(), legend: None }],
    });

    let (subject, text) = query_error(refused(&model));
    assert_eq!(subject, Subject::new(pack.as_deref(), Some(&id), Item::Panel(title.clone())), "{text}");
    assert!(text.contains("sum(rate("), "{text}");
}

#[test]
fn an_slo_whose_ratio_does_not_parse_is_an_error_naming_its_record() {
    let mut model = model();
    let signal = model.signals.iter_mut().find(|s| s.signal.enabled && s.signal.slo.is_some()).unwrap();
    let (pack, id) = (signal.pack.clone(), signal.signal.id.clone());
    let slo = signal.signal.slo.as_mut().unwrap();
    slo.errors.matchers.insert(BAD_LABEL.into(), "x".into());

    let (subject, text) = query_error(refused(&model));
    assert_eq!((subject.pack.as_deref(), subject.signal.as_deref()), (pack.as_deref(), Some(id.as_str())), "{text}");
    assert!(matches!(&subject.item, Item::Record(r) if text.contains(&format!("recording rule `{r}`"))), "{text}");
}

#[test]
fn source_health_alerts_whose_expression_does_not_parse_are_errors_naming_them() {
    let mut model = model();
    // Past the spec's check of `generate.matchers`: every health alert selects with them.
    model.config.generate.matchers.insert(BAD_LABEL.into(), "x".into());
    let (subject, text) = query_error(source_health::exporter_alerts(&model).err().expect("an error"));
    assert_eq!(subject.pack, None, "{text}");
    assert!(matches!(&subject.item, Item::Alert(name) if text.starts_with(&format!("alert `{name}`"))), "{text}");

    let polled = model.enabled_signals().find(|s| s.pack.is_some() && s.schedule().is_some()).unwrap();
    let pack = polled.pack.clone();
    let (subject, text) = query_error(source_health::alerts_of_pack(&model, pack.as_deref()).err().expect("an error"));
    assert_eq!(subject.pack, pack, "{text}");
    assert!(subject.signal.is_some() && matches!(subject.item, Item::Alert(_)), "{text}");
}
