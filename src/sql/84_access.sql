-- CELAEST — module 84: access levels and the rights of each user role (API.md, "Who is
-- calling, and who may act for whom").
--
-- Levels are real PostgreSQL privileges. Three NOLOGIN group roles hold them:
--   celaest_service        trusted backends: act for a user they name; every function
--   celaest_authenticated  end users: identified by auth.uid() alone
--   celaest_readonly       reporting: reads every organization's non-secret rows
-- grant_access(role, level) makes a role a member of one group and also grants it the
-- level's privileges directly, so that NOINHERIT roles (Supabase's anon, authenticated
-- and service_role are NOINHERIT) hold them too. A superuser and the extension's owner are
-- always service (module 10, _level_of).
--
-- Roles belong to the cluster, not to a database: the group roles are created by the first
-- CREATE EXTENSION in the cluster and reused by later ones (another database, a reinstall);
-- DROP EXTENSION leaves them and their members (the privileges go with the objects), and a
-- reinstall grants the privileges to the members again. A level granted in one database is
-- therefore held in every database of the cluster that has CELAEST.
--
-- Rights inside an organization (users_profile.role; scopes add rights named area:action):
--   ai:run           operator, manager, admin, super_admin
--   batches:manage   manager, admin, super_admin (others' batches of the organization)
--   users:manage     manager, admin, super_admin
--   org:settings     admin, super_admin
--   platform:manage  super_admin only (plans, models, key pool, prompts, flags, config);
--                    never from scopes

DO $$
DECLARE
    v_group text;
BEGIN
    FOREACH v_group IN ARRAY ARRAY['celaest_service', 'celaest_authenticated', 'celaest_readonly'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = v_group) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN NOINHERIT', v_group);
            EXECUTE format('COMMENT ON ROLE %I IS %L', v_group,
                           'CELAEST access level ' || substr(v_group, 9)
                           || ' (celaest.grant_access); shared by every database of the cluster.');
        END IF;
    END LOOP;
END;
$$;

-- ---------------------------------------------------------------------------
-- Rights of a user role
-- ---------------------------------------------------------------------------
-- Native (src/pg/functions/access.cpp over core/access_rights.cpp, the one copy of the matrix
-- above, which the per-statement acting identity reads too). Not STRICT: the planner folds a
-- STRICT call with a NULL argument without asking whether the caller may execute it.
CREATE FUNCTION celaest._role_allows(p_role celaest.user_role, p_scopes jsonb, p_right text)
RETURNS boolean
LANGUAGE C
IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'celaest_role_allows';
COMMENT ON FUNCTION celaest._role_allows(celaest.user_role, jsonb, text) IS
    'Internal (access): whether a user role, with its scopes, has a right (ai:run, batches:manage, users:manage, org:settings, platform:manage). Scopes add any right but platform:manage.';

-- Owner's rights: the acting user's own profile, whatever row-level security shows.
-- Native (src/pg/functions/access.cpp): the rights of _role_allows, read from the statement's
-- acting identity; an unknown right is 22023.
CREATE FUNCTION celaest._acting_user_may(p_right text)
RETURNS boolean
LANGUAGE C
STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'celaest_acting_user_may';
COMMENT ON FUNCTION celaest._acting_user_may(text) IS
    'Internal (access): whether the acting CELAEST user (live profile, live organization) has a right.';

-- Rows of every organization: readonly, a service caller acting for nobody, a super_admin.
-- Native (src/pg/functions/access.cpp).
CREATE FUNCTION celaest._sees_every_org()
RETURNS boolean
LANGUAGE C
STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'celaest_sees_every_org';
COMMENT ON FUNCTION celaest._sees_every_org() IS
    'Internal (access, row-level security): true for readonly callers, service callers acting for no user, and super_admins.';

-- Native (src/pg/functions/access.cpp).
CREATE FUNCTION celaest._writes_every_org()
RETURNS boolean
LANGUAGE C
STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'celaest_writes_every_org';
COMMENT ON FUNCTION celaest._writes_every_org() IS
    'Internal (access, row-level security): true for service callers acting for no user and for super_admins.';

-- Platform objects (plans, models, key pool, prompts, flags, system config).
-- Native (src/pg/functions/access.cpp).
CREATE FUNCTION celaest._manages_platform()
RETURNS boolean
LANGUAGE C
STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'celaest_manages_platform';
COMMENT ON FUNCTION celaest._manages_platform() IS
    'Internal (access, row-level security): true for service callers and super_admins, who alone change plans, models, the key pool, prompts, flags and system config.';

-- ---------------------------------------------------------------------------
-- The acting user of a function that acts for a person
-- ---------------------------------------------------------------------------
CREATE FUNCTION celaest._acting_user_id(p_user_id uuid, p_function text)
RETURNS uuid
LANGUAGE plpgsql
STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_level text := celaest._caller_level();
    v_user  uuid;
BEGIN
    IF v_level IS NULL THEN
        RAISE EXCEPTION 'permission denied for function %', p_function
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'The calling role has no CELAEST access level.',
                  HINT = 'A superuser grants one with celaest.grant_access(role, level).';
    END IF;
    -- Below service the acting user is auth.uid() itself (or the statement's identity
    -- raises 42501 for a differing celaest.user_id): compared through the native, per-
    -- statement identity rather than calling auth.uid() again (is_feature_enabled runs
    -- this for every call that names a user).
    IF v_level <> 'service' AND p_user_id IS NOT NULL
       AND p_user_id IS DISTINCT FROM celaest._current_user_id_or_null() THEN
        RAISE EXCEPTION 'permission denied for function %: only a service caller may name the acting user', p_function
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Omit p_user_id: this role acts as auth.uid().';
    END IF;
    v_user := coalesce(CASE WHEN v_level = 'service' THEN p_user_id END, celaest._current_user_id_or_null());
    IF v_user IS NULL THEN
        RAISE EXCEPTION 'permission denied for function %: no CELAEST user', p_function
            USING ERRCODE = 'insufficient_privilege',
                  HINT = CASE WHEN v_level = 'service'
                              THEN 'Pass p_user_id, or SET LOCAL celaest.user_id = ''<users_profile.id>''.'
                              ELSE 'Call with an authenticated session (auth.uid()).' END;
    END IF;
    RETURN v_user;
END;
$$;
COMMENT ON FUNCTION celaest._acting_user_id(uuid, text) IS
    'Internal (access): the user a function acts for. Service callers: p_user_id, else celaest.user_id, else auth.uid(). Others: auth.uid() alone (a differing p_user_id or celaest.user_id is 42501). 42501 naming p_function when there is no level or no user.';

-- The user and organization an AI call or a batch runs for, with the right to run it.
-- Owner's rights: the profile and organization are read whatever row-level security shows.
-- Native (src/pg/identity/caller.cpp): the same code ai_chat, run_prompt and submit_batch run,
-- so the rules have one copy. Service callers: p_user_id, else celaest.user_id, else
-- auth.uid(); others: auth.uid() alone (a differing p_user_id is 42501); then a live profile
-- in a live organization whose role (or scope) has ai:run.
CREATE FUNCTION celaest._ai_caller(p_user_id uuid, p_function text,
                                   OUT user_id uuid, OUT organization_id uuid)
RETURNS record
LANGUAGE C
STABLE PARALLEL SAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'celaest_ai_caller';
COMMENT ON FUNCTION celaest._ai_caller(uuid, text) IS
    'Internal (access): the acting user of an AI call or batch and their organization; 42501 naming the function for no level, impersonation, no live profile or organization, or a role without ai:run.';

-- Who may see or cancel a batch. Others get "does not exist": a batch id of another
-- organization reveals nothing.
CREATE FUNCTION celaest._batch_access(p_org_id uuid, p_owner uuid, p_action text)
RETURNS boolean
LANGUAGE sql
STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
               WHEN p_action = 'read' THEN
                   p_org_id = celaest._current_org_id_or_null() OR celaest._sees_every_org()
               ELSE
                   celaest._writes_every_org()
                   OR (p_org_id = celaest._current_org_id_or_null()
                       AND (celaest._acting_user_may('batches:manage')
                            OR (p_owner = celaest._current_user_id_or_null() AND celaest._acting_user_may('ai:run'))))
           END;
$$;
COMMENT ON FUNCTION celaest._batch_access(uuid, uuid, text) IS
    'Internal (access): whether the caller may read (its organization, readonly, service, super_admin) or cancel (its own batch with ai:run, its organization''s with batches:manage, service, super_admin) a batch.';

-- ---------------------------------------------------------------------------
-- users_profile: a manager or admin manages the users of its organization, but grants no
-- role above its own, never super_admin, and no scope it does not hold.
-- ---------------------------------------------------------------------------
CREATE FUNCTION celaest._role_rank(p_role celaest.user_role)
RETURNS integer
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE p_role WHEN 'viewer' THEN 0 WHEN 'operator' THEN 1 WHEN 'manager' THEN 2
                       WHEN 'admin' THEN 3 WHEN 'super_admin' THEN 4 END;
$$;
COMMENT ON FUNCTION celaest._role_rank(celaest.user_role) IS
    'Internal (access): viewer 0, operator 1, manager 2, admin 3, super_admin 4.';

CREATE FUNCTION celaest._guard_profile_change()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me record;
BEGIN
    -- Trusted backends and super_admins are not limited.
    IF celaest._caller_level() = 'service' OR celaest._current_user_is_super_admin() THEN
        RETURN NEW;
    END IF;
    SELECT u.role, u.scopes INTO v_me
      FROM celaest.users_profile AS u
     WHERE u.id = celaest._current_user_id_or_null() AND u.deleted_at IS NULL;
    IF NOT FOUND
       OR NEW.role = 'super_admin'
       OR celaest._role_rank(NEW.role) > celaest._role_rank(v_me.role)
       OR (TG_OP = 'UPDATE' AND celaest._role_rank(OLD.role) > celaest._role_rank(v_me.role))
       OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(NEW.scopes) AS s (scope)
                   WHERE NOT coalesce(v_me.scopes ? s.scope, false)
                     AND NOT celaest._role_allows(v_me.role, '[]', s.scope)
                     AND (TG_OP = 'INSERT' OR NOT coalesce(OLD.scopes ? s.scope, false))) THEN
        RAISE EXCEPTION 'permission denied to give user % this role or these scopes', NEW.id
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'A user manages only users of a role up to its own, never super_admin, with scopes it holds.';
    END IF;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION celaest._guard_profile_change() IS
    'Internal (access, trigger): refuses a profile change by a tenant that would grant a role above its own, super_admin, or a scope it does not hold, or touch a user of a higher role.';

