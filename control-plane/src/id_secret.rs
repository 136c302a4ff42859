//! The cluster's secret for the ids of records sent without one under an idempotency
//! key ([`IdSecret`]): 32 random bytes in the metadata database, the same for every
//! gateway, so that a retry through any gateway derives the id its first try derived,
//! and so that nobody who knows only a caller's key and request can tell that id first.
//!
//! The first gateway to ask makes it (`INSERT … ON CONFLICT DO NOTHING`, then the one
//! row that won is read back by everyone); nothing changes it afterwards: another secret
//! would give a retry of a request sent before the change another id, and so a second
//! record. A gateway reads it at start-up ([`load_at_start`]). When the metadata
//! database does not answer then, the gateway asks again every second in the background
//! ([`IdSecretReader`]) and, until it has the secret, refuses the records that would need
//! it (`503`, [`shard_manager::store::NoIdSecret`]) rather than derive an id that the
//! other gateways would not: a record's id that depends on the gateway that took it is
//! the duplicate the key exists to prevent. Everything else is served meanwhile.
//!
//! The secret is never logged, never shown by an endpoint and never printed by `Debug`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use crate::map::{meta, schema, MapError};
use shard_manager::config::ClusterSettings;
use shard_manager::store::IdSecret;

/// The row of the record ids' secret.
const NAME: &str = "record_ids";
/// Longest a read (or the first making) may take before the database counts as not
/// answering.
const META_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a gateway without the secret asks again.
const RETRY: Duration = Duration::from_secs(1);

/// Why the secret could not be read. Its text never holds the secret.
#[derive(Debug, thiserror::Error)]
pub enum IdSecretError {
    #[error(transparent)]
    Map(#[from] MapError),
    #[error("the metadata database did not answer within {} ms", META_TIMEOUT.as_millis())]
    Timeout,
    #[error("the cluster's secret for record ids is not {} bytes in the metadata database (table cluster_secrets, row {NAME:?})", IdSecret::LEN)]
    Corrupt,
    #[error("metadata query failed: {0}")]
    Query(#[from] tokio_postgres::Error),
}

/// The secret, made first when the cluster has none (the metadata migrations applied
/// first when its table is missing). Every caller gets the row that won.
pub async fn read_or_make(client: &mut Client) -> Result<IdSecret, IdSecretError> {
    match read(client).await {
        Ok(Some(secret)) => return Ok(secret),
        Ok(None) => {}
        Err(IdSecretError::Query(e)) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => {
            schema::apply(client).await?;
        }
        Err(e) => return Err(e),
    }
    let fresh: [u8; IdSecret::LEN] = rand::random();
    client
        .execute(
            "INSERT INTO cluster_secrets (name, secret) VALUES ($1, $2)
             ON CONFLICT (name) DO NOTHING",
            &[&NAME, &fresh.as_slice()],
        )
        .await?;
    read(client).await?.ok_or(IdSecretError::Corrupt)
}

/// The secret as stored, if there is one.
async fn read(client: &Client) -> Result<Option<IdSecret>, IdSecretError> {
    let row = client
        .query_opt(
            "SELECT secret FROM cluster_secrets WHERE name = $1",
            &[&NAME],
        )
        .await?;
    row.map(|row| IdSecret::from_slice(row.get::<_, &[u8]>(0)).ok_or(IdSecretError::Corrupt))
        .transpose()
}

/// Reads (or makes) the secret on a connection of its own, bounded like the key ring's
/// reads: a gateway starting up, or the reader asking again.
pub async fn load_at_start(settings: &ClusterSettings) -> Result<IdSecret, IdSecretError> {
    let mut conn = meta::connect(settings).await?;
    tokio::time::timeout(META_TIMEOUT, read_or_make(&mut conn.client))
        .await
        .map_err(|_| IdSecretError::Timeout)?
}

/// Asks the metadata database for the secret every second until it has it, then stops;
/// stops when dropped.
pub struct IdSecretReader(tokio::task::JoinHandle<()>);

impl Drop for IdSecretReader {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl IdSecretReader {
    /// Fills `slot` from the metadata database `settings` name (nothing to do when it
    /// holds the secret already).
    pub fn spawn(slot: Arc<OnceLock<IdSecret>>, settings: ClusterSettings) -> Self {
        Self(tokio::spawn(read_until_known(slot, settings)))
    }
}

async fn read_until_known(slot: Arc<OnceLock<IdSecret>>, settings: ClusterSettings) {
    let mut failures = 0u64;
    while slot.get().is_none() {
        match load_at_start(&settings).await {
            Ok(secret) => {
                let _ = slot.set(secret);
                tracing::info!(
                    "read the cluster's secret for record ids: records without an id are taken under idempotency keys again"
                );
            }
            Err(e) => {
                failures += 1;
                if failures == 1 || failures.is_multiple_of(60) {
                    tracing::warn!(error = %e, failures, "the cluster's secret for record ids is not read yet: records without an id under an idempotency key are refused (503) until it is");
                }
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}
