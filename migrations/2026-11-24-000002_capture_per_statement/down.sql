DROP TRIGGER records_capture_insert ON records;
DROP TRIGGER records_capture_update_new ON records;
DROP TRIGGER records_capture_update_old ON records;
DROP TRIGGER records_capture_delete ON records;
DROP FUNCTION shardgate_capture_new();
DROP FUNCTION shardgate_capture_old();

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
CREATE TRIGGER records_capture AFTER INSERT OR UPDATE OR DELETE ON records
    FOR EACH ROW EXECUTE FUNCTION shardgate_capture();
