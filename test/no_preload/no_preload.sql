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
-- AI calls work and are charged without shared memory (README "The ledger", unserved
-- databases): a committed call and a rolled-back one (written, and charged, by the next call
-- of the backend), each counted once in the license and the key.
INSERT INTO celaest.users_profile (id, organization_id, email, role)
    VALUES ('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-0000000000a1', 'np@example.test', 'admin');
INSERT INTO celaest.ai_models (provider, model_id, display_name, cost_per_1k_input, cost_per_1k_output, priority,
                               is_default, capabilities)
    VALUES ('openai', 'gpt-4o-mini', 'gpt-4o-mini', 0.15, 0.60, 100, true, '{"text_generation": true}');
SELECT celaest.add_api_key('openai', 'np-key', 'sk-good-no-preload') IS NOT NULL;
SELECT set_config('celaest.openai_base_url', :'mock_url', false) IS NOT NULL;
SELECT set_config('celaest.user_id', '00000000-0000-0000-0000-0000000000b1', false) IS NOT NULL;
SELECT celaest.ai_chat('[{"role": "user", "content": "committed"}]'::jsonb)->>'status';
BEGIN;
SELECT celaest.ai_chat('[{"role": "user", "content": "rolled back"}]'::jsonb)->>'status';
ROLLBACK;
SELECT count(*) FROM celaest.processed_tasks;
SELECT celaest.ai_chat('[{"role": "user", "content": "the next call"}]'::jsonb)->>'status';
SELECT count(*) FROM celaest.processed_tasks;
SELECT celaest.check_limit('00000000-0000-0000-0000-0000000000a1', 'ai_requests')->>'used';
SELECT usage_count FROM celaest.ai_api_pool WHERE key_name = 'np-key';
