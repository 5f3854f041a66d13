-- Paceline core schema: people, devices, raw sample streams, ingest bookkeeping.
-- Time is always timestamptz (UTC). Raw sample tables are append-only.

CREATE TABLE patient (
    patient_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    external_ref    text NOT NULL UNIQUE CHECK (length(external_ref) BETWEEN 1 AND 64),
    display_name    text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
    birth_year      smallint CHECK (birth_year BETWEEN 1900 AND 2100),
    sex             text NOT NULL DEFAULT 'unspecified'
                    CHECK (sex IN ('female', 'male', 'unspecified')),
    hr_max_bpm      smallint CHECK (hr_max_bpm BETWEEN 100 AND 250),
    hr_rest_bpm     smallint CHECK (hr_rest_bpm BETWEEN 25 AND 120),
    timezone        text NOT NULL DEFAULT 'UTC',
    enrolled_at     timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE clinician (
    clinician_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username        text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9_.-]{2,64}$'),
    display_name    text NOT NULL,
    role            text NOT NULL DEFAULT 'clinician' CHECK (role IN ('clinician', 'admin')),
    email           text,
    password_hash   text,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Who may see whom. Row-level security on every patient table reads this.
CREATE TABLE care_team (
    clinician_id    bigint NOT NULL REFERENCES clinician ON DELETE CASCADE,
    patient_id      bigint NOT NULL REFERENCES patient ON DELETE CASCADE,
    role            text NOT NULL DEFAULT 'physiotherapist'
                    CHECK (role IN ('physiotherapist', 'psychologist', 'physician', 'nurse', 'other')),
    since           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (clinician_id, patient_id)
);
CREATE INDEX care_team_patient_idx ON care_team (patient_id);

CREATE TABLE device (
    device_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    address         text NOT NULL UNIQUE CHECK (length(address) BETWEEN 1 AND 64),
    name            text,
    profile         text NOT NULL DEFAULT 'unknown',
    patient_id      bigint REFERENCES patient ON DELETE SET NULL,
    bound_at        timestamptz,
    manufacturer    text,
    model           text,
    firmware        text,
    battery_pct     smallint CHECK (battery_pct BETWEEN 0 AND 100),
    first_seen      timestamptz NOT NULL DEFAULT now(),
    last_seen       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX device_patient_idx ON device (patient_id);

-- Raw streams. The primary key is also the deduplication key: a sample re-sent
-- after a reconnect or a replayed spool batch is recognised and skipped.
CREATE TABLE hr_sample (
    patient_id      bigint NOT NULL,
    device_id       bigint NOT NULL,
    time            timestamptz NOT NULL,
    bpm             smallint NOT NULL,
    sensor_contact  boolean,
    energy_kj       integer,
    PRIMARY KEY (patient_id, time, device_id)
);

CREATE TABLE rr_interval (
    patient_id      bigint NOT NULL,
    device_id       bigint NOT NULL,
    time            timestamptz NOT NULL,
    rr_ms           double precision NOT NULL,
    PRIMARY KEY (patient_id, time, device_id)
);

CREATE TABLE step_sample (
    patient_id      bigint NOT NULL,
    device_id       bigint NOT NULL,
    time            timestamptz NOT NULL,
    steps           integer NOT NULL,
    PRIMARY KEY (patient_id, time, device_id)
);

-- One row per committed spool batch, written in the batch's own transaction:
-- a batch id found here has landed whole, exactly once.
CREATE TABLE ingest_batch (
    batch_id        text PRIMARY KEY CHECK (length(batch_id) BETWEEN 1 AND 200),
    source          text NOT NULL DEFAULT '',
    hr_rows         integer NOT NULL DEFAULT 0,
    rr_rows         integer NOT NULL DEFAULT 0,
    step_rows       integer NOT NULL DEFAULT 0,
    duplicate_rows  integer NOT NULL DEFAULT 0,
    first_time      timestamptz,
    last_time       timestamptz,
    committed_at    timestamptz NOT NULL DEFAULT now()
);

-- Rows the uploader could not store (a poison row split out of a batch),
-- kept with the reason so that nothing is dropped silently.
CREATE TABLE ingest_quarantine (
    quarantine_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch_id        text NOT NULL,
    source          text NOT NULL DEFAULT '',
    stream          text NOT NULL CHECK (stream IN ('hr', 'rr', 'steps', 'payload')),
    row_data        jsonb NOT NULL,
    reason          text NOT NULL,
    quarantined_at  timestamptz NOT NULL DEFAULT now()
);
