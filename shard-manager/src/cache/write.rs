//! The writers' side of the cache: after a commit, before acknowledging, a writer
//! installs the new version (or a delete's tombstone) and raises the floor, in the
//! epoch the shard reported right after the commit; a write of unknown outcome makes the
//! cache forget the record. If Redis cannot be told, the shard's epoch is raised behind
//! a fence (see `epochs`, `fence`); if that fails too, the caller is told ([`NotTold`]).

use std::time::Instant;

use tracing::Instrument;

use super::{record_hash, Cache, CacheEvent, CacheUsage, Epoch, Fence, Floor};
use crate::routing::ShardId;
use crate::spans;
use crate::store::Record;
use crate::wal::Lsn;

/// What a writer learnt right after its commit, in the statement pipelined after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    pub shard: ShardId,
    /// The primary's WAL position read after the commit.
    pub at: Lsn,
    /// The shard's cache epoch read with it (None: the shard lacks the migration).
    pub epoch: Option<u64>,
    /// When the write was sent: the reading is at least this fresh.
    pub sent: Instant,
}

/// The epoch a commit reported, if it did.
impl From<Committed> for Option<Epoch> {
    fn from(commit: Committed) -> Self {
        commit.epoch.map(|n| Epoch {
            shard: commit.shard,
            n,
        })
    }
}

/// A record a replayed answer names (table, shard key, id), with the version the answer
/// gave it, where the answer kept one.
pub type Replayed<'a> = ((&'a str, &'a str, &'a str), Option<i64>);

/// A raise's outcome as a writer's cache span names it.
fn raised(told: Result<(), NotTold>) -> (&'static str, Result<(), NotTold>) {
    match told {
        Ok(()) => ("epoch raised", Ok(())),
        Err(NotTold) => ("not told", Err(NotTold)),
    }
}

/// What is known of a write whose records the cache forgets (`forget.lua`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    /// Sent, then the connection was lost.
    MayHaveCommitted,
    /// Committed with this version (a replayed answer names it).
    Version(i64),
    /// Committed, version not known (a replayed delete or transaction).
    Committed,
}

/// A committed write that neither Redis nor its shard's cache epoch could take: other
/// gateways may serve the previous version until the raise this gateway owes is done
/// (its monitor retries with every check) or their entries expire. The gateway answers
/// so rather than acknowledge (see the module doc of `cache`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotTold;

impl Cache {
    /// A writer installs the committed version, or marks a delete, before acknowledging,
    /// into the epoch the shard reported after the commit: the one every gateway that
    /// is current reads. If Redis cannot be updated, the shard's epoch is raised so that
    /// no gateway serves the old entry; [`NotTold`] if that fails too.
    pub async fn install_write(
        &self,
        commit: Committed,
        (table, key, id): (&str, &str, &str),
        version: i64,
        record: Option<&Record>,
        usage: &mut CacheUsage,
    ) -> Result<(), NotTold> {
        let span = spans::cache("cache install", commit.shard);
        let (outcome, told) = self
            .install_write_untraced(commit, (table, key, id), version, record, usage)
            .instrument(span.clone())
            .await;
        self.evict_from_memory(commit.into(), commit.shard, (table, key, id));
        spans::cache_written(&span, outcome);
        told
    }

    async fn install_write_untraced(
        &self,
        commit: Committed,
        (table, key, id): (&str, &str, &str),
        version: i64,
        record: Option<&Record>,
        usage: &mut CacheUsage,
    ) -> (&'static str, Result<(), NotTold>) {
        let (shard, seen_at) = (commit.shard, commit.at);
        // The floor first, where eviction cannot reach it.
        let floor = Floor::Version(version);
        self.local.raise(
            record_hash(table, key, id),
            shard,
            floor,
            seen_at,
            &self.fences,
        );
        let json = match record.map(serde_json::to_string) {
            Some(Ok(j)) => j,
            Some(Err(_)) | None => String::new(),
        };
        let installed = match self.committed_epoch(commit) {
            Some(epoch) => {
                let keys = self.keys(epoch, table, key, id);
                let value = format!("{}|{json}", seen_at.0);
                self.run_script(usage, epoch, keys, version, value, 'w')
                    .await
                    .is_some()
            }
            None => false,
        };
        if installed {
            usage.events.push(CacheEvent::Invalidation);
            return ("installed", Ok(()));
        }
        match self.abandon_epoch(&[(shard, Fence::At(seen_at))]).await[..] {
            [] => ("epoch raised", Ok(())),
            _ => ("not told", Err(NotTold)),
        }
    }

