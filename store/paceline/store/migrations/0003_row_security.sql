-- Row-level security: a clinician session sees only the patients of its care team.
--
-- Services (ingest, scheduler) connect as the owner of the tables and are not
-- subject to these policies.
--
-- The raw sample tables are the exception: TimescaleDB refuses compression on
-- a hypertable with row security (and row security on a hypertable does not
-- reach its chunk tables, which inherit its grants). So the clinician role
-- gets no privilege on hr_sample, rr_interval or step_sample at all, and reads
-- samples only through the security-barrier views clinician_* below, which
-- run with the owner's rights and filter by the same care-team rule. The dashboard runs each clinician's queries under
-- the role paceline_clinician with `paceline.clinician_id` set for the
-- transaction (see paceline.store.access); without that setting nothing is
-- visible.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'paceline_clinician') THEN
        CREATE ROLE paceline_clinician NOLOGIN;
    END IF;
    -- The owner switches into the role for clinician sessions (SET LOCAL ROLE).
    IF NOT pg_has_role(current_user, 'paceline_clinician', 'MEMBER') THEN
        EXECUTE format('GRANT paceline_clinician TO %I', current_user);
    END IF;
END
$$;

CREATE FUNCTION paceline_current_clinician() RETURNS bigint
    LANGUAGE sql STABLE AS $$
    SELECT nullif(current_setting('paceline.clinician_id', true), '')::bigint
$$;

CREATE FUNCTION paceline_may_see(p bigint) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT EXISTS (
        SELECT 1 FROM public.care_team ct
        WHERE ct.patient_id = p AND ct.clinician_id = public.paceline_current_clinician()
    )
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY[
        'patient', 'device', 'self_report',
        'questionnaire_response', 'exposure_item', 'exposure_session', 'daily_metrics',
        'pacing_plan', 'flag', 'alert'
    ] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY care_team_only ON %I TO paceline_clinician '
            'USING (paceline_may_see(patient_id)) WITH CHECK (paceline_may_see(patient_id))', t);
    END LOOP;
END
$$;

ALTER TABLE care_team ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON care_team TO paceline_clinician
    USING (clinician_id = paceline_current_clinician());

ALTER TABLE clinician ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_row ON clinician TO paceline_clinician
    USING (clinician_id = paceline_current_clinician());

-- The audit log can be appended to by a clinician session but read only by services.
ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY append_own ON audit_log FOR INSERT TO paceline_clinician
    WITH CHECK (clinician_id = paceline_current_clinician());

GRANT USAGE ON SCHEMA public TO paceline_clinician;
GRANT SELECT ON patient, device, daily_metrics, care_team, clinician TO paceline_clinician;

CREATE VIEW clinician_hr_sample WITH (security_barrier) AS
    SELECT * FROM hr_sample WHERE paceline_may_see(patient_id);
CREATE VIEW clinician_rr_interval WITH (security_barrier) AS
    SELECT * FROM rr_interval WHERE paceline_may_see(patient_id);
CREATE VIEW clinician_step_sample WITH (security_barrier) AS
    SELECT * FROM step_sample WHERE paceline_may_see(patient_id);
GRANT SELECT ON clinician_hr_sample, clinician_rr_interval, clinician_step_sample
    TO paceline_clinician;
GRANT SELECT, INSERT, UPDATE ON self_report, questionnaire_response, exposure_item,
    exposure_session, pacing_plan, flag, alert TO paceline_clinician;
GRANT INSERT ON audit_log TO paceline_clinician;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO paceline_clinician;
