-- Benchmark data for test/bench/ai_chat_bench.sh (run by in_cluster.sh, psql -v port=...).
-- One organization, one user, an active license whose AI quota is unlimited (-1), one
-- OpenAI model with prices (the default), and one key, "capture", whose base_url is the
-- nginx location that records the request body. in_cluster.sh makes one call through it,
-- deletes it and adds the benchmark key (add_api_key with base_url -> nginx /v1).
--   organization 00000000-0000-4000-8000-0000000000a1
--   user         00000000-0000-4000-8000-0000000000b1   (named in ai_chat.sql)
\set ON_ERROR_STOP on
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS celaest CASCADE;

INSERT INTO celaest.subscription_plans (code, name, limits)
VALUES ('bench', 'Benchmark',
        '{"max_users": 100, "max_ai_requests_per_month": -1, "max_storage_gb": 10,
          "max_concurrent_tasks": 10, "max_batch_size": 100}');
INSERT INTO celaest.organizations (id, name, slug)
VALUES ('00000000-0000-4000-8000-0000000000a1', 'Bench', 'bench');
INSERT INTO celaest.users_profile (id, organization_id, email, role)
VALUES ('00000000-0000-4000-8000-0000000000b1', '00000000-0000-4000-8000-0000000000a1',
        'bench@example.com', 'admin');

-- The licensing functions (src/sql/2x_licensing_*.sql) may not be in this build yet: then the license row
-- is written directly, active, in a period that covers the run.
SELECT to_regprocedure('celaest.issue_license(uuid,text,jsonb)') IS NOT NULL AS have_issue_license \gset
\if :have_issue_license
SELECT celaest.issue_license('00000000-0000-4000-8000-0000000000a1', 'bench') IS NOT NULL AS issued \gset
UPDATE celaest.licenses SET status = 'active', trial_ends_at = NULL
 WHERE organization_id = '00000000-0000-4000-8000-0000000000a1' AND status <> 'active';
\else
INSERT INTO celaest.licenses (organization_id, plan_id, license_key, status, current_period_start, current_period_end)
SELECT '00000000-0000-4000-8000-0000000000a1', id, 'BENCH-LICENSE-0001', 'active', now(), now() + interval '30 days'
  FROM celaest.subscription_plans WHERE code = 'bench';
\endif

INSERT INTO celaest.ai_models (provider, model_id, display_name, cost_per_1k_input, cost_per_1k_output,
                               is_default, priority)
VALUES ('openai', 'gpt-4o-mini', 'GPT-4o mini (bench)', 0.000150, 0.000600, true, 10);

SELECT celaest.add_api_key('openai', 'capture', 'sk-bench',
                           jsonb_build_object('base_url', format('http://127.0.0.1:%s/capture/v1', :'port')))
       IS NOT NULL AS capture_key_added \gset
