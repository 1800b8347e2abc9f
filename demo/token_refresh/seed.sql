-- Runbook-shaped rows: healthy, expiring, expired, revoked, backed-off and failing tokens with errors
-- of every class, degraded watchers and two locks (the heartbeat lock's lease long expired). Rows
-- written without `updated_at` failed just now, so the 429 ones sit exactly at the 60s minimum backoff.
INSERT INTO {schema}.{tokens} (expires_at) SELECT now() + interval '50 minutes' FROM generate_series(1, 40);
INSERT INTO {schema}.{tokens} (expires_at) SELECT now() + interval '5 minutes' FROM generate_series(1, 7);
INSERT INTO {schema}.{tokens} (expires_at) SELECT now() - interval '1 hour' FROM generate_series(1, 4);
INSERT INTO {schema}.{tokens} (expires_at, is_revoked) SELECT now() + interval '3 minutes', true FROM generate_series(1, 3);
INSERT INTO {schema}.{tokens} (expires_at, next_retry_at, consecutive_failures, last_refresh_error)
  SELECT now() + interval '2 hours', now() + interval '90 seconds', 2, 'AADSTS50173: invalid_grant: The provided grant has expired' FROM generate_series(1, 5);
INSERT INTO {schema}.{tokens} (expires_at, next_retry_at, consecutive_failures, last_refresh_error)
  SELECT now() + interval '2 hours', now() + interval '60 seconds', 1, 'HTTP 429 Too Many Requests' FROM generate_series(1, 6);
INSERT INTO {schema}.{tokens} (expires_at, next_retry_at, consecutive_failures, last_refresh_error, is_revoked)
  SELECT now() + interval '2 hours', now() + interval '1 day', 12, 'consent_required: AADSTS65001', true FROM generate_series(1, 2);
-- The 503 tokens were retried 20 seconds after their failure: backoff not working.
INSERT INTO {schema}.{tokens} (expires_at, next_retry_at, consecutive_failures, last_refresh_error, updated_at)
  SELECT now() + interval '2 hours', now() - interval '5 minutes', 11, '503 Service Unavailable', now() - interval '5 minutes 20 seconds' FROM generate_series(1, 3);
-- A 429 token whose failure set no next_retry_at at all, and one that waited long enough.
INSERT INTO {schema}.{tokens} (expires_at, consecutive_failures, last_refresh_error, updated_at)
  VALUES (now() + interval '2 hours', 3, 'HTTP 429 Too Many Requests', now() - interval '1 minute');
INSERT INTO {schema}.{tokens} (expires_at, next_retry_at, consecutive_failures, last_refresh_error, updated_at)
  VALUES (now() + interval '2 hours', now() + interval '3 minutes', 4, 'Error 429: throttled', now() - interval '1 minute');
INSERT INTO {schema}.{tokens} (expires_at, last_refresh_error) VALUES (now() + interval '2 hours', 'connection reset by peer');
INSERT INTO {schema}.{watchers} (sync_status) SELECT 'active' FROM generate_series(1, 30);
INSERT INTO {schema}.{watchers} (sync_status, degraded_at, last_sync_error) SELECT 'degraded', now(), 'token refresh failed' FROM generate_series(1, 4);
INSERT INTO {schema}.{watchers} (sync_status) SELECT 'paused' FROM generate_series(1, 2);
INSERT INTO {schema}.{locks} VALUES ('token_refresh_heartbeat', 'worker-1', now() - interval '20 minutes', now() - interval '10 minutes');
INSERT INTO {schema}.{locks} VALUES ('mailbox_sync', 'worker-2', now(), now() + interval '2 minutes');
