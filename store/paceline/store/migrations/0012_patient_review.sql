-- "Mark reviewed" on the caseload: when a clinician last looked a patient over.
-- One row per review; the caseload shows the latest. The audit log records it
-- too, but person sessions cannot read the audit log, so the caseload reads
-- this table (under the same care-team rule as every patient table).
CREATE TABLE patient_review (
    review_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id    bigint NOT NULL REFERENCES patient ON DELETE CASCADE,
    clinician_id  bigint NOT NULL REFERENCES clinician ON DELETE CASCADE,
    reviewed_at   timestamptz NOT NULL DEFAULT now(),
    note          text CHECK (length(note) <= 2000)
);
CREATE INDEX patient_review_patient_idx ON patient_review (patient_id, reviewed_at);

ALTER TABLE patient_review ENABLE ROW LEVEL SECURITY;
ALTER TABLE patient_review FORCE ROW LEVEL SECURITY;
CREATE POLICY services ON patient_review TO paceline_owner, paceline_worker
    USING (true) WITH CHECK (true);
-- A clinician reads the reviews of their care team's patients and adds only their own.
CREATE POLICY clinician_care_team ON patient_review TO paceline_clinician
    USING (patient_id = ANY ((SELECT paceline_clinician_patients())::bigint[]))
    WITH CHECK (
        patient_id = ANY ((SELECT paceline_clinician_patients())::bigint[])
        AND clinician_id = (SELECT paceline_current_clinician())
    );
GRANT SELECT, INSERT ON patient_review TO paceline_clinician;