CREATE TRIGGER users_profile_guard_role
    BEFORE INSERT OR UPDATE OF role, scopes ON celaest.users_profile
    FOR EACH ROW EXECUTE FUNCTION celaest._guard_profile_change();

-- ---------------------------------------------------------------------------
-- The privileges of each level
-- ---------------------------------------------------------------------------
-- Functions no level executes, only the owner and superusers: those that grant access.
-- (Tenant levels get no function that writes but the few _level_volatile_functions names;
-- service, a trusted backend, gets the rest, internal ones included, since the functions it
-- calls with its own rights call them: consume_quota, issue_license, aggregate_roi, ...)
CREATE FUNCTION celaest._owner_only_functions()
RETURNS text[]
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ARRAY['grant_access', 'revoke_access', 'access_levels', '_assert_access_admin',
                 '_apply_access_privileges', '_grant_level_privileges', '_revoke_level_privileges',
                 '_boundary_probe', '_boundary_destructor_count'];
$$;
COMMENT ON FUNCTION celaest._owner_only_functions() IS
    'Internal (access): names of the functions executable by no access level (only the owner and superusers): those that grant access, and the boundary probes. Trigger functions aside.';

-- Volatile functions (they write, spend or wait) each level may call; every stable or
-- immutable function not owner-only is callable by every level (they read under the
-- caller's row-level security, or only the caller's own identity).
CREATE FUNCTION celaest._level_volatile_functions(p_level text)
RETURNS text[]
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE p_level
               WHEN 'authenticated' THEN
                   ARRAY['run_prompt', 'ai_chat', 'submit_batch', 'wait_batch', 'cancel_batch',
                         'track_event', 'config_set', '_config_set_as_super_admin', '_api_key_cooldowns',
                         'add_api_key', 'rotate_api_key', 'check_api_keys', 'increment_api_key_usage']
               -- _api_key_cooldowns only reads (shared memory): v_api_pool_status calls it.
               -- The key pool's functions are for super_admins: each refuses every other end
               -- user (42501) before it does anything (_manages_platform).
               WHEN 'readonly' THEN ARRAY['wait_batch', '_api_key_cooldowns']
           END;
