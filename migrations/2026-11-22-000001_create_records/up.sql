-- One physical table holds every logical table's records on a shard.
-- A record is (table, shard key, id) -> JSON object, with a version and timestamps.

-- Versions come from one per-shard sequence, so a record's version only ever grows,
-- even across delete and re-create (the cache relies on that ordering).
CREATE SEQUENCE record_version_seq;

CREATE TABLE records (
    table_name  TEXT        NOT NULL,
    shard_key   TEXT        NOT NULL,
    id          TEXT        NOT NULL,
    -- The routing slot of shard_key: lets admin tools move or count data by slot.
    slot        INTEGER     NOT NULL,
    data        JSONB       NOT NULL,
    version     BIGINT      NOT NULL DEFAULT nextval('record_version_seq'),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (table_name, shard_key, id)
);

-- Lists of one key's records, newest first.
CREATE INDEX records_by_key_recent ON records (table_name, shard_key, updated_at DESC, id DESC);
-- Cross-shard lists of a table, newest first.
CREATE INDEX records_by_table_recent ON records (table_name, updated_at DESC, id DESC);
-- JSON containment filters (?where={...}).
CREATE INDEX records_data_gin ON records USING GIN (data jsonb_path_ops);
-- Data movement and placement statistics by slot.
CREATE INDEX records_by_slot ON records (slot);
