//! The one migration runner, for both folders of diesel's layout: the shards' schema
//! (`migrations/`, applied by `shard-admin migrate` and `add-shard`) and the metadata
//! database's (`metadata-migrations/`, applied through [`crate::map::schema`] by
//! whoever connects first to write). A folder per migration with its `up.sql` and
//! `down.sql`, each applied one recorded by version in diesel's
//! `__diesel_schema_migrations`, so diesel's own tools list, run and revert them.
//!
//! Both lists are embedded by `build.rs`, oldest first. [`apply`] runs every pending
//! migration of a list in one transaction under an advisory lock, so two appliers never
//! interleave and a migration that fails leaves none of them applied.

use tokio_postgres::{Client, Transaction};

/// One migration, embedded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// diesel's version: the folder name's date and number, digits only
    /// (`20261127000001`).
    pub version: &'static str,
    /// The folder's name (`2026-11-27-000001_map`).
    pub name: &'static str,
    /// Its `up.sql`.
    pub up: &'static str,
}

/// Every migration of `migrations/`, the shards' schema, oldest first.
pub const SHARD: &[Migration] = include!(concat!(env!("OUT_DIR"), "/shard_migrations.rs"));

/// Every migration of `metadata-migrations/`, the metadata database's schema, oldest
/// first.
pub const METADATA: &[Migration] = include!(concat!(env!("OUT_DIR"), "/metadata_migrations.rs"));

/// Advisory lock a shard's server is migrated under ("SGMIG"; the metadata database
/// uses `map::schema::ADMIN_LOCK`).
pub const SHARD_LOCK: i64 = 0x0053_474d_4947;

/// diesel's table of applied migrations, as diesel creates it.
pub const APPLIED_TABLE: &str = "CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (
     version VARCHAR(50) PRIMARY KEY NOT NULL,
     run_on  TIMESTAMP   NOT NULL DEFAULT CURRENT_TIMESTAMP
 )";

/// A migration that could not be applied; nothing of the run stays.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("migration {name} failed: {source}")]
    Apply {
        name: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("recording migrations failed: {0}")]
    Record(#[from] tokio_postgres::Error),
}

/// Applies the migrations of `list` the database lacks, in one transaction under the
/// advisory lock `lock`; the versions applied, oldest first.
pub async fn apply(
    client: &mut Client,
    list: &[Migration],
    lock: i64,
) -> Result<Vec<&'static str>, MigrationError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock])
        .await?;
    let applied = apply_pending(&tx, list).await?;
    tx.commit().await?;
    Ok(applied)
}

/// Within `tx` (which holds the caller's lock): diesel's table made if missing, then
/// every migration of `list` it does not record applied and recorded, oldest first; the
/// versions applied.
pub async fn apply_pending(
    tx: &Transaction<'_>,
    list: &[Migration],
) -> Result<Vec<&'static str>, MigrationError> {
    tx.batch_execute(APPLIED_TABLE).await?;
    let recorded: Vec<String> = tx
        .query("SELECT version FROM __diesel_schema_migrations", &[])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut applied = Vec::new();
    for migration in list
        .iter()
        .filter(|m| !recorded.iter().any(|v| v == m.version))
    {
        tx.batch_execute(migration.up)
            .await
            .map_err(|source| MigrationError::Apply {
                name: migration.name,
                source,
            })?;
        tx.execute(
            "INSERT INTO __diesel_schema_migrations (version) VALUES ($1)",
            &[&migration.version],
        )
        .await?;
        applied.push(migration.version);
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_folders_are_listed_oldest_first_with_diesels_versions() {
        assert_eq!(SHARD[0].name, "2026-11-22-000001_create_records");
        assert_eq!(METADATA[0].name, "2026-11-27-000001_map");
        for list in [SHARD, METADATA] {
            assert!(list.len() >= 2, "{list:?}");
            for m in list {
                let prefix = m.name.split('_').next().unwrap_or_default();
                assert_eq!(m.version, prefix.replace('-', ""), "{}", m.name);
                assert!(!m.up.trim().is_empty(), "{} has SQL", m.name);
            }
            assert!(list.windows(2).all(|w| w[0].version < w[1].version));
        }
    }

    #[test]
    fn the_request_path_names_the_shard_migrations_applied_here() {
        let listed: Vec<(String, String)> = shard_manager::store::migrations::expected()
            .into_iter()
            .map(|m| (m.version, m.name))
            .collect();
        let embedded: Vec<(String, String)> = SHARD
            .iter()
            .map(|m| (m.version.to_owned(), m.name.to_owned()))
            .collect();
        assert_eq!(listed, embedded);
    }
}