$$;
COMMENT ON FUNCTION celaest._level_volatile_functions(text) IS
    'Internal (access): the volatile functions (writing, spending or waiting) an authenticated or readonly caller may execute; service may execute every function not owner-only.';

CREATE FUNCTION celaest._grant_level_privileges(p_grantee name, p_level text)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_fn       record;
    v_pool_read text;
    v_tenant   text := 'celaest.organizations, celaest.users_profile, celaest.licenses, '
                       'celaest.license_usage_log, celaest.task_batches, celaest.processed_tasks, '
                       'celaest.roi_metrics, celaest.audit_logs, celaest.telemetry_events';
    v_platform text := 'celaest.subscription_plans, celaest.ai_models, celaest.prompts_master, '
                       'celaest.feature_flags, celaest.system_config';
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA celaest TO %I', p_grantee);
    -- Reads: every table and view, the key pool without its ciphertext.
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO v_pool_read
      FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid = 'celaest.ai_api_pool'::regclass AND a.attnum > 0 AND NOT a.attisdropped
       AND a.attname <> 'key_value_encrypted';
    EXECUTE format('GRANT SELECT ON %s, %s TO %I', v_tenant, v_platform, p_grantee);
    EXECUTE format('GRANT SELECT (%s) ON celaest.ai_api_pool TO %I', v_pool_read, p_grantee);
    EXECUTE format('GRANT SELECT ON celaest.v_active_licenses, celaest.v_api_pool_status, '
                   'celaest.v_daily_task_metrics TO %I', p_grantee);
    -- Writes, bounded by row-level security (module 85).
    IF p_level = 'service' THEN
        EXECUTE format('GRANT INSERT, UPDATE, DELETE ON %s, %s TO %I', v_tenant, v_platform, p_grantee);
        -- Not metadata: it carries the key's base_url and whether a superuser set it (the
        -- outbound guard trusts only those); a key's destination changes through add_api_key.
        EXECUTE format('GRANT UPDATE (key_name, priority, weight, rate_limit_rpm, rate_limit_tpm, rate_limit_rpd, '
                       'is_active, expires_at, notes), DELETE ON celaest.ai_api_pool TO %I', p_grantee);
    ELSIF p_level = 'authenticated' THEN
        EXECUTE format('GRANT INSERT, UPDATE ON celaest.users_profile TO %I', p_grantee);
        EXECUTE format('GRANT UPDATE (name, email, phone, website, address_line1, address_line2, city, state, '
                       'postal_code, country_code, tax_id, settings, metadata) ON celaest.organizations TO %I',
                       p_grantee);
        EXECUTE format('GRANT INSERT, UPDATE, DELETE ON celaest.subscription_plans, celaest.ai_models, '
                       'celaest.prompts_master, celaest.feature_flags TO %I', p_grantee);
        -- The key pool as service has it (super_admins only: its row-level security policy);
        -- keys are added and given a secret or destination through add_api_key/rotate_api_key.
        EXECUTE format('GRANT UPDATE (key_name, priority, weight, rate_limit_rpm, rate_limit_tpm, rate_limit_rpd, '
                       'is_active, expires_at, notes), DELETE ON celaest.ai_api_pool TO %I', p_grantee);
    END IF;
    -- Functions.
    FOR v_fn IN
        SELECT p.oid::regprocedure AS sig, p.proname, p.provolatile
          FROM pg_catalog.pg_proc AS p
         WHERE p.pronamespace = 'celaest'::regnamespace
           AND p.prorettype <> 'pg_catalog.trigger'::regtype
           AND p.proname <> ALL (celaest._owner_only_functions())
    LOOP
        IF p_level = 'service'
           OR v_fn.provolatile IN ('i', 's')
           OR v_fn.proname = ANY (celaest._level_volatile_functions(p_level)) THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', v_fn.sig, p_grantee);
        END IF;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION celaest._grant_level_privileges(name, text) IS
    'Internal (access): grants a role the privileges of a level (service, authenticated, readonly) on the schema, tables, views and functions.';

