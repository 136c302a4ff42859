//! The cluster's public record operations (write, read, list, delete, bulk; a write or
//! delete on a condition), where a
//! reader looks for them first. Each is one attempt (`records`) and, when the shard
//! refuses the key's slot (it no longer owns it: this gateway's map is older than the
//! shard's), what the retry policy (`crate::error::retry`) says: a reload of the map and
//! one more attempt on the owner; when the shard's primary could not take it, with
//! nothing sent, attempts again on the primary the map names, within a bound
//! (`new_primary`). One helper (`Cluster::routed`) for every kind of operation. The
//! client sees one normal answer; a second refusal is answered as it is (503 naming the
//! shard).

use std::collections::{HashMap, HashSet};

use tracing::Instrument;

use super::bulk::{BulkItem, BulkOutcome};
use super::new_primary::Hold;
use super::records::Guard;
use super::served::{Deleted, Found, Served, Written};
use super::Cluster;
use crate::error::retry::{policy, Cause, Retry, Work};
use crate::error::ClusterError;
use crate::routing::{MapVersion, RoutedKey, ShardId, ShardKey};
use crate::spans;
use crate::store::{Document, IdempotencyKey, ListQuery, Page, Precondition, RecordId, TableName};
use crate::wal::Consistency;

impl Cluster {
    /// Upserts one record on its shard's primary. Returns once the primary committed.
    pub async fn write(
        &self,
        table: &TableName,
        key: &RoutedKey,
        id: RecordId,
        data: Document,
        idempotency: Option<&IdempotencyKey>,
    ) -> Result<Written, ClusterError> {
        self.routed_write(key, idempotency, async |key| {
            self.write_once(table, key, &id, &data, Guard::Key(idempotency))
                .await
        })
        .instrument(spans::operation("write", table.as_str(), key))
        .await
    }

    /// Replaces one record on its shard's primary only when its version meets
    /// `condition` (checked and written in one statement, the record locked between);
    /// never creates it. [`ClusterError::PreconditionFailed`] names the version it is at
    /// otherwise (0: absent), and nothing is written.
    pub async fn write_if(
        &self,
        table: &TableName,
        key: &RoutedKey,
        id: RecordId,
        data: Document,
        condition: &Precondition,
    ) -> Result<Written, ClusterError> {
        self.routed_write(key, None, async |key| {
            self.write_once(table, key, &id, &data, Guard::Condition(condition))
                .await
        })
        .instrument(spans::operation("write", table.as_str(), key))
        .await
    }

    /// One record, from a server chosen by `consistency`, or from the cache.
    pub async fn read(
        &self,
        table: &TableName,
        key: &RoutedKey,
        id: &RecordId,
        consistency: Consistency,
    ) -> Result<Served<Option<Found>>, ClusterError> {
        self.routed(key, Work::Read, async |key| {
            self.read_once(table, key, id, consistency).await
        })
        .instrument(spans::operation("read", table.as_str(), key))
        .await
    }

    /// A key's records in one table, newest first (filter and cursor in `query`).
    pub async fn list(
        &self,
        table: &TableName,
        key: &RoutedKey,
        query: &ListQuery,
        consistency: Consistency,
    ) -> Result<Served<Page>, ClusterError> {
        self.routed(key, Work::Read, async |key| {
            self.list_once(table, key, query, consistency).await
        })
        .instrument(spans::operation("list", table.as_str(), key))
        .await
    }

    /// Deletes one record on its primary; returns whether it existed, and the token.
    pub async fn delete(
        &self,
        table: &TableName,
        key: &RoutedKey,
        id: &RecordId,
        idempotency: Option<&IdempotencyKey>,
    ) -> Result<Served<Deleted>, ClusterError> {
        self.routed_write(key, idempotency, async |key| {
            self.delete_once(table, key, id, Guard::Key(idempotency))
                .await
        })
        .instrument(spans::operation("delete", table.as_str(), key))
        .await
    }

