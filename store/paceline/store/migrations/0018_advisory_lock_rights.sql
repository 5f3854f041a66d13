-- paceline: requires superuser
--
-- Only the services that own a session-level lock may take bigint advisory
-- locks: the migration lock (paceline_migrate, before it becomes the owner)
-- and the scheduler's leader lock and the rollup lock (paceline_worker).
-- Anyone else, a person session or SQL injected into the dashboard among
-- them, could otherwise take those keys and stall migrations or the
-- scheduler silently. The two-int forms stay open to all: they use another
-- key space (objsubid 2) and the pacing engine's per-patient lock, taken in
-- clinician sessions too, is one. paceline.store.locks still names any
-- session holding a key that is not the service it belongs to (a superuser,
-- or a worker's psql). The functions belong to the bootstrap superuser, so
-- only a superuser can change who may call them.
DO $$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY[
        'pg_advisory_lock(bigint)', 'pg_advisory_lock_shared(bigint)',
        'pg_try_advisory_lock(bigint)', 'pg_try_advisory_lock_shared(bigint)',
        'pg_advisory_xact_lock(bigint)', 'pg_advisory_xact_lock_shared(bigint)',
        'pg_try_advisory_xact_lock(bigint)', 'pg_try_advisory_xact_lock_shared(bigint)'
    ] LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION pg_catalog.%s FROM PUBLIC', f);
        EXECUTE format(
            'GRANT EXECUTE ON FUNCTION pg_catalog.%s TO paceline_owner, paceline_migrate,'
            ' paceline_worker', f);
    END LOOP;
END
$$;
