-- Exactly-once writes: the answer to a write sent with an `Idempotency-Key` header is
-- stored here by the write's own statement (data-modifying CTEs: one transaction), so
-- a retry with the same key finds it and gets the same answer without writing again,
-- even when the gateway died between the commit and the reply. Keys belong to a caller
-- (the API key's name; '' without keys): one client cannot see another's answers.
CREATE TABLE shardgate_idempotency (
    caller      TEXT        NOT NULL,
    key         TEXT        NOT NULL,
    -- SHA-256 of the request (operation, table, shard key, id, body): the same key with
    -- another request is refused (422), never answered with this one's answer.
    fingerprint BYTEA       NOT NULL,
    -- The slot of a single write or delete (NULL for a bulk write's group).
    slot        INTEGER,
    answer      JSONB       NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (caller, key)
);
CREATE INDEX shardgate_idempotency_expiry ON shardgate_idempotency (expires_at);

-- Raised when a write with a key finds, at the end of its statement, that another
-- request with the same key committed meanwhile (it could not see it at the start):
-- the whole statement, its write included, is undone, and the gateway looks again and
-- answers with the stored answer.
CREATE FUNCTION shardgate_idempotency_taken() RETURNS BOOLEAN
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RAISE EXCEPTION 'another request with this idempotency key committed first'
        USING ERRCODE = 'SG002';
END
$$;
