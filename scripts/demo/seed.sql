-- Demo data: one organization, its admin, a plan and license, a model per provider, prompts.
\echo '== seeding a demo organization, plan, license, models and prompts'
SET celaest.user_id = '';
INSERT INTO celaest.organizations (id, name, slug, settings)
VALUES ('d0000000-0000-4000-8000-000000000001', 'Demo Logistics', 'demo-logistics',
        '{"roi": {"hourly_rate": 40}}')
ON CONFLICT (id) DO NOTHING;
INSERT INTO celaest.subscription_plans (code, name, price_monthly, limits)
VALUES ('demo-pro', 'Pro (demo)', 99,
        '{"max_users": 10, "max_ai_requests_per_month": 1000, "max_storage_gb": 5, "max_concurrent_tasks": 4, "max_batch_size": 50}')
ON CONFLICT (code) DO NOTHING;
SELECT format('   license %s: %s', r->>'license_id', r->>'status')
  FROM celaest.issue_license('d0000000-0000-4000-8000-000000000001', 'demo-pro') r \g (tuples_only)
INSERT INTO celaest.users_profile (id, organization_id, email, display_name, role)
VALUES ('d0000000-0000-4000-8000-0000000000a1', 'd0000000-0000-4000-8000-000000000001',
        'ops@demo.test', 'Ops Lead', 'admin')
ON CONFLICT (id) DO NOTHING;
INSERT INTO celaest.ai_models (provider, model_id, display_name, cost_per_1k_input, cost_per_1k_output, is_default, priority)
VALUES ('openai', 'gpt-4o-mini', 'GPT-4o mini', 0.000150, 0.000600, true, 100),
       ('anthropic', 'claude-3-5-haiku-latest', 'Claude 3.5 Haiku', 0.000800, 0.004000, false, 90),
       ('gemini', 'gemini-2.0-flash', 'Gemini 2.0 Flash', 0.000100, 0.000400, false, 80),
       ('groq', 'llama-3.3-70b-versatile', 'Llama 3.3 70B (Groq)', 0.000590, 0.000790, false, 70),
       ('deepseek', 'deepseek-chat', 'DeepSeek Chat', 0.000270, 0.001100, false, 60),
       ('local', 'llama3.2', 'Llama 3.2 (Ollama)', NULL, NULL, false, 10)
ON CONFLICT (provider, model_id) DO NOTHING;
INSERT INTO celaest.prompts_master (slug, name, category, system_prompt, user_prompt_template, variables,
                                    is_default, metadata)
VALUES ('invoice-extract', 'Invoice extraction', 'finance',
        'You extract invoice fields and answer in JSON.',
        'Extract vendor, total and due date from: {{invoice_text}}', '["invoice_text"]', true,
        '{"manual_minutes": 6}'),
       ('ticket-triage', 'Support ticket triage', 'support',
        'You classify support tickets for {{company}}.',
        'Ticket: {{ticket}}\nAnswer with a category and an urgency.', '["company", "ticket"]', true,
        '{"manual_minutes": 3}')
ON CONFLICT DO NOTHING;
