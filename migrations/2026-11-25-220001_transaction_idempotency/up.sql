-- Exactly once for transactions sent with an `Idempotency-Key`: each operation's record
-- gets an entry under the key (`shardgate_idempotency_records`, moving with its slot),
-- written by the part's own transaction, so the entry commits (or is prepared, and
-- then committed or rolled back) with the write. A retry's part, once it holds a
-- record's lock (`shardgate_txn_lock`), looks for that record's entry: found, the
-- transaction was applied before, and the part stops with SG006, whose DETAIL is
-- every entry of the key on this shard as JSON ([{"table", "shard_key", "id",
-- "answer"}]); the gateway answers from them. Holding the lock first means a retry
-- racing its original waits for it (prepared parts hold their locks) and then sees its
-- entries, or, if it was rolled back, applies the transaction itself. A keyed part's
-- condition is checked here, after the entry (a retry's conditions no longer hold once
-- its original applied): the lock is then taken with no condition. SG005 as the lock's.
CREATE FUNCTION shardgate_txn_seen(
    p_caller TEXT, p_key TEXT, p_table TEXT, p_shard_key TEXT, p_id TEXT,
    p_expected BIGINT, p_op INTEGER
) RETURNS BIGINT
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    prior BIGINT;
BEGIN
    IF EXISTS (SELECT 1 FROM shardgate_idempotency_records
                WHERE caller = p_caller AND key = p_key AND table_name = p_table
                  AND shard_key = p_shard_key AND id = p_id) THEN
        RAISE EXCEPTION 'this transaction was applied before under its idempotency key'
            USING ERRCODE = 'SG006', DETAIL = (
                SELECT coalesce(jsonb_agg(jsonb_build_object(
                           'table', table_name, 'shard_key', shard_key, 'id', id,
                           'answer', answer)), '[]'::jsonb)::text
                  FROM shardgate_idempotency_records
                 WHERE caller = p_caller AND key = p_key);
    END IF;
    SELECT version INTO prior FROM records
     WHERE table_name = p_table AND shard_key = p_shard_key AND id = p_id;
    prior := coalesce(prior, 0);
    IF p_expected IS NOT NULL AND prior <> p_expected THEN
        RAISE EXCEPTION 'record %/% (shard key %) is at version %, not %',
            p_table, p_id, p_shard_key, prior, p_expected
            USING ERRCODE = 'SG005', DETAIL = p_op::text || ' ' || prior::text;
    END IF;
    -- Read by shardgate_txn_remember after the operation's write.
    PERFORM set_config('shardgate.txn_prior', prior::text, true);
    RETURN prior;
END
$$;

-- The entry of one operation, right after its write: the version the write took
-- (`record_version_seq`'s value in this session; a delete of an absent record took
-- none), whether an upsert created the record, whether a delete removed one.
CREATE FUNCTION shardgate_txn_remember(
    p_caller TEXT, p_key TEXT, p_fingerprint BYTEA, p_slot INTEGER, p_table TEXT,
    p_shard_key TEXT, p_id TEXT, p_ttl_secs BIGINT, p_delete BOOLEAN
) RETURNS BOOLEAN
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    prior BIGINT := current_setting('shardgate.txn_prior')::bigint;
    took BIGINT;
BEGIN
    IF NOT p_delete OR prior <> 0 THEN
        took := currval('record_version_seq');
    END IF;
    INSERT INTO shardgate_idempotency_records
        (caller, key, table_name, shard_key, id, slot, fingerprint, answer, expires_at)
    VALUES (p_caller, p_key, p_table, p_shard_key, p_id, p_slot, p_fingerprint,
            jsonb_build_object('version', took,
                               'created', NOT p_delete AND prior = 0,
                               'deleted', p_delete AND prior <> 0),
            now() + p_ttl_secs * interval '1 second');
    RETURN true;
END
$$;
