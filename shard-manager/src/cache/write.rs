//! The writers' side of the cache: after a commit, before acknowledging, a writer
//! installs the new version (or a delete's tombstone) and raises the floor; a write of
//! unknown outcome makes the cache forget the record. If Redis cannot be told, the
//! epoch moves on, behind a fence (see `fence`).

use std::time::Instant;

use super::{record_hash, Cache, CacheEvent, CacheTrace, Epoch, Fence, Floor};
use crate::routing::ShardId;
use crate::store::Record;
use crate::wal::Lsn;

impl Cache {
    /// A writer installs the committed version, or marks a delete, before acknowledging.
    /// If Redis cannot be updated, the epoch moves on so no reader sees the old entry.
    /// `seen_at`: the WAL position read after the write's commit.
    pub async fn install_write(
        &self,
        shard: ShardId,
        (table, key, id): (&str, &str, &str),
        version: i64,
        seen_at: Lsn,
        record: Option<&Record>,
        trace: &mut CacheTrace,
    ) {
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
        let installed = match self.write_epoch(shard).await {
            Some(epoch) => {
                let (value_key, floor_key) = self.keys(epoch, table, key, id);
                let value = format!("{}|{json}", seen_at.0);
                self.run_script(trace, value_key, floor_key, version, value, 'w')
                    .await
                    .is_some()
            }
            None => false,
        };
        if installed {
            trace.events.push(CacheEvent::Invalidation);
        } else {
            self.abandon_epoch(&[(shard, Fence::At(seen_at))]).await;
        }
    }

    /// Writes whose outcome is unknown (sent, then the connection was lost): their
    /// entries are dropped and their floors marked unknown, so no reader installs a
    /// version from before them and only a later writer caches the record again. If
    /// Redis cannot be told, the epoch moves on, as for a failed install.
    pub async fn forget(
        &self,
        shard: ShardId,
        idents: &[(&str, &str, &str)],
        trace: &mut CacheTrace,
    ) {
        let Some(epoch) = self.write_epoch(shard).await else {
            for (table, key, id) in idents {
                let record = record_hash(table, key, id);
                self.local
                    .raise(record, shard, Floor::Unknown, Lsn(0), &self.fences);
            }
            self.abandon_epoch(&[(shard, Fence::Pending(Instant::now()))])
                .await;
            return;
        };
        let mut pipe = redis::pipe();
        for (table, key, id) in idents {
            let record = record_hash(table, key, id);
            self.local
                .raise(record, shard, Floor::Unknown, Lsn(0), &self.fences);
            let (value_key, floor_key) = self.keys(epoch, table, key, id);
            pipe.cmd("SET")
                .arg(floor_key)
                .arg("u")
                .arg("PX")
                .arg(self.floor_ttl_ms)
                .ignore();
            pipe.cmd("DEL").arg(value_key).ignore();
        }
        let done: Option<()> = self
            .call(trace, move |mut conn| async move {
                pipe.query_async(&mut conn).await
            })
            .await;
        match done {
            Some(()) => trace.events.push(CacheEvent::Invalidation),
            None => {
                self.abandon_epoch(&[(shard, Fence::Pending(Instant::now()))])
                    .await
            }
        }
    }

    /// A bulk writer installs many committed versions, each with the WAL position read
    /// after its shard's commit, pipelined in chunks; any failure moves the epoch on, as
    /// for single writes.
    pub async fn install_writes(&self, records: &[(ShardId, Lsn, Record)], trace: &mut CacheTrace) {
        const CHUNK: usize = 1000;
        for (shard, seen_at, r) in records {
            let record = record_hash(&r.table_name, &r.shard_key, &r.id);
            let floor = Floor::Version(r.version);
            self.local
                .raise(record, *shard, floor, *seen_at, &self.fences);
        }
        let mut epochs: Vec<(ShardId, Epoch)> = Vec::new();
        for (shard, _, _) in records {
            if epochs.iter().any(|(s, _)| s == shard) {
                continue;
            }
            match self.write_epoch(*shard).await {
                Some(e) => epochs.push((*shard, e)),
                None => return self.abandon_all(records).await,
            }
        }
        for chunk in records.chunks(CHUNK) {
            let mut pipe = redis::pipe();
            pipe.cmd("SCRIPT")
                .arg("LOAD")
                .arg(include_str!("install.lua"))
                .ignore();
            for (shard, seen_at, r) in chunk {
                let Ok(json) = serde_json::to_string(r) else {
                    continue;
                };
                let Some(&(_, epoch)) = epochs.iter().find(|(s, _)| s == shard) else {
                    continue;
                };
                let value = format!("{}|{json}", seen_at.0);
                let (value_key, floor_key) = self.keys(epoch, &r.table_name, &r.shard_key, &r.id);
                pipe.cmd("EVALSHA")
                    .arg(self.script.get_hash())
                    .arg(2)
                    .arg(value_key)
                    .arg(floor_key)
                    .arg(r.version)
                    .arg(value)
                    .arg(self.ttl_ms)
                    .arg(self.floor_ttl_ms)
                    .arg("w")
                    .ignore();
            }
            let done: Option<()> = self
                .call(trace, move |mut conn| async move {
                    pipe.query_async(&mut conn).await
                })
                .await;
            if done.is_none() {
                return self.abandon_all(records).await;
            }
        }
        trace.events.push(CacheEvent::Invalidation);
    }

    /// Fences every shard of a batch at its commit position and abandons its epoch.
    async fn abandon_all(&self, records: &[(ShardId, Lsn, Record)]) {
        let mut fences: Vec<(ShardId, Fence)> = Vec::new();
        for (shard, lsn, _) in records {
            match fences.iter_mut().find(|(s, _)| s == shard) {
                Some((_, Fence::At(at))) => *at = (*at).max(*lsn),
                Some(_) => {}
                None => fences.push((*shard, Fence::At(*lsn))),
            }
        }
        self.abandon_epoch(&fences).await;
    }
}
