-- Pacing: the TSK-17 (scored with its reverse-keyed items) beside the TSK-11,
-- and the daily flare-risk score with its contributing factors.

ALTER TABLE questionnaire_response DROP CONSTRAINT questionnaire_response_instrument_check;
ALTER TABLE questionnaire_response ADD CONSTRAINT questionnaire_response_instrument_check
    CHECK (instrument IN ('TSK-11', 'TSK-17', 'PCS', 'PSEQ'));

-- One row per patient-day, recomputed when the day is evaluated again.
CREATE TABLE flare_risk (
    patient_id       bigint NOT NULL REFERENCES patient ON DELETE CASCADE,
    day              date NOT NULL,
    score            real NOT NULL CHECK (score BETWEEN 0 AND 1),
    model            text NOT NULL,
    factors          jsonb NOT NULL DEFAULT '{}'::jsonb,
    computed_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (patient_id, day)
);

ALTER TABLE flare_risk ENABLE ROW LEVEL SECURITY;
CREATE POLICY care_team_only ON flare_risk TO paceline_clinician
    USING (paceline_may_see(patient_id)) WITH CHECK (paceline_may_see(patient_id));
GRANT SELECT ON flare_risk TO paceline_clinician;
