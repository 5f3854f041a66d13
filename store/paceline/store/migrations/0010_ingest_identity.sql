-- A batch id alone cannot tell a replay from new rows that reuse an old id
-- (a spool whose WAL was lost, one restored from a backup): the batch row
-- keeps how many rows the batch held and a digest of them, and a known id
-- with other contents is refused.
ALTER TABLE ingest_batch
    ADD COLUMN row_count integer CHECK (row_count >= 0),
    ADD COLUMN digest bytea CHECK (length(digest) = 32),
    ADD COLUMN spool_id text,
    ADD COLUMN first_seq bigint,
    ADD COLUMN last_seq bigint,
    ADD CONSTRAINT ingest_batch_seq_range CHECK (
        (spool_id IS NULL AND first_seq IS NULL AND last_seq IS NULL)
        OR (spool_id IS NOT NULL AND first_seq BETWEEN 1 AND last_seq)
    );

-- Each gateway spool has an identity; the database remembers the highest
-- sequence number it acknowledged for it, so a spool that comes back with a
-- lower one (it lost state) is noticed instead of being acknowledged again.
CREATE TABLE ingest_spool (
    spool_id        text PRIMARY KEY CHECK (length(spool_id) BETWEEN 1 AND 64),
    source          text NOT NULL DEFAULT '',
    acked_seq       bigint NOT NULL DEFAULT 0 CHECK (acked_seq >= 0),
    replaces        text,
    first_seen      timestamptz NOT NULL DEFAULT now(),
    last_seen       timestamptz NOT NULL DEFAULT now()
);

-- What the ingest path refused or found lost, for a person to look at:
-- a spool that went back in time, a spool that replaced a lost one, a batch
-- id offered again with other rows.
CREATE TABLE ingest_incident (
    incident_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    spool_id        text NOT NULL,
    source          text NOT NULL DEFAULT '',
    kind            text NOT NULL CHECK (kind IN ('regression', 'conflict', 'replaced')),
    detail          jsonb NOT NULL,
    reported_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ingest_incident_spool_idx ON ingest_incident (spool_id, reported_at);

-- Access (see 0008): the gateway uploader keeps its spools' marks and reports
-- their incidents; it reads a patient's birth year, the lower bound of a
-- sample's time, and nothing else of the patient. Services see every row.
ALTER TABLE ingest_spool ENABLE ROW LEVEL SECURITY;
ALTER TABLE ingest_spool FORCE ROW LEVEL SECURITY;
ALTER TABLE ingest_incident ENABLE ROW LEVEL SECURITY;
ALTER TABLE ingest_incident FORCE ROW LEVEL SECURITY;
CREATE POLICY services ON ingest_spool TO paceline_owner, paceline_worker, paceline_ingest
    USING (true) WITH CHECK (true);
CREATE POLICY services ON ingest_incident TO paceline_owner, paceline_worker, paceline_ingest
    USING (true) WITH CHECK (true);
REVOKE ALL ON ingest_spool, ingest_incident FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON ingest_spool TO paceline_ingest;
GRANT SELECT, INSERT ON ingest_incident TO paceline_ingest;
GRANT SELECT ON ingest_spool, ingest_incident TO paceline_worker;
GRANT SELECT (patient_id, birth_year) ON patient TO paceline_ingest;