    /// Deletes one record on its primary only when its version meets `condition`, as
    /// [`Cluster::write_if`] writes.
    pub async fn delete_if(
        &self,
        table: &TableName,
        key: &RoutedKey,
        id: &RecordId,
        condition: &Precondition,
    ) -> Result<Served<Deleted>, ClusterError> {
        self.routed_write(key, None, async |key| {
            self.delete_once(table, key, id, Guard::Condition(condition))
                .await
        })
        .instrument(spans::operation("delete", table.as_str(), key))
        .await
    }

    /// Writes a batch. Within the batch, a later record with the same (shard key, id)
    /// supersedes an earlier one, which is reported as not written. A shard's group
    /// that was refused (slots it no longer owns) is routed again with a reloaded map
    /// and written once more.
    /// With an idempotency key, each record is written at most once, wherever its slot
    /// lives by then: a record with an entry under the key counts as written and is not
    /// written again; a key used before for another request is refused before anything
    /// is written.
    pub async fn bulk_write(
        &self,
        table: &TableName,
        items: Vec<BulkItem>,
        idempotency: Option<&IdempotencyKey>,
    ) -> Result<BulkOutcome, ClusterError> {
        if let Some(idempotency) = idempotency {
            self.claim_key(idempotency).await?;
        }
        let outcome = self.bulk_once(table, &items, idempotency).await;
        let work = Work::Write {
            keyed: idempotency.is_some(),
        };
        let outcome = self
            .bulk_refused_again(table, &items, idempotency, outcome, work)
            .await;
        Ok(self
            .bulk_on_new_primary(table, &items, idempotency, outcome, work)
            .await)
    }

    /// The shards' groups refused for slots they no longer own, routed again with a
    /// reloaded map and written once more, as the retry policy says.
    async fn bulk_refused_again(
        &self,
        table: &TableName,
        items: &[BulkItem],
        idempotency: Option<&IdempotencyKey>,
        outcome: BulkOutcome,
        work: Work,
    ) -> BulkOutcome {
        let refused: Vec<(ShardId, MapVersion)> = outcome
            .shards
            .iter()
            .filter_map(|b| b.error.as_ref()?.refused_at().map(|v| (b.shard, v)))
            .collect();
        let Some(newest) = refused.iter().map(|(_, v)| *v).max() else {
            return outcome;
        };
        if policy(Cause::SlotRefused, work) != Retry::RerouteOnce {
            return outcome;
        }
        let before = self.map().version();
        if self.map().refresh(newest).await == before {
            return outcome;
        }
        let refused: HashSet<ShardId> = refused.into_iter().map(|(s, _)| s).collect();
        let router = self.router();
        let mut again = Vec::new();
        for item in items.iter().filter(|i| refused.contains(&i.key.shard())) {
            match router.route(item.key.key().clone()) {
                Ok(key) => again.push(BulkItem {
                    key,
                    ..item.clone()
                }),
                Err(_) => return outcome,
            }
        }
        self.bulk_again(table, again, idempotency, outcome, &refused)
            .await
    }

    /// The shards' groups whose primary could not take them, with nothing sent: written
    /// again on the server the map names, as `new_primary` says (every 100 ms, at once
    /// when the map names another primary), until they are or the bound passes.
    async fn bulk_on_new_primary(
        &self,
        table: &TableName,
        items: &[BulkItem],
        idempotency: Option<&IdempotencyKey>,
        mut outcome: BulkOutcome,
        work: Work,
    ) -> BulkOutcome {
        let started = tokio::time::Instant::now();
        let mut last_try = started;
        loop {
            let failed: HashMap<ShardId, String> = outcome
                .shards
                .iter()
                .filter_map(|b| self.waits_for_a_primary(b.error.as_ref()?, work, Hold::Batch))
                .collect();
            if failed.is_empty() || !self.next_try(&failed, work, started, last_try).await {
                return outcome;
            }
            last_try = tokio::time::Instant::now();
            let again = items
                .iter()
                .filter(|i| failed.contains_key(&i.key.shard()))
                .cloned()
                .collect();
            let retried: HashSet<ShardId> = failed.into_keys().collect();
            outcome = self
                .bulk_again(table, again, idempotency, outcome, &retried)
                .await;
        }
    }

