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
-- No batch runner can serve this database: submit_batch refuses (55000) and writes nothing.
CREATE FUNCTION pg_temp.sqlstate_of(p_sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE p_sql; RETURN 'ok'; EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE; END $$;
SELECT pg_temp.sqlstate_of($$SELECT celaest.submit_batch('any-prompt', '[{"x": 1}]')$$);
SELECT count(*) FROM celaest.task_batches;