CREATE FUNCTION celaest._revoke_level_privileges(p_grantee name)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA celaest FROM %I', p_grantee);
    EXECUTE format('REVOKE ALL ON ALL FUNCTIONS IN SCHEMA celaest FROM %I', p_grantee);
    EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA celaest FROM %I', p_grantee);
    EXECUTE format('REVOKE ALL ON SCHEMA celaest FROM %I', p_grantee);
END;
$$;
COMMENT ON FUNCTION celaest._revoke_level_privileges(name) IS
    'Internal (access): takes every privilege on the schema and its objects from a role.';

-- Every privilege from scratch: nothing for PUBLIC but version(); each group role and each
-- of its direct members its level's privileges. Run at install, at upgrade and by
-- grant_access.
CREATE FUNCTION celaest._apply_access_privileges()
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_role  record;
BEGIN
    EXECUTE 'REVOKE ALL ON ALL TABLES IN SCHEMA celaest FROM PUBLIC';
    EXECUTE 'REVOKE ALL ON ALL FUNCTIONS IN SCHEMA celaest FROM PUBLIC';
    EXECUTE 'REVOKE ALL ON ALL SEQUENCES IN SCHEMA celaest FROM PUBLIC';
    EXECUTE 'REVOKE ALL ON SCHEMA celaest FROM PUBLIC';
    -- Supabase's default privileges may have granted new objects to its API roles directly.
    FOR v_role IN SELECT rolname FROM pg_catalog.pg_roles
                   WHERE rolname IN ('anon', 'authenticated', 'service_role',
                                     'celaest_service', 'celaest_authenticated', 'celaest_readonly')
                      OR pg_has_role(oid, 'celaest_service', 'MEMBER')
                      OR pg_has_role(oid, 'celaest_authenticated', 'MEMBER')
                      OR pg_has_role(oid, 'celaest_readonly', 'MEMBER') LOOP
        IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = v_role.rolname)
           AND v_role.rolname <> (SELECT r.rolname FROM pg_catalog.pg_roles AS r
                                    JOIN pg_catalog.pg_extension AS e ON e.extowner = r.oid
                                   WHERE e.extname = 'celaest') THEN
            PERFORM celaest._revoke_level_privileges(v_role.rolname);
        END IF;
    END LOOP;
    EXECUTE 'GRANT USAGE ON SCHEMA celaest TO PUBLIC';
    EXECUTE 'GRANT EXECUTE ON FUNCTION celaest.version() TO PUBLIC';
    FOR v_role IN
        SELECT g.level, g.rolname AS grantee
          FROM (VALUES ('service', 'celaest_service'), ('authenticated', 'celaest_authenticated'),
                       ('readonly', 'celaest_readonly')) AS g (level, rolname)
        UNION ALL
        SELECT g.level, m.rolname
          FROM (VALUES ('service', 'celaest_service'), ('authenticated', 'celaest_authenticated'),
                       ('readonly', 'celaest_readonly')) AS g (level, rolname)
          JOIN pg_catalog.pg_roles AS gr ON gr.rolname = g.rolname
          JOIN pg_catalog.pg_auth_members AS am ON am.roleid = gr.oid
          JOIN pg_catalog.pg_roles AS m ON m.oid = am.member
    LOOP
        PERFORM celaest._grant_level_privileges(v_role.grantee, v_role.level);
    END LOOP;
