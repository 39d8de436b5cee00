-- Benchmark data for test/bench/batch_bench.sh (run by batch/in_cluster.sh, psql -v port=...).
-- One organization and admin, an active license on a plan without caps (-1: unlimited AI
-- requests, concurrent tasks and batch size), one priced OpenAI model, one key (no rate
-- limits) whose base_url is the slow nginx, and the prompt `Echo {{word}}`.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS celaest CASCADE;

INSERT INTO celaest.subscription_plans (code, name, limits)
VALUES ('batchbench', 'Batch benchmark',
        '{"max_users": 100, "max_ai_requests_per_month": -1, "max_storage_gb": 10,
          "max_concurrent_tasks": -1, "max_batch_size": -1}');
INSERT INTO celaest.organizations (id, name, slug)
VALUES ('00000000-0000-4000-8000-0000000000a2', 'Batch bench', 'batch-bench');
INSERT INTO celaest.users_profile (id, organization_id, email, role)
VALUES ('00000000-0000-4000-8000-0000000000b2', '00000000-0000-4000-8000-0000000000a2',
        'batch-bench@example.com', 'admin');
SELECT celaest.issue_license('00000000-0000-4000-8000-0000000000a2', 'batchbench') IS NOT NULL AS issued \gset
UPDATE celaest.licenses SET status = 'active', trial_ends_at = NULL
 WHERE organization_id = '00000000-0000-4000-8000-0000000000a2' AND status <> 'active';

INSERT INTO celaest.ai_models (provider, model_id, display_name, cost_per_1k_input, cost_per_1k_output,
                               is_default, priority)
VALUES ('openai', 'gpt-4o-mini', 'GPT-4o mini (bench)', 0.000150, 0.000600, true, 10);
SELECT celaest.add_api_key('openai', 'bench', 'sk-bench',
                           jsonb_build_object('base_url', format('http://127.0.0.1:%s/v1', :'port')))
       IS NOT NULL AS key_added \gset
INSERT INTO celaest.prompts_master (slug, name, category, system_prompt, user_prompt_template, variables,
                                    temperature, max_tokens)
VALUES ('bench-echo', 'Batch bench echo', 'bench', 'You answer benchmarks.', 'Echo {{word}}', '["word"]', 0.2, 64);
