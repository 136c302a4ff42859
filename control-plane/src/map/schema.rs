//! The metadata database's schema: numbered steps, applied once each, in order, by
//! whoever connects first to write (`shard-admin init`, any `map` command).

use tokio_postgres::Client;

use super::MapError;

/// Advisory lock (metadata database) held while steps are applied or the map changes,
/// so two admin commands never interleave.
pub const ADMIN_LOCK: i64 = 0x0053_474d_4150; // "SGMAP"

/// Each step's SQL. Append only: a step, once released, never changes.
const STEPS: &[&str] = &[
    // 1: the map, its history, the live gateways.
    "CREATE TABLE map_state (
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
     CREATE INDEX gateways_by_seen ON gateways (seen_at);",
    // 2: the logical tables clients may use, with the map.
    "ALTER TABLE map_state ADD COLUMN tables TEXT[] NOT NULL DEFAULT '{}';",
    // 3: slot moves between shards (`shard-admin move-slots` and friends).
    "CREATE TABLE moves (
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
     CREATE INDEX moves_active ON moves (id) WHERE phase NOT IN ('done', 'aborted');",
    // 4: API keys (keys/schema.rs; written to stand at any position).
    crate::keys::schema::STEP,
    // 5: a shard emptied by `shard-admin remove-shard` stays in the map, retired.
    "ALTER TABLE map_shards ADD COLUMN retired BOOLEAN NOT NULL DEFAULT false;",
    // 6: each API key's own rate, burst and per-shard concurrency (keys/schema.rs).
    crate::keys::schema::LIMITS_STEP,
    // 7: imports of unsharded tables (`shard-admin import`); at most one active
    // import fills a given table.
    "CREATE TABLE imports (
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
         WHERE phase NOT IN ('done', 'aborted');",
    // 8: each shard's primary term, raised by every failover (`failover::record`):
    // it only grows, so a later map never names an older primary.
    "ALTER TABLE map_shards ADD COLUMN term BIGINT NOT NULL DEFAULT 1;",
    // 9: the coordinator log of transactions on several shards (`txn::log`): the first
    // decision written for a transaction stands; absent means undecided.
    "CREATE TABLE txn_log (
         txid        TEXT        PRIMARY KEY,
         decision    TEXT        NOT NULL CHECK (decision IN ('commit', 'abort')),
         shards      INTEGER[]   NOT NULL,
         decided_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
         finished_at TIMESTAMPTZ
     );
     CREATE INDEX txn_log_unfinished ON txn_log (decided_at) WHERE finished_at IS NULL;",
    // 10: the cache key prefix each gateway reads under (NULL: no cache), so that a
    // mover can tell every cache in use that an epoch is retired (`moves::caches`).
    "ALTER TABLE gateways ADD COLUMN cache_prefix TEXT;",
    // 11: cluster restore points recorded by `shard-admin backup` (backup/schema.rs;
    // written to stand at any position).
    crate::backup::schema::STEP,
    // 12: each gateway's figures for the cluster view of analytics (`figures`), one row
    // per gateway.
    "CREATE UNLOGGED TABLE gateway_figures (
         gateway_id   UUID        PRIMARY KEY,
         published_at TIMESTAMPTZ NOT NULL,
         figures      BYTEA       NOT NULL
     );",
    // 13: the automatic balancer's decisions in the map's history (`moves::auto_balance`).
    // A decision changes no map, so its line (`note`) carries the version it saw; lines
    // are ordered by `seq`, and a version stays unique among the map's changes.
    "ALTER TABLE map_history DROP CONSTRAINT map_history_pkey;
     ALTER TABLE map_history ADD COLUMN seq BIGSERIAL PRIMARY KEY;
     ALTER TABLE map_history ADD COLUMN note BOOLEAN NOT NULL DEFAULT false;
     CREATE UNIQUE INDEX map_history_changes ON map_history (version) WHERE NOT note;",
    // 14: the cluster's secrets, such as the one of record ids derived under an
    // idempotency key (`id_secret`); written to stand at any position (IF NOT EXISTS).
    "CREATE TABLE IF NOT EXISTS cluster_secrets (
         name       TEXT        PRIMARY KEY,
         secret     BYTEA       NOT NULL CHECK (length(secret) = 32),
         created_at TIMESTAMPTZ NOT NULL DEFAULT now()
     );",
];

/// Applies the steps this database lacks. Returns how many it applied.
pub async fn apply(client: &mut Client) -> Result<usize, MapError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&ADMIN_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS shardgate_meta_schema (
             step       INTEGER     PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let done: i32 = tx
        .query_one(
            "SELECT coalesce(max(step), 0) FROM shardgate_meta_schema",
            &[],
        )
        .await?
        .get(0);
    let mut applied = 0;
    for (i, sql) in STEPS.iter().enumerate().skip(done as usize) {
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO shardgate_meta_schema (step) VALUES ($1)",
            &[&(i as i32 + 1)],
        )
        .await?;
        applied += 1;
    }
    tx.commit().await?;
    Ok(applied)
}
