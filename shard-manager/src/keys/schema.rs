//! The API keys' table in the metadata database: one step of the metadata schema
//! (`map::schema` lists every step in order and applies them).
//!
//! A key is never deleted: revoking (or rotating) stamps `revoked_at` and who did it,
//! so the table is also the keys' history. At most one live key has a given name.

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
