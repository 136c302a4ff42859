-- The coordinator log of transactions on several shards (`txn::log`): the first decision
-- written for a transaction stands; absent means undecided.
CREATE TABLE txn_log (
    txid        TEXT        PRIMARY KEY,
    decision    TEXT        NOT NULL CHECK (decision IN ('commit', 'abort')),
    shards      INTEGER[]   NOT NULL,
    decided_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at TIMESTAMPTZ
);
CREATE INDEX txn_log_unfinished ON txn_log (decided_at) WHERE finished_at IS NULL;
