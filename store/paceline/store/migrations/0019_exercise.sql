-- Prescribed exercise sessions beside daily activity (paceline.pacing.exercise).
--
-- exercise_prescription: one kind of session a clinician prescribes (strength,
--   mobility, endurance, balance), how many per week, and its name.
-- exercise_target: the session's target, versioned like pacing_plan: the
--   clinician sets version 1 and may override it; the engine adds versions when
--   the target rises after consistent good sessions or steps down after a flare.
--   Every version says why, who, and what evidence; every change is audited.
-- exercise_session: what the patient logged through pacing.intake: what was
--   done, the session RPE (Borg CR-10) and pain before and after (0-10).
--
-- Row security as for every patient table: services see all rows, a clinician
-- the care team's patients, a patient their own rows.

CREATE TABLE exercise_prescription (
    prescription_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id        bigint NOT NULL REFERENCES patient ON DELETE CASCADE,
    kind              text NOT NULL CHECK (kind IN ('strength', 'mobility', 'endurance', 'balance')),
    name              text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    sessions_per_week integer NOT NULL CHECK (sessions_per_week BETWEEN 1 AND 14),
    -- Good sessions in a row before the target rises, and the rise per step.
    consistent_sessions integer NOT NULL CHECK (consistent_sessions BETWEEN 2 AND 10),
    step_fraction     double precision NOT NULL CHECK (step_fraction > 0 AND step_fraction <= 0.5),
    status            text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'ended')),
    created_by        bigint REFERENCES clinician ON DELETE SET NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (prescription_id, patient_id)
);
CREATE INDEX exercise_prescription_patient_idx ON exercise_prescription (patient_id);

CREATE TABLE exercise_target (
    target_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    prescription_id   bigint NOT NULL,
    patient_id        bigint NOT NULL,
    version           integer NOT NULL CHECK (version >= 1),
    duration_min      double precision CHECK (duration_min > 0 AND duration_min <= 600),
    repetitions       integer CHECK (repetitions BETWEEN 1 AND 1000),
    sets              integer CHECK (sets BETWEEN 1 AND 50),
    hr_zone_low       integer CHECK (hr_zone_low BETWEEN 1 AND 5),
    hr_zone_high      integer CHECK (hr_zone_high BETWEEN 1 AND 5),
    valid_from        date NOT NULL,
    cause             text NOT NULL CHECK (cause IN ('clinician', 'progression', 'flare')),
    reason            text NOT NULL,
    flare_start       date,
    evidence          jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_by        bigint REFERENCES clinician ON DELETE SET NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (prescription_id, version),
    CHECK (duration_min IS NOT NULL OR repetitions IS NOT NULL),
    CHECK ((hr_zone_low IS NULL) = (hr_zone_high IS NULL) AND hr_zone_low <= hr_zone_high),
    FOREIGN KEY (prescription_id, patient_id)
        REFERENCES exercise_prescription (prescription_id, patient_id) ON DELETE CASCADE
);
CREATE INDEX exercise_target_patient_idx ON exercise_target (patient_id, prescription_id, version);

CREATE TABLE exercise_session (
    session_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    prescription_id   bigint NOT NULL,
    patient_id        bigint NOT NULL,
    performed_at      timestamptz NOT NULL,
    -- The target version the session was done against (the one in effect that day).
    target_version    integer NOT NULL,
    duration_min      double precision NOT NULL CHECK (duration_min >= 0 AND duration_min <= 600),
    repetitions       integer CHECK (repetitions BETWEEN 0 AND 1000),
    sets              integer CHECK (sets BETWEEN 0 AND 50),
    rpe               integer NOT NULL CHECK (rpe BETWEEN 0 AND 10),
    pain_before       integer NOT NULL CHECK (pain_before BETWEEN 0 AND 10),
    pain_after        integer NOT NULL CHECK (pain_after BETWEEN 0 AND 10),
    note              text CHECK (length(note) <= 2000),
    idempotency_key   text CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (patient_id, idempotency_key),
    FOREIGN KEY (prescription_id, patient_id)
        REFERENCES exercise_prescription (prescription_id, patient_id) ON DELETE CASCADE
);
CREATE INDEX exercise_session_patient_idx ON exercise_session (patient_id, performed_at);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['exercise_prescription', 'exercise_target', 'exercise_session'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY services ON %I TO paceline_owner, paceline_worker'
            ' USING (true) WITH CHECK (true)', t);
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

-- Clinicians prescribe and set targets and read the sessions; patients read their
-- prescription and log sessions; the engine (worker) adds target versions.
GRANT SELECT, INSERT, UPDATE ON exercise_prescription, exercise_target TO paceline_clinician;
GRANT SELECT ON exercise_session TO paceline_clinician;
GRANT SELECT ON exercise_prescription, exercise_target TO paceline_patient;
GRANT SELECT, INSERT ON exercise_session TO paceline_patient;
GRANT SELECT ON exercise_prescription, exercise_session TO paceline_worker;
GRANT SELECT, INSERT ON exercise_target TO paceline_worker;
