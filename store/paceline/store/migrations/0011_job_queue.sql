-- Work lists and bookkeeping of the job queue (procrastinate's own tables are
-- applied beside these by `paceline.store.queue_schema`, under the same lock).

-- Patient-days whose evaluation a write made necessary. The write (a rollup,
-- the nightly pass) adds rows and defers one `evaluate` job per patient in
-- the same transaction; the job evaluates every day listed for its patient and
-- deletes the rows it read, in its own transaction. A queueing lock keeps one
-- pending job per patient, so a row added while one is pending is picked up
-- by that job; a row added while one is running waits for the next.
CREATE TABLE evaluation_due (
    due_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id   bigint NOT NULL REFERENCES patient ON DELETE CASCADE,
    day          date NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX evaluation_due_patient_idx ON evaluation_due (patient_id);

-- The last slot the clock deferred for each periodic job. The leader advances
-- it in the transaction that defers the job, under a row lock, so two leaders
-- overlapping at a handover never defer one slot twice, and a clock that was
-- down defers the slots it missed as one catch-up run when it comes back.
CREATE TABLE clock_slot (
    job        text PRIMARY KEY CHECK (length(job) BETWEEN 1 AND 64),
    last_slot  timestamptz NOT NULL,
    deferred_at timestamptz NOT NULL DEFAULT now()
);

-- Only the services that run jobs touch these; nobody else has a reason to.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['evaluation_due', 'clock_slot'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY services ON %I TO paceline_owner, paceline_worker'
            ' USING (true) WITH CHECK (true)', t);
    END LOOP;
END
$$;
REVOKE ALL ON evaluation_due, clock_slot FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON evaluation_due, clock_slot TO paceline_worker;
