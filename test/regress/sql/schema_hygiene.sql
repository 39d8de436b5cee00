-- Schema hygiene: rules every function of schema celaest follows (00_prelude.sql, "Function
-- names"). The lists below are pinned on purpose: a new function shows up here, and whoever
-- adds it decides its labels and who may call it.
--
-- The boundary test probes (_boundary_%) are left out: test code, not part of the schema's
-- contract (test/regress/sql/boundary.sql).

-- The public API (README, "SQL API"; API.md): plain names. Every other function starts with
-- "_". Expect no rows.
CREATE TEMP TABLE public_api (name text PRIMARY KEY);
INSERT INTO public_api VALUES
    ('current_user_id'), ('current_org_id'), ('version'), ('worker_status'),
    ('generate_license_key'), ('increment_api_key_usage'), ('log_audit'),
    ('run_prompt'), ('ai_chat'), ('submit_batch'), ('batch_status'), ('wait_batch'), ('cancel_batch'),
    ('add_api_key'), ('rotate_api_key'), ('check_api_keys'),
    ('issue_license'), ('validate_license'), ('current_license'), ('effective_limits'), ('check_limit'),
    ('consume_quota'), ('set_license_status'), ('refresh_licenses'),
    ('aggregate_roi'), ('roi_summary'),
    ('track_event'), ('config_get'), ('config_set'), ('is_feature_enabled'),
    ('grant_access'), ('revoke_access'), ('access_levels');

SELECT p.oid::regprocedure AS unprefixed_function_outside_the_api
  FROM pg_proc AS p
 WHERE p.pronamespace = 'celaest'::regnamespace
   AND p.proname NOT LIKE '\_%'
   AND p.proname NOT IN (SELECT name FROM public_api)
 ORDER BY p.oid::regprocedure::text;

-- Every API name is installed. Expect no rows.
SELECT a.name AS missing_api_function
  FROM public_api AS a
 WHERE NOT EXISTS (SELECT 1 FROM pg_proc AS p
                    WHERE p.pronamespace = 'celaest'::regnamespace AND p.proname = a.name)
 ORDER BY 1;

-- Every SECURITY DEFINER function pins search_path (a definer's rights must not depend on
-- the caller's search_path). Expect no rows.
SELECT p.oid::regprocedure AS definer_without_search_path
  FROM pg_proc AS p
 WHERE p.pronamespace = 'celaest'::regnamespace
   AND p.prosecdef
   AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) AS c WHERE c LIKE 'search\_path=%')
 ORDER BY p.oid::regprocedure::text;

-- Volatility and PARALLEL are chosen, not defaulted: the default of both (VOLATILE,
-- PARALLEL UNSAFE) is pinned here for every function that has it, so a new function that
-- forgot its labels appears in this list. Trigger functions are left out (the labels do not
-- apply to them).
SELECT p.oid::regprocedure AS function, p.provolatile AS volatility, p.proparallel AS parallel
  FROM pg_proc AS p
 WHERE p.pronamespace = 'celaest'::regnamespace
   AND p.prorettype <> 'trigger'::regtype
   AND (p.provolatile = 'v' OR p.proparallel = 'u')
   AND p.proname NOT LIKE '\_boundary\_%'
 ORDER BY p.oid::regprocedure::text;

-- Who may run what: the functions PUBLIC may execute. The API ones that are not here are
-- administrative (EXECUTE revoked: grant it to the roles that manage keys or usage); the
-- internal ones that are here are needed by a row-level security policy, a view, a trigger
-- or an API function that every role may call (their definitions say which).
SELECT p.oid::regprocedure AS executable_by_public,
       CASE WHEN p.proname LIKE '\_%' THEN 'internal' ELSE 'api' END AS kind
  FROM pg_proc AS p
 WHERE p.pronamespace = 'celaest'::regnamespace
   AND EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) AS a
                WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')
 ORDER BY 2, p.oid::regprocedure::text;

-- Internal trigger functions are not executable by PUBLIC (a trigger does not need it).
-- Expect no rows.
SELECT p.oid::regprocedure AS trigger_function_executable_by_public
  FROM pg_proc AS p
 WHERE p.pronamespace = 'celaest'::regnamespace
   AND p.prorettype = 'trigger'::regtype
   AND EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) AS a
                WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')
 ORDER BY p.oid::regprocedure::text;

DROP TABLE public_api;
