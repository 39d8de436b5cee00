-- CELAEST — last module: every privilege, now that every object exists (module 84).
-- Nothing for PUBLIC but the schema and version(); the level group roles and their members
-- their levels' privileges. Where Supabase's roles exist, service_role gets service and
-- authenticated gets authenticated; anon gets nothing.
SELECT celaest._apply_access_privileges();

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'service_role' AND NOT rolsuper) THEN
        PERFORM celaest.grant_access('service_role', 'service');
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'authenticated' AND NOT rolsuper) THEN
        PERFORM celaest.grant_access('authenticated', 'authenticated');
    END IF;
END;
$$;
