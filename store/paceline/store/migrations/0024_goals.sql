-- Valued goals (paceline.pacing.goals): what the patient wants to get back to
-- (gardening, a shopping trip, playing with the grandchildren), entered by the
-- patient or a clinician, and the ladder rungs and exercise prescriptions that
-- lead to each. Progress toward a goal is computed from its links, never stored.
--
-- goal_link: one rung or one prescription serving a goal; a prescription link
-- names the target level the goal needs (e.g. 30 minutes of walking for the
-- shopping trip). Links are checked to belong to the goal's own patient.

CREATE TABLE valued_goal (
    goal_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id     bigint NOT NULL REFERENCES patient ON DELETE CASCADE,
    title          text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    why            text CHECK (length(why) <= 2000),
    status         text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'reached', 'retired')),
    created_by     bigint REFERENCES clinician ON DELETE SET NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    reached_at     timestamptz,
    UNIQUE (goal_id, patient_id)
);
CREATE INDEX valued_goal_patient_idx ON valued_goal (patient_id);

CREATE TABLE goal_link (
    link_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    goal_id          bigint NOT NULL,
    patient_id       bigint NOT NULL,
    item_id          bigint,
    prescription_id  bigint,
    needed_duration_min double precision CHECK (needed_duration_min > 0 AND needed_duration_min <= 600),
    needed_repetitions  integer CHECK (needed_repetitions BETWEEN 1 AND 1000),
    created_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((item_id IS NULL) <> (prescription_id IS NULL)),
    CHECK (prescription_id IS NULL OR needed_duration_min IS NOT NULL OR needed_repetitions IS NOT NULL),
    UNIQUE (goal_id, item_id),
    UNIQUE (goal_id, prescription_id),
    FOREIGN KEY (goal_id, patient_id) REFERENCES valued_goal (goal_id, patient_id) ON DELETE CASCADE,
    FOREIGN KEY (item_id, patient_id) REFERENCES exposure_item (item_id, patient_id) ON DELETE CASCADE,
    FOREIGN KEY (prescription_id, patient_id)
        REFERENCES exercise_prescription (prescription_id, patient_id) ON DELETE CASCADE
);
CREATE INDEX goal_link_patient_idx ON goal_link (patient_id, goal_id);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['valued_goal', 'goal_link'] LOOP
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

-- Patients and clinicians both enter and edit goals; clinicians link rungs and
-- prescriptions to them; the worker reads them (reports, demo).
GRANT SELECT, INSERT, UPDATE ON valued_goal TO paceline_clinician, paceline_patient;
GRANT SELECT, INSERT, DELETE ON goal_link TO paceline_clinician;
GRANT SELECT ON goal_link TO paceline_patient;
GRANT SELECT ON valued_goal, goal_link TO paceline_worker;
