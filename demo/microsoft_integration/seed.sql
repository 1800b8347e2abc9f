-- Runbook-shaped subscriptions: healthy ones days away, some expiring within 24 hours, some already
-- expired, across mail, calendar, Teams and other resources.
INSERT INTO {schema}.{subscriptions} ({resource}, {expires}) SELECT 'users/' || gen_random_uuid() || '/messages', now() + interval '2 days' FROM generate_series(1, 10);
INSERT INTO {schema}.{subscriptions} ({resource}, {expires}) SELECT 'chats/19:' || g || '@thread.v2/messages', now() + interval '50 hours' FROM generate_series(1, 5) g;
INSERT INTO {schema}.{subscriptions} ({resource}, {expires}) VALUES ('communications/callRecords', now() + interval '3 days');
INSERT INTO {schema}.{subscriptions} ({resource}, {expires}) SELECT 'me/mailFolders(''Inbox'')/messages', now() + interval '3 hours' FROM generate_series(1, 3);
INSERT INTO {schema}.{subscriptions} ({resource}, {expires}, change_type) SELECT 'users/' || gen_random_uuid() || '/events', now() + interval '20 hours', 'created,updated,deleted' FROM generate_series(1, 2);
INSERT INTO {schema}.{subscriptions} ({resource}, {expires}) SELECT 'teams/' || gen_random_uuid() || '/channels/19:c@thread.tacv2/messages', now() + interval '23 hours' FROM generate_series(1, 4);
INSERT INTO {schema}.{subscriptions} ({resource}, {expires}) VALUES ('communications/presences?$filter=id in (''a'')', now() + interval '10 hours');
INSERT INTO {schema}.{subscriptions} ({resource}, {expires}) SELECT 'users/' || gen_random_uuid() || '/messages', now() - interval '1 hour' FROM generate_series(1, 2);
INSERT INTO {schema}.{subscriptions} ({resource}, {expires}) VALUES ('chats/getAllMessages', now() - interval '3 days');
INSERT INTO {schema}.{subscriptions} ({resource}, {expires}, change_type) VALUES ('me/events', now() - interval '5 minutes', 'deleted');
-- Sync states: most users synced minutes ago, some stale for hours, a few never synced; the newest
-- sync of each resource type is recent.
INSERT INTO {schema}.microsoft_sync_state (user_id, resource_type, delta_link, last_sync_at) SELECT 'user' || g || '@example.com', 'messages', 'https://graph.microsoft.com/v1.0/delta?$deltatoken=secret' || g, now() - (g || ' minutes')::interval FROM generate_series(1, 40) g;
INSERT INTO {schema}.microsoft_sync_state (user_id, resource_type, last_sync_at) SELECT 'user' || g || '@example.com', 'events', now() - (g * 7 || ' minutes')::interval FROM generate_series(1, 25) g;
INSERT INTO {schema}.microsoft_sync_state (user_id, resource_type, last_sync_at) SELECT 'user' || g || '@example.com', 'Chats', now() - (g * 20 || ' minutes')::interval FROM generate_series(1, 6) g;
INSERT INTO {schema}.microsoft_sync_state (user_id, resource_type, last_sync_at) VALUES ('user1@example.com', 'contacts', NULL), ('user2@example.com', 'contacts', NULL), ('user1@example.com', 'mailFolders', now() - interval '3 days'), ('user2@example.com', 'mailFolders', now() - interval '5 minutes');
