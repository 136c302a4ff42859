-- Exactly once per record for bulk writes sent with an `Idempotency-Key`, and one
-- owner of each key whichever shards its writes reach.
--
-- A bulk write's records are remembered one by one, each with its own slot, written by
-- the group's statement (one transaction with the records): a retry writes exactly the
-- records that have no entry (on whichever shard their slots now live) and counts the
-- others as replayed; entries move with their slots (`moves`) and survive remove-shard.
-- (`shardgate_idempotency` keeps single writes and deletes, one entry per key.)
CREATE TABLE shardgate_idempotency_records (
    caller      TEXT        NOT NULL,
    key         TEXT        NOT NULL,
    table_name  TEXT        NOT NULL,
    shard_key   TEXT        NOT NULL,
    id          TEXT        NOT NULL,
    -- The record's slot: the entry moves with it.
    slot        INTEGER     NOT NULL,
    -- SHA-256 of the whole request, as in `shardgate_idempotency`.
    fingerprint BYTEA       NOT NULL,
    -- What the write answered for this record ({"version": n}).
    answer      JSONB       NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (caller, key, table_name, shard_key, id)
);
CREATE INDEX shardgate_idempotency_records_expiry ON shardgate_idempotency_records (expires_at);
CREATE INDEX shardgate_idempotency_records_slot ON shardgate_idempotency_records (slot);

-- A key's claim: which request it names, kept on the shard that owns the key's home
-- slot (a hash of caller and key, so it moves with that slot like any entry). Every
-- write with a key claims it there before writing: the same key with another request
-- is refused whichever shards either request reaches.
CREATE TABLE shardgate_idempotency_claims (
    caller      TEXT        NOT NULL,
    key         TEXT        NOT NULL,
    fingerprint BYTEA       NOT NULL,
    slot        INTEGER     NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (caller, key)
);
CREATE INDEX shardgate_idempotency_claims_expiry ON shardgate_idempotency_claims (expires_at);
CREATE INDEX shardgate_idempotency_claims_slot ON shardgate_idempotency_claims (slot);
