-- Imports of unsharded tables (`shard-admin import`); at most one active import fills a
-- given table.
CREATE TABLE imports (
    id             BIGSERIAL   PRIMARY KEY,
    source         TEXT        NOT NULL,
    source_table   TEXT        NOT NULL,
    key_column     TEXT        NOT NULL,
    id_column      TEXT        NOT NULL,
    into_table     TEXT        NOT NULL,
    phase          TEXT        NOT NULL,
    checkpoint_id  TEXT,
    checkpoint_key TEXT,
    rows_total     BIGINT      NOT NULL DEFAULT 0,
    rows_copied    BIGINT      NOT NULL DEFAULT 0,
    rows_replayed  BIGINT      NOT NULL DEFAULT 0,
    rows_behind    BIGINT      NOT NULL DEFAULT 0,
    fence_ms       BIGINT,
    note           TEXT        NOT NULL DEFAULT '',
    actor          TEXT        NOT NULL,
    started_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at    TIMESTAMPTZ
);
CREATE UNIQUE INDEX imports_one_active ON imports (into_table)
    WHERE phase NOT IN ('done', 'aborted');
