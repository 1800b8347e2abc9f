-- The ETL runbook's tables in their own schema, with the runbook's columns plus unrelated ones.
-- {schema} is filled in (the runbook's is `marketing`).
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE {schema}.platform_tokens (
  id serial PRIMARY KEY,
  platform text NOT NULL UNIQUE,
  access_token text NOT NULL DEFAULT 'secret-access-token',
  refresh_token text DEFAULT 'secret-refresh-token',
  expires_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  account_id text
);
CREATE TABLE {schema}.etl_sync_log (
  id bigserial PRIMARY KEY,
  platform text NOT NULL,
  entity_type text NOT NULL,
  sync_type text NOT NULL DEFAULT 'incremental',
  status text NOT NULL,
  start_time timestamptz NOT NULL,
  end_time timestamptz,
  records_processed integer DEFAULT 0,
  error_message text
);
