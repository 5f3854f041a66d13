-- The pacing engine's carried state, one row per patient-day: each flag rule's
-- state machine (a pending run or an open episode, bounded), the chronic-load
-- EWMA at the day before the next evaluation's window, and the last day with
-- data before it. An evaluation reads the previous day's row plus a bounded
-- window of data, so its cost does not grow with the patient's history; a
-- missing row (a first evaluation, a gap) makes the engine recompute from
-- enrolment. Only the scheduler and workers touch it.
CREATE TABLE pacing_state (
    patient_id       bigint NOT NULL REFERENCES patient ON DELETE CASCADE,
    day              date NOT NULL,
    model            text NOT NULL,
    state            jsonb NOT NULL,
    computed_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (patient_id, day)
);

ALTER TABLE pacing_state ENABLE ROW LEVEL SECURITY;
ALTER TABLE pacing_state FORCE ROW LEVEL SECURITY;
CREATE POLICY services ON pacing_state TO paceline_owner, paceline_worker
    USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON pacing_state TO paceline_worker;

-- The engine reads a patient's unresolved flags and those that ended recently;
-- without an index on the window's end that read scans every flag the patient
-- ever had (it grew with the history).
CREATE INDEX flag_patient_end_idx ON flag (patient_id, window_end);
