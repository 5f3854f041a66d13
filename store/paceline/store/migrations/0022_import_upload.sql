-- Export files uploaded on the dashboard, each imported by a worker.
--
-- The dashboard's roles may not insert samples or register devices, so an
-- upload is only stored here, with its import job deferred in the same
-- transaction, by `paceline_request_import` (SECURITY DEFINER: it checks the
-- verified person before it writes anything). The worker's role runs the job
-- (`paceline.import_upload`): it imports the file with the same importer as
-- `paceline import`, rolls up the days it touched and records the outcome
-- here, where the clinician's patient page reads it. The file's bytes are
-- dropped once the import has finished; its SHA-256 stays.

CREATE TABLE import_upload (
    upload_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id   bigint NOT NULL REFERENCES patient ON DELETE CASCADE,
    requested_by text NOT NULL,
    filename     text NOT NULL CHECK (length(filename) BETWEEN 1 AND 255),
    size_bytes   bigint NOT NULL CHECK (size_bytes > 0),
    sha256       text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    content      bytea,
    status       text NOT NULL DEFAULT 'queued'
                 CHECK (status IN ('queued', 'running', 'done', 'failed')),
    summary      jsonb,
    error        text,
    requested_at timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz
);
CREATE INDEX import_upload_patient_idx ON import_upload (patient_id, requested_at DESC);

ALTER TABLE import_upload ENABLE ROW LEVEL SECURITY;
ALTER TABLE import_upload FORCE ROW LEVEL SECURITY;
CREATE POLICY services ON import_upload TO paceline_owner, paceline_worker
    USING (true) WITH CHECK (true);
CREATE POLICY clinician_care_team ON import_upload FOR SELECT TO paceline_clinician
    USING (patient_id = ANY ((SELECT paceline_clinician_patients())::bigint[]));
CREATE POLICY patient_self ON import_upload FOR SELECT TO paceline_patient
    USING (patient_id = (SELECT paceline_patient_self()));

-- People read the outcome, never the bytes; only the request function writes.
GRANT SELECT (upload_id, patient_id, requested_by, filename, size_bytes, sha256, status, summary,
    error, requested_at, started_at, finished_at) ON import_upload
    TO paceline_clinician, paceline_patient;
GRANT SELECT, UPDATE ON import_upload TO paceline_worker;

-- The worker imports as the gateway uploader writes: samples and their batch
-- bookkeeping through the batch writer, one device per source of the file.
GRANT INSERT ON hr_sample, rr_interval, step_sample, hrv_sdnn_sample TO paceline_worker;
GRANT INSERT, UPDATE ON ingest_batch TO paceline_worker;
GRANT INSERT, UPDATE ON device TO paceline_worker;

-- Store an upload for `p_patient` and defer its import, or refuse: the caller
-- must be a verified clinician on the patient's care team, or the patient.
-- The request is audited as the person in the same transaction.
CREATE FUNCTION paceline_request_import(p_patient bigint, p_filename text, p_content bytea)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    actor     text := public.paceline_identity_actor();
    clinician bigint := public.paceline_current_clinician();
    upload    bigint;
BEGIN
    IF actor IS NULL OR p_patient IS NULL
        OR NOT (p_patient = ANY (public.paceline_visible_patients())) THEN
        RAISE EXCEPTION 'no import for patient %: not on the caller''s care team', p_patient
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- The dashboard refuses larger files before sending them; this is the last word.
    IF p_content IS NULL OR length(p_content) = 0 OR length(p_content) > 209715200 THEN
        RAISE EXCEPTION 'an upload holds 1 byte to 200 MiB; got %', coalesce(length(p_content), 0)
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    INSERT INTO public.import_upload (patient_id, requested_by, filename, size_bytes, sha256, content)
    VALUES (p_patient, actor, p_filename, length(p_content), encode(sha256(p_content), 'hex'),
            p_content)
    RETURNING upload_id INTO upload;
    INSERT INTO public.audit_log (actor, clinician_id, patient_id, action, object, detail)
    VALUES (actor, clinician, p_patient, 'import.request', 'import_upload',
            jsonb_build_object('upload_id', upload, 'filename', p_filename,
                               'bytes', length(p_content)));
    -- The worker's job, under the patient's lock (one job of a patient at a time).
    PERFORM public.procrastinate_defer_jobs_v1(ARRAY[ROW(
        'import', 'paceline.import_upload', 0, 'patient:' || p_patient, 'import:' || upload,
        jsonb_build_object('upload_id', upload), NULL
    )::public.procrastinate_job_to_defer_v1]);
    RETURN upload;
END
$$;
REVOKE ALL ON FUNCTION paceline_request_import(bigint, text, bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION paceline_request_import(bigint, text, bytea)
    TO paceline_clinician, paceline_patient;
