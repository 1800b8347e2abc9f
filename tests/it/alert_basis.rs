//! Where each alert's numbers come from, checked against the runbooks themselves: every alert of
//! the packs below says why its threshold, severity, window (when its condition has one) and
//! `for` are what they are, and every runbook quote is the runbook's own words under the heading
//! it names. Quotes inside a chosen reason are runbook words too.

use std::path::Path;

use integration_exporter::spec::{Alert, Basis, builtin_pack};

/// The packs whose alerts carry the full basis.
const PACKS: [&str; 2] = ["etl_token_monitoring", "salesforce_incidents"];

/// Each heading of a runbook (as written, without its `#`s) with the text under it, its
/// sub-sections and code blocks included, up to the next heading of its level or above.
fn sections(markdown: &str) -> Vec<(String, String)> {
    let mut headings: Vec<(usize, usize, String)> = Vec::new(); // (line, level, text)
    let lines: Vec<&str> = markdown.lines().collect();
    let mut fenced = false;
    for (i, line) in lines.iter().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        let level = line.chars().take_while(|c| *c == '#').count();
        if !fenced && (1..=6).contains(&level) && line[level..].starts_with(' ') {
            headings.push((i, level, line[level..].trim().to_string()));
        }
    }
    headings
        .iter()
        .map(|(at, level, text)| {
            let end = headings.iter().find(|(j, l, _)| j > at && l <= level).map_or(lines.len(), |(j, _, _)| *j);
            (text.clone(), lines[at + 1..end].join("\n"))
        })
        .collect()
}

/// The runbook's words with its code marks and quotes left out, for words quoted inside prose.
fn plain(text: &str) -> String {
    text.replace(['`', '"', '*'], "")
}

fn check(pack: &str, runbook: &str, alert: &Alert, problems: &mut Vec<String>) {
    let sections = sections(runbook);
    let who = format!("{pack}: {} ({})", alert.name, alert.severity.as_str());
    let Some(basis) = &alert.basis else {
        problems.push(format!("{who}: no basis"));
        return;
    };
    let aspects = [
        ("threshold", &basis.threshold, true),
        ("severity", &basis.severity, true),
        ("window", &basis.window, alert.condition.window().is_some()),
        ("for", &basis.for_, true),
    ];
    for (aspect, stated, wanted) in aspects {
        match (stated, wanted) {
            (None, true) => problems.push(format!("{who}: says nothing of its {aspect}")),
            (Some(_), false) => problems.push(format!("{who}: a {aspect} basis for a condition without one")),
            (Some(Basis::Runbook { section, quote }), _) => match sections.iter().find(|(h, _)| h == section) {
                None => problems.push(format!("{who}: {aspect}: no heading {section:?} in the runbook")),
                Some((_, text)) if !text.contains(quote.as_str()) => {
                    problems.push(format!("{who}: {aspect}: {quote:?} is not under {section:?}"))
                }
                Some(_) => {}
            },
            (Some(Basis::Chosen(why)), _) => {
                if why.trim().len() < 20 {
                    problems.push(format!("{who}: {aspect}: chosen without a reason: {why:?}"));
                }
                // Words in quotes are the runbook's.
                for quoted in why.split('"').skip(1).step_by(2) {
                    if !plain(runbook).contains(&plain(quoted)) {
                        problems.push(format!("{who}: {aspect}: {quoted:?} is no runbook text"));
                    }
                }
            }
            (None, false) => {}
        }
    }
}

