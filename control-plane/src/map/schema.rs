//! The metadata database's schema: the diesel migrations in `metadata-migrations/` (at
//! the repository's root), embedded in every binary and applied once each, in order, by
//! whoever connects first to write: `shard-admin init`, any `map`, `keys`, `move`,
//! `import` or `backup` command, and a gateway's coordinator log, fence, record-id
//! secret or balancer.
//!
//! They are laid out and recorded as the shards' migrations are, and applied by the same
//! runner ([`crate::migrations`]) through the control plane's one client
//! (tokio-postgres, with TLS as `database.sslmode` asks), since gateways apply them too:
//! every pending one in a single transaction, under the advisory lock [`ADMIN_LOCK`],
//! so two appliers never interleave and a migration that fails leaves none of them
//! applied.
//!
//! A database set up by the numbered steps that came before (recorded in
//! `shardgate_meta_schema`) is adopted under the same lock: step N is the N-th
//! migration, the same SQL, so the steps it has are recorded as applied under their
//! migrations' versions ([`legacy_versions`]) and only the newer migrations run. Its old
//! table is kept: a binary of the earlier release, still running during an upgrade,
//! finds every step it knows applied there and applies nothing.

use tokio_postgres::Client;

use crate::migrations;

use super::MapError;

/// Advisory lock (metadata database) held while migrations are applied or the map
/// changes, so two admin commands never interleave.
pub const ADMIN_LOCK: i64 = 0x0053_474d_4150; // "SGMAP"

pub use crate::migrations::Migration;

/// Every migration of `metadata-migrations/`, oldest first.
pub const MIGRATIONS: &[Migration] = crate::migrations::METADATA;

/// How many numbered steps the runner before these migrations had: the first this many
/// migrations are those steps, in order.
pub const LEGACY_STEPS: usize = 14;

/// The versions of the migrations a database whose old runner recorded steps up to
/// `last_step` has applied (step N is the N-th migration).
pub fn legacy_versions(last_step: i32) -> Vec<&'static str> {
    let steps = usize::try_from(last_step).unwrap_or(0).min(LEGACY_STEPS);
    MIGRATIONS.iter().take(steps).map(|m| m.version).collect()
}

/// Applies the migrations this database lacks, after adopting the steps of the runner
/// before them. Returns how many it applied.
pub async fn apply(client: &mut Client) -> Result<usize, MapError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&ADMIN_LOCK])
        .await?;
    tx.batch_execute(migrations::APPLIED_TABLE).await?;
    let legacy: bool = tx
        .query_one(
            "SELECT to_regclass('shardgate_meta_schema') IS NOT NULL",
            &[],
        )
        .await?
        .get(0);
    if legacy {
        let last_step: i32 = tx
            .query_one(
                "SELECT coalesce(max(step), 0) FROM shardgate_meta_schema",
                &[],
            )
            .await?
            .get(0);
        tx.execute(
            "INSERT INTO __diesel_schema_migrations (version)
             SELECT unnest($1::text[]) ON CONFLICT (version) DO NOTHING",
            &[&legacy_versions(last_step)],
        )
        .await?;
    }
    let applied = migrations::apply_pending(&tx, MIGRATIONS).await?;
    tx.commit().await?;
    Ok(applied.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_old_step_is_the_migration_at_its_place() {
        assert!(legacy_versions(0).is_empty());
        assert!(legacy_versions(-1).is_empty());
        assert_eq!(legacy_versions(1), ["20261127000001"]);
        assert_eq!(legacy_versions(14).len(), 14);
        assert_eq!(
            legacy_versions(99),
            legacy_versions(14),
            "no later migration"
        );
        // What each step made, found in the migration at its place.
        let made = [
            (1, "CREATE TABLE map_state"),
            (2, "ADD COLUMN tables"),
            (3, "CREATE TABLE moves"),
            (4, "api_keys ("),
            (5, "ADD COLUMN retired"),
            (6, "rate_per_sec"),
            (7, "CREATE TABLE imports"),
            (8, "ADD COLUMN term"),
            (9, "CREATE TABLE txn_log"),
            (10, "ADD COLUMN cache_prefix"),
            (11, "restore_points ("),
            (12, "gateway_figures ("),
            (13, "ADD COLUMN seq"),
            (14, "cluster_secrets ("),
        ];
        for (step, sql) in made {
            let migration = &MIGRATIONS[step - 1];
            assert!(
                migration.up.contains(sql),
                "step {step}: {}",
                migration.name
            );
            assert_eq!(
                legacy_versions(step as i32).last(),
                Some(&migration.version)
            );
        }
    }
}
