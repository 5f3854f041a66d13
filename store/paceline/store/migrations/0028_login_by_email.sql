-- Single sign-on (OIDC through `st.login`): the account an identity
-- provider's verified e-mail address names, for the login role only.
--
-- paceline_login_lookup matches a username or an e-mail and returns the
-- password hash; a sign-on needs neither. Usernames may contain '@', so a
-- provider vouching for "x@y" must not reach an account whose *username* is
-- "x@y" but whose e-mail is someone else's: this function matches the e-mail
-- column alone (case-insensitively, as its unique index does). It returns no
-- hash, and it records the sign-in (last_login_at) only when the account may
-- sign in at `at`: not disabled by an administrator, not inside a lockout.
-- The failure count is left alone: it counts wrong passwords, and a sign-on
-- proves nothing about the password. Like the other login functions it is
-- the login role's only (migration 0025); no dashboard session can call it.
-- pg_temp is named last in its search_path (as migration 0026 made every
-- definer function do) so that no temporary object can shadow what it uses.
CREATE FUNCTION paceline_login_by_email(address text, at timestamptz)
    RETURNS TABLE (
        account_id bigint, username text, role text, clinician_id bigint, patient_id bigint,
        locked_until timestamptz, disabled boolean, display_name text
    )
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    RETURN QUERY
    WITH found AS (
        SELECT a.account_id FROM public.account a
        WHERE a.email IS NOT NULL AND lower(a.email) = lower(address)
    ), signed_in AS (
        UPDATE public.account a SET last_login_at = at
        FROM found f
        WHERE a.account_id = f.account_id AND NOT a.disabled
          AND (a.locked_until IS NULL OR a.locked_until <= at)
        RETURNING a.account_id
    )
    SELECT a.account_id, a.username, a.role, a.clinician_id, a.patient_id, a.locked_until,
           a.disabled, coalesce(c.display_name, p.display_name, a.username)
    FROM public.account a
    JOIN found f ON f.account_id = a.account_id
    LEFT JOIN public.clinician c ON c.clinician_id = a.clinician_id
    LEFT JOIN public.patient p ON p.patient_id = a.patient_id;
END
$$;

REVOKE ALL ON FUNCTION paceline_login_by_email(text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION paceline_login_by_email(text, timestamptz) TO paceline_login;
