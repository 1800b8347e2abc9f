-- The token-refresh runbook's tables: the runbook's columns plus unrelated ones, an enum status and
-- uuid keys. {schema}, {tokens}, {watchers} and {locks} are filled in by the demo and the tests.
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE EXTENSION IF NOT EXISTS pgcrypto;
DO $$ BEGIN CREATE TYPE {schema}.watcher_status AS ENUM ('active', 'degraded', 'paused'); EXCEPTION WHEN duplicate_object THEN NULL; END $$;
CREATE TABLE {schema}.{tokens} (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL DEFAULT gen_random_uuid(),
  yacht_id uuid,
  token_purpose text NOT NULL DEFAULT 'read',
  access_token text NOT NULL DEFAULT 'secret-access-token',
  refresh_token text NOT NULL DEFAULT 'secret-refresh-token',
  expires_at timestamptz NOT NULL,
  consecutive_failures integer NOT NULL DEFAULT 0,
  next_retry_at timestamptz,
  last_refresh_error text,
  is_revoked boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  scopes text[] DEFAULT ARRAY['Mail.Read']
);
CREATE TABLE {schema}.{watchers} (
  id bigserial PRIMARY KEY,
  user_id uuid NOT NULL DEFAULT gen_random_uuid(),
  yacht_id uuid DEFAULT gen_random_uuid(),
  sync_status {schema}.watcher_status NOT NULL DEFAULT 'active',
  last_sync_error text,
  degraded_at timestamptz,
  updated_at timestamptz DEFAULT now(),
  delta_link text
);
CREATE TABLE {schema}.{locks} (
  lock_name text PRIMARY KEY,
  holder text,
  acquired_at timestamptz DEFAULT now(),
  lease_expires_at timestamptz NOT NULL
);