END;
$$;
COMMENT ON FUNCTION celaest._apply_access_privileges() IS
    'Internal (access): resets every privilege on the schema: PUBLIC may use the schema and call version(); the group roles and their direct members get their level''s privileges.';

-- ---------------------------------------------------------------------------
-- grant_access, revoke_access, access_levels
-- ---------------------------------------------------------------------------
CREATE FUNCTION celaest._assert_access_admin(p_function text)
RETURNS void
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles AS r
                    WHERE r.oid = celaest._calling_role()
                      AND (r.rolsuper OR r.oid = (SELECT e.extowner FROM pg_catalog.pg_extension AS e
                                                   WHERE e.extname = 'celaest'))) THEN
        RAISE EXCEPTION 'permission denied for function %', p_function
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Only a superuser or the owner of the extension celaest grants access levels.';
    END IF;
END;
$$;
COMMENT ON FUNCTION celaest._assert_access_admin(text) IS
    'Internal (access): 42501 naming the function unless the caller is a superuser or the extension''s owner.';

CREATE FUNCTION celaest.revoke_access(p_role regrole)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_name  name;
    v_group text;
BEGIN
    PERFORM celaest._assert_access_admin('revoke_access');
    IF p_role IS NULL THEN
        RAISE EXCEPTION 'revoke_access: the role must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT rolname INTO v_name FROM pg_catalog.pg_roles WHERE oid = p_role;
    FOREACH v_group IN ARRAY ARRAY['celaest_service', 'celaest_authenticated', 'celaest_readonly'] LOOP
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members AS am
                    WHERE am.member = p_role AND am.roleid = (SELECT oid FROM pg_catalog.pg_roles
                                                               WHERE rolname = v_group)) THEN
            EXECUTE format('REVOKE %I FROM %I', v_group, v_name);
        END IF;
    END LOOP;
    IF v_name NOT IN ('celaest_service', 'celaest_authenticated', 'celaest_readonly') THEN
        PERFORM celaest._revoke_level_privileges(v_name);
    END IF;
