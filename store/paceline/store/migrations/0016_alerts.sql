-- Alerts and their delivery (paceline.pacing.alerts).
--
-- The `alert` table of 0002 was shaped as one row per message (channel,
-- recipient, attempts) and was never written. It becomes one row per
-- (patient, rule, episode) with a life cycle (open → acknowledged → resolved),
-- and each message is an `alert_delivery` row: one per (alert, channel,
-- recipient, notice), written in the evaluation's transaction. The row
-- security policy of 0003 and the same-patient link of 0006 and the
-- policies and grants of 0008 stay.

-- Where people are reached, and when a patient wants the diary reminder.
ALTER TABLE patient
    ADD COLUMN email text CHECK (email IS NULL OR email ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
    ADD COLUMN diary_reminder_at time;
ALTER TABLE clinician
    ADD CONSTRAINT clinician_email_check
        CHECK (email IS NULL OR email ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
    ADD COLUMN timezone text NOT NULL DEFAULT 'UTC';

-- Dropping channel and recipient drops the old per-message unique key with them.
ALTER TABLE alert DROP CONSTRAINT alert_status_check;
ALTER TABLE alert
    DROP COLUMN channel,
    DROP COLUMN recipient,
    DROP COLUMN attempts,
    DROP COLUMN last_error,
    DROP COLUMN sent_at,
    ALTER COLUMN status SET DEFAULT 'open',
    ADD CONSTRAINT alert_status_check CHECK (status IN ('open', 'acknowledged', 'resolved')),
    ADD COLUMN window_end timestamptz,
    ADD COLUMN audience text NOT NULL DEFAULT 'care_team'
        CHECK (audience IN ('care_team', 'patient')),
    ADD COLUMN urgency text NOT NULL DEFAULT 'immediate'
        CHECK (urgency IN ('immediate', 'digest', 'inbox')),
    ADD COLUMN summary text NOT NULL DEFAULT '' CHECK (length(summary) <= 2000),
    ADD COLUMN detail jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN opened_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN notified_severity text CHECK (notified_severity IN ('info', 'warning', 'critical')),
    ADD COLUMN last_notified_at timestamptz,
    ADD COLUMN notices integer NOT NULL DEFAULT 0 CHECK (notices >= 0),
    ADD COLUMN repeats integer NOT NULL DEFAULT 0 CHECK (repeats >= 0),
    ADD COLUMN episodes integer NOT NULL DEFAULT 1 CHECK (episodes >= 1),
    ADD COLUMN acknowledged_at timestamptz,
    ADD COLUMN acknowledged_by bigint REFERENCES clinician ON DELETE SET NULL,
    ADD COLUMN ack_note text CHECK (length(ack_note) <= 2000),
    ADD COLUMN resolved_at timestamptz,
    ADD COLUMN resolved_by bigint REFERENCES clinician ON DELETE SET NULL,
    ADD COLUMN resolution text CHECK (resolution IN ('clinician', 'episode_ended')),
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now(),
    -- window_start is the first episode's start: the alert's identity.
    ADD CONSTRAINT alert_episode_key UNIQUE (patient_id, rule_id, window_start),
    ADD CONSTRAINT alert_id_patient_key UNIQUE (alert_id, patient_id);
CREATE INDEX alert_patient_rule_idx ON alert (patient_id, rule_id, window_start DESC);
CREATE INDEX alert_unresolved_idx ON alert (status) WHERE status <> 'resolved';

-- A push endpoint (the webhook) that answered 410 Gone is disabled here until
-- an operator enables it again; its pending deliveries are not attempted.
CREATE TABLE alert_endpoint (
    endpoint     text PRIMARY KEY CHECK (length(endpoint) BETWEEN 1 AND 200),
    disabled_at  timestamptz,
    reason       text
);

CREATE TABLE alert_delivery (
    delivery_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The alert the message is about; a grouped message lists the others in alert_ids.
    alert_id         bigint NOT NULL,
    patient_id       bigint NOT NULL REFERENCES patient ON DELETE CASCADE,
    alert_ids        bigint[] NOT NULL CHECK (cardinality(alert_ids) >= 1),
    notice           integer NOT NULL DEFAULT 0 CHECK (notice >= 0),
    channel          text NOT NULL CHECK (channel IN ('inbox', 'email', 'webhook')),
    recipient        text NOT NULL CHECK (recipient ~ '^(clinician|patient|endpoint):[a-z0-9_]+$'),
    address          text,
    kind             text NOT NULL DEFAULT 'immediate' CHECK (kind IN ('immediate', 'digest')),
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'delivered', 'failed', 'dead', 'disabled')),
    -- Stable across retries: the e-mail Message-ID and the webhook-id are made from it.
    message_key      uuid NOT NULL UNIQUE,
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  timestamptz,
    last_attempt_at  timestamptz,
    last_error       text,
    delivered_at     timestamptz,
    digest_of        bigint REFERENCES alert_delivery ON DELETE SET NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (alert_id, channel, recipient, notice),
    FOREIGN KEY (alert_id, patient_id) REFERENCES alert (alert_id, patient_id) ON DELETE CASCADE
);
CREATE INDEX alert_delivery_due_idx ON alert_delivery (next_attempt_at) WHERE status = 'pending';
CREATE INDEX alert_delivery_dead_idx ON alert_delivery (last_attempt_at) WHERE status = 'dead';
CREATE INDEX alert_delivery_patient_idx ON alert_delivery (patient_id);

-- Security model of 0008: owned by paceline_owner (migrate runs as it), FORCE
-- ROW LEVEL SECURITY, and only the grants each role needs. Workers write the
-- outbox (raise_alerts, deliver); clinicians read their care team's
-- deliveries (the inbox and the dead letters on the dashboard); patients read
-- the deliveries addressed to them (their inbox). The endpoint table is the
-- workers' alone.
ALTER TABLE alert_delivery ENABLE ROW LEVEL SECURITY;
ALTER TABLE alert_delivery FORCE ROW LEVEL SECURITY;
CREATE POLICY services ON alert_delivery TO paceline_owner, paceline_worker
    USING (true) WITH CHECK (true);
CREATE POLICY clinician_care_team ON alert_delivery FOR SELECT TO paceline_clinician
    USING (patient_id = ANY ((SELECT paceline_clinician_patients())::bigint[]));
CREATE POLICY patient_self ON alert_delivery FOR SELECT TO paceline_patient
    USING (patient_id = (SELECT paceline_patient_self())
           AND recipient = 'patient:' || (SELECT paceline_patient_self()));
GRANT SELECT ON alert_delivery TO paceline_clinician, paceline_patient;
GRANT SELECT, INSERT, UPDATE ON alert_delivery TO paceline_worker;

ALTER TABLE alert_endpoint ENABLE ROW LEVEL SECURITY;
ALTER TABLE alert_endpoint FORCE ROW LEVEL SECURITY;
CREATE POLICY services ON alert_endpoint TO paceline_owner, paceline_worker
    USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE ON alert_endpoint TO paceline_worker;
