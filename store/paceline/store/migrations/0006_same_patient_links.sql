-- A row that points at another row must belong to the same patient: an
-- exposure session at an item of the patient's own ladder, an alert at one of
-- the patient's own flags. Row security checks each row on its own, so
-- without these a clinician session could link its patient's session to
-- another patient's item (and learn from the foreign-key check that the item
-- exists).
ALTER TABLE exposure_item ADD CONSTRAINT exposure_item_id_patient_key UNIQUE (item_id, patient_id);
ALTER TABLE exposure_session ADD CONSTRAINT exposure_session_same_patient_fkey
    FOREIGN KEY (item_id, patient_id) REFERENCES exposure_item (item_id, patient_id)
    ON DELETE CASCADE;

ALTER TABLE flag ADD CONSTRAINT flag_id_patient_key UNIQUE (flag_id, patient_id);
ALTER TABLE alert ADD CONSTRAINT alert_same_patient_fkey
    FOREIGN KEY (flag_id, patient_id) REFERENCES flag (flag_id, patient_id)
    ON DELETE SET NULL (flag_id);

-- Identity columns need no sequence privilege to insert; USAGE would only let
-- a clinician session read every sequence's last value (how many patients,
-- flags and alerts the whole service holds).
REVOKE USAGE ON ALL SEQUENCES IN SCHEMA public FROM paceline_clinician;
