-- Heart-rate variability as SDNN, the figure Apple Health (and other exports)
-- record: the standard deviation of the NN intervals over a short window
-- (about a minute on an Apple Watch). It is not RMSSD and must never be read
-- as one (Shaffer & Ginsberg 2017: the two measure different things and are
-- not interchangeable), so it gets its own table rather than a column of the
-- daily metrics. One row per measurement, keyed like the raw streams, written
-- by the same exactly-once batch writer; `time` is the end of the window.
CREATE TABLE hrv_sdnn_sample (
    patient_id  bigint NOT NULL,
    device_id   bigint NOT NULL,
    time        timestamptz NOT NULL,
    sdnn_ms     double precision NOT NULL CHECK (sdnn_ms > 0 AND sdnn_ms <= 64000),
    PRIMARY KEY (patient_id, time, device_id)
);

-- Relational, so row security as for every other relational table: services
-- read and write it through their policy, no person role has any privilege
-- (nothing in the dashboard reads it yet; a view like clinician_hr_sample
-- comes with the first reader).
ALTER TABLE hrv_sdnn_sample ENABLE ROW LEVEL SECURITY;
ALTER TABLE hrv_sdnn_sample FORCE ROW LEVEL SECURITY;
CREATE POLICY services ON hrv_sdnn_sample TO paceline_owner, paceline_worker, paceline_ingest
    USING (true) WITH CHECK (true);
GRANT SELECT, INSERT ON hrv_sdnn_sample TO paceline_ingest;
GRANT SELECT ON hrv_sdnn_sample TO paceline_worker;