    /// The epoch a write read after its commit, which this gateway adopts if it is
    /// newer than what it knew (behind a fence at the write's position, past the raise).
    fn committed_epoch(&self, commit: Committed) -> Option<Epoch> {
        let n = commit.epoch?;
        self.epochs
            .observe(commit.shard, n, commit.at, commit.sent, &self.fences);
        Some(Epoch {
            shard: commit.shard,
            n,
        })
    }

    /// Writes whose outcome is unknown (sent, then the connection was lost): their
    /// entries are dropped and their floors marked unknown, so no reader installs a
    /// version from before them and only a later writer caches the record again, in the
    /// epoch this gateway reads. If it does not know that epoch, or Redis cannot be told,
    /// the shard's epoch is raised, as for a failed install; [`NotTold`] if that fails
    /// too (a failed write answers its error anyway: the raise is only owed; a replayed
    /// answer is not sent as an acknowledgement then).
    pub async fn forget(
        &self,
        shard: ShardId,
        idents: &[(&str, &str, &str)],
        usage: &mut CacheUsage,
    ) -> Result<(), NotTold> {
        let records: Vec<_> = idents
            .iter()
            .map(|i| (*i, Known::MayHaveCommitted))
            .collect();
        self.forget_in(self.epoch(shard), shard, &records, usage)
            .await
    }

