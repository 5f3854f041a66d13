-- The exposure stop rule (paceline.pacing.exposure, paceline.pacing.ladder).
--
-- A session whose fear or distress passes the patient's stop threshold (a plan
-- setting, `exposure_stop_distress`), or that the patient stops, is stored as
-- 'stopped' with the peak distress rated during it and a debrief note (what
-- happened and what the clinician is asked to go over); the rung does not
-- advance on it. The table's row security and grants stay as in 0008.
ALTER TABLE exposure_session DROP CONSTRAINT exposure_session_status_check;
ALTER TABLE exposure_session
    ADD CONSTRAINT exposure_session_status_check
        CHECK (status IN ('planned', 'done', 'skipped', 'stopped')),
    ADD COLUMN peak_distress smallint CHECK (peak_distress BETWEEN 0 AND 100),
    ADD COLUMN debrief text CHECK (length(debrief) <= 4000),
    ADD CONSTRAINT exposure_session_stopped_debrief
        CHECK (status <> 'stopped' OR debrief IS NOT NULL);
