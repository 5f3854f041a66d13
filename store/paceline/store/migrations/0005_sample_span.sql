-- Which patient time spans received new samples since the daily-metrics rollup
-- last ran. The batch writer adds one row per patient per batch that stored
-- anything, in the batch's own transaction; the rollup deletes the rows it has
-- processed in its own transaction, so a day is recomputed exactly when new
-- samples arrived for it, and a failed rollup leaves its work queued.
CREATE TABLE sample_span (
    span_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id   bigint NOT NULL REFERENCES patient ON DELETE CASCADE,
    first_time   timestamptz NOT NULL,
    last_time    timestamptz NOT NULL CHECK (last_time >= first_time),
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sample_span_patient_idx ON sample_span (patient_id);
