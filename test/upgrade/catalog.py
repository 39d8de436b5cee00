"""Every object of the celaest schema, described so that two databases can be compared.

snapshot(conn) returns {(kind, name): description}. Two databases hold the same schema
exactly when their snapshots are equal: each description carries what PostgreSQL would
dump for the object (definition, owner, privileges, comment), with OIDs left out.
"""

# kind -> query returning (name, description) rows. Owners and ACLs name roles, which are
# the same in two databases of one cluster.
QUERIES = {
    "schema": """
        SELECT n.nspname, concat_ws(' | ', pg_get_userbyid(n.nspowner), n.nspacl::text,
                                    obj_description(n.oid, 'pg_namespace'))
          FROM pg_namespace n WHERE n.nspname = 'celaest'""",
    "extension": """
        SELECT e.extname, concat_ws(' | ', e.extversion, e.extrelocatable,
               (SELECT string_agg(c.relname || coalesce(' WHERE ' || nullif(cond, ''), ''), ', ' ORDER BY c.relname)
                  FROM unnest(e.extconfig, coalesce(e.extcondition, array_fill(''::text, ARRAY[cardinality(e.extconfig)])))
                       AS x(reloid, cond)
                  JOIN pg_class c ON c.oid = x.reloid))
          FROM pg_extension e WHERE e.extname = 'celaest'""",
    "member": """
        SELECT pg_describe_object(d.classid, d.objid, d.objsubid), ''
          FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid AND d.refclassid = 'pg_extension'::regclass
         WHERE e.extname = 'celaest' AND d.deptype = 'e'""",
    "relation": """
        SELECT c.relname, concat_ws(' | ', c.relkind, c.relpersistence, c.reloptions::text,
               'rls=' || c.relrowsecurity, 'force_rls=' || c.relforcerowsecurity, 'replident=' || c.relreplident::text,
               pg_get_userbyid(c.relowner), c.relacl::text, obj_description(c.oid, 'pg_class'))
          FROM pg_class c
         WHERE c.relnamespace = 'celaest'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')""",
    "view": """
        SELECT c.relname, pg_get_viewdef(c.oid)
          FROM pg_class c WHERE c.relnamespace = 'celaest'::regnamespace AND c.relkind IN ('v', 'm')""",
    "column": """
        SELECT c.relname || '.' || a.attname,
               concat_ws(' | ', format_type(a.atttypid, a.atttypmod), CASE WHEN a.attnotnull THEN 'NOT NULL' END,
                         'default ' || pg_get_expr(ad.adbin, ad.adrelid), nullif(a.attidentity, ''),
                         nullif(a.attgenerated, ''), 'collation ' || nullif(co.collname, 'default'),
                         'position ' || (SELECT count(*) FROM pg_attribute b
                                          WHERE b.attrelid = a.attrelid AND b.attnum > 0
                                            AND NOT b.attisdropped AND b.attnum <= a.attnum),
                         a.attacl::text, col_description(c.oid, a.attnum))
          FROM pg_attribute a
          JOIN pg_class c ON c.oid = a.attrelid
          LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
          LEFT JOIN pg_collation co ON co.oid = a.attcollation
         WHERE c.relnamespace = 'celaest'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
           AND a.attnum > 0 AND NOT a.attisdropped""",
    "constraint": """
        SELECT coalesce(c.relname, t.typname) || '.' || k.conname,
               concat_ws(' | ', pg_get_constraintdef(k.oid), 'validated=' || k.convalidated,
                         obj_description(k.oid, 'pg_constraint'))
          FROM pg_constraint k
          LEFT JOIN pg_class c ON c.oid = k.conrelid
          LEFT JOIN pg_type t ON t.oid = k.contypid
         WHERE k.connamespace = 'celaest'::regnamespace""",
    "index": """
        SELECT c.relname, concat_ws(' | ', pg_get_indexdef(c.oid), obj_description(c.oid, 'pg_class'))
          FROM pg_class c WHERE c.relnamespace = 'celaest'::regnamespace AND c.relkind IN ('i', 'I')""",
    "function": """
        SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
               concat_ws(E'\\n', pg_get_functiondef(p.oid), 'owner ' || pg_get_userbyid(p.proowner),
                         'acl ' || coalesce(p.proacl::text, '(default)'),
                         'comment ' || obj_description(p.oid, 'pg_proc'))
          FROM pg_proc p WHERE p.pronamespace = 'celaest'::regnamespace AND p.prokind IN ('f', 'p', 'w')""",
    "aggregate": """
        SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
               concat_ws(' | ', pg_get_userbyid(p.proowner), p.proacl::text, obj_description(p.oid, 'pg_proc'))
          FROM pg_proc p WHERE p.pronamespace = 'celaest'::regnamespace AND p.prokind = 'a'""",
    "trigger": """
        SELECT c.relname || '.' || g.tgname,
               concat_ws(' | ', pg_get_triggerdef(g.oid), 'enabled=' || g.tgenabled::text,
                         obj_description(g.oid, 'pg_trigger'))
          FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
         WHERE c.relnamespace = 'celaest'::regnamespace AND NOT g.tgisinternal""",
    "policy": """
        SELECT c.relname || '.' || p.polname,
               concat_ws(' | ', p.polcmd, CASE WHEN p.polpermissive THEN 'permissive' ELSE 'restrictive' END,
                         (SELECT string_agg(CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r) END, ',' ORDER BY 1)
                            FROM unnest(p.polroles) r),
                         'using ' || pg_get_expr(p.polqual, p.polrelid),
                         'check ' || pg_get_expr(p.polwithcheck, p.polrelid),
                         obj_description(p.oid, 'pg_policy'))
          FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
         WHERE c.relnamespace = 'celaest'::regnamespace""",
    "rule": """
        SELECT c.relname || '.' || r.rulename, pg_get_ruledef(r.oid)
          FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
         WHERE c.relnamespace = 'celaest'::regnamespace AND r.rulename <> '_RETURN'""",
    "type": """
        SELECT t.typname,
               concat_ws(' | ', t.typtype, pg_get_userbyid(t.typowner), t.typacl::text,
                         (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
                            FROM pg_enum e WHERE e.enumtypid = t.oid),
                         obj_description(t.oid, 'pg_type'))
          FROM pg_type t
         WHERE t.typnamespace = 'celaest'::regnamespace
           AND (t.typtype IN ('e', 'd', 'r', 'm')
                OR (t.typtype = 'c' AND (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c'))""",
    "sequence": """
        SELECT c.relname, concat_ws(' | ', format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement,
                                    s.seqmax, s.seqmin, s.seqcache, s.seqcycle)
          FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
         WHERE c.relnamespace = 'celaest'::regnamespace""",
    "default_acl": """
        SELECT d.defaclobjtype::text, d.defaclacl::text
          FROM pg_default_acl d WHERE d.defaclnamespace = 'celaest'::regnamespace""",
}


def snapshot(conn):
    objects = {}
    with conn.cursor() as cur:
        for kind, query in QUERIES.items():
            cur.execute(query)
            for name, description in cur.fetchall():
                objects[(kind, name)] = description
    return objects


def differences(expected, actual):
    """Human-readable lines, one per object that is missing, extra or different."""
    lines = []
    for key in sorted(set(expected) | set(actual)):
        kind, name = key
        if key not in actual:
            lines.append("missing %s %s:\n    %s" % (kind, name, expected[key].replace("\n", "\n    ")))
        elif key not in expected:
            lines.append("extra %s %s:\n    %s" % (kind, name, actual[key].replace("\n", "\n    ")))
        elif expected[key] != actual[key]:
            lines.append("different %s %s:\n  fresh install:\n    %s\n  upgraded:\n    %s"
                         % (kind, name, expected[key].replace("\n", "\n    "), actual[key].replace("\n", "\n    ")))
    return lines
