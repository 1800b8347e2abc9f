-- Runbook-shaped rows: healthy, stuck, never-synced, backed-off, disabled and expired-token
-- connections for two providers, and a few failed events.
INSERT INTO {schema}.external_calendar_connections (provider, last_synced_at, token_expiry)
  SELECT 'google', now() - interval '5 minutes', now() + interval '30 days' FROM generate_series(1, 20);
INSERT INTO {schema}.external_calendar_connections (provider, last_synced_at, token_expiry)
  SELECT 'microsoft', now() - interval '10 minutes', now() + interval '30 days' FROM generate_series(1, 12);
INSERT INTO {schema}.external_calendar_connections (provider, last_synced_at, error_count, last_error, token_expiry)
  SELECT 'google', now() - interval '3 hours', 2, 'adapter error: 500', now() + interval '30 days' FROM generate_series(1, 3);
INSERT INTO {schema}.external_calendar_connections (provider, last_synced_at, token_expiry)
  VALUES ('microsoft', NULL, now() + interval '30 days');
INSERT INTO {schema}.external_calendar_connections (provider, last_synced_at, error_count, last_error, backoff_until, token_expiry)
  SELECT 'microsoft', now() - interval '2 hours', 5, '429 Too Many Requests', now() + interval '40 minutes', now() + interval '30 days' FROM generate_series(1, 4);
INSERT INTO {schema}.external_calendar_connections (provider, last_synced_at, error_count, last_error, backoff_until, token_expiry)
  SELECT 'google', now() - interval '2 hours', 1, 'token expired', now() - interval '5 minutes', now() - interval '1 day' FROM generate_series(1, 2);
INSERT INTO {schema}.external_calendar_connections (provider, sync_enabled, last_synced_at, token_expiry)
  SELECT 'google', false, now() - interval '9 days', now() - interval '2 days' FROM generate_series(1, 5);
-- Flagged sync_needed: two google connections the job runner skipped for 90 minutes, a microsoft
-- one flagged 5 minutes ago, and a disabled one (with errors) that nobody syncs.
INSERT INTO {schema}.external_calendar_connections (provider, last_synced_at, token_expiry, sync_needed, updated_at)
  SELECT 'google', now() - interval '2 hours', now() + interval '30 days', true, now() - interval '90 minutes' FROM generate_series(1, 2);
INSERT INTO {schema}.external_calendar_connections (provider, last_synced_at, token_expiry, sync_needed, updated_at)
  VALUES ('microsoft', now() - interval '10 minutes', now() + interval '30 days', true, now() - interval '5 minutes');
INSERT INTO {schema}.external_calendar_connections (provider, sync_enabled, last_synced_at, error_count, last_error, token_expiry, sync_needed, updated_at)
  VALUES ('google', false, now() - interval '9 days', 7, 'adapter error: 500', now() - interval '2 days', true, now() - interval '9 days');
INSERT INTO {schema}.external_calendar_events (sync_status) SELECT 'SYNCED' FROM generate_series(1, 50);
INSERT INTO {schema}.external_calendar_events (sync_status, last_error) SELECT 'FAILED', 'invalid_token' FROM generate_series(1, 3);
