-- The administrator's page: accounts, care teams and the audit log.
--
-- An administrator sees no clinical data. Their dashboard session stays in
-- the dashboard's own role (no person role) and carries a signed identity of
-- a third kind, 'admin', naming their account; the functions below run with
-- the owner's rights and refuse unless that identity verifies and names an
-- active admin account. SQL injected into any dashboard session cannot mint
-- such a token (only the dashboard process and the owner hold the key),
-- so it cannot read the audit log or the account list either.

-- The verifier of migration 0008, now also accepting the 'admin' kind; a
-- clinician or patient token still names no administrator and vice versa.
CREATE OR REPLACE FUNCTION paceline_verified_person(want_kind text) RETURNS bigint
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    token   text := nullif(current_setting('paceline.identity', true), '');
    field   text[];
    key     record;
    mac     bytea;
BEGIN
    IF token IS NULL THEN
        RETURN NULL;
    END IF;
    IF token !~ '^v1\|(clinician|patient|admin)\|[1-9][0-9]{0,17}\|[0-9]{1,12}\|[0-9]{1,10}\|[0-9a-f]{64}$' THEN
        RAISE EXCEPTION 'paceline.identity is not a Paceline identity token'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    field := string_to_array(token, '|');
    SELECT k.inner_pad, k.outer_pad INTO key FROM public.paceline_identity_key k;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no identity key is installed; run paceline db migrate'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- HMAC-SHA256 (RFC 2104): H((K xor opad) || H((K xor ipad) || m)).
    mac := sha256(key.outer_pad || sha256(key.inner_pad
        || convert_to(left(token, length(token) - 65), 'UTF8')));
    -- Compare digests of the two MACs so that timing reveals nothing about the right one.
    IF sha256(mac) <> sha256(decode(field[6], 'hex')) THEN
        RAISE EXCEPTION 'paceline.identity carries an invalid signature'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF field[5]::bigint <> pg_backend_pid() THEN
        RAISE EXCEPTION 'paceline.identity was issued to another connection'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF to_timestamp(field[4]::bigint) <= clock_timestamp() THEN
        RAISE EXCEPTION 'paceline.identity has expired'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF field[2] <> want_kind THEN
        RETURN NULL;
    END IF;
    RETURN field[3]::bigint;
END
$$;

-- The verified administrator's account id, or an error.
CREATE FUNCTION paceline_admin_self() RETURNS bigint
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    who bigint := public.paceline_verified_person('admin');
BEGIN
    IF who IS NULL OR NOT EXISTS (
        SELECT 1 FROM public.account a
        WHERE a.account_id = who AND a.role = 'admin' AND NOT a.disabled
    ) THEN
        RAISE EXCEPTION 'only a signed-in administrator may do this'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN who;
END
$$;

CREATE FUNCTION paceline_admin_accounts()
    RETURNS TABLE (
        account_id bigint, username text, role text, clinician_id bigint, patient_id bigint,
        display_name text, email text, failed_attempts integer, locked_until timestamptz,
        disabled boolean, created_at timestamptz, last_login_at timestamptz
    )
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    PERFORM public.paceline_admin_self();
    RETURN QUERY
        SELECT a.account_id, a.username, a.role, a.clinician_id, a.patient_id,
               coalesce(c.display_name, p.display_name, a.username), a.email,
               a.failed_attempts, a.locked_until, a.disabled, a.created_at, a.last_login_at
        FROM public.account a
        LEFT JOIN public.clinician c ON c.clinician_id = a.clinician_id
        LEFT JOIN public.patient p ON p.patient_id = a.patient_id
        ORDER BY a.username;
END
$$;

CREATE FUNCTION paceline_admin_care_teams()
    RETURNS TABLE (
        clinician_id bigint, clinician text, patient_id bigint, patient_ref text,
        patient text, team_role text, since timestamptz
    )
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    PERFORM public.paceline_admin_self();
    RETURN QUERY
        SELECT c.clinician_id, c.display_name, p.patient_id, p.external_ref, p.display_name,
               ct.role, ct.since
        FROM public.care_team ct
        JOIN public.clinician c ON c.clinician_id = ct.clinician_id
        JOIN public.patient p ON p.patient_id = ct.patient_id
        ORDER BY c.display_name, p.display_name;
END
$$;

-- The audit log, newest first, filtered (NULL filters match everything).
CREATE FUNCTION paceline_admin_audit(
    since timestamptz, until timestamptz, actor_prefix text, patient bigint, action_prefix text,
    max_rows integer
)
    RETURNS TABLE (
        audit_id bigint, at timestamptz, actor text, clinician_id bigint, patient_id bigint,
        action text, object text, detail jsonb
    )
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    PERFORM public.paceline_admin_self();
    RETURN QUERY
        SELECT l.audit_id, l.at, l.actor, l.clinician_id, l.patient_id, l.action, l.object,
               l.detail
        FROM public.audit_log l
        WHERE (since IS NULL OR l.at >= since) AND (until IS NULL OR l.at < until)
          AND (actor_prefix IS NULL OR starts_with(l.actor, actor_prefix))
          AND (patient IS NULL OR l.patient_id = patient)
          AND (action_prefix IS NULL OR starts_with(l.action, action_prefix))
        ORDER BY l.at DESC, l.audit_id DESC
        LIMIT least(greatest(max_rows, 1), 5000);
END
$$;

-- Lock or unlock a login from the admin page; audited as the administrator.
CREATE FUNCTION paceline_admin_set_disabled(target text, lock boolean) RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    me bigint := public.paceline_admin_self();
    changed integer;
BEGIN
    UPDATE public.account SET disabled = lock,
        failed_attempts = CASE WHEN lock THEN failed_attempts ELSE 0 END,
        locked_until = CASE WHEN lock THEN locked_until ELSE NULL END
    WHERE username = target AND account_id <> me;
    GET DIAGNOSTICS changed = ROW_COUNT;
    IF changed = 1 THEN
        INSERT INTO public.audit_log (actor, action, object, detail)
        SELECT 'admin:' || a.username, CASE WHEN lock THEN 'account.lock' ELSE 'account.unlock' END,
               'account', jsonb_build_object('username', target)
        FROM public.account a WHERE a.account_id = me;
    END IF;
    RETURN changed = 1;
END
$$;

REVOKE ALL ON FUNCTION paceline_admin_self() FROM PUBLIC;
REVOKE ALL ON FUNCTION paceline_admin_accounts() FROM PUBLIC;
REVOKE ALL ON FUNCTION paceline_admin_care_teams() FROM PUBLIC;
REVOKE ALL ON FUNCTION paceline_admin_audit(timestamptz, timestamptz, text, bigint, text, integer)
    FROM PUBLIC;
REVOKE ALL ON FUNCTION paceline_admin_set_disabled(text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION paceline_admin_accounts(), paceline_admin_care_teams(),
    paceline_admin_audit(timestamptz, timestamptz, text, bigint, text, integer),
    paceline_admin_set_disabled(text, boolean) TO paceline_dashboard;