#[test]
fn every_alert_says_where_its_severity_window_and_for_come_from() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for pack in PACKS {
        let def = builtin_pack(pack).unwrap().unwrap();
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/runbooks").join(&def.runbook);
        let runbook = std::fs::read_to_string(&path).unwrap();
        // Alerts of signals that are off by default too: a variant is one override away.
        for alert in def.signals.iter().flat_map(|s| &s.alerts) {
            check(pack, &runbook, alert, &mut problems);
            checked += 1;
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(checked >= 20, "{checked}");
}

#[test]
fn a_quote_that_is_not_the_runbooks_is_found() {
    let runbook = "## Alerts\n### Critical\n- Token expired (< 0 days)\n### Warning\n- Sync delays > 4 hours\n";
    let alert = |basis: &str| -> Alert {
        serde_saphyr::from_str(&format!(
            "{{name: IntegrationX, severity: critical, condition: {{gauge: {{metric: m}}}}, op: '<', threshold: 0, \
             summary: S., description: 'D {{value}}.', basis: {basis}}}"
        ))
        .unwrap()
    };
    let problems = |basis: &str| {
        let mut out = Vec::new();
        check("p", runbook, &alert(basis), &mut out);
        out
    };
    let good = "{threshold: {runbook: {section: Critical, quote: 'Token expired (< 0 days)'}}, severity: {runbook: {section: Critical, quote: 'Token expired'}}, for: {chosen: 'an expired token stays expired, so one minute'}}";
    assert_eq!(problems(good), Vec::<String>::new());
    // Under another heading, not the runbook's words, a lone threshold, a window for a gauge.
    for bad in [
        good.replace(
            "section: Critical, quote: 'Token expired (< 0 days)'",
            "section: Warning, quote: 'Token expired (< 0 days)'",
        ),
        good.replace("'Token expired (< 0 days)'", "'Token expired (< 1 day)'"),
        "{runbook: {section: Critical, quote: 'Token expired'}}".to_string(),
        good.replace("for:", "window: {chosen: 'a window for a gauge, which has none'}, for:"),
        good.replace(
            "'an expired token stays expired, so one minute'",
            "'as the runbook says, \"Token lapsed\", a minute'",
        ),
    ] {
        assert!(!problems(&bad).is_empty(), "{bad}");
    }
}

/// Every SLO of the built-in packs takes its objective from the runbook, in the runbook's words
/// under the heading it names, and says why its errors and its volume guard are what they are.
#[test]
fn every_slo_quotes_its_target_from_the_runbook() {
    let mut problems = Vec::new();
    let mut slos = Vec::new();
    for (pack, _) in integration_exporter::spec::pack::BUILTIN {
        let def = builtin_pack(pack).unwrap().unwrap();
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/runbooks").join(&def.runbook);
        let runbook = std::fs::read_to_string(&path).unwrap();
        let sections = sections(&runbook);
        for slo in def.signals.iter().filter_map(|s| s.slo.as_ref()) {
            let basis = slo.basis.clone().unwrap_or_default();
            let who = format!("{pack}: {}", slo.alert);
            match &basis.objective {
                // Emphasis and code marks aside, as a reader reads the runbook.
                Some(Basis::Runbook { section, quote }) => match sections.iter().find(|(h, _)| h == section) {
                    Some((_, text)) if plain(text).contains(&plain(quote)) => {}
                    _ => problems.push(format!("{who}: {quote:?} is not under {section:?}")),
                },
                other => problems.push(format!("{who}: the objective is the runbook's target, not {other:?}")),
            }
            for (aspect, stated) in [("errors", &basis.errors), ("min_events", &basis.min_events)] {
                match stated {
                    Some(Basis::Chosen(why)) if why.len() >= 20 => {
                        for quoted in why.split('"').skip(1).step_by(2) {
                            if !plain(&runbook).contains(&plain(quoted)) {
                                problems.push(format!("{who}: {aspect}: {quoted:?} is no runbook text"));
                            }
                        }
                    }
                    Some(Basis::Runbook { .. }) => {}
                    other => problems.push(format!("{who}: {aspect}: say why, not {other:?}")),
                }
            }
            slos.push(slo.alert.clone());
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The targets the runbooks state: token refresh success > 99%, Graph API errors and model
    // errors < 5%.
    slos.sort();
    assert_eq!(
        slos,
        [
            "IntegrationMicrosoftGraphBudgetBurn",
            "IntegrationSalesforceModelBudgetBurn",
            "IntegrationTokenRefreshBudgetBurn"
        ]
    );
}
