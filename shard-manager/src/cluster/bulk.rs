//! Bulk writes: records grouped by shard, one statement per shard (an upsert of
//! unnested arrays, so all-or-nothing per shard), all shards at once. A bad record or a
//! failed shard never hides the others. With an idempotency key each record is written
//! at most once: the group's statement skips, and counts as replayed, the records that
//! already have an entry under the key (`store::statements::UPSERT_MANY_IDEMPOTENT`).

use std::collections::HashMap;
use std::time::Instant;

use futures_util::future::join_all;

use super::Cluster;
use crate::cache::{CacheUsage, Committed};
use crate::error::ClusterError;
use crate::routing::{RoutedKey, ShardId};
use crate::store::{
    Document, GroupOutcome, IdempotencyKey, NewRecord, Record, RecordId, TableName,
};
use crate::wal::{Lsn, WriteToken};

/// One valid record of a batch, with its position in the request.
#[derive(Debug, Clone)]
pub struct BulkItem {
    pub index: usize,
    /// Routed at the edge, like every keyed request.
    pub key: RoutedKey,
    pub id: RecordId,
    pub data: Document,
}

/// A record that was not written, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct BulkFailure {
    /// Position of the record in the request's `records` array.
    pub index: usize,
    pub reason: String,
}

/// What happened on one shard.
#[derive(Debug)]
pub struct ShardBatch {
    pub shard: ShardId,
    pub written: usize,
    pub error: Option<ClusterError>,
    /// The shard's read-your-writes token after the batch committed.
    pub token: Option<WriteToken>,
    /// True when every record of this shard's part was written by an earlier request
    /// with the same idempotency key (nothing written now). `written` counts both the
    /// records written now and those an earlier request wrote.
    pub replayed: bool,
    /// Of `written`, the records an earlier request with the same idempotency key wrote.
    pub written_before: usize,
}

/// The whole batch's outcome.
#[derive(Debug, Default)]
pub struct BulkOutcome {
    /// Every shard that received records, in shard order.
    pub shards: Vec<ShardBatch>,
    /// Records not written, in index order.
    pub failed: Vec<BulkFailure>,
    pub cache: CacheUsage,
}

impl BulkOutcome {
    pub fn written(&self) -> usize {
        self.shards.iter().map(|s| s.written).sum()
    }

    /// Adds a second pass's results (records routed again after a refusal): a shard
    /// in both passes sums its counts and keeps the later token and error.
    pub(super) fn merge(&mut self, other: BulkOutcome) {
        for batch in other.shards {
            match self.shards.iter_mut().find(|s| s.shard == batch.shard) {
                Some(mine) => {
                    mine.written += batch.written;
                    mine.replayed &= batch.replayed;
                    mine.written_before += batch.written_before;
                    if batch.error.is_some() {
                        mine.error = batch.error;
                    }
                    mine.token = match (mine.token, batch.token) {
                        (Some(a), Some(b)) => Some(if a.lsn >= b.lsn { a } else { b }),
                        (a, b) => a.or(b),
                    };
                }
                None => self.shards.push(batch),
            }
        }
        self.shards.sort_by_key(|s| s.shard);
        self.failed.extend(other.failed);
        self.failed.sort_by_key(|f| f.index);
        self.cache.events.extend(other.cache.events);
        if let Some(t) = other.cache.redis_time {
            self.cache.redis_time = Some(self.cache.redis_time.unwrap_or_default() + t);
        }
    }
}

