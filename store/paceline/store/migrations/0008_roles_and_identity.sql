-- Access that SQL inside a session cannot escape.
--
-- Runs as paceline_owner (migrate() switches to it; `paceline.store.roles`
-- creates the roles), which from here on owns every table, view and function.
-- Every relational table gets FORCE ROW LEVEL SECURITY, so even its owner
-- reads it only through a policy. The raw sample hypertables are the
-- exception (TimescaleDB refuses row security on compressed hypertables): no
-- person role has any privilege on them; people read samples through the
-- security-barrier views, which filter by the verified identity.
--
-- The identity policies read is a token in the setting `paceline.identity`,
-- signed with HMAC-SHA256 by the dashboard process (paceline.store.identity)
-- and verified here with a key only the owner can read. A session can set the
-- setting to anything, but cannot produce a valid signature, reuse a token
-- of another backend, or use an expired one. Policies call the verifying
-- functions through an uncorrelated sub-select, so PostgreSQL evaluates them
-- once per statement (an InitPlan), not once per row, and the patient_id
-- comparison stays usable by an index.

CREATE TABLE paceline_identity_key (
    singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    inner_pad    bytea NOT NULL CHECK (length(inner_pad) = 64),
    outer_pad    bytea NOT NULL CHECK (length(outer_pad) = 64),
    installed_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON paceline_identity_key FROM PUBLIC;

CREATE FUNCTION paceline_set_identity_key(inner_pad bytea, outer_pad bytea) RETURNS void
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, public, pg_temp AS $$
    INSERT INTO public.paceline_identity_key AS k (inner_pad, outer_pad)
    VALUES (inner_pad, outer_pad)
    ON CONFLICT (singleton) DO UPDATE
        SET inner_pad = excluded.inner_pad, outer_pad = excluded.outer_pad, installed_at = now()
$$;
REVOKE ALL ON FUNCTION paceline_set_identity_key(bytea, bytea) FROM PUBLIC;

-- The person id of a valid token of `want_kind` in this session; NULL when
-- there is no token or it names another kind of person. A token that is
-- present but forged, expired or issued to another backend is an error, so
-- that a dashboard bug shows up instead of an empty page.
CREATE FUNCTION paceline_verified_person(want_kind text) RETURNS bigint
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
    IF token !~ '^v1\|(clinician|patient)\|[1-9][0-9]{0,17}\|[0-9]{1,12}\|[0-9]{1,10}\|[0-9a-f]{64}$' THEN
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

CREATE OR REPLACE FUNCTION paceline_current_clinician() RETURNS bigint
    LANGUAGE sql STABLE SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT public.paceline_verified_person('clinician')
$$;

CREATE FUNCTION paceline_patient_self() RETURNS bigint
    LANGUAGE sql STABLE SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT public.paceline_verified_person('patient')
$$;

-- 'clinician:<id>' or 'patient:<id>', the actor a person's audit rows must name.
CREATE FUNCTION paceline_identity_actor() RETURNS text
    LANGUAGE sql STABLE SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT coalesce('clinician:' || public.paceline_current_clinician(),
                    'patient:' || public.paceline_patient_self())
$$;

CREATE FUNCTION paceline_clinician_patients() RETURNS bigint[]
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT coalesce(array_agg(ct.patient_id), '{}')
    FROM public.care_team ct
    WHERE ct.clinician_id = public.paceline_current_clinician()
$$;

-- The patients the verified person may see: a clinician's care team, or the patient themself.
CREATE FUNCTION paceline_visible_patients() RETURNS bigint[]
    LANGUAGE sql STABLE SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT CASE
        WHEN public.paceline_current_clinician() IS NOT NULL THEN public.paceline_clinician_patients()
        WHEN public.paceline_patient_self() IS NOT NULL THEN ARRAY[public.paceline_patient_self()]
        ELSE '{}'::bigint[]
    END
$$;

-- Kept for callers of migration 0003's API; per row it is slower than the
-- policies' `patient_id = ANY ((SELECT paceline_visible_patients())::bigint[])`.
CREATE OR REPLACE FUNCTION paceline_may_see(p bigint) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT p = ANY (public.paceline_visible_patients())
$$;

CREATE OR REPLACE VIEW clinician_hr_sample WITH (security_barrier) AS
    SELECT * FROM hr_sample WHERE patient_id = ANY ((SELECT paceline_visible_patients())::bigint[]);
CREATE OR REPLACE VIEW clinician_rr_interval WITH (security_barrier) AS
    SELECT * FROM rr_interval WHERE patient_id = ANY ((SELECT paceline_visible_patients())::bigint[]);
CREATE OR REPLACE VIEW clinician_step_sample WITH (security_barrier) AS
    SELECT * FROM step_sample WHERE patient_id = ANY ((SELECT paceline_visible_patients())::bigint[]);

-- Policies: services and the owner see every row; people see their own.
DO $$
DECLARE
    t text;
    p record;
BEGIN
    FOR p IN SELECT policyname, tablename FROM pg_policies WHERE schemaname = 'public' LOOP
        EXECUTE format('DROP POLICY %I ON %I', p.policyname, p.tablename);
    END LOOP;
    FOREACH t IN ARRAY ARRAY[
        'patient', 'clinician', 'care_team', 'device', 'ingest_batch', 'ingest_quarantine',
        'self_report', 'questionnaire_response', 'exposure_item', 'exposure_session',
        'daily_metrics', 'pacing_plan', 'flag', 'alert', 'audit_log', 'flare_risk',
        'sample_span', 'schema_migrations', 'account'
    ] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY services ON %I TO paceline_owner, paceline_worker, paceline_ingest'
            ' USING (true) WITH CHECK (true)', t);
    END LOOP;
    FOREACH t IN ARRAY ARRAY[
        'patient', 'device', 'self_report', 'questionnaire_response', 'exposure_item',
        'exposure_session', 'daily_metrics', 'pacing_plan', 'flag', 'alert', 'flare_risk'
    ] LOOP
        EXECUTE format(
            'CREATE POLICY clinician_care_team ON %I TO paceline_clinician'
            ' USING (patient_id = ANY ((SELECT paceline_clinician_patients())::bigint[]))'
            ' WITH CHECK (patient_id = ANY ((SELECT paceline_clinician_patients())::bigint[]))', t);
        EXECUTE format(
            'CREATE POLICY patient_self ON %I TO paceline_patient'
            ' USING (patient_id = (SELECT paceline_patient_self()))'
            ' WITH CHECK (patient_id = (SELECT paceline_patient_self()))', t);
    END LOOP;
