-- Loaded late by CREATE EXTENSION (not preloaded): the install itself must not fail.
CREATE EXTENSION celaest CASCADE;
SELECT celaest.version() LIKE 'celaest %';
SELECT current_setting('shared_preload_libraries') = '';
-- The workers report that they cannot run here, rather than erroring.
SELECT string_agg(DISTINCT state, ',') FROM celaest.worker_status();
-- Licensing works without shared memory.
INSERT INTO celaest.organizations (id, name, slug) VALUES ('00000000-0000-0000-0000-0000000000a1', 'No preload', 'no-preload');
INSERT INTO celaest.subscription_plans (code, name) VALUES ('np', 'No preload plan');
SELECT (celaest.issue_license('00000000-0000-0000-0000-0000000000a1', 'np')->>'status');
SELECT celaest.consume_quota('00000000-0000-0000-0000-0000000000a1', 'ai_requests', 3);
SELECT celaest.check_limit('00000000-0000-0000-0000-0000000000a1', 'ai_requests')->>'used';
