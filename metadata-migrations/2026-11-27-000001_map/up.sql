-- The shard map (its current version, shards and slot owners), its history, and the
-- live gateways.
CREATE TABLE map_state (
    singleton  BOOLEAN     PRIMARY KEY DEFAULT true CHECK (singleton),
    version    BIGINT      NOT NULL,
    routing    JSONB       NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE map_shards (
    id           INTEGER PRIMARY KEY,
    primary_addr TEXT    NOT NULL,
    replicas     TEXT[]  NOT NULL DEFAULT '{}',
    balance      TEXT    NOT NULL DEFAULT 'round_robin',
    read_primary BOOLEAN NOT NULL DEFAULT false,
    since        BIGINT  NOT NULL
);
CREATE TABLE map_slots (
    slot  INTEGER PRIMARY KEY,
    shard INTEGER NOT NULL REFERENCES map_shards (id),
    since BIGINT  NOT NULL
);
CREATE TABLE map_history (
    version BIGINT      PRIMARY KEY,
    at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor   TEXT        NOT NULL,
    action  TEXT        NOT NULL,
    summary TEXT        NOT NULL,
    detail  JSONB       NOT NULL DEFAULT '{}'
);
CREATE TABLE gateways (
    id             UUID        PRIMARY KEY,
    address        TEXT        NOT NULL,
    host           TEXT        NOT NULL,
    pid            INTEGER     NOT NULL,
    binary_version TEXT        NOT NULL,
    map_version    BIGINT      NOT NULL,
    started_at     TIMESTAMPTZ NOT NULL,
    seen_at        TIMESTAMPTZ NOT NULL
);
CREATE INDEX gateways_by_seen ON gateways (seen_at);
