-- CELAEST — module 78: invalidation of the per-backend caches.
--
-- The hot paths (check_limit, consume_quota, the AI calls) keep per-backend copies of rows
-- that rarely change: which license is in force for an organization and its effective AI
-- request cap. A statement-level trigger on each source table marks the transaction; when
-- it commits, a generation counter in shared memory moves on and every backend drops its
-- copies (src/pg/cache_validity.hpp). Per-call state (counters, periods, expiry dates) is
-- never cached: it is read, or written, by every call.

CREATE FUNCTION celaest._cached_data_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'celaest_cached_data_changed'
LANGUAGE C;
COMMENT ON FUNCTION celaest._cached_data_changed() IS
    'Statement-level trigger: marks the transaction so that, when it commits, every backend drops its cached copies of license terms (src/pg/cache_validity.hpp).';
REVOKE EXECUTE ON FUNCTION celaest._cached_data_changed() FROM PUBLIC;

-- licenses: only the columns the cached terms derive from. The per-call counter updates
-- (ai_requests_used, storage_used_bytes) and period rolls do not invalidate anything.
CREATE TRIGGER licenses_invalidate_caches
    AFTER INSERT OR DELETE OR TRUNCATE
          OR UPDATE OF id, organization_id, plan_id, status, billing_cycle, custom_limits
    ON celaest.licenses
    FOR EACH STATEMENT EXECUTE FUNCTION celaest._cached_data_changed();

-- subscription_plans: limits (the cap); any change, they are rare.
CREATE TRIGGER subscription_plans_invalidate_caches
    AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE ON celaest.subscription_plans
    FOR EACH STATEMENT EXECUTE FUNCTION celaest._cached_data_changed();

-- system_config: license.trial_limits narrows the cap of trials.
CREATE TRIGGER system_config_invalidate_caches
    AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE ON celaest.system_config
    FOR EACH STATEMENT EXECUTE FUNCTION celaest._cached_data_changed();
