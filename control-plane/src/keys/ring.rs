//! A gateway's copy of the live keys ([`KeyRing`]) and the task that keeps it current
//! ([`KeyFollower`]): LISTEN on the keys' channel, reload the (small) table on each
//! notification and every `metadata.poll_ms` in case one was missed.
//!
//! Requests read the table lock-free (`arc-swap`) and hash what they present: no
//! metadata query on the request path. Until the table has been read once the ring
//! knows nothing (the gateway then serves loopback clients only); afterwards, with the
//! metadata database unreachable, it keeps checking against the last table it read.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;

use super::store::{self, KeyTable, CHANNEL};
use super::KeyError;
use crate::map::meta;
use shard_manager::config::ClusterSettings;

/// Longest a metadata round trip may take before the database counts as unreachable.
const META_TIMEOUT: Duration = Duration::from_secs(2);

/// The live keys this gateway checks requests against.
#[derive(Default)]
pub struct KeyRing {
    table: ArcSwapOption<KeyTable>,
}

impl KeyRing {
    /// A ring that has read nothing yet.
    pub fn unknown() -> Self {
        Self::default()
    }

    /// A ring holding `table`, read at start-up.
    pub fn with(table: KeyTable) -> Self {
        let ring = Self::default();
        ring.table.store(Some(Arc::new(table)));
        ring
    }

    /// The live keys; `None` until they have been read once.
    pub fn table(&self) -> arc_swap::Guard<Option<Arc<KeyTable>>> {
        self.table.load()
    }

    /// Replaces the table when it differs from the one held.
    fn replace(&self, table: KeyTable) {
        let old = self.table.load();
        let same = old.as_deref().is_some_and(|old| {
            old.len() == table.len()
                && old
                    .iter()
                    .all(|(h, k)| table.get(h).is_some_and(|n| **n == **k))
        });
        if !same {
            tracing::info!(live = table.len(), "api keys loaded");
            self.table.store(Some(Arc::new(table)));
        }
    }
}

/// The running follow task; stops when dropped.
pub struct KeyFollower(tokio::task::JoinHandle<()>);

impl Drop for KeyFollower {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl KeyFollower {
    /// Keeps `ring` current from the metadata database `settings` name.
    pub fn spawn(ring: Arc<KeyRing>, settings: ClusterSettings) -> Self {
        Self(tokio::spawn(follow(ring, settings)))
    }
}

async fn follow(ring: Arc<KeyRing>, settings: ClusterSettings) {
    let mut reachable = true;
    loop {
        let Err(e) = follow_connected(&ring, &settings, &mut reachable).await;
        if std::mem::replace(&mut reachable, false) {
            tracing::warn!(error = %e, "api keys not followed: checking requests against the last keys read");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Follows on one connection until it fails.
async fn follow_connected(
    ring: &KeyRing,
    settings: &ClusterSettings,
    reachable: &mut bool,
) -> Result<Infallible, KeyError> {
    let poll = Duration::from_millis(settings.metadata.poll_ms.clamp(10, 60_000));
    let mut conn = meta::connect(settings).await?;
    let listen = format!("LISTEN {CHANNEL}");
    bounded(async { Ok(conn.client.batch_execute(&listen).await?) }).await?;
    loop {
        ring.replace(bounded(store::live(&conn.client)).await?);
        if !std::mem::replace(reachable, true) {
            tracing::info!("api keys followed again");
        }
        tokio::select! {
            got = conn.notifications.recv() => if got.is_none() {
                return Err(KeyError::Unreachable("the metadata connection closed".into()));
            },
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

async fn bounded<T>(
    work: impl std::future::Future<Output = Result<T, KeyError>>,
) -> Result<T, KeyError> {
    tokio::time::timeout(META_TIMEOUT, work)
        .await
        .map_err(|_| {
            KeyError::Unreachable(format!("no answer within {} ms", META_TIMEOUT.as_millis()))
        })?
}

/// Reads the live keys for a gateway starting up (bounded like the follower's reads).
pub async fn load_at_start(settings: &ClusterSettings) -> Result<KeyTable, KeyError> {
    let conn = meta::connect(settings).await?;
    bounded(store::live(&conn.client)).await
}