impl Cluster {
    /// One pass of [`Cluster::bulk_write`] (which retries the groups a shard refused).
    pub(super) async fn bulk_once(
        &self,
        table: &TableName,
        items: &[BulkItem],
        idempotency: Option<&IdempotencyKey>,
    ) -> BulkOutcome {
        let mut outcome = BulkOutcome::default();
        let mut groups: HashMap<ShardId, Vec<(BulkItem, i32)>> = HashMap::new();
        let mut last_index: HashMap<(&str, &str), usize> = HashMap::new();
        for item in items {
            last_index.insert((item.key.as_str(), item.id.as_str()), item.index);
        }
        for item in items {
            let winner = last_index[&(item.key.as_str(), item.id.as_str())];
            if winner != item.index {
                outcome.failed.push(BulkFailure {
                    index: item.index,
                    reason: format!(
                        "superseded by record {winner}, which has the same shard_key and id"
                    ),
                });
                continue;
            }
            groups
                .entry(item.key.shard())
                .or_default()
                .push((item.clone(), item.key.slot().0 as i32));
        }
        let mut groups: Vec<_> = groups.into_iter().collect();
        groups.sort_by_key(|(id, _)| *id);
        let runs = groups.iter().map(|(shard_id, group)| async move {
            let rows: Vec<NewRecord<'_>> = group
                .iter()
                .map(|(item, slot)| NewRecord {
                    table_name: table.as_str(),
                    shard_key: item.key.as_str(),
                    id: item.id.as_str(),
                    slot: *slot,
                    data: item.data.as_raw(),
                })
                .collect();
            let owned = self.shard(*shard_id)?;
            let shard: &super::Shard = &owned;
            shard.ready_for_writes()?;
            let sent = Instant::now();
            let result = shard
                .primary
                .run_write_as("bulk write", async |conn| match idempotency {
                    None => {
                        let (written, position) = crate::wire::upsert_many(conn, &rows).await?;
                        let replayed = Vec::new();
                        Ok((Some(GroupOutcome { written, replayed }), position))
                    }
                    Some(k) => crate::wire::upsert_many_idempotent(conn, &rows, k).await,
                })
                .await;
            let result = match result {
                Ok(done) => Ok(done),
                Err(failure) => {
                    // The whole group may have committed: forget every record of it.
                    let idents: Vec<(&str, &str, &str)> = rows
                        .iter()
                        .map(|r| (r.table_name, r.shard_key, r.id))
                        .collect();
                    let mut usage = CacheUsage::default();
                    Err(self.failed_write(shard, failure, &idents, &mut usage).await)
                }
            };
            let (done, position) = result?;
            crate::fault::GATEWAY.reach("after-commit");
            let token = self.token(shard, &position.wal);
            let commit = self.committed(shard, &position, token.lsn, sent);
            let Some(GroupOutcome { written, replayed }) = done else {
                return Err(ClusterError::KeyReused { shard: shard.id });
            };
            if let (Some(cache), false) = (self.cache(), replayed.is_empty()) {
                let replayed: Vec<_> = replayed
                    .iter()
                    .map(|(key, id, v)| ((table.as_str(), key.as_str(), id.as_str()), *v))
                    .collect();
                let mut usage = CacheUsage::default();
                self.forget_replayed(cache, shard, &replayed, commit, &mut usage)
                    .await?;
            }
            let counts = (written.len() + replayed.len(), replayed.len());
            // RETURNING order is not guaranteed: match rows by identity.
            let by_id: HashMap<(&str, &str), &NewRecord<'_>> =
                rows.iter().map(|r| ((r.shard_key, r.id), r)).collect();
            let records: Vec<Record> = written
                .into_iter()
                .filter_map(|(shard_key, id, version, created_at, updated_at)| {
                    let row = by_id.get(&(shard_key.as_str(), id.as_str()))?;
                    Some(Record {
                        table_name: table.as_str().to_owned(),
                        slot: row.slot,
                        data: row.data.clone(),
                        shard_key,
                        id,
                        version,
                        created_at,
                        updated_at,
                    })
                })
                .collect();
            Ok((records, token, commit, counts))
        });
        let results = join_all(runs).await;
        let mut committed: Vec<(Committed, Record)> = Vec::new();
        for ((shard, group), result) in groups.into_iter().zip(results) {
            match result {
                Ok((records, token, commit, (written, replayed))) => {
                    let now = records.len();
                    committed.extend(records.into_iter().map(|r| (commit, r)));
                    outcome.shards.push(ShardBatch {
                        shard,
                        written,
                        error: None,
                        token: Some(token),
                        replayed: replayed > 0 && now == 0,
                        written_before: replayed,
                    })
                }
                Err(err) => {
                    tracing::warn!(%shard, error = %err, records = group.len(), "bulk group failed");
                    outcome
                        .failed
                        .extend(group.iter().map(|(item, _)| BulkFailure {
                            index: item.index,
                            reason: err.to_string(),
                        }));
                    outcome.shards.push(ShardBatch {
                        shard,
                        written: 0,
                        error: Some(err),
                        token: None,
                        replayed: false,
                        written_before: 0,
                    });
                }
            }
        }
        outcome.failed.sort_by_key(|f| f.index);
        if let Some(cache) = self.cache() {
            if !committed.is_empty() {
                // A shard whose caches could not be told keeps its records written and
                // says so (the answer is then 207, not an acknowledgement of all).
                for shard in cache.install_writes(&committed, &mut outcome.cache).await {
                    if let Some(batch) = outcome.shards.iter_mut().find(|b| b.shard == shard) {
                        let lsn = batch.token.map_or(Lsn(0), |t| t.lsn);
                        batch.error = Some(match self.shard(shard) {
                            Ok(s) => self.not_told(&s, lsn),
                            Err(e) => e,
                        });
                    }
                }
            }
        }
        outcome
    }
}
