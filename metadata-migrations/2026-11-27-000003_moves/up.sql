-- Slot moves between shards (`shard-admin move-slots` and friends).
CREATE TABLE moves (
    id            BIGSERIAL   PRIMARY KEY,
    kind          TEXT        NOT NULL,
    source        INTEGER     NOT NULL,
    target        INTEGER     NOT NULL,
    slots         INTEGER[]   NOT NULL,
    phase         TEXT        NOT NULL,
    copied_slots  INTEGER[]   NOT NULL DEFAULT '{}',
    rows_total    BIGINT      NOT NULL DEFAULT 0,
    rows_copied   BIGINT      NOT NULL DEFAULT 0,
    rows_replayed BIGINT      NOT NULL DEFAULT 0,
    rows_behind   BIGINT      NOT NULL DEFAULT 0,
    map_before    BIGINT      NOT NULL,
    map_after     BIGINT,
    fence_ms      BIGINT,
    note          TEXT        NOT NULL DEFAULT '',
    actor         TEXT        NOT NULL,
    started_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at   TIMESTAMPTZ
);
CREATE INDEX moves_active ON moves (id) WHERE phase NOT IN ('done', 'aborted');
