-- Demo calls: one per provider, a JSON-mode extraction, a retried transient fault, a batch.
\pset footer off
SET celaest.user_id = 'd0000000-0000-4000-8000-0000000000a1';
\echo
\echo '== one call per provider (ai_chat)'
SELECT r->>'provider' AS provider, r->>'model' AS model, r->>'status' AS status,
       (r->>'tokens_input')::int AS tok_in, (r->>'tokens_output')::int AS tok_out,
       (r->>'cost_usd')::numeric AS cost_usd, (r->>'execution_time_ms')::int AS ms,
       left(coalesce(r->>'output_text', r->>'error_code'), 48) AS output
  FROM (VALUES ('gpt-4o-mini'), ('claude-3-5-haiku-latest'), ('gemini-2.0-flash'),
               ('llama-3.3-70b-versatile'), ('deepseek-chat'), ('llama3.2')) AS m(model),
       LATERAL celaest.ai_chat('[{"role":"system","content":"Be brief."},
                                 {"role":"user","content":"Say hello to the operations team."}]',
                               m.model, NULL, '{"max_tokens": 64}') AS r;

\echo
\echo '== run_prompt in JSON mode (invoice-extract)'
SELECT r->>'status' AS status, r->>'model' AS model, r->'output_json' AS output_json,
       (r->>'cost_usd')::numeric AS cost_usd
  FROM celaest.run_prompt('invoice-extract',
         '{"invoice_text": "ACME Corp, total 1,250.00 EUR, due 2026-12-31"}', NULL, '{"json": true}') r;

\echo
\echo '== a transient 503 from the provider, retried with back-off (mock directive)'
SELECT r->>'status' AS status, (r->>'retry_count')::int AS retries, (r->>'ai_time_ms')::int AS ai_ms
  FROM celaest.ai_chat('[{"role":"user","content":"Retry me [[mock:fail-then-ok=2]]"}]') r;

\echo
\echo '== a batch of 6 tickets, run in the background by the batch runner'
SELECT celaest.submit_batch('ticket-triage',
         '[{"company":"Demo","ticket":"Parcel lost"},{"company":"Demo","ticket":"Invoice twice"},
           {"company":"Demo","ticket":"Address change"},{"company":"Demo","ticket":"Late delivery"},
           {"company":"Demo","ticket":"Refund please"},{"company":"Demo","ticket":"Damaged box"}]') AS batch_id \gset
SELECT s->>'status' AS status, s->>'total' AS total, s->>'completed' AS completed, s->>'failed' AS failed
  FROM celaest.wait_batch(:'batch_id', '60 seconds') s;

\echo
\echo '== license usage (v_active_licenses)'
SELECT organization_name, plan_code, status, ai_requests_used, ai_requests_remaining
  FROM celaest.v_active_licenses;

\echo
\echo '== API key pool (v_api_pool_status)'
SELECT provider, keys_total, keys_healthy, usage_count, tokens_used FROM celaest.v_api_pool_status
 WHERE keys_total > 0 ORDER BY provider;

\echo
\echo '== ROI today (roi_summary)'
SELECT s->>'tasks_completed' AS completed, s->>'tasks_failed' AS failed, s->>'time_saved_minutes' AS minutes_saved,
       s->>'cost_ai' AS cost_ai, s->>'money_saved' AS money_saved
  FROM celaest.roi_summary('d0000000-0000-4000-8000-000000000001', current_date, current_date) s;

\echo
\echo '== background workers'
SELECT worker, pid IS NOT NULL AS running, database, state, runs FROM celaest.worker_status();
