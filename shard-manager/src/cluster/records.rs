//! The record operations: write, read, list, fan-out, delete. Each takes a
//! [`RoutedKey`]: placement was decided once, at the edge.

use std::time::{Duration, Instant};

use super::served::{Deleted, FanOut, Found, Served, Written};
use super::shard::Shard;
use super::Cluster;
use crate::cache::{Cache, CacheEvent, CacheUsage, Committed, Lookup, NotTold};
use crate::error::ClusterError;
use crate::routing::{Role, RoutedKey};
use crate::servers::WriteFailure;
use crate::store::{
    CommitPosition, Conditional, Document, IdempotencyKey, IdempotentOutcome, ListQuery, NewRecord,
    Page, Precondition, Record, RecordId, TableName,
};
use crate::wal::{Consistency, Lsn, WriteToken};
use crate::wire::{EncodedWrite, WireError};

/// A single write or delete, committed through its primary's group commit
/// (`Server::write_in_group`): with the writes that arrive together, or alone. One that
/// could not be encoded was never sent.
async fn commit_single<T>(
    shard: &Shard,
    encoded: Result<EncodedWrite<T>, WireError>,
) -> Result<(T, CommitPosition), WriteFailure> {
    match encoded {
        Ok(encoded) => shard.primary.write_in_group(encoded).await,
        Err(e) => Err(WriteFailure::before_sending(shard.primary.failure(e))),
    }
}

