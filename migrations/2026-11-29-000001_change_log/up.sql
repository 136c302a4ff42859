-- Each table's change log on its shard, written by the write's own transaction: a
-- statement-level trigger on `records` adds one row per record a statement inserted,
-- updated or deleted, so the log commits, replicates and fails over with the write it
-- describes. `GET /api/changes` reads it (see shard-manager's `changes` module).
--
-- Rows are found by the transaction that wrote them (`xid`): a reader takes a snapshot
-- (at a cut across shards) and reads the rows whose transaction the snapshot sees and
-- the previous one did not. Positions taken at insert time (a sequence) would not do:
-- a smaller one may commit after a larger one was read.
--
-- Writes made for a slot move (the mover's sessions set `shardgate.origin = 'move'`:
-- its copy into the target, its catch-up, its cleanup of the source) are not changes
-- and are not logged. A part of a transaction on several shards sets
-- `shardgate.txn` to the transaction's id, which its rows carry.
CREATE TABLE shardgate_changes (
    xid        xid8        NOT NULL DEFAULT pg_current_xact_id(),
    version    BIGINT      NOT NULL,
    table_name TEXT        NOT NULL,
    shard_key  TEXT        NOT NULL,
    id         TEXT        NOT NULL,
    slot       INTEGER     NOT NULL,
    deleted    BOOLEAN     NOT NULL,
    -- The record's document after the write; NULL for a delete.
    data       JSONB,
    -- The server's clock when the write's statement ended (its commit follows).
    at         TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    txn        TEXT
);
-- A reader's page: one table's rows from a transaction id on.
CREATE INDEX shardgate_changes_by_table ON shardgate_changes (table_name, xid);
-- Retention: the oldest rows are found by time (a BRIN costs writes almost nothing).
CREATE INDEX shardgate_changes_by_time ON shardgate_changes USING BRIN (at);

-- What retention removed: rows of transactions below `horizon` that had finished when
-- the last pruning that removed rows took its snapshot (`pruned_at`). A reader whose
-- snapshot had not seen one of those is told it is gone rather than shown a gap; a
-- transaction still in progress then lost nothing.
CREATE TABLE shardgate_changes_pruned (
    singleton BOOLEAN     PRIMARY KEY DEFAULT true CHECK (singleton),
    horizon   xid8        NOT NULL,
    pruned_at pg_snapshot NOT NULL
);
INSERT INTO shardgate_changes_pruned (horizon, pruned_at) VALUES ('0', '1:1:');

CREATE FUNCTION shardgate_log_upserts() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('shardgate.origin', true) = 'move' THEN
        RETURN NULL;
    END IF;
    INSERT INTO shardgate_changes (version, table_name, shard_key, id, slot, deleted, data, txn)
    SELECT n.version, n.table_name, n.shard_key, n.id, n.slot, false, n.data,
           nullif(current_setting('shardgate.txn', true), '')
      FROM changed_new n;
    RETURN NULL;
END
$$;

-- A delete's row carries the version its deletion took: a single-record delete takes it
-- in its RETURNING (`nextval`), read back here with `currval`; a delete of several
-- records (none on the request path) takes one per record here.
CREATE FUNCTION shardgate_log_deletes() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    taken BIGINT;
    rows_gone BIGINT;
    old_version BIGINT;
BEGIN
    IF current_setting('shardgate.origin', true) = 'move' THEN
        RETURN NULL;
    END IF;
    SELECT count(*), max(version) INTO rows_gone, old_version FROM changed_old;
    IF rows_gone = 1 THEN
        BEGIN
            taken := currval('record_version_seq');
        EXCEPTION WHEN object_not_in_prerequisite_state THEN
            taken := NULL;
        END;
        IF taken IS NULL OR taken <= old_version THEN
            taken := nextval('record_version_seq');
        END IF;
    END IF;
    INSERT INTO shardgate_changes (version, table_name, shard_key, id, slot, deleted, data, txn)
    SELECT coalesce(taken, nextval('record_version_seq')), o.table_name, o.shard_key, o.id,
           o.slot, true, NULL, nullif(current_setting('shardgate.txn', true), '')
      FROM changed_old o;
    RETURN NULL;
END
$$;

CREATE TRIGGER records_log_insert AFTER INSERT ON records
    REFERENCING NEW TABLE AS changed_new
    FOR EACH STATEMENT EXECUTE FUNCTION shardgate_log_upserts();
CREATE TRIGGER records_log_update AFTER UPDATE ON records
    REFERENCING NEW TABLE AS changed_new
    FOR EACH STATEMENT EXECUTE FUNCTION shardgate_log_upserts();
CREATE TRIGGER records_log_delete AFTER DELETE ON records
    REFERENCING OLD TABLE AS changed_old
    FOR EACH STATEMENT EXECUTE FUNCTION shardgate_log_deletes();
