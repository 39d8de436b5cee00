-- CELAEST — cache validity: the triggers that invalidate the hot paths' cached copies.
--
-- The hot paths (check_limit, consume_quota, the AI calls) keep copies of rows that rarely
-- change, in three domains:
--   licensing  which license is in force for an organization and its effective AI cap
--              (licenses, subscription_plans, system_config license.trial_limits);
--   routing    the model catalogue and the key pool's configuration and health
--              (ai_models, ai_api_pool);
--   identity   the organization of a user (users_profile).
-- A statement-level trigger on each source table marks the transaction with its domain;
-- when it commits, the domain's generation counter in shared memory moves on and every
-- backend drops its copies of that domain (src/pg/boundary/cache_validity.hpp). BEFORE the statement:
-- from its first changed row on, the transaction makes and uses no copy of the domain (an
-- AFTER trigger would leave the statement itself free to copy its own uncommitted rows).
-- ENABLE ALWAYS: they fire under session_replication_role = replica too (pg_restore, a
-- logical replication apply); copies are also re-read after 10 s whatever the generation. Per-call state
-- (usage counters, periods, expiry dates, rate-limit windows) is never copied: it is read,
-- or written, by every call, so the per-call updates name no watched column.

CREATE FUNCTION celaest._cached_data_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'celaest_cached_data_changed'
LANGUAGE C;
COMMENT ON FUNCTION celaest._cached_data_changed() IS
    'Statement-level trigger (argument: licensing, routing or identity): marks the transaction so that, when it commits, every backend drops its cached copies of that domain (src/pg/cache_validity.hpp).';
REVOKE EXECUTE ON FUNCTION celaest._cached_data_changed() FROM PUBLIC;

-- licensing -----------------------------------------------------------------
-- licenses: the columns the cached terms derive from; the per-call counter updates
-- (ai_requests_used, storage_used_bytes) and period rolls invalidate nothing.
CREATE TRIGGER licenses_invalidate_caches
    BEFORE INSERT OR DELETE OR TRUNCATE
          OR UPDATE OF id, organization_id, plan_id, status, billing_cycle, custom_limits
    ON celaest.licenses
    FOR EACH STATEMENT EXECUTE FUNCTION celaest._cached_data_changed('licensing');
CREATE TRIGGER subscription_plans_invalidate_caches
    BEFORE INSERT OR DELETE OR UPDATE OR TRUNCATE ON celaest.subscription_plans
    FOR EACH STATEMENT EXECUTE FUNCTION celaest._cached_data_changed('licensing');
-- system_config: license.trial_limits narrows the cap of trials.
CREATE TRIGGER system_config_invalidate_caches
    BEFORE INSERT OR DELETE OR UPDATE OR TRUNCATE ON celaest.system_config
    FOR EACH STATEMENT EXECUTE FUNCTION celaest._cached_data_changed('licensing');

-- routing -------------------------------------------------------------------
CREATE TRIGGER ai_models_invalidate_caches
    BEFORE INSERT OR DELETE OR UPDATE OR TRUNCATE ON celaest.ai_models
    FOR EACH STATEMENT EXECUTE FUNCTION celaest._cached_data_changed('routing');
-- ai_api_pool: everything but the usage counters each call bumps (usage_count, tokens_used,
-- last_used_at), the health checker's stamp (last_health_check) and updated_at. A failure
-- (consecutive_failures) and a change of health do invalidate: they are rare.
CREATE TRIGGER ai_api_pool_invalidate_caches
    BEFORE INSERT OR DELETE OR TRUNCATE
          OR UPDATE OF id, provider, key_name, key_value_encrypted, key_hint, is_active, is_healthy,
                       consecutive_failures, rate_limit_rpm, rate_limit_tpm, rate_limit_rpd, priority,
                       weight, notes, metadata, created_at, expires_at
    ON celaest.ai_api_pool
    FOR EACH STATEMENT EXECUTE FUNCTION celaest._cached_data_changed('routing');

-- identity ------------------------------------------------------------------
-- Only existing users' organizations are copied: a new user changes no copy (sign-ups are
-- frequent), a move, a soft delete or a removal does.
CREATE TRIGGER users_profile_invalidate_caches
    BEFORE DELETE OR TRUNCATE OR UPDATE OF id, organization_id, deleted_at
    ON celaest.users_profile
    FOR EACH STATEMENT EXECUTE FUNCTION celaest._cached_data_changed('identity');

-- Fire in every replication role (see the header).
ALTER TABLE celaest.licenses ENABLE ALWAYS TRIGGER licenses_invalidate_caches;
ALTER TABLE celaest.subscription_plans ENABLE ALWAYS TRIGGER subscription_plans_invalidate_caches;
ALTER TABLE celaest.system_config ENABLE ALWAYS TRIGGER system_config_invalidate_caches;
ALTER TABLE celaest.ai_models ENABLE ALWAYS TRIGGER ai_models_invalidate_caches;
ALTER TABLE celaest.ai_api_pool ENABLE ALWAYS TRIGGER ai_api_pool_invalidate_caches;
ALTER TABLE celaest.users_profile ENABLE ALWAYS TRIGGER users_profile_invalidate_caches;
