-- The calendar-sync runbook's tables with the runbook's columns plus unrelated ones (uuid keys, an
-- enum event status, token columns the exporter must never read). {schema} is filled in.
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE EXTENSION IF NOT EXISTS pgcrypto;
DO $$ BEGIN CREATE TYPE {schema}.event_sync_status AS ENUM ('CREATED', 'SYNCED', 'FAILED', 'DELETED'); EXCEPTION WHEN duplicate_object THEN NULL; END $$;
CREATE TABLE {schema}.external_calendar_connections (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  provider_id uuid NOT NULL DEFAULT gen_random_uuid(),
  provider text NOT NULL,
  sync_enabled boolean NOT NULL DEFAULT true,
  last_synced_at timestamptz,
  error_count integer NOT NULL DEFAULT 0,
  last_error text,
  backoff_until timestamptz,
  token_expiry timestamptz,
  access_token text DEFAULT 'secret-access-token',
  refresh_token text DEFAULT 'secret-refresh-token',
  sync_cursor text,
  sync_needed boolean DEFAULT false,
  created_at timestamptz DEFAULT now(),
  updated_at timestamptz DEFAULT now()
);
CREATE TABLE {schema}.external_calendar_events (
  id bigserial PRIMARY KEY,
  provider_id uuid NOT NULL DEFAULT gen_random_uuid(),
  external_id text,
  sync_status {schema}.event_sync_status NOT NULL DEFAULT 'CREATED',
  last_error text,
  starts_at timestamptz DEFAULT now()
);
