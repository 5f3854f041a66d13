-- Clinical data: self-report, questionnaires, exposure, daily metrics, plans,
-- flags and alerts, and the audit log.

CREATE TABLE self_report (
    report_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id       bigint NOT NULL REFERENCES patient ON DELETE CASCADE,
    reported_at      timestamptz NOT NULL,
    pain_now         smallint NOT NULL CHECK (pain_now BETWEEN 0 AND 10),
    pain_average     smallint CHECK (pain_average BETWEEN 0 AND 10),
    pain_worst       smallint CHECK (pain_worst BETWEEN 0 AND 10),
    fatigue          smallint CHECK (fatigue BETWEEN 0 AND 10),
    mood             smallint CHECK (mood BETWEEN 0 AND 10),
    sleep_quality    smallint CHECK (sleep_quality BETWEEN 0 AND 10),
    fear_of_movement smallint CHECK (fear_of_movement BETWEEN 0 AND 10),
    note             text CHECK (length(note) <= 2000),
    idempotency_key  text CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (patient_id, idempotency_key)
);
CREATE INDEX self_report_patient_time_idx ON self_report (patient_id, reported_at);

CREATE TABLE questionnaire_response (
    response_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id       bigint NOT NULL REFERENCES patient ON DELETE CASCADE,
    instrument       text NOT NULL CHECK (instrument IN ('TSK-11', 'PCS', 'PSEQ')),
    answered_at      timestamptz NOT NULL,
    items            smallint[] NOT NULL,
    total            integer NOT NULL,
    scores           jsonb NOT NULL DEFAULT '{}'::jsonb,
    idempotency_key  text CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (patient_id, idempotency_key)
);
CREATE INDEX questionnaire_patient_time_idx ON questionnaire_response (patient_id, answered_at);

CREATE TABLE exposure_item (
    item_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id       bigint NOT NULL REFERENCES patient ON DELETE CASCADE,
    activity         text NOT NULL CHECK (length(activity) BETWEEN 1 AND 200),
    fear_rating      smallint NOT NULL CHECK (fear_rating BETWEEN 0 AND 100),
    position         integer NOT NULL CHECK (position >= 0),
    status           text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'mastered', 'retired')),
    created_by       bigint REFERENCES clinician ON DELETE SET NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX exposure_item_patient_idx ON exposure_item (patient_id, position);

CREATE TABLE exposure_session (
    session_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    item_id          bigint NOT NULL REFERENCES exposure_item ON DELETE CASCADE,
    patient_id       bigint NOT NULL REFERENCES patient ON DELETE CASCADE,
    planned_at       timestamptz NOT NULL,
    status           text NOT NULL DEFAULT 'planned' CHECK (status IN ('planned', 'done', 'skipped')),
    started_at       timestamptz,
    ended_at         timestamptz,
    fear_before      smallint CHECK (fear_before BETWEEN 0 AND 100),
    fear_after       smallint CHECK (fear_after BETWEEN 0 AND 100),
    expected_harm    smallint CHECK (expected_harm BETWEEN 0 AND 100),
    actual_harm      smallint CHECK (actual_harm BETWEEN 0 AND 100),
    note             text CHECK (length(note) <= 2000),
    created_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (ended_at IS NULL OR started_at IS NULL OR ended_at >= started_at)
);
CREATE INDEX exposure_session_patient_idx ON exposure_session (patient_id, planned_at);
CREATE INDEX exposure_session_item_idx ON exposure_session (item_id);

-- One row per patient-day, recomputed only for days that received new samples.
CREATE TABLE daily_metrics (
    patient_id           bigint NOT NULL REFERENCES patient ON DELETE CASCADE,
    day                  date NOT NULL,
    wear_min             real NOT NULL,
    zone_min             real[] NOT NULL,
    above_ceiling_min    real NOT NULL DEFAULT 0,
    trimp_banister       real,
    trimp_edwards        real,
    step_load            real,
    steps                integer NOT NULL DEFAULT 0,
    active_min           real NOT NULL DEFAULT 0,
    activity_bouts       integer NOT NULL DEFAULT 0,
    longest_sedentary_min real NOT NULL DEFAULT 0,
    resting_hr_bpm       real,
    mean_hr_bpm          real,
    rmssd_ms             real,
    sdnn_ms              real,
    hr_samples           integer NOT NULL DEFAULT 0,
    rr_intervals         integer NOT NULL DEFAULT 0,
    extra                jsonb NOT NULL DEFAULT '{}'::jsonb,
    computed_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (patient_id, day)
);

-- Versioned: a change is a new row with who and why; the highest version is current.
CREATE TABLE pacing_plan (
    plan_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id       bigint NOT NULL REFERENCES patient ON DELETE CASCADE,
    version          integer NOT NULL CHECK (version >= 1),
    measure          text NOT NULL CHECK (measure IN ('active_minutes', 'steps', 'trimp')),
    baseline         real CHECK (baseline >= 0),
    quota            real CHECK (quota >= 0),
    start_fraction   real NOT NULL DEFAULT 0.8 CHECK (start_fraction > 0 AND start_fraction <= 1.5),
    step_fraction    real NOT NULL DEFAULT 0.1 CHECK (step_fraction BETWEEN 0.05 AND 0.2),
    period_days      integer NOT NULL DEFAULT 7 CHECK (period_days BETWEEN 1 AND 60),
    hr_ceiling_bpm   smallint CHECK (hr_ceiling_bpm BETWEEN 60 AND 220),
    valid_from       timestamptz NOT NULL DEFAULT now(),
    params           jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_by       bigint REFERENCES clinician ON DELETE SET NULL,
    reason           text NOT NULL CHECK (length(reason) BETWEEN 1 AND 2000),
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (patient_id, version)
);

CREATE TABLE flag (
    flag_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id       bigint NOT NULL REFERENCES patient ON DELETE CASCADE,
    rule_id          text NOT NULL,
    window_start     timestamptz NOT NULL,
    window_end       timestamptz NOT NULL CHECK (window_end >= window_start),
    severity         text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    evidence         jsonb NOT NULL DEFAULT '{}'::jsonb,
    status           text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged', 'resolved')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (patient_id, rule_id, window_start)
);
CREATE INDEX flag_open_idx ON flag (patient_id, status, window_start);

CREATE TABLE alert (
    alert_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    flag_id          bigint REFERENCES flag ON DELETE SET NULL,
    patient_id       bigint NOT NULL REFERENCES patient ON DELETE CASCADE,
    rule_id          text NOT NULL,
    window_start     timestamptz NOT NULL,
    channel          text NOT NULL,
    recipient        text NOT NULL,
    severity         text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    UNIQUE (patient_id, rule_id, window_start, channel, recipient)
);

-- Append-only: who looked at or changed which patient's data, and when.
CREATE TABLE audit_log (
    audit_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at               timestamptz NOT NULL DEFAULT now(),
    actor            text NOT NULL,
    clinician_id     bigint,
    patient_id       bigint,
    action           text NOT NULL,
    object           text NOT NULL,
    detail           jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_patient_idx ON audit_log (patient_id, at);

CREATE FUNCTION paceline_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION paceline_reject_change();
CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION paceline_reject_change();
