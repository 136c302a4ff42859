-- Indexes for queries (`POST /api/indexes`), made on every shard's primary: what is
-- wanted (a row, `dropping` once a drop was asked), and how each shard's build ended.
-- A shard's catalog says whether its index is valid; this says what to do about it.
CREATE TABLE query_indexes (
    name       TEXT        PRIMARY KEY,
    table_name TEXT        NOT NULL,
    fields     TEXT[]      NOT NULL,
    dropping   BOOLEAN     NOT NULL DEFAULT false,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- One row per shard a build was tried on: 'building' until it ends (a row still
-- 'building' that no worker holds was interrupted, and is built again), 'valid', or
-- 'failed' with the error (not tried again until the index is asked for again).
CREATE TABLE query_index_shards (
    name       TEXT        NOT NULL REFERENCES query_indexes (name) ON DELETE CASCADE,
    shard      INTEGER     NOT NULL,
    state      TEXT        NOT NULL CHECK (state IN ('building', 'valid', 'failed')),
    error      TEXT,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (name, shard)
);