    /// [`Cache::forget`] after a statement that committed (a replayed answer's), each
    /// record with the version that answer gave it if known: in the epoch the shard
    /// reported after that commit, which this gateway adopts if it is newer, as a
    /// writer's install does. (The epoch this gateway knew may be older: an entry
    /// installed in the newer one would survive a forget there.) The version keeps a
    /// late install of an older commit out (`forget.lua`); without one, the record is
    /// not cached again until its floor expires.
    pub async fn forget_committed(
        &self,
        commit: Committed,
        replayed: &[Replayed<'_>],
        usage: &mut CacheUsage,
    ) -> Result<(), NotTold> {
        let epoch = self.committed_epoch(commit);
        let records: Vec<_> = replayed
            .iter()
            .map(|(i, v)| (*i, v.map_or(Known::Committed, Known::Version)))
            .collect();
        self.forget_in(epoch, commit.shard, &records, usage).await
    }

    async fn forget_in(
        &self,
        epoch: Option<Epoch>,
        shard: ShardId,
        records: &[((&str, &str, &str), Known)],
        usage: &mut CacheUsage,
    ) -> Result<(), NotTold> {
        let span = spans::cache("cache forget", shard);
        let (outcome, told) = self
            .forget_untraced(epoch, shard, records, usage)
            .instrument(span.clone())
            .await;
        for (record, _) in records {
            self.evict_from_memory(epoch, shard, *record);
        }
        spans::cache_written(&span, outcome);
        told
    }

    async fn forget_untraced(
        &self,
        epoch: Option<Epoch>,
        shard: ShardId,
        records: &[((&str, &str, &str), Known)],
        usage: &mut CacheUsage,
    ) -> (&'static str, Result<(), NotTold>) {
        let Some(epoch) = epoch else {
            for ((table, key, id), _) in records {
                let record = record_hash(table, key, id);
                self.local
                    .raise(record, shard, Floor::Unknown, Lsn(0), &self.fences);
            }
            return raised(self.abandoned(shard).await);
        };
        let mut pipe = redis::pipe();
        pipe.cmd("SCRIPT")
            .arg("LOAD")
            .arg(super::FORGET_LUA)
            .ignore();
        for ((table, key, id), known) in records {
            let record = record_hash(table, key, id);
            self.local
                .raise(record, shard, Floor::Unknown, Lsn(0), &self.fences);
            let (value_key, floor_key) = self.keys(epoch, table, key, id);
            let (what, version) = match known {
                Known::MayHaveCommitted => ("m", 0),
                Known::Version(v) => ("k", *v),
                Known::Committed => ("c", 0),
            };
            pipe.cmd("EVALSHA")
                .arg(self.forget_script.get_hash())
                .arg(2)
                .arg(value_key)
                .arg(floor_key)
                .arg(self.floor_ttl_ms)
                .arg(what)
                .arg(version)
                .ignore();
        }
        let done: Option<()> = self
            .call(usage, move |mut conn| async move {
                pipe.query_async(&mut conn).await
            })
            .await;
        match done {
            Some(()) => {
                usage.events.push(CacheEvent::Invalidation);
                ("forgotten", Ok(()))
            }
            None => raised(self.abandoned(shard).await),
        }
    }

    /// Every cached record of `shard` forgotten (its epoch abandoned): after a write
    /// whose records are not known here, such as an in-doubt transaction a recovery
    /// committed for a gateway that died.
    pub async fn abandon_shard(&self, shard: ShardId) -> Result<(), NotTold> {
        self.abandoned(shard).await
    }

    /// Abandons the shard's epoch behind a fence no reader has passed yet.
    async fn abandoned(&self, shard: ShardId) -> Result<(), NotTold> {
        let fence = Fence::Pending(Instant::now());
        match self.abandon_epoch(&[(shard, fence)]).await[..] {
            [] => Ok(()),
            _ => Err(NotTold),
        }
    }

    /// A bulk writer installs many committed versions, each in the epoch its shard
    /// reported after its commit, pipelined in chunks; any failure raises the epochs of
    /// every shard of the batch, as for single writes. Returns the shards whose caches
    /// could not be told ([`NotTold`]).
    pub async fn install_writes(
        &self,
        records: &[(Committed, Record)],
        usage: &mut CacheUsage,
    ) -> Vec<ShardId> {
        let span = spans::cache_batch("cache install", records.len());
        let not_told = self
            .install_writes_untraced(records, usage)
            .instrument(span.clone())
            .await;
        for (commit, r) in records {
            let record = (&r.table_name[..], &r.shard_key[..], &r.id[..]);
            self.evict_from_memory((*commit).into(), commit.shard, record);
        }
        let outcome = match &not_told {
            None => "installed",
            Some(shards) if shards.is_empty() => "epoch raised",
            Some(_) => "not told",
        };
        spans::cache_written(&span, outcome);
        not_told.unwrap_or_default()
    }

    /// [`Cache::install_writes`]: None when every record was installed, else the shards
    /// not told (empty when their epochs were raised).
    async fn install_writes_untraced(
        &self,
        records: &[(Committed, Record)],
        usage: &mut CacheUsage,
    ) -> Option<Vec<ShardId>> {
        const CHUNK: usize = 1000;
        for (commit, r) in records {
            let record = record_hash(&r.table_name, &r.shard_key, &r.id);
            let floor = Floor::Version(r.version);
            self.local
                .raise(record, commit.shard, floor, commit.at, &self.fences);
        }
        let mut epochs: Vec<(ShardId, Epoch)> = Vec::new();
        for (commit, _) in records {
            if epochs.iter().any(|(s, _)| *s == commit.shard) {
                continue;
            }
            match self.committed_epoch(*commit) {
                Some(e) => epochs.push((commit.shard, e)),
                None => return Some(self.abandon_all(records).await),
            }
        }
        for chunk in records.chunks(CHUNK) {
            let mut pipe = redis::pipe();
            pipe.cmd("SCRIPT")
                .arg("LOAD")
                .arg(super::INSTALL_LUA)
                .ignore();
            for (commit, r) in chunk {
                let Ok(json) = serde_json::to_string(r) else {
                    continue;
                };
                let Some(&(_, epoch)) = epochs.iter().find(|(s, _)| *s == commit.shard) else {
                    continue;
                };
                let value = format!("{}|{json}", commit.at.0);
                let (value_key, floor_key) = self.keys(epoch, &r.table_name, &r.shard_key, &r.id);
                pipe.cmd("EVALSHA")
                    .arg(self.script.get_hash())
                    .arg(3)
                    .arg(value_key)
                    .arg(floor_key)
                    .arg(super::retired::retired_key(&self.prefix, commit.shard))
                    .arg(r.version)
                    .arg(value)
                    .arg(self.ttl_ms)
                    .arg(self.floor_ttl_ms)
                    .arg("w")
                    .arg(epoch.n)
                    .ignore();
            }
            let done: Option<()> = self
                .call(usage, move |mut conn| async move {
                    pipe.query_async(&mut conn).await
                })
                .await;
            if done.is_none() {
                return Some(self.abandon_all(records).await);
            }
        }
        usage.events.push(CacheEvent::Invalidation);
        None
    }

    /// Fences every shard of a batch at its commit position and abandons its epoch;
    /// returns the shards that could not be told.
    async fn abandon_all(&self, records: &[(Committed, Record)]) -> Vec<ShardId> {
        let mut fences: Vec<(ShardId, Fence)> = Vec::new();
        for (commit, _) in records {
            match fences.iter_mut().find(|(s, _)| *s == commit.shard) {
                Some((_, Fence::At(at))) => *at = (*at).max(commit.at),
                Some(_) => {}
                None => fences.push((commit.shard, Fence::At(commit.at))),
            }
        }
        self.abandon_epoch(&fences).await
    }
}
