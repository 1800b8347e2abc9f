//! What bounds one SQL run, on a real PostgreSQL: a client-side deadline that a silent network
//! cannot outlast (and a connection that missed it does not keep the pool's only slot), a row cap
//! past which nothing is read, and label columns of any common type as the text PostgreSQL itself
//! prints, or an error naming the column and its type.

use crate::support;

use std::time::{Duration, Instant};

use integration_exporter::sources::sql::{
    MAX_LABEL_BYTES, MAX_ROWS, QueryErrorKind, dsn, pool, rows_to_families, run_query, run_signal,
};
use integration_exporter::spec::{Model, SourceText};
use integration_exporter::state::SampleValue;
use support::TestDb;
use support::proxy::Proxy;

fn signal_with_label(query: &str) -> Model {
    let text = format!(
        "database: {{url_env: X}}
signals:
  - id: t.labels
    title: Labels
    runbook_section: https://example.com/runbook#labels
    metrics:
      - {{name: t_rows, type: gauge, help: Rows., labels: [l]}}
    source:
      sql:
        query: \"{query}\"
"
    );
    Model::from_text(&SourceText { name: "t.yaml".into(), text }).unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn label_columns_read_as_postgresql_prints_them() {
    let db = TestDb::new().await;
    db.execute("CREATE TYPE mood AS ENUM ('calm', 'stormy')").await;
    let pool = pool(dsn::parse(&db.url).expect("url"), 1, Duration::from_secs(5));
    for value in [
        "'6f1c1a2e-9b7d-4c1e-8a3f-0123456789ab'::uuid",
        "12.50::numeric",
        "(-0.000123)::numeric",
        "123456789012345678901234567890.000000001::numeric",
        "0::numeric",
        "'NaN'::numeric",
        "1.5::float8",
        "(-2)::float8",
        "'Infinity'::float8",
        "0.1::float4",
        "1234567::float4",
        "123456::float4",
        "0.0001::float4",
        "0.00001234::float8",
        "1e20::float8",
        "123456789012345::float8",
        "1234567890123456::float8",
        "(-1.5e-300)::float8",
        "26::oid",
        "'stormy'::mood",
        "42::int8",
    ] {
        let model = signal_with_label(&format!("SELECT {value} AS l, 1 AS value"));
        let signal = &model.signals[0];
        let Some(integration_exporter::spec::Source::Sql(sql)) = Some(&signal.signal.source) else { unreachable!() };
        let read =
            run_query(&pool, &sql.query, Duration::from_secs(5)).await.unwrap_or_else(|e| panic!("{value}: {e:?}"));
        let families = rows_to_families(signal, &read.rows).unwrap_or_else(|e| panic!("{value}: {e:?}"));
        let label = &families[0].samples[0].labels[0].1;
        let printed: (String,) = {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url).await.expect("connect");
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT ({value})::text")))
                .fetch_one(&mut conn)
                .await
                .expect("text")
        };
        assert_eq!(&**label, printed.0, "{value}");
    }
    let model = signal_with_label("SELECT now()::date AS l, 1 AS value");
    let integration_exporter::spec::Source::Sql(sql) = &model.signals[0].signal.source else { unreachable!() };
    let read = run_query(&pool, &sql.query, Duration::from_secs(5)).await.expect("date query");
    let err = rows_to_families(&model.signals[0], &read.rows).expect_err("a date is no label");
    assert_eq!(err.kind, QueryErrorKind::Decode);
    assert!(err.message.contains("`l` is DATE") && err.message.contains("::text"), "{}", err.message);
}

#[tokio::test]
async fn numeric_value_columns_are_numbers() {
    let db = TestDb::new().await;
    let pool = pool(dsn::parse(&db.url).expect("url"), 1, Duration::from_secs(5));
    let model = signal_with_label("SELECT 'a' AS l, sum(x) AS value FROM generate_series(1::int8, 10) x");
    let integration_exporter::spec::Source::Sql(sql) = &model.signals[0].signal.source else { unreachable!() };
    let read = run_query(&pool, &sql.query, Duration::from_secs(5)).await.expect("sum");
    let families = rows_to_families(&model.signals[0], &read.rows).expect("numeric sum");
    assert!(matches!(families[0].samples[0].value, SampleValue::Scalar(v) if v == 55.0));
}

