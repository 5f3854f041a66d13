-- Logins for the dashboard: one account per person, with an argon2id password
-- hash (PHC string), a role, the clinician or patient it speaks for, and the
-- lockout state after repeated failed logins.
--
-- Nobody reads this table directly except the owner (the CLI's
-- `paceline accounts`): the dashboard's service role reaches it only through
-- the two SECURITY DEFINER functions below, one username at a time, and
-- person roles get nothing at all.

CREATE TABLE account (
    account_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username            text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9_.@-]{2,64}$'),
    email               text CHECK (email ~ '^[^@\s]+@[^@\s]+$' AND length(email) <= 254),
    role                text NOT NULL CHECK (role IN ('clinician', 'patient', 'admin')),
    clinician_id        bigint REFERENCES clinician ON DELETE CASCADE,
    patient_id          bigint REFERENCES patient ON DELETE CASCADE,
    password_hash       text NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    failed_attempts     integer NOT NULL DEFAULT 0 CHECK (failed_attempts >= 0),
    locked_until        timestamptz,
    disabled            boolean NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL DEFAULT now(),
    password_changed_at timestamptz NOT NULL DEFAULT now(),
    last_login_at       timestamptz,
    -- A clinician account speaks for one clinician, a patient account for one
    -- patient; an administrator for neither (it sees accounts and the audit
    -- log, never clinical data).
    CHECK (CASE role
        WHEN 'clinician' THEN clinician_id IS NOT NULL AND patient_id IS NULL
        WHEN 'patient' THEN patient_id IS NOT NULL AND clinician_id IS NULL
        ELSE clinician_id IS NULL AND patient_id IS NULL
    END)
);
CREATE UNIQUE INDEX account_email_key ON account (lower(email)) WHERE email IS NOT NULL;
CREATE UNIQUE INDEX account_patient_key ON account (patient_id) WHERE patient_id IS NOT NULL;
CREATE UNIQUE INDEX account_clinician_key ON account (clinician_id) WHERE clinician_id IS NOT NULL;

ALTER TABLE account ENABLE ROW LEVEL SECURITY;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'paceline_dashboard') THEN
        CREATE ROLE paceline_dashboard NOLOGIN;
    END IF;
END
$$;

-- The account a login names, by username or (for single sign-on) by e-mail,
-- with what the dashboard needs to verify the password and apply the lockout.
CREATE FUNCTION paceline_login_lookup(login text)
    RETURNS TABLE (
        account_id bigint, username text, role text, clinician_id bigint, patient_id bigint,
        password_hash text, failed_attempts integer, locked_until timestamptz, disabled boolean,
        display_name text
    )
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT a.account_id, a.username, a.role, a.clinician_id, a.patient_id, a.password_hash,
           a.failed_attempts, a.locked_until, a.disabled,
           coalesce(c.display_name, p.display_name, a.username)
    FROM public.account a
    LEFT JOIN public.clinician c ON c.clinician_id = a.clinician_id
    LEFT JOIN public.patient p ON p.patient_id = a.patient_id
    WHERE a.username = lower(login) OR lower(a.email) = lower(login)
    ORDER BY a.username = lower(login) DESC
    LIMIT 1
$$;

-- Record the outcome of one login attempt and return the lockout that now
-- applies. A failure that reaches `max_failures` locks the account until
-- `at + lock_for` and starts the count again; a success clears the count and
-- may store a rehashed password (argon2 parameters raised since it was set).
CREATE FUNCTION paceline_login_outcome(
    target bigint, succeeded boolean, at timestamptz, max_failures integer, lock_for interval,
    new_hash text DEFAULT NULL
) RETURNS timestamptz
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    result timestamptz;
BEGIN
    IF succeeded THEN
        UPDATE public.account SET failed_attempts = 0, locked_until = NULL, last_login_at = at,
            password_hash = coalesce(new_hash, password_hash)
        WHERE account_id = target
        RETURNING locked_until INTO result;
    ELSE
        UPDATE public.account SET
            failed_attempts = CASE WHEN failed_attempts + 1 >= max_failures
                THEN 0 ELSE failed_attempts + 1 END,
            locked_until = CASE WHEN failed_attempts + 1 >= max_failures
                THEN at + lock_for ELSE locked_until END
        WHERE account_id = target
        RETURNING locked_until INTO result;
    END IF;
    RETURN result;
END
$$;

REVOKE ALL ON FUNCTION paceline_login_lookup(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION paceline_login_outcome(bigint, boolean, timestamptz, integer, interval, text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION paceline_login_lookup(text) TO paceline_dashboard;
GRANT EXECUTE ON FUNCTION paceline_login_outcome(bigint, boolean, timestamptz, integer, interval, text)
    TO paceline_dashboard;
