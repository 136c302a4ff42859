-- The cluster's secrets, such as the one of record ids derived under an idempotency key
-- (`id_secret`).
CREATE TABLE IF NOT EXISTS cluster_secrets (
    name       TEXT        PRIMARY KEY,
    secret     BYTEA       NOT NULL CHECK (length(secret) = 32),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