END;
$$;
COMMENT ON FUNCTION celaest.revoke_access(regrole) IS
    'Takes a role''s CELAEST access level (its group membership and every privilege on the schema). Superuser or extension owner only (42501). Roles are cluster-wide: the membership goes in every database.';

CREATE FUNCTION celaest.grant_access(p_role regrole, p_level text)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_name name;
BEGIN
    PERFORM celaest._assert_access_admin('grant_access');
    IF p_role IS NULL THEN
        RAISE EXCEPTION 'grant_access: the role must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_level IS NULL OR p_level NOT IN ('service', 'authenticated', 'readonly') THEN
        RAISE EXCEPTION 'grant_access: unknown access level %', coalesce(quote_literal(p_level), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Levels are service, authenticated and readonly.';
    END IF;
    SELECT rolname INTO v_name FROM pg_catalog.pg_roles WHERE oid = p_role;
    IF v_name IN ('celaest_service', 'celaest_authenticated', 'celaest_readonly') THEN
        RAISE EXCEPTION 'grant_access: % is a CELAEST level itself', v_name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE oid = p_role) THEN
        RAISE EXCEPTION 'grant_access: % is a superuser, always service', v_name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM celaest.revoke_access(p_role);
    EXECUTE format('GRANT %I TO %I', 'celaest_' || p_level, v_name);
    PERFORM celaest._grant_level_privileges(v_name, p_level);
END;
$$;
COMMENT ON FUNCTION celaest.grant_access(regrole, text) IS
    'Gives a role a CELAEST access level: service (trusted backend: acts for the user it names), authenticated (end user: auth.uid()), readonly (reads every organization''s non-secret rows). Replaces the role''s previous level. Superuser or extension owner only (42501); 22023 for an unknown level. Roles are cluster-wide: the level holds in every database of the cluster with CELAEST.';

CREATE FUNCTION celaest.access_levels()
RETURNS TABLE (role_name name, level text, can_login boolean, inherits boolean)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.rolname, substr(g.rolname, 9), r.rolcanlogin, r.rolinherit
      FROM pg_catalog.pg_auth_members AS am
      JOIN pg_catalog.pg_roles AS g ON g.oid = am.roleid
      JOIN pg_catalog.pg_roles AS r ON r.oid = am.member
     WHERE g.rolname IN ('celaest_service', 'celaest_authenticated', 'celaest_readonly')
    UNION ALL
    SELECT r.rolname, 'service', r.rolcanlogin, r.rolinherit
      FROM pg_catalog.pg_roles AS r
     WHERE r.rolsuper
        OR r.oid = (SELECT e.extowner FROM pg_catalog.pg_extension AS e WHERE e.extname = 'celaest')
     ORDER BY 1;
$$;
COMMENT ON FUNCTION celaest.access_levels() IS
    'The roles holding a CELAEST access level: members of celaest_service, celaest_authenticated and celaest_readonly, plus superusers and the extension owner (always service).';
