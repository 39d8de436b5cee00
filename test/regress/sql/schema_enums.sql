-- The six enumerated types of the data dictionary, values in its order.
SELECT t.typname AS enum_type,
       string_agg(e.enumlabel, ', ' ORDER BY e.enumsortorder) AS "values"
  FROM pg_type AS t
  JOIN pg_enum AS e ON e.enumtypid = t.oid
 WHERE t.typnamespace = 'celaest'::regnamespace
 GROUP BY t.typname
 ORDER BY array_position(ARRAY['user_role', 'license_status', 'ai_provider', 'task_status',
                               'audit_action', 'billing_cycle']::name[], t.typname), t.typname;

-- The order is the order of comparison.
SELECT 'super_admin'::celaest.user_role < 'viewer'::celaest.user_role AS super_admin_sorts_first,
       enum_first(NULL::celaest.license_status) AS first_license_status,
       enum_last(NULL::celaest.task_status) AS last_task_status;

-- A value outside the list is refused.
\set SHOW_CONTEXT never
SELECT 'owner'::celaest.user_role;
SELECT 'paused'::celaest.license_status;
SELECT 'mistral'::celaest.ai_provider;
SELECT 'queued'::celaest.task_status;
SELECT 'approve'::celaest.audit_action;
SELECT 'weekly'::celaest.billing_cycle;
