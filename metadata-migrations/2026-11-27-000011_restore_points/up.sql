-- Cluster restore points recorded by `shard-admin backup` (`backup`). A point is
-- inserted only once every server's backup succeeded and its WAL is archived: a row here
-- is a point a restore can reach.
CREATE TABLE IF NOT EXISTS restore_points (
    name        TEXT        PRIMARY KEY,
    created_at  TIMESTAMPTZ NOT NULL,
    map_version BIGINT      NOT NULL,
    backup_type TEXT        NOT NULL,
    fence_ms    BIGINT      NOT NULL,
    servers     JSONB       NOT NULL
);
