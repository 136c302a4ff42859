-- A cross-shard transaction's part locks each record it touches before writing it, and
-- checks the operation's condition there: `p_expected` NULL (no condition), 0 (the record
-- must not exist) or the version the record must be at. The slot is claimed first (as every
-- write claims it: SG001 when this shard does not own it). An advisory lock on the record's
-- identity (class: one bigint, apart from the slots' two-integer locks) serialises two parts
-- that both expect a record to be absent, which no row lock can. A failed condition raises
-- SG005 with DETAIL '<p_op> <current version>' (the operation's position in the
-- request, echoed; 0: absent): nothing of the part
-- is written, and the gateway answers 409 naming that version. Returns the current version.
CREATE FUNCTION shardgate_txn_lock(
    p_slot INTEGER, p_table TEXT, p_key TEXT, p_id TEXT, p_expected BIGINT, p_op INTEGER
) RETURNS BIGINT
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    current BIGINT;
BEGIN
    PERFORM shardgate_claim(p_slot);
    PERFORM pg_advisory_xact_lock(
        hashtextextended(p_table || '/' || p_key || '/' || p_id, 21320));
    SELECT version INTO current FROM records
     WHERE table_name = p_table AND shard_key = p_key AND id = p_id
       FOR UPDATE;
    current := coalesce(current, 0);
    IF p_expected IS NOT NULL AND current <> p_expected THEN
        RAISE EXCEPTION 'record %/% (shard key %) is at version %, not %',
            p_table, p_id, p_key, current, p_expected
            USING ERRCODE = 'SG005', DETAIL = p_op::text || ' ' || current::text;
    END IF;
    RETURN current;
END
$$;
