-- Red-flag screening and the progression pause (paceline.pacing.redflags).
--
-- red_flag_screen: one row per answered screen (the diary's or the weekly
-- check's), every question answered; `positive` lists the questions answered
-- yes. The patient writes their own screens (through paceline.pacing.intake);
-- `evaluated_at` is set by the engine once an evaluation has read the screen,
-- so the new-data sweep can defer an evaluation for a positive screen not yet
-- evaluated (the critical alert goes out at once, not the next night).
--
-- progression_pause: a positive screen pauses progression (the quota does not
-- rise) until a clinician clears it; the clearing is written on the row (who,
-- when, why) and audited. At most one open pause per patient.
CREATE TABLE red_flag_screen (
    screen_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id       bigint NOT NULL REFERENCES patient ON DELETE CASCADE,
    answered_at      timestamptz NOT NULL,
    source           text NOT NULL CHECK (source IN ('diary', 'weekly')),
    answers          jsonb NOT NULL CHECK (jsonb_typeof(answers) = 'object'),
    positive         text[] NOT NULL DEFAULT '{}',
    idempotency_key  text CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    evaluated_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (patient_id, idempotency_key)
);
CREATE INDEX red_flag_screen_patient_idx ON red_flag_screen (patient_id, answered_at);
CREATE INDEX red_flag_screen_unevaluated_idx ON red_flag_screen (patient_id)
    WHERE evaluated_at IS NULL AND cardinality(positive) > 0;

CREATE TABLE progression_pause (
    pause_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id   bigint NOT NULL REFERENCES patient ON DELETE CASCADE,
    started_at   timestamptz NOT NULL,
    reason       text NOT NULL CHECK (length(reason) BETWEEN 1 AND 2000),
    screen_id    bigint REFERENCES red_flag_screen ON DELETE SET NULL,
    cleared_at   timestamptz,
    cleared_by   bigint REFERENCES clinician ON DELETE SET NULL,
    clear_note   text CHECK (length(clear_note) <= 2000),
    CHECK (cleared_at IS NULL OR cleared_at >= started_at),
    CHECK ((cleared_at IS NULL) = (clear_note IS NULL))
);
CREATE UNIQUE INDEX progression_pause_open_idx ON progression_pause (patient_id)
    WHERE cleared_at IS NULL;
CREATE INDEX progression_pause_patient_idx ON progression_pause (patient_id, started_at);

-- Security model of 0008: owned by paceline_owner, FORCE ROW LEVEL SECURITY,
-- services see every row, people their own. Patients write their own screens
-- and the pause their positive screen opens (the same transaction), and read
-- both; clinicians read their care team's and clear pauses; the workers read
-- both and mark screens evaluated.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['red_flag_screen', 'progression_pause'] LOOP
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
GRANT SELECT ON red_flag_screen TO paceline_clinician;
GRANT SELECT, INSERT ON red_flag_screen TO paceline_patient;
GRANT SELECT, UPDATE ON red_flag_screen TO paceline_worker;
GRANT SELECT, UPDATE ON progression_pause TO paceline_clinician;
GRANT SELECT, INSERT ON progression_pause TO paceline_patient;
GRANT SELECT ON progression_pause TO paceline_worker;
