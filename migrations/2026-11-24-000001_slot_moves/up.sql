-- Moving slots between shards online (`shard-manager move-slots`, `add-shard`, ...).
-- While a slot is copied to its next owner, every change to its rows on this (the
-- source) shard is logged by a trigger in the writer's own transaction: the mover
-- replays the logged keys on the target (it reads the key's current row here, so the
-- order of log entries does not matter), and deletes each entry it applied by its seq.

-- The slots this shard is moving away, and by which move (the metadata database's id).
CREATE TABLE shardgate_moving (
    slot INTEGER PRIMARY KEY,
    move BIGINT  NOT NULL
);

-- Keys changed in a moving slot since its capture began.
CREATE TABLE shardgate_move_log (
    seq        BIGSERIAL PRIMARY KEY,
    move       BIGINT    NOT NULL,
    table_name TEXT      NOT NULL,
    shard_key  TEXT      NOT NULL,
    id         TEXT      NOT NULL
);
CREATE INDEX shardgate_move_log_by_move ON shardgate_move_log (move, seq);

CREATE FUNCTION shardgate_capture() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        INSERT INTO shardgate_move_log (move, table_name, shard_key, id)
        SELECT m.move, OLD.table_name, OLD.shard_key, OLD.id
          FROM shardgate_moving m WHERE m.slot = OLD.slot;
    END IF;
    IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR NEW.slot IS DISTINCT FROM OLD.slot
        OR NEW.shard_key IS DISTINCT FROM OLD.shard_key OR NEW.id IS DISTINCT FROM OLD.id
        OR NEW.table_name IS DISTINCT FROM OLD.table_name) THEN
        INSERT INTO shardgate_move_log (move, table_name, shard_key, id)
        SELECT m.move, NEW.table_name, NEW.shard_key, NEW.id
          FROM shardgate_moving m WHERE m.slot = NEW.slot;
    END IF;
    RETURN NULL;
END
$$;

-- Fires only while this shard moves something away (the table is empty otherwise, and
-- the lookup is one index probe of an empty table).
CREATE TRIGGER records_capture AFTER INSERT OR UPDATE OR DELETE ON records
    FOR EACH ROW EXECUTE FUNCTION shardgate_capture();
