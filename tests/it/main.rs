//! Every integration test in one binary: the exporter library, sqlx, tokio and the test harness
//! are linked once instead of once per file. One module per area; `support` is the shared harness
//! (throwaway PostgreSQL clusters, the built binary, stand-in HTTP servers, fidelity helpers).

mod support;

mod alertmanager;
mod build_script;
mod calendar_sync;
mod checkpoint;
mod checkpoint_faults;
mod dashboards;
mod e2e;
mod etl_token_monitoring;
mod flags;
mod generated;
mod golden;
mod http_apis;
mod http_fuzz;
mod http_limits;
mod http_source;
mod instances;
mod log_age;
mod log_files;
mod log_formats;
mod log_latency;
mod log_rotation;
mod microsoft_integration;
mod own_logs;
mod pack_overrides;
mod packaging;
mod prometheus_operator;
mod reload;
mod replay;
mod runbook_tables;
mod salesforce_incidents;
mod scenarios;
mod serve;
mod spec_durations;
mod sql_faults;
mod sql_limits;
mod sql_secrets;
mod token_refresh_logs;
mod token_refresh_sql;
mod web_config;
