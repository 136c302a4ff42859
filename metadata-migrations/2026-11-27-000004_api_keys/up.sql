-- API keys (`keys`). A key is never deleted: revoking (or rotating) stamps `revoked_at`
-- and who did it, so the table is also the keys' history. At most one live key has a
-- given name. (IF NOT EXISTS: written when schema steps could be renumbered on merge.)
CREATE TABLE IF NOT EXISTS api_keys (
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
    WHERE revoked_at IS NULL;