#[tokio::test]
async fn rows_past_the_cap_are_not_read() {
    let db = TestDb::new().await;
    let pool = pool(dsn::parse(&db.url).expect("url"), 1, Duration::from_secs(5));
    // Ten million rows would take seconds to send and read; the cap stops after a few hundred.
    // (In the select list the series streams; in FROM it would be built whole first.)
    let started = Instant::now();
    let read = run_query(&pool, "SELECT generate_series(1, 10000000) AS l, 1 AS value", Duration::from_secs(30))
        .await
        .expect("query");
    let took = started.elapsed();
    assert!(read.truncated);
    assert_eq!(read.rows.len(), MAX_ROWS);
    assert!(took < Duration::from_secs(3), "took {took:?}");
    // The connection was closed, not left mid-result: the pool's one slot serves the next run.
    let next = run_query(&pool, "SELECT 1 AS value", Duration::from_secs(5)).await.expect("next run");
    assert!(!next.truncated && next.rows.len() == 1);
    let exact = run_query(&pool, &format!("SELECT x FROM generate_series(1, {MAX_ROWS}) x"), Duration::from_secs(5))
        .await
        .expect("exactly the cap");
    assert!(!exact.truncated && exact.rows.len() == MAX_ROWS);
}

#[tokio::test]
async fn series_past_the_cap_are_not_read() {
    let db = TestDb::new().await;
    let pool = pool(dsn::parse(&db.url).expect("url"), 1, Duration::from_secs(5));
    let cap = integration_exporter::sources::logs::rules::MAX_SERIES_PER_METRIC;
    // A label with a value per row (a user id by mistake): reading stops at the first row that
    // would open series cap + 1.
    let model = signal_with_label("SELECT generate_series(1, 10000000) AS l, 1 AS value");
    let started = Instant::now();
    let run = run_signal(
        &pool,
        &model.signals[0],
        "SELECT generate_series(1, 10000000) AS l, 1 AS value",
        Duration::from_secs(30),
    )
    .await
    .expect("query");
    assert!(run.truncated);
    assert_eq!(run.families[0].samples.len(), cap);
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    // Many rows, few series: all read and summed, as a GROUP BY would.
    let run = run_signal(
        &pool,
        &model.signals[0],
        "SELECT 'same' AS l, 1 AS value FROM generate_series(1, 5000)",
        Duration::from_secs(5),
    )
    .await
    .expect("the pool's slot is free again");
    assert!(!run.truncated);
    assert!(matches!(run.families[0].samples[0].value, SampleValue::Scalar(v) if v == 5000.0));
}

/// Rows that repeat a label set are summed into one series, as a GROUP BY would (a query may
/// count that way on purpose), and every row added into a series an earlier row opened is
/// counted, so a join that fans out shows; a row with other labels, or NULL, is not.
#[tokio::test]
async fn rows_with_the_same_labels_are_summed_and_counted() {
    let db = TestDb::new().await;
    let pool = pool(dsn::parse(&db.url).expect("url"), 1, Duration::from_secs(5));
    let query =
        "SELECT l, v AS value FROM (VALUES ('a', 1.5::float8), ('b', 2), ('a', 3), ('a', NULL), ('a', 4)) t(l, v)";
    let model = signal_with_label(query);
    let run = run_signal(&pool, &model.signals[0], query, Duration::from_secs(5)).await.expect("query");
    let value = |l: &str| {
        run.families[0].samples.iter().find(|s| &*s.labels[0].1 == l).map(|s| s.value.clone()).expect("a series")
    };
    assert_eq!((value("a"), value("b")), (SampleValue::Scalar(8.5), SampleValue::Scalar(2.0)));
    assert_eq!(run.folds.merged.get("t_rows"), Some(&2), "{:?}", run.folds);
    assert!(run.folds.cut.is_empty());
    let distinct = "SELECT l, 1 AS value FROM (VALUES ('a'), ('b')) t(l)";
    let run = run_signal(&pool, &model.signals[0], distinct, Duration::from_secs(5)).await.expect("query");
    assert!(run.folds.merged.is_empty(), "{:?}", run.folds);
}

