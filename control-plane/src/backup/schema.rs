//! The metadata table of recorded restore points (a step of `map::schema`, written to
//! stand at any position). A point is inserted only once every server's backup
//! succeeded and its WAL is archived: a row here is a point a restore can reach.

/// The schema step.
pub const STEP: &str = "CREATE TABLE IF NOT EXISTS restore_points (
     name        TEXT        PRIMARY KEY,
     created_at  TIMESTAMPTZ NOT NULL,
     map_version BIGINT      NOT NULL,
     backup_type TEXT        NOT NULL,
     fence_ms    BIGINT      NOT NULL,
     servers     JSONB       NOT NULL
 );";
