//! The API keys' table in the metadata database: one step of the metadata schema
//! (`map::schema` lists every step in order and applies them).
//!
//! A key is never deleted: revoking (or rotating) stamps `revoked_at` and who did it,
//! so the table is also the keys' history. At most one live key has a given name.
//! A later step adds each key's own limits.

/// The step's SQL. Written to stand anywhere in the list (IF NOT EXISTS), so that
/// renumbering it when steps from other branches are merged changes nothing.
pub const STEP: &str = "CREATE TABLE IF NOT EXISTS api_keys (
         id         BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
         name       TEXT        NOT NULL,
         hash       BYTEA       NOT NULL UNIQUE CHECK (length(hash) = 32),
         scopes     TEXT[]      NOT NULL CHECK (cardinality(scopes) > 0),
         tables     TEXT[],
         created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
         created_by TEXT        NOT NULL,
         revoked_at TIMESTAMPTZ,
         revoked_by TEXT,
         replaces   BIGINT      REFERENCES api_keys (id)
     );
     CREATE UNIQUE INDEX IF NOT EXISTS api_keys_live_name ON api_keys (name)
         WHERE revoked_at IS NULL;";

/// The channel a key change is announced on; gateways reload their key table on it.
pub const CHANNEL: &str = "shardgate_keys";

/// The step that gives each key its own limits (`keys::limits`): NULL follows the
/// gateways' `[limits]`, 0 is none (a burst always has a size), a positive number is
/// the limit. Written, like [`STEP`], to stand anywhere after it.
pub const LIMITS_STEP: &str = "ALTER TABLE api_keys
         ADD COLUMN IF NOT EXISTS rate_per_sec INTEGER CHECK (rate_per_sec >= 0),
         ADD COLUMN IF NOT EXISTS burst        INTEGER CHECK (burst > 0),
         ADD COLUMN IF NOT EXISTS concurrency  INTEGER CHECK (concurrency >= 0);";