END
$$;

CREATE POLICY clinician_own_rows ON care_team FOR SELECT TO paceline_clinician
    USING (clinician_id = (SELECT paceline_current_clinician()));
CREATE POLICY clinician_own_row ON clinician FOR SELECT TO paceline_clinician
    USING (clinician_id = (SELECT paceline_current_clinician()));

-- A person appends audit rows only as themself and only about a patient they may see.
CREATE POLICY clinician_appends_own ON audit_log FOR INSERT TO paceline_clinician
    WITH CHECK (
        actor = (SELECT paceline_identity_actor())
        AND clinician_id = (SELECT paceline_current_clinician())
        AND (patient_id IS NULL OR patient_id = ANY ((SELECT paceline_clinician_patients())::bigint[]))
    );
CREATE POLICY patient_appends_own ON audit_log FOR INSERT TO paceline_patient
    WITH CHECK (
        actor = (SELECT paceline_identity_actor())
        AND clinician_id IS NULL
        AND patient_id = (SELECT paceline_patient_self())
    );

-- Grants. Person roles: what the dashboard pages need, nothing else.
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO paceline_patient, paceline_ingest, paceline_worker;
GRANT SELECT ON patient, device, daily_metrics, pacing_plan, exposure_item, flare_risk,
    clinician_hr_sample, clinician_rr_interval, clinician_step_sample TO paceline_patient;
GRANT SELECT, INSERT ON self_report, questionnaire_response TO paceline_patient;
GRANT SELECT, INSERT, UPDATE ON exposure_session TO paceline_patient;
GRANT INSERT ON audit_log TO paceline_patient;

-- The gateway uploader: samples, its bookkeeping, the rollup's work list, device last_seen.
GRANT SELECT, INSERT ON hr_sample, rr_interval, step_sample TO paceline_ingest;
GRANT SELECT, INSERT, UPDATE ON ingest_batch TO paceline_ingest;
GRANT SELECT, INSERT ON ingest_quarantine TO paceline_ingest;
GRANT INSERT ON sample_span TO paceline_ingest;
GRANT SELECT ON device, schema_migrations TO paceline_ingest;
GRANT UPDATE (last_seen) ON device TO paceline_ingest;

-- Scheduler and workers: read everything they evaluate, write what they derive.
GRANT SELECT ON patient, clinician, care_team, device, hr_sample, rr_interval, step_sample,
    ingest_batch, self_report, questionnaire_response, exposure_item, exposure_session,
    schema_migrations TO paceline_worker;
GRANT SELECT, INSERT, UPDATE, DELETE ON daily_metrics, pacing_plan, flag, alert, flare_risk,
    sample_span TO paceline_worker;
GRANT INSERT ON audit_log TO paceline_worker;
