-- paceline: requires superuser
--
-- The audit log belongs to its own NOLOGIN role, paceline_audit_owner, which
-- only a superuser can become: paceline_owner (and so paceline_migrate) can
-- no longer update, delete, truncate, alter, drop it or disable its
-- triggers, and nobody has any privilege on it but INSERT. Handing a table to
-- another owner needs a superuser, so migrate() applies this file as the
-- administrator rather than as paceline_owner.
--
-- Tamper-evident: each row carries the hash of the row before it and its own
-- hash, SHA-256(prev_hash || content), computed by a trigger under a lock on
-- the chain head, so concurrent inserts are chained in commit order and a
-- rolled-back insert leaves no gap. `paceline audit verify` recomputes the
-- chain and names the first broken link. The triggers are ENABLE ALWAYS, so
-- session_replication_role = replica (a superuser-only setting anyway) does
-- not switch them off.

GRANT USAGE, CREATE ON SCHEMA public TO paceline_audit_owner;
DROP TRIGGER audit_log_append_only ON audit_log;
DROP TRIGGER audit_log_no_truncate ON audit_log;
ALTER TABLE audit_log OWNER TO paceline_audit_owner;
DROP POLICY services ON audit_log;
-- The owner keeps reading and appending (the administrator's page of
-- migration 0013 runs as it), never changing.
GRANT SELECT, INSERT ON audit_log TO paceline_owner;
CREATE POLICY owner_reads ON audit_log FOR SELECT TO paceline_owner USING (true);

SET LOCAL ROLE paceline_audit_owner;

ALTER TABLE audit_log
    ADD COLUMN seq bigint,
    ADD COLUMN prev_hash bytea,
    ADD COLUMN row_hash bytea;

CREATE TABLE audit_chain_head (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    seq         bigint NOT NULL,
    row_hash    bytea NOT NULL
);
REVOKE ALL ON audit_chain_head FROM PUBLIC;

-- What a row's hash covers, in one canonical text: jsonb prints a given value
-- one way only, and the time is written in UTC so the session's TimeZone
-- does not change it.
CREATE FUNCTION paceline_audit_content(a audit_log) RETURNS bytea
    LANGUAGE sql STABLE SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT convert_to(jsonb_build_array(
        a.seq, to_char(a.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        a.actor, a.clinician_id, a.patient_id, a.action, a.object, a.detail)::text, 'UTF8')
$$;

CREATE FUNCTION paceline_audit_chain() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    head record;
BEGIN
    -- The row lock serialises inserters until commit: the next row's
    -- prev_hash is always a row that committed.
    SELECT h.seq, h.row_hash INTO head FROM public.audit_chain_head h FOR UPDATE;
    NEW.seq := head.seq + 1;
    NEW.prev_hash := head.row_hash;
    NEW.row_hash := sha256(head.row_hash || public.paceline_audit_content(NEW));
    UPDATE public.audit_chain_head SET seq = NEW.seq, row_hash = NEW.row_hash;
    RETURN NEW;
END
$$;

CREATE FUNCTION paceline_audit_reject() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
REVOKE ALL ON FUNCTION paceline_audit_chain() FROM PUBLIC;

SET LOCAL ROLE NONE;
-- Chain what is already there, in the order it was written (as the
-- administrator: row security hides the rows from their owner).
DO $$
DECLARE
    r public.audit_log;
    prev bytea := '\x0000000000000000000000000000000000000000000000000000000000000000';
    n bigint := 0;
BEGIN
    FOR r IN SELECT * FROM audit_log ORDER BY audit_id LOOP
        n := n + 1;
        r.seq := n;
        UPDATE audit_log SET seq = n, prev_hash = prev,
            row_hash = sha256(prev || paceline_audit_content(r))
        WHERE audit_id = r.audit_id
        RETURNING row_hash INTO prev;
    END LOOP;
    INSERT INTO audit_chain_head (seq, row_hash) VALUES (n, prev);
END
$$;

SET LOCAL ROLE paceline_audit_owner;

ALTER TABLE audit_log
    ALTER COLUMN seq SET NOT NULL,
    ALTER COLUMN prev_hash SET NOT NULL,
    ALTER COLUMN row_hash SET NOT NULL,
    ADD CONSTRAINT audit_log_seq_key UNIQUE (seq);

CREATE TRIGGER audit_log_chain BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION paceline_audit_chain();
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION paceline_audit_reject();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION paceline_audit_reject();
ALTER TABLE audit_log ENABLE ALWAYS TRIGGER audit_log_chain;
ALTER TABLE audit_log ENABLE ALWAYS TRIGGER audit_log_append_only;
ALTER TABLE audit_log ENABLE ALWAYS TRIGGER audit_log_no_truncate;

-- Services append freely (their actor is the service's name); people as
-- themselves (policies of migration 0008). Only the owner's administrator
-- functions (migration 0013) and a superuser read it.
CREATE POLICY services_append ON audit_log FOR INSERT
    TO paceline_owner, paceline_worker, paceline_ingest WITH CHECK (true);

SET LOCAL ROLE NONE;
