-- Telemetry: track_event attribution, options, request-context defaults and
-- refusals. One transaction, rolled back at the end.
\set SHOW_CONTEXT never
\set VERBOSITY default
\set ON_ERROR_ROLLBACK on
BEGIN;

INSERT INTO celaest.organizations (id, name, slug) VALUES
    ('07000000-0000-4000-8000-000000000001', 'Telemetry Org', 'regress-telemetry-org'),
    ('07000000-0000-4000-8000-000000000002', 'Telemetry Other Org', 'regress-telemetry-other');
INSERT INTO celaest.users_profile (id, organization_id, email) VALUES
    ('17000000-0000-4000-8000-000000000001', '07000000-0000-4000-8000-000000000001', 'tele-u1@example.com'),
    ('17000000-0000-4000-8000-000000000002', '07000000-0000-4000-8000-000000000002', 'tele-u2@example.com');

CREATE TEMP TABLE tracked (label text, id uuid);

-- ---------------------------------------------------------------------------
-- Anonymous, with defaults
-- ---------------------------------------------------------------------------
INSERT INTO tracked SELECT 'anonymous', celaest.track_event('app_opened');
-- NULL properties and options mean none.
INSERT INTO tracked SELECT 'nulls', celaest.track_event('app_closed', NULL, NULL);

-- ---------------------------------------------------------------------------
-- An acting user, every option
-- ---------------------------------------------------------------------------
SET celaest.user_id = '17000000-0000-4000-8000-000000000001';
INSERT INTO tracked SELECT 'full', celaest.track_event(
    'task_run',
    '{"task_id": "abc", "tokens": 1500, "success": true}',
    '{"event_type": "ai", "event_category": "tasks", "session_id": "s-1",
      "page_url": "https://app.example.com/run", "referrer": "https://app.example.com/",
      "device_type": "Mobile", "browser": "Firefox", "os": "Linux",
      "ip_address": "203.0.113.7", "user_agent": "Mozilla/5.0 (X11; Linux x86_64)"}');
-- Request context from the session settings; an option wins over the setting;
-- blank or JSON-null options count as not given.
SET celaest.client_ip = '198.51.100.1';
SET celaest.user_agent = 'celaest-regress/1.0';
INSERT INTO tracked SELECT 'from settings', celaest.track_event('page_view', '{}', '{"page_url": "", "os": null}');
INSERT INTO tracked SELECT 'option wins', celaest.track_event('page_view', '{}', '{"ip_address": "2001:db8::1"}');
RESET celaest.client_ip;
RESET celaest.user_agent;
-- Long client-supplied strings are cut to the column width, not refused.
INSERT INTO tracked SELECT 'long', celaest.track_event('page_view', '{}',
    jsonb_build_object('user_agent', repeat('u', 600), 'page_url', 'https://x/' || repeat('p', 600)));
-- Device, browser and OS derived from the user agent when the client does not state them
-- (the parser itself is unit-tested on many more strings); a stated value wins.
CREATE TEMP TABLE agents (label text, ua text, options jsonb);
INSERT INTO agents VALUES
    ('chrome windows', 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36', '{}'),
    ('safari iphone', 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1', '{}'),
    ('samsung tablet', 'Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Safari/537.36', '{}'),
    ('googlebot', 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)', '{}'),
    ('stated wins', 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0', '{"device_type": "tablet", "os": "Custom OS"}'),
    ('unknown', 'SomeInternalTool/1.2', '{}'),
    ('stated bot', 'SomeInternalTool/1.2', '{"device_type": "bot"}');
INSERT INTO tracked
    SELECT 'ua ' || a.label, celaest.track_event('page_view', '{}', a.options || jsonb_build_object('user_agent', a.ua))
      FROM agents AS a;
SET celaest.user_agent = 'Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP2A.240805.005; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/128.0.6613.127 Mobile Safari/537.36';
INSERT INTO tracked SELECT 'ua from setting', celaest.track_event('page_view');
RESET celaest.user_agent;
SELECT t.label, e.device_type, e.browser, e.os
  FROM tracked AS t JOIN celaest.telemetry_events AS e ON e.id = t.id
 WHERE t.label LIKE 'ua %'
 ORDER BY t.label;
-- A user id without a profile: recorded anonymously, the id kept in the properties.
SET celaest.user_id = '17000000-0000-4000-8000-0000000000ff';
INSERT INTO tracked SELECT 'no profile', celaest.track_event('signup_started', '{"step": 1}');
RESET celaest.user_id;

\x on
SELECT t.label, e.organization_id, e.user_id, e.session_id, e.event_type, e.event_category, e.event_name,
       e.properties, e.page_url, e.referrer, e.ip_address, e.user_agent, e.device_type, e.browser, e.os,
       e.created_at = now() AS created_now
  FROM tracked AS t JOIN celaest.telemetry_events AS e ON e.id = t.id
 WHERE t.label <> 'long' AND t.label NOT LIKE 'ua %'
 ORDER BY t.label;
\x off
SELECT length(e.user_agent) AS user_agent_length, length(e.page_url) AS page_url_length
  FROM tracked AS t JOIN celaest.telemetry_events AS e ON e.id = t.id
 WHERE t.label = 'long';

-- ---------------------------------------------------------------------------
-- Refusals (nothing is recorded)
-- ---------------------------------------------------------------------------
SELECT count(*) AS events_before FROM celaest.telemetry_events \gset
SELECT celaest.track_event('');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.track_event('   ');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.track_event(NULL);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.track_event(repeat('e', 201));
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.track_event('x', '[1, 2]');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.track_event('x', '"text"');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.track_event('x', 'null');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.track_event('x', '{}', '[]');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.track_event('x', '{}', '{"evnet_type": "typo"}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.track_event('x', '{}', '{"session_id": 42}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.track_event('x', '{}', '{"device_type": "watch"}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.track_event('x', '{}', jsonb_build_object('session_id', repeat('s', 101)));
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.track_event('x', '{}', '{"ip_address": "not-an-ip"}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SET celaest.client_ip = '999.1.1.1';
SELECT celaest.track_event('x');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET celaest.client_ip;
SELECT count(*) - :events_before AS events_recorded_by_refusals FROM celaest.telemetry_events;

-- ---------------------------------------------------------------------------
-- A tenant role: records through track_event only, sees its own organization's
-- events only.
-- ---------------------------------------------------------------------------
CREATE ROLE regress_celaest_tele_tenant NOLOGIN;
SELECT celaest.grant_access('regress_celaest_tele_tenant', 'authenticated');
SET ROLE regress_celaest_tele_tenant;
SET request.jwt.claim.sub = '17000000-0000-4000-8000-000000000002';
INSERT INTO celaest.telemetry_events (event_type, event_name) VALUES ('custom', 'forged');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.track_event('tenant_event', '{"ok": true}') IS NOT NULL AS recorded;
SELECT organization_id, user_id, event_name FROM celaest.telemetry_events ORDER BY event_name;
RESET request.jwt.claim.sub;
RESET ROLE;

ROLLBACK;