/// A label value longer than the cap (a free-text column) is cut at a character boundary, the
/// row still counts, and the cut is counted; values that become equal once cut are one series.
#[tokio::test]
async fn long_label_values_are_cut_at_the_cap_and_counted() {
    let db = TestDb::new().await;
    let pool = pool(dsn::parse(&db.url).expect("url"), 1, Duration::from_secs(5));
    // 'é' is two bytes: a cut in the middle of one would not be UTF-8. 100 kB values.
    let query = "SELECT 'x' || repeat('é', 50000) || n AS l, 1 AS value FROM generate_series(1, 3) n                  UNION ALL SELECT 'short', 5";
    let model = signal_with_label(query);
    let run = run_signal(&pool, &model.signals[0], query, Duration::from_secs(5)).await.expect("query");
    let samples = &run.families[0].samples;
    assert_eq!(samples.len(), 2, "{samples:?}");
    let long = samples.iter().find(|s| &*s.labels[0].1 != "short").expect("the long value");
    assert_eq!(&*long.labels[0].1, format!("x{}", "é".repeat(127)));
    assert!(long.labels[0].1.len() <= MAX_LABEL_BYTES);
    assert_eq!(long.value, SampleValue::Scalar(3.0));
    assert_eq!(run.folds.cut.get("t_rows"), Some(&3));
    assert_eq!(run.folds.merged.get("t_rows"), Some(&2), "three values equal once cut");
    let short = samples.iter().find(|s| &*s.labels[0].1 == "short").expect("the short value");
    assert_eq!(short.value, SampleValue::Scalar(5.0));
}

