-- Every SECURITY DEFINER function names pg_temp last in its search_path.
--
-- A search_path that does not list pg_temp searches the caller's temporary
-- schema first, before pg_catalog, for relation and type names ("Writing
-- SECURITY DEFINER Functions Safely", PostgreSQL documentation, CREATE
-- FUNCTION). The two login functions of 0007 said `pg_catalog, public` only:
-- a caller with TEMP on the database (PUBLIC has it by default) could create
-- pg_temp.timestamptz as a domain whose CHECK calls a function of theirs, and
-- paceline_login_outcome, declaring a timestamptz variable, would run that
-- function with its owner's rights. Every other definer function already ends
-- in pg_temp (tests/security/test_schema_model.py now checks all of them).
ALTER FUNCTION paceline_login_lookup(text)
    SET search_path = pg_catalog, public, pg_temp;
ALTER FUNCTION paceline_login_outcome(bigint, boolean, timestamptz, integer, interval, text)
    SET search_path = pg_catalog, public, pg_temp;
