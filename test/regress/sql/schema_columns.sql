-- The fifteen tables, column by column, against the data dictionary (and API.md for
-- license_usage_log and task_batches): name, type, nullability, default, in order.

-- Exactly the fifteen tables of the dictionary, and no others.
SELECT c.relname AS table_name
  FROM pg_class AS c
 WHERE c.relnamespace = 'celaest'::regnamespace AND c.relkind = 'r'
 ORDER BY c.relname;

-- Every column, tables in the dictionary's order.
SELECT c.relname AS table_name,
       a.attnum AS n,
       a.attname AS column_name,
       format_type(a.atttypid, a.atttypmod) AS type,
       CASE WHEN a.attnotnull THEN 'NOT NULL' ELSE '' END AS nullable,
       CASE WHEN a.attgenerated = 's' THEN 'GENERATED ALWAYS AS ' || pg_get_expr(d.adbin, d.adrelid) || ' STORED'
            ELSE pg_get_expr(d.adbin, d.adrelid) END AS "default"
  FROM pg_class AS c
  JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_attrdef AS d ON d.adrelid = c.oid AND d.adnum = a.attnum
 WHERE c.relnamespace = 'celaest'::regnamespace AND c.relkind = 'r'
 ORDER BY array_position(ARRAY['organizations', 'users_profile', 'subscription_plans', 'licenses',
                               'license_usage_log', 'ai_models', 'ai_api_pool', 'prompts_master',
                               'task_batches', 'processed_tasks', 'roi_metrics', 'audit_logs',
                               'telemetry_events', 'system_config', 'feature_flags']::name[], c.relname),
          c.relname, a.attnum;

-- Primary keys.
SELECT conrelid::regclass AS table_name, pg_get_constraintdef(oid) AS primary_key
  FROM pg_constraint
 WHERE connamespace = 'celaest'::regnamespace AND contype = 'p'
 ORDER BY conrelid::regclass::text;

-- updated_at is maintained on every table that has it.
SELECT c.relname AS table_name,
       EXISTS (SELECT 1 FROM pg_trigger AS t
                WHERE t.tgrelid = c.oid AND t.tgfoid = 'celaest._set_updated_at()'::regprocedure
                  AND NOT t.tgisinternal) AS has_updated_at_trigger
  FROM pg_class AS c
  JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attname = 'updated_at' AND NOT a.attisdropped
 WHERE c.relnamespace = 'celaest'::regnamespace AND c.relkind = 'r'
 ORDER BY c.relname;

-- The trigger does its job (inside a transaction: now() is frozen, so compare with it).
BEGIN;
INSERT INTO celaest.feature_flags (id, flag_key, name, updated_at)
VALUES ('f0000000-0000-4000-8000-000000000001', 'columns_test', 'Columns test', '2000-01-01');
UPDATE celaest.feature_flags SET name = 'Columns test, renamed' WHERE flag_key = 'columns_test';
SELECT updated_at = now() AS updated_at_is_now FROM celaest.feature_flags WHERE flag_key = 'columns_test';
-- The generated column.
INSERT INTO celaest.organizations (id, name, slug) VALUES ('c0000000-0000-4000-8000-000000000001', 'Col Org', 'col-org');
INSERT INTO celaest.users_profile (id, organization_id, email) VALUES ('c0000000-0000-4000-8000-0000000000a1', 'c0000000-0000-4000-8000-000000000001', 'col@example.test');
INSERT INTO celaest.processed_tasks (organization_id, user_id, tokens_input, tokens_output)
VALUES ('c0000000-0000-4000-8000-000000000001', 'c0000000-0000-4000-8000-0000000000a1', 120, 30)
RETURNING tokens_input, tokens_output, tokens_total, status, cost_usd, input_metadata, metadata;
ROLLBACK;