/// On the binary: both folds are exported as counters that add up over runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_exports_cut_labels_and_summed_rows() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = support::free_port();
    let spec = dir.path().join("spec.yaml");
    let text = format!(
        "listen: 127.0.0.1:{port}
database: {{url_env: TEST_DATABASE_URL}}
poll_defaults: {{interval: 200ms, timeout: 2s}}
signals:
  - id: t.folds
    title: Folds
    runbook_section: https://example.com/runbook#folds
    metrics: [{{name: t_rows, type: gauge, help: Rows., labels: [l]}}]
    source: {{sql: {{query: \"SELECT l, 1 AS value FROM (VALUES (repeat('y', 1000)), ('a'), ('a')) t(l)\"}}}}
"
    );
    std::fs::write(&spec, text).expect("spec");
    let exporter = support::exporter::Exporter::serve(&spec, port).env("TEST_DATABASE_URL", &db.url).start();
    let merged = "integration_exporter_query_merged_rows_total{signal=\"t.folds\",metric=\"t_rows\"}";
    let cut = "integration_exporter_label_truncated_total{metric=\"t_rows\"}";
    let m = exporter.wait_for("three runs", |m| m.get(merged).is_some_and(|n| n >= 3.0));
    let runs = m[merged];
    assert_eq!(m.get(cut), Some(runs), "one cut and one merged row per run:\n{m:?}");
    assert_eq!(m.get(&format!("t_rows{{l=\"{}\"}}", "y".repeat(MAX_LABEL_BYTES))), Some(1.0), "{m:?}");
    assert_eq!(m.get("t_rows{l=\"a\"}"), Some(2.0));
    let output = exporter.output();
    assert_eq!(output.matches("were summed into one series").count(), 1, "{output}");
    assert_eq!(output.matches("label values longer than the cap were cut").count(), 1, "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_network_cannot_outlast_the_deadline_or_keep_the_pool() {
    let db = TestDb::new().await;
    let port: u16 =
        db.url.rsplit(':').next().and_then(|p| p.split('/').next()).and_then(|p| p.parse().ok()).expect("port");
    let proxy = Proxy::start(port);
    let url = db.url.replacen(&format!(":{port}/"), &format!(":{}/", proxy.port), 1);
    // One connection: if the dead one kept its slot, nothing could run after.
    let pool = pool(dsn::parse(&url).expect("url"), 1, Duration::from_millis(500));
    run_query(&pool, "SELECT 1", Duration::from_millis(500)).await.expect("warm");

    let timeout = Duration::from_millis(500);
    let running = tokio::spawn({
        let pool = pool.clone();
        async move {
            let started = Instant::now();
            (run_query(&pool, "SELECT pg_sleep(0.3)", timeout).await, started.elapsed())
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    proxy.black_hole();
    let (result, took) = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the run outlasted its deadline")
        .expect("task");
    let err = result.expect_err("nothing can come back");
    assert_eq!(err.kind, QueryErrorKind::Timeout, "{}", err.message);
    let deadline = integration_exporter::sources::sql::deadline(timeout);
    assert!(took >= deadline && took < deadline + Duration::from_millis(500), "took {took:?}");

    proxy.restore();
    let started = Instant::now();
    run_query(&pool, "SELECT 1", timeout).await.expect("the pool's slot is free again");
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
}

/// A value column that is not a finite number (float8 `NaN` or `±Infinity`, or rows with the same
/// labels whose sum leaves the range) is never exported: the run fails as a decode error, as a
/// column of the wrong type does, naming the signal, the column and the row's labels.
#[tokio::test]
async fn values_that_are_not_finite_fail_the_run_naming_the_row() {
    let db = TestDb::new().await;
    let pool = pool(dsn::parse(&db.url).expect("url"), 1, Duration::from_secs(5));
    for (bad, shown) in [
        ("'NaN'::float8", "NaN"),
        ("'Infinity'::float8", "+Inf"),
        ("'-Infinity'::float8", "-Inf"),
        ("'NaN'::numeric", "NaN"),
        ("'Infinity'::float4", "+Inf"),
    ] {
        let query = format!("SELECT l, v AS value FROM (VALUES ('ok', 1::float8), ('bad', {bad}::float8)) t(l, v)");
        let model = signal_with_label(&query);
        let err = run_signal(&pool, &model.signals[0], &query, Duration::from_secs(5))
            .await
            .expect_err(&format!("{bad} is no value"));
        assert_eq!(err.kind, QueryErrorKind::Decode, "{bad}: {}", err.message);
        for part in ["`t.labels`", "`value`", "l=\"bad\"", shown] {
            assert!(err.message.contains(part), "{bad}: {part} missing from {}", err.message);
        }
    }
    // Each row finite, their sum not.
    let query = "SELECT 'same' AS l, 1e308::float8 AS value FROM generate_series(1, 2)";
    let model = signal_with_label(query);
    let err = run_signal(&pool, &model.signals[0], query, Duration::from_secs(5)).await.expect_err("an overflow");
    assert_eq!(err.kind, QueryErrorKind::Decode, "{}", err.message);
    for part in ["`t.labels`", "`value`", "l=\"same\"", "+Inf", "sum"] {
        assert!(err.message.contains(part), "{part} missing from {}", err.message);
    }
    // The largest finite values still pass.
    let query = "SELECT 'max' AS l, 1.7976931348623157e308::float8 AS value";
    let run = run_signal(&pool, &signal_with_label(query).signals[0], query, Duration::from_secs(5)).await;
    assert_eq!(run.expect("finite").families[0].samples[0].value, SampleValue::Scalar(f64::MAX));
}

/// On the binary: the failed run counts as a decode error of the signal, the log names the row,
/// and no `NaN` or `Inf` reaches the exposition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_never_exports_a_value_that_is_not_finite() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = support::free_port();
    let spec = dir.path().join("spec.yaml");
    let text = format!(
        "listen: 127.0.0.1:{port}
database: {{url_env: TEST_DATABASE_URL}}
poll_defaults: {{interval: 200ms, timeout: 2s}}
signals:
  - id: t.nan
    title: Not finite
    runbook_section: https://example.com/runbook#nan
    metrics: [{{name: t_rows, type: gauge, help: Rows., labels: [l]}}]
    source: {{sql: {{query: \"SELECT l, v AS value FROM (VALUES ('ok', 1::float8), ('bad', 'Infinity'::float8)) t(l, v)\"}}}}
"
    );
    std::fs::write(&spec, text).expect("spec");
    let exporter = support::exporter::Exporter::serve(&spec, port).env("TEST_DATABASE_URL", &db.url).start();
    let errors = "integration_exporter_query_errors_total{signal=\"t.nan\",kind=\"decode\"}";
    exporter.wait_for("two failed runs", |m| m.get(errors).is_some_and(|n| n >= 2.0));
    let body = support::http::get(port, "/metrics").expect("an answer").text();
    assert!(!body.contains("Inf") && !body.contains("NaN") && !body.contains("t_rows{"), "{body}");
    let output = exporter.output();
    assert!(output.contains("l=\\\"bad\\\"") || output.contains("l=\"bad\""), "{output}");
}
