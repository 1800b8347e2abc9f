-- Runbook-shaped rows: a token in its 14-day warning window, an expired one and a healthy one;
-- a platform whose syncs succeed, one whose syncs fail for hours, one that stopped running.
INSERT INTO {schema}.platform_tokens (platform, expires_at) VALUES
  ('meta', now() + interval '9 days'),
  ('tiktok', now() - interval '2 days'),
  ('google', now() + interval '50 days');
INSERT INTO {schema}.etl_sync_log (platform, entity_type, status, start_time, records_processed)
  SELECT 'google', e, 'success', now() - (h || ' hours')::interval, 100
  FROM generate_series(0, 46, 2) AS h, unnest(ARRAY['campaigns', 'ads']) AS e;
INSERT INTO {schema}.etl_sync_log (platform, entity_type, status, start_time, error_message)
  SELECT 'meta', 'campaigns', 'failed', now() - (h || ' hours')::interval, 'Meta refresh token not found'
  FROM generate_series(0, 8, 2) AS h;
INSERT INTO {schema}.etl_sync_log (platform, entity_type, status, start_time) VALUES
  ('meta', 'campaigns', 'success', now() - interval '9 hours'),
  ('meta', 'ads', 'failed', now() - interval '3 days'),
  ('tiktok', 'ads', 'success', now() - interval '5 hours'),
  ('tiktok', 'ads', 'failed', now() - interval '8 days');
