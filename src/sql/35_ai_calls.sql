-- AI calls (native, libcurl): run_prompt and ai_chat. SECURITY DEFINER so that application
-- roles can call them without rights on the key pool or the task tables; the caller is
-- still identified by celaest.user_id / auth.uid() (API.md "Who is calling").

CREATE FUNCTION celaest.run_prompt(p_prompt text, p_variables jsonb DEFAULT '{}',
                                   p_user_id uuid DEFAULT NULL, p_options jsonb DEFAULT '{}')
    RETURNS jsonb
    AS 'MODULE_PATHNAME', 'celaest_run_prompt'
    LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION celaest.run_prompt(text, jsonb, uuid, jsonb) IS
    'Runs a prompt (slug or slug@version) rendered with {{variables}}: enforces the license, routes model and key, calls the provider, records a processed_tasks row and returns {task_id, status, output_text, output_json, provider, model, tokens_input, tokens_output, cost_usd, execution_time_ms, ai_time_ms, retry_count, error_code, error_message}.';

CREATE FUNCTION celaest.ai_chat(p_messages jsonb, p_model text DEFAULT NULL,
                                p_user_id uuid DEFAULT NULL, p_options jsonb DEFAULT '{}')
    RETURNS jsonb
    AS 'MODULE_PATHNAME', 'celaest_ai_chat'
    LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION celaest.ai_chat(jsonb, text, uuid, jsonb) IS
    'Chat completion over [{"role":"system|user|assistant","content":"..."}] with the same routing, accounting and result as run_prompt.';
