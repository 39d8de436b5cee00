-- Everything in schema celaest is documented: every table, column, view, view
-- column, function and type has a COMMENT. Expect no rows.
SELECT kind, object
  FROM (SELECT CASE c.relkind WHEN 'v' THEN 'view' ELSE 'table' END AS kind,
               c.oid::regclass::text AS object
          FROM pg_class AS c
         WHERE c.relnamespace = 'celaest'::regnamespace
           AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
           AND obj_description(c.oid, 'pg_class') IS NULL
        UNION ALL
        SELECT 'column', c.oid::regclass::text || '.' || quote_ident(a.attname)
          FROM pg_class AS c
          JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
         WHERE c.relnamespace = 'celaest'::regnamespace
           AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
           AND col_description(c.oid, a.attnum) IS NULL
        UNION ALL
        SELECT 'function', p.oid::regprocedure::text
          FROM pg_proc AS p
         WHERE p.pronamespace = 'celaest'::regnamespace
           AND obj_description(p.oid, 'pg_proc') IS NULL
        UNION ALL
        SELECT 'type', t.oid::regtype::text
          FROM pg_type AS t
         WHERE t.typnamespace = 'celaest'::regnamespace
           AND t.typtype IN ('e', 'd', 'c')
           AND NOT EXISTS (SELECT 1 FROM pg_class AS c WHERE c.oid = t.typrelid AND c.relkind <> 'c')
           AND obj_description(t.oid, 'pg_type') IS NULL) AS missing
 ORDER BY kind, object;

-- And what is documented, counted (so that an empty result above cannot come from
-- an empty schema).
SELECT count(*) FILTER (WHERE c.relkind = 'r') AS tables,
       count(*) FILTER (WHERE c.relkind = 'v') AS views
  FROM pg_class AS c
 WHERE c.relnamespace = 'celaest'::regnamespace
   AND obj_description(c.oid, 'pg_class') IS NOT NULL;
SELECT count(*) AS enum_types
  FROM pg_type AS t
 WHERE t.typnamespace = 'celaest'::regnamespace AND t.typtype = 'e'
   AND obj_description(t.oid, 'pg_type') IS NOT NULL;
