-- Reassessment and documentation (issue 14): the fear ladder's ratings as a
-- history, and clinicians' progress notes.

-- Every fear rating a ladder item was ever given: the first one when it was
-- added, each periodic re-rating, each edit. `exposure_item.fear_rating` stays
-- the current rating (what the exposure rules read); this table keeps what it
-- was before. Rows are never changed: nobody is granted UPDATE or DELETE.
CREATE TABLE exposure_rating (
    rating_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    item_id      bigint NOT NULL,
    patient_id   bigint NOT NULL REFERENCES patient ON DELETE CASCADE,
    fear_rating  smallint NOT NULL CHECK (fear_rating BETWEEN 0 AND 100),
    rated_at     timestamptz NOT NULL DEFAULT now(),
    -- NULL: the patient rated it themself (as on `exposure_item.created_by`).
    rated_by     bigint REFERENCES clinician ON DELETE SET NULL,
    kind         text NOT NULL CHECK (kind IN ('initial', 'rerating', 'edit')),
    FOREIGN KEY (item_id, patient_id) REFERENCES exposure_item (item_id, patient_id)
        ON DELETE CASCADE
);
CREATE INDEX exposure_rating_item_idx ON exposure_rating (patient_id, item_id, rated_at);

-- The items that exist already start their history with the rating they have.
INSERT INTO exposure_rating (item_id, patient_id, fear_rating, rated_at, rated_by, kind)
    SELECT item_id, patient_id, fear_rating, created_at, created_by, 'initial' FROM exposure_item;

ALTER TABLE exposure_rating ENABLE ROW LEVEL SECURITY;
ALTER TABLE exposure_rating FORCE ROW LEVEL SECURITY;
CREATE POLICY services ON exposure_rating TO paceline_owner, paceline_worker
    USING (true) WITH CHECK (true);
CREATE POLICY clinician_care_team ON exposure_rating TO paceline_clinician
    USING (patient_id = ANY ((SELECT paceline_clinician_patients())::bigint[]))
    WITH CHECK (patient_id = ANY ((SELECT paceline_clinician_patients())::bigint[]));
CREATE POLICY patient_self ON exposure_rating FOR SELECT TO paceline_patient
    USING (patient_id = (SELECT paceline_patient_self()));
-- The same readers as `exposure_item`; only clinicians re-rate (with the patient).
GRANT SELECT, INSERT ON exposure_rating TO paceline_clinician;
GRANT SELECT ON exposure_rating TO paceline_patient, paceline_worker;

-- A clinician's progress note: free text and the structured ratings the
-- graded-activity and graded-exposure protocols name, about one task
-- (`activity`). Scales and their sources: paceline.pacing.notes. A note is
-- never edited; a correction is a new note that `amends` the earlier one.
CREATE TABLE progress_note (
    note_id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id            bigint NOT NULL REFERENCES patient ON DELETE CASCADE,
    clinician_id          bigint NOT NULL REFERENCES clinician,
    written_at            timestamptz NOT NULL DEFAULT now(),
    body                  text NOT NULL CHECK (length(btrim(body)) BETWEEN 1 AND 4000),
    activity              text CHECK (length(btrim(activity)) BETWEEN 1 AND 200),
    confidence            smallint CHECK (confidence BETWEEN 0 AND 10),
    task_independence     smallint CHECK (task_independence BETWEEN 1 AND 7),
    perceived_capability  smallint CHECK (perceived_capability BETWEEN 0 AND 10),
    amends                bigint,
    UNIQUE (note_id, patient_id),
    FOREIGN KEY (amends, patient_id) REFERENCES progress_note (note_id, patient_id),
    -- A rating is about a task: the task is named whenever one is given.
    CHECK (activity IS NOT NULL
        OR (confidence IS NULL AND task_independence IS NULL AND perceived_capability IS NULL))
);
CREATE INDEX progress_note_patient_idx ON progress_note (patient_id, written_at);

ALTER TABLE progress_note ENABLE ROW LEVEL SECURITY;
ALTER TABLE progress_note FORCE ROW LEVEL SECURITY;
CREATE POLICY services ON progress_note TO paceline_owner, paceline_worker
    USING (true) WITH CHECK (true);
-- A clinician reads the notes of their care team's patients and writes only as themself.
CREATE POLICY clinician_care_team ON progress_note TO paceline_clinician
    USING (patient_id = ANY ((SELECT paceline_clinician_patients())::bigint[]))
    WITH CHECK (
        patient_id = ANY ((SELECT paceline_clinician_patients())::bigint[])
        AND clinician_id = (SELECT paceline_current_clinician())
    );
-- Clinical documentation for the care team: patients' and services' pages do not read it.
GRANT SELECT, INSERT ON progress_note TO paceline_clinician;