/// What keeps a single write or delete from doing harm when sent again or late: an
/// idempotency key (or nothing), or a condition on the record's version. Never both: a
/// conditional write sent again is refused by its own condition.
#[derive(Debug, Clone, Copy)]
pub(super) enum Guard<'a> {
    Key(Option<&'a IdempotencyKey>),
    Condition(&'a Precondition),
}

/// A conditional write's answer, or its refusal as the error it is answered with. The
/// refusal wrote nothing: the cache has nothing to learn.
fn refused_at<T>(shard: &Shard, answer: Conditional<T>) -> Result<T, ClusterError> {
    match answer {
        Conditional::Applied(done) => Ok(done),
        Conditional::Refused { current } => Err(ClusterError::PreconditionFailed {
            shard: shard.id,
            current,
        }),
    }
}

impl Cluster {
    /// One attempt of [`Cluster::write`] and [`Cluster::write_if`] (each retries once
    /// after a refusal).
    pub(super) async fn write_once(
        &self,
        table: &TableName,
        key: &RoutedKey,
        id: &RecordId,
        data: &Document,
        guard: Guard<'_>,
    ) -> Result<Written, ClusterError> {
        let owned = self.shard_of(key)?;
        let shard: &Shard = &owned;
        shard.ready_for_writes()?;
        let row = NewRecord {
            table_name: table.as_str(),
            shard_key: key.as_str(),
            id: id.as_str(),
            slot: key.slot().0 as i32,
            data: data.as_raw(),
        };
        let mut usage = CacheUsage::default();
        let sent = Instant::now();
        let encoded = match guard {
            Guard::Key(idempotency) => {
                crate::wire::upsert(&row, idempotency).map(|e| e.map(Conditional::Applied))
            }
            Guard::Condition(condition) => crate::wire::replace_if(&row, condition)
                .map(|e| e.map(|done| done.map(IdempotentOutcome::Applied))),
        };
        let written = commit_single(shard, encoded).await;
        let (upserted, position) = match written {
            Ok(done) => done,
            Err(failure) => {
                let idents = [(row.table_name, row.shard_key, row.id)];
                let failed = self.failed_write(shard, failure, &idents, &mut usage);
                return Err(failed.await);
            }
        };
        crate::fault::GATEWAY.reach("after-commit");
        let token = self.token(shard, &position.wal);
        let upserted = refused_at(shard, upserted)?;
        let (upserted, id, replayed) = match upserted {
            IdempotentOutcome::Applied(up) => (up, id.clone(), false),
            IdempotentOutcome::Replayed((stored, up)) => (up, RecordId::stored(stored), true),
            IdempotentOutcome::Reused => return Err(ClusterError::KeyReused { shard: shard.id }),
        };
        if let (Some(cache), true) = (&self.cache, replayed) {
            let ident = (row.table_name, row.shard_key, id.as_str());
            let commit = self.committed(shard, &position, token.lsn, sent);
            let replayed = [(ident, Some(upserted.version))];
            self.forget_replayed(cache, shard, &replayed, commit, &mut usage)
                .await?;
        }
        if let (Some(cache), false) = (&self.cache, replayed) {
            let record = Record {
                table_name: table.as_str().to_owned(),
                shard_key: key.as_str().to_owned(),
                id: id.as_str().to_owned(),
                slot: row.slot,
                data: data.as_raw().clone(),
                version: upserted.version,
                created_at: upserted.created_at,
                updated_at: upserted.updated_at,
            };
            let commit = self.committed(shard, &position, token.lsn, sent);
            let ident = (row.table_name, row.shard_key, row.id);
            cache
                .install_write(commit, ident, upserted.version, Some(&record), &mut usage)
                .await
                .map_err(|NotTold| self.not_told(shard, token.lsn))?;
        }
        Ok(Written {
            shard: shard.id,
            id,
            upserted,
            token,
            cache: usage,
            replayed,
        })
    }

    /// One attempt of [`Cluster::read`].
    pub(super) async fn read_once(
        &self,
        table: &TableName,
        key: &RoutedKey,
        id: &RecordId,
        consistency: Consistency,
    ) -> Result<Served<Option<Found>>, ClusterError> {
        let owned = self.shard_of(key)?;
        let shard: &Shard = &owned;
        shard.ready()?;
        let mut usage = CacheUsage::default();
        // Captured before anything is read: what a miss installs goes into this epoch.
        // Unknown until the monitor has read the shard's epoch: the read bypasses.
        let epoch = self.cache.as_ref().and_then(|c| c.epoch(shard.id));
        if self.cache.is_some() && epoch.is_none() {
            usage.events.push(CacheEvent::Bypass);
        }
        if let (Some(cache), Some(epoch)) = (&self.cache, epoch) {
            if consistency == Consistency::Strong {
                usage.events.push(CacheEvent::Bypass);
            } else {
                let ident = (table.as_str(), key.as_str(), id.as_str());
                let value = match cache
                    .lookup(epoch, ident, consistency.min_lsn(), &mut usage)
                    .await
                {
                    Lookup::Hit(record) => Some(Some(Found::Cached(record))),
                    Lookup::Gone => Some(None),
                    Lookup::Miss(_) | Lookup::Bypass => None,
                };
                if let Some(value) = value {
                    return Ok(Served {
                        shard: shard.id,
                        role: Role::Replica,
                        server: "cache".into(),
                        value,
                        from_cache: true,
                        cache: usage,
                        seen_at: Lsn(0),
                    });
                }
            }
        }
        let read = crate::wire::read::PointRead {
            table: table.as_str().to_owned(),
            key: key.as_str().to_owned(),
            slot: key.slot().0 as i32,
            id: id.as_str().to_owned(),
        };
        let served = shard
            .find(consistency, &self.settings.replication, read)
            .await?;
        if let (Some(cache), Some(epoch), Some(record)) = (&self.cache, epoch, &served.value) {
            // Installed as reflecting what the server had applied before the read, as the
            // server reported it: never the client's token, which may be forged.
            let primary = &shard.primary;
            cache
                .install_read(
                    epoch,
                    shard.id,
                    record,
                    served.seen_at,
                    |since| primary.wal_observed_after(since),
                    &mut usage,
                )
                .await;
        }
        Ok(Served {
            shard: served.shard,
            role: served.role,
            server: served.server,
            value: served.value.map(Found::Stored),
            from_cache: false,
            cache: usage,
            seen_at: served.seen_at,
        })
    }

    /// One attempt of [`Cluster::list`].
    pub(super) async fn list_once(
        &self,
        table: &TableName,
        key: &RoutedKey,
        query: &ListQuery,
        consistency: Consistency,
    ) -> Result<Served<Page>, ClusterError> {
        let owned = self.shard_of(key)?;
        let shard: &Shard = &owned;
        shard.ready()?;
        shard
            .read(consistency, &self.settings.replication, async |conn| {
                let slot = key.slot().0 as i32;
                let key = Some((key.as_str(), slot));
                crate::wire::list(conn, table.as_str(), key, query).await
            })
            .await
    }

    /// A table's records across every shard at once, merged newest first, with the
    /// limit and the byte budget applied globally (see `merge`). Shards that fail are
    /// named in the result, not hidden.
    pub async fn fan_out(
        &self,
        table: &TableName,
        query: &ListQuery,
        consistency: Consistency,
    ) -> FanOut {
        // A shard owning no slot (just added, or retired) holds no visible record.
        let shards: Vec<_> = {
            let router = self.router();
            let all = self.shards();
            all.iter()
                .filter(|s| router.serves_keys(s.id))
                .cloned()
                .collect()
        };
        // Each shard's part gets its share of the budget, so that all of them together
        // hold no more than one page may.
        let part = ListQuery {
            max_bytes: query.max_bytes / shards.len().max(1),
            ..query.clone()
        };
        let part = &part;
        let reads = shards.iter().map(|shard| async move {
            if let Err(missing) = shard.ready() {
                return (shard.id, Err(missing));
            }
            let result = shard
                .read(consistency, &self.settings.replication, async |conn| {
                    crate::wire::list(conn, table.as_str(), None, part).await
                })
                .await;
            (shard.id, result)
        });
        let mut out = FanOut::default();
        let mut pages = Vec::new();
        for (shard, result) in futures_util::future::join_all(reads).await {
            match result {
                Ok(served) => {
                    out.answered.push((shard, served.role));
                    pages.push((shard, served.value));
                }
                Err(err) => out.failed.push(err),
            }
        }
        (out.records, out.next) = super::merge::merge(pages, query.limit as usize, query.max_bytes);
        out
    }

    /// One attempt of [`Cluster::delete`] and [`Cluster::delete_if`].
    pub(super) async fn delete_once(
        &self,
        table: &TableName,
        key: &RoutedKey,
        id: &RecordId,
        guard: Guard<'_>,
    ) -> Result<Served<Deleted>, ClusterError> {
        let owned = self.shard_of(key)?;
        let shard: &Shard = &owned;
        shard.ready_for_writes()?;
        let ident = (table.as_str(), key.as_str(), id.as_str());
        let sent = Instant::now();
        let slot = key.slot().0 as i32;
        let encoded = match guard {
            Guard::Key(idempotency) => {
                crate::wire::delete(ident, slot, idempotency).map(|e| e.map(Conditional::Applied))
            }
            Guard::Condition(condition) => crate::wire::delete_if(ident, slot, condition)
                .map(|e| e.map(|done| done.map(|v| IdempotentOutcome::Applied(Some(v))))),
        };
        let deleted = commit_single(shard, encoded).await;
        let (deleted, position) = match deleted {
            Ok(done) => done,
            Err(failure) => {
                let mut usage = CacheUsage::default();
                return Err(self
                    .failed_write(shard, failure, &[ident], &mut usage)
                    .await);
            }
        };
        crate::fault::GATEWAY.reach("after-commit");
        let token = self.token(shard, &position.wal);
        let deleted = refused_at(shard, deleted)?;
        let (deleted, existed, replayed) = match deleted {
            IdempotentOutcome::Applied(version) => (version, version.is_some(), false),
            IdempotentOutcome::Replayed(existed) => (None, existed, true),
            IdempotentOutcome::Reused => return Err(ClusterError::KeyReused { shard: shard.id }),
        };
        let done = Deleted {
            existed,
            token,
            replayed,
        };
        let mut served = Served::by(&shard.primary, done);
        if let (Some(cache), true) = (&self.cache, replayed) {
            let commit = self.committed(shard, &position, token.lsn, sent);
            // A delete's answer does not keep its version.
            let replayed = [(ident, None)];
            self.forget_replayed(cache, shard, &replayed, commit, &mut served.cache)
                .await?;
        }
        if let (Some(cache), Some(version)) = (&self.cache, deleted) {
            let commit = self.committed(shard, &position, token.lsn, sent);
            cache
                .install_write(commit, ident, version, None, &mut served.cache)
                .await
                .map_err(|NotTold| self.not_told(shard, token.lsn))?;
        }
        Ok(served)
    }

    /// What the cache needs from a write's commit (see [`Committed`]).
    pub(crate) fn committed(
        &self,
        shard: &Shard,
        position: &CommitPosition,
        at: Lsn,
        sent: Instant,
    ) -> Committed {
        Committed {
            shard: shard.id,
            at,
            epoch: position.cache_epoch.map(|e| e.max(0) as u64),
            sent,
        }
    }

    /// The answer for a committed write the caches could not be told of.
    pub(super) fn not_told(&self, shard: &Shard, lsn: Lsn) -> ClusterError {
        ClusterError::CacheNotTold {
            shard: shard.id,
            lsn: lsn.to_string(),
        }
    }

    /// A replayed answer's records: the first attempt committed them, but may have died
    /// before telling the cache (its gateway crashed, its deadline passed, its client
    /// left), so the cache forgets them before the replay is answered, each with the
    /// version the answer gave it where known. Forgotten, not installed: the answer's
    /// version may be older than a later write whose own install went to a newer epoch.
    /// [`NotTold`] answers as a write's does.
    pub(crate) async fn forget_replayed(
        &self,
        cache: &Cache,
        shard: &Shard,
        replayed: &[crate::cache::Replayed<'_>],
        commit: Committed,
        usage: &mut CacheUsage,
    ) -> Result<(), ClusterError> {
        cache
            .forget_committed(commit, replayed, usage)
            .await
            .map_err(|NotTold| self.not_told(shard, commit.at))
    }

    /// A write failed. If it may have committed, the cache forgets the records it
    /// touched (see [`Cache::forget`]): a hit is never older than a write that might
    /// have been acknowledged by a retry. Returns the error to answer with.
    pub(crate) async fn failed_write(
        &self,
        shard: &Shard,
        failure: WriteFailure,
        idents: &[(&str, &str, &str)],
        usage: &mut CacheUsage,
    ) -> ClusterError {
        if let (Some(cache), true) = (&self.cache, failure.maybe_committed) {
            // Answered with the error anyway: a raise that failed is owed.
            let _ = cache.forget(shard.id, idents, usage).await;
        }
        failure.into_error()
    }

    /// Waits until a replica of the token's shard has applied the write it names.
    /// Returns the replica's address.
    pub async fn await_replica(&self, token: WriteToken) -> Result<String, ClusterError> {
        let limit = Duration::from_millis(self.settings.replication.durability_timeout_ms);
        self.shard(token.shard)?
            .await_replica(token.lsn, limit)
            .await
    }
}
