-- The Microsoft integration's Graph webhook subscriptions table: the runbook's columns plus unrelated
-- ones (uuid keys, an enum change type, secrets the exporter must never read). {schema},
-- {subscriptions}, {expires} and {resource} are filled in by the demo and the tests.
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE EXTENSION IF NOT EXISTS pgcrypto;
DO $$ BEGIN CREATE TYPE {schema}.graph_change_type AS ENUM ('created', 'updated', 'deleted', 'created,updated', 'created,updated,deleted'); EXCEPTION WHEN duplicate_object THEN NULL; END $$;
CREATE TABLE {schema}.{subscriptions} (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  subscription_id uuid NOT NULL DEFAULT gen_random_uuid(),
  user_id uuid DEFAULT gen_random_uuid(),
  {resource} text NOT NULL,
  change_type {schema}.graph_change_type NOT NULL DEFAULT 'created,updated',
  notification_url text NOT NULL DEFAULT 'https://fleet.example.com/api/webhooks/teams',
  client_state text NOT NULL DEFAULT 'secret-client-state',
  {expires} timestamptz NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  renewed_at timestamptz
);
-- Per user and resource sync state (the runbook's microsoft_sync_state): a delta link the exporter
-- never reads, and when the user's resource last synced.
CREATE TABLE {schema}.microsoft_sync_state (
  user_id text NOT NULL,
  resource_type text NOT NULL,
  delta_link text,
  last_sync_at timestamptz,
  PRIMARY KEY (user_id, resource_type)
);
