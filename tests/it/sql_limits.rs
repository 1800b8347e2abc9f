//! What bounds one SQL run, on a real PostgreSQL: a client-side deadline that a silent network
//! cannot outlast (and a connection that missed it does not keep the pool's only slot), a row cap
//! past which nothing is read, and label columns of any common type as the text PostgreSQL itself
//! prints, or an error naming the column and its type.

use crate::support;

use std::time::{Duration, Instant};

use integration_exporter::sources::sql::{
    MAX_ROWS, QueryErrorKind, dsn, pool, rows_to_families, run_query, run_signal,
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
        assert_eq!(label, &printed.0, "{value}");
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
    let (families, truncated) = run_signal(
        &pool,
        &model.signals[0],
        "SELECT generate_series(1, 10000000) AS l, 1 AS value",
        Duration::from_secs(30),
    )
    .await
    .expect("query");
    assert!(truncated);
    assert_eq!(families[0].samples.len(), cap);
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    // Many rows, few series: all read and summed, as a GROUP BY would.
    let (families, truncated) = run_signal(
        &pool,
        &model.signals[0],
        "SELECT 'same' AS l, 1 AS value FROM generate_series(1, 5000)",
        Duration::from_secs(5),
    )
    .await
    .expect("the pool's slot is free again");
    assert!(!truncated);
    assert!(matches!(families[0].samples[0].value, SampleValue::Scalar(v) if v == 5000.0));
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
