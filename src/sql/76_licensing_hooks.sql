-- CELAEST — module 76: licensing enforcement on tables created after module 26
-- (processed_tasks in module 40, system_config in module 70). The functions are in
-- modules 25/26; this file only attaches them.

-- ---------------------------------------------------------------------------
-- max_concurrent_tasks: tasks in flight (processing or retrying) per organization
-- ---------------------------------------------------------------------------
-- A task holds a slot while it is processing or retrying (a retry has not let go of
-- its slot); it takes one when it enters either state from any other (or is
-- inserted in it), and gives it back by leaving them.
-- SECURITY DEFINER, like enforce_max_users (module 26): the count must see every task.
CREATE FUNCTION celaest.enforce_max_concurrent_tasks()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- The WHEN clause admits only rows that end up in flight.
    IF TG_OP = 'UPDATE' AND OLD.status IN ('processing', 'retrying')
       AND OLD.organization_id = NEW.organization_id THEN
        RETURN NEW;                     -- already holds its slot
    END IF;
    PERFORM celaest.reserve_counted(NEW.organization_id, 'max_concurrent_tasks', 1, true, NEW.id);
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION celaest.enforce_max_concurrent_tasks() IS
    'BEFORE INSERT/UPDATE trigger on processed_tasks: a task entering processing or retrying must fit max_concurrent_tasks of its organization''s license (LC010), and the license must be usable (LC001-LC004).';

REVOKE EXECUTE ON FUNCTION celaest.enforce_max_concurrent_tasks() FROM PUBLIC;

CREATE TRIGGER processed_tasks_enforce_max_concurrent_tasks
    BEFORE INSERT OR UPDATE OF status, organization_id ON celaest.processed_tasks
    FOR EACH ROW
    WHEN (NEW.status IN ('processing', 'retrying'))
    EXECUTE FUNCTION celaest.enforce_max_concurrent_tasks();

-- The admission count reads only the few tasks in flight of one organization.
CREATE INDEX processed_tasks_in_flight_idx ON celaest.processed_tasks (organization_id)
    WHERE status IN ('processing', 'retrying');

-- ---------------------------------------------------------------------------
-- system_config 'license.trial_limits' must be a valid limits object
-- ---------------------------------------------------------------------------
CREATE FUNCTION celaest.check_trial_limits_setting()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM celaest.validate_limits(NEW.value, 'system_config license.trial_limits');
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION celaest.check_trial_limits_setting() IS
    'BEFORE INSERT/UPDATE trigger on system_config: the value of license.trial_limits must be an object of known limit keys with integer values >= -1 (22023).';

CREATE TRIGGER system_config_check_trial_limits
    BEFORE INSERT OR UPDATE OF key, value ON celaest.system_config
    FOR EACH ROW
    WHEN (NEW.key = 'license.trial_limits')
    EXECUTE FUNCTION celaest.check_trial_limits_setting();