    /// Writes `again` (the items of the shards `retried`) once more and puts the answer
    /// in place of those shards' first one.
    async fn bulk_again(
        &self,
        table: &TableName,
        again: Vec<BulkItem>,
        idempotency: Option<&IdempotencyKey>,
        mut outcome: BulkOutcome,
        retried: &HashSet<ShardId>,
    ) -> BulkOutcome {
        let indexes: HashSet<usize> = again.iter().map(|i| i.index).collect();
        outcome.shards.retain(|b| !retried.contains(&b.shard));
        outcome.failed.retain(|f| !indexes.contains(&f.index));
        let second = self.bulk_once(table, &again, idempotency).await;
        outcome.merge(second);
        outcome
    }

    /// Claims the key at its home slot (see `claim`), once more on the owner when the
    /// shard refused the slot.
    pub(super) async fn claim_key(&self, idempotency: &IdempotencyKey) -> Result<(), ClusterError> {
        if !idempotency.claimed {
            return Ok(());
        }
        // A home key is decimal digits within i64, which every strategy routes.
        let home = ShardKey::parse(&idempotency.home_key()).map(|key| self.router().route(key));
        let Ok(Ok(home)) = home else {
            tracing::error!(key = %idempotency.key, "an idempotency key's home did not route: not claimed");
            return Ok(());
        };
        let work = Work::Write { keyed: true };
        self.routed(&home, work, async |home| {
            self.claim_once(home, idempotency).await
        })
        .await
    }

    /// A single write or delete of `key`: its idempotency key claimed first, then
    /// `attempt` as [`Self::routed`] runs it.
    async fn routed_write<T>(
        &self,
        key: &RoutedKey,
        idempotency: Option<&IdempotencyKey>,
        attempt: impl AsyncFn(&RoutedKey) -> Result<T, ClusterError>,
    ) -> Result<T, ClusterError> {
        if let Some(idempotency) = idempotency {
            self.claim_key(idempotency).await?;
        }
        let work = Work::Write {
            keyed: idempotency.is_some(),
        };
        let hold = match idempotency {
            Some(key) if !key.claimed => Hold::SingleOwnKey,
            _ => Hold::Single,
        };
        self.routed_holding(key, work, hold, attempt).await
    }

    /// Runs `attempt` for `key`; when it fails, once more where the retry policy says
    /// (a shard's refusal of the slot: on the owner, after a map reload). Every kind of
    /// record operation goes through here.
    async fn routed<T>(
        &self,
        key: &RoutedKey,
        work: Work,
        attempt: impl AsyncFn(&RoutedKey) -> Result<T, ClusterError>,
    ) -> Result<T, ClusterError> {
        self.routed_holding(key, work, Hold::Single, attempt).await
    }

    /// [`Self::routed`], waiting for a primary as `hold` says.
    async fn routed_holding<T>(
        &self,
        key: &RoutedKey,
        work: Work,
        hold: Hold,
        attempt: impl AsyncFn(&RoutedKey) -> Result<T, ClusterError>,
    ) -> Result<T, ClusterError> {
        match attempt(key).await {
            Err(e) => match self.rerouted(key, work, &e).await {
                Some(key) => attempt(&key).await,
                None => {
                    self.until_a_primary_takes(e, work, hold, async || attempt(key).await)
                        .await
                }
            },
            done => done,
        }
    }

    /// The key routed again after `error`, if the error is a shard's refusal of its
    /// slot, the retry policy reroutes it, and a reload gave a newer map.
    async fn rerouted(
        &self,
        key: &RoutedKey,
        work: Work,
        error: &ClusterError,
    ) -> Option<RoutedKey> {
        let told = error.refused_at()?;
        if policy(Cause::SlotRefused, work) != Retry::RerouteOnce {
            return None;
        }
        let version = self.map().refresh(told).await;
        if version == key.map_version() {
            return None;
        }
        let again = self.router().route(key.key().clone()).ok()?;
        tracing::debug!(key = %key, from = %key.shard(), to = %again.shard(), %version, "rerouted after a shard refused the slot");
        spans::retried("the key's new shard", error);
        Some(again)
    }
}
