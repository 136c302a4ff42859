//! The shard side of an import: rows routed by the stored map and written as records
//! of one table, each shard's part in one statement that first claims its slots (as
//! a gateway's write does). A slot that moved meanwhile is refused by its old owner
//! (SG001): the map is reloaded and the whole batch written again, which changes
//! nothing already written (an upsert of the same data keeps the record as it is).

use std::collections::{BTreeMap, HashMap, HashSet};

use futures_util::future::try_join_all;

use super::source::SourceRow;
use super::ImportError;
use crate::map::{change, ShardMap};
use crate::moves::shard_conn::ShardConn;
use crate::moves::MoveError;
use shard_manager::config::ClusterSettings;
use shard_manager::error::sqlstate::{decide, Decision};
use shard_manager::routing::{Router, ShardId, ShardKey};

/// Unmarks a connection's writes as a move's: the change log records an import's.
const IMPORT_ORIGIN: &str = "RESET shardgate.origin";

/// A record the shard owns (a set lookup: `shardgate_owns(slot)` per row costs ten
/// times more over a whole table).
pub const OWNED: &str = "(NOT EXISTS (SELECT 1 FROM shardgate_map)
     OR slot IN (SELECT slot FROM shardgate_slots))";

/// How many times a batch is written again after a slot moved under it.
const REROUTES: usize = 5;

/// Upserts (unchanged data keeps its version) and deletes, slots claimed first.
const APPLY: &str = "\
    WITH claim AS (SELECT shardgate_claim($2::int4[]) AS ok),
    up AS (
        INSERT INTO records (table_name, shard_key, id, slot, data)
        SELECT $1, b.k, b.i, b.s, b.d::jsonb
          FROM claim, unnest($3::text[], $4::text[], $5::int4[], $6::text[]) AS b(k, i, s, d)
        ON CONFLICT (table_name, shard_key, id) DO UPDATE SET
            data = excluded.data, slot = excluded.slot,
            version = nextval('record_version_seq'), updated_at = now()
         WHERE records.data IS DISTINCT FROM excluded.data
        RETURNING 1),
    gone AS (
        DELETE FROM records r USING claim, unnest($7::text[], $8::text[]) AS g(k, i)
         WHERE r.table_name = $1 AND r.shard_key = g.k AND r.id = g.i
        RETURNING 1)
    SELECT (SELECT count(*) FROM up), (SELECT count(*) FROM gone)";

/// One shard's part of a batch, column by column.
#[derive(Debug, Default)]
struct Part {
    slots: Vec<i32>,
    keys: Vec<String>,
    ids: Vec<String>,
    row_slots: Vec<i32>,
    data: Vec<String>,
    gone_keys: Vec<String>,
    gone_ids: Vec<String>,
}

/// Writes records of one table to the shards the stored map names.
pub struct Writer {
    settings: ClusterSettings,
    table: String,
    map: ShardMap,
    router: Router,
    conns: HashMap<ShardId, ShardConn>,
}

impl Writer {
    pub async fn open(settings: &ClusterSettings, table: &str) -> Result<Self, ImportError> {
        let map = change::current(settings).await?;
        let router = map
            .router()
            .map_err(|e| ImportError::Corrupt(e.to_string()))?;
        Ok(Self {
            settings: settings.clone(),
            table: table.to_owned(),
            map,
            router,
            conns: HashMap::new(),
        })
    }

    pub fn map(&self) -> &ShardMap {
        &self.map
    }

    /// The Shardgate table the records belong to.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Writes `rows` and deletes the records of `gone` (key, id); returns the
    /// records written (changed or new) and deleted.
    pub async fn apply(
        &mut self,
        rows: &[SourceRow],
        gone: &[(String, String)],
    ) -> Result<(u64, u64), ImportError> {
        let mut tries = 0;
        loop {
            match self.apply_once(rows, gone).await {
                Err(Moved) if tries < REROUTES => {
                    tries += 1;
                    self.reload().await?;
                }
                Err(Moved) => {
                    return Err(ImportError::Refused(format!(
                        "slots kept moving under the import ({tries} map reloads); run it again"
                    )))
                }
                Ok(done) => return done,
            }
        }
    }

    /// Reads the map again; a connection to a server that is no longer its shard's
    /// primary is dropped (the next write opens the one the map names).
    async fn reload(&mut self) -> Result<(), ImportError> {
        self.map = change::current(&self.settings).await?;
        self.router = self
            .map
            .router()
            .map_err(|e| ImportError::Corrupt(e.to_string()))?;
        let shards = &self.map.shards;
        self.conns.retain(|id, conn| {
            shards
                .get(id.index())
                .is_some_and(|s| s.primary == conn.server)
        });
        Ok(())
    }

    /// Drops every connection and reads the map again: after a shard failed, the next
    /// write opens the primary the map names then (a promoted replica, once recorded).
    pub async fn reconnect(&mut self) -> Result<(), ImportError> {
        self.conns.clear();
        self.reload().await
    }

    async fn apply_once(
        &mut self,
        rows: &[SourceRow],
        gone: &[(String, String)],
    ) -> Result<Result<(u64, u64), ImportError>, Moved> {
        let parts = match self.split(rows, gone) {
            Ok(parts) => parts,
            Err(e) => return Ok(Err(e)),
        };
        for shard in parts.keys() {
            if let Err(e) = self.ensure(*shard).await {
                return Ok(Err(e));
            }
        }
        let table = &self.table;
        let writes = parts.iter().filter_map(|(shard, part)| {
            self.conns
                .get(shard)
                .map(|conn| write_part(conn, table, part))
        });
        match try_join_all(writes).await {
            Ok(counts) => Ok(Ok(counts
                .iter()
                .fold((0, 0), |(a, b), (x, y)| (a + x, b + y)))),
            Err(PartError::Moved) => Err(Moved),
            Err(PartError::Failed(e)) => Ok(Err(e.into())),
        }
    }

    /// Routes every row and every gone key to its shard.
    fn split(
        &self,
        rows: &[SourceRow],
        gone: &[(String, String)],
    ) -> Result<BTreeMap<ShardId, Part>, ImportError> {
        let mut parts: BTreeMap<ShardId, Part> = BTreeMap::new();
        // One statement may not upsert a record twice: the last row of a pair wins
        // (two source rows with one (key, id) show up at verification).
        let mut seen = HashSet::new();
        for row in rows.iter().rev() {
            if !seen.insert((row.key.as_str(), row.id.as_str())) {
                continue;
            }
            let (shard, slot) = self.place(&row.key, &row.id)?;
            let part = parts.entry(shard).or_default();
            part.slots.push(slot);
            part.keys.push(row.key.clone());
            part.ids.push(row.id.clone());
            part.row_slots.push(slot);
            part.data.push(row.data.clone());
        }
        for (key, id) in gone {
            if !seen.insert((key.as_str(), id.as_str())) {
                continue;
            }
            let Ok((shard, slot)) = self.place(key, id) else {
                // A key no record can have: nothing to delete.
                continue;
            };
            let part = parts.entry(shard).or_default();
            part.slots.push(slot);
            part.gone_keys.push(key.clone());
            part.gone_ids.push(id.clone());
        }
        for part in parts.values_mut() {
            part.slots.sort_unstable();
            part.slots.dedup();
        }
        Ok(parts)
    }

    fn place(&self, key: &str, id: &str) -> Result<(ShardId, i32), ImportError> {
        let bad = |reason: String| ImportError::BadRow {
            table: self.table.clone(),
            key: key.chars().take(64).collect(),
            id: id.chars().take(64).collect(),
            reason,
        };
        if id.is_empty() {
            return Err(bad("its id is empty".into()));
        }
        let parsed = ShardKey::parse(key).map_err(|e| bad(e.to_string()))?;
        let routed = self.router.route(parsed).map_err(|e| bad(e.to_string()))?;
        Ok((routed.shard(), routed.slot().0 as i32))
    }

    /// The shards that serve keys, each with an open connection.
    async fn serving(&mut self) -> Result<Vec<&ShardConn>, ImportError> {
        let ids: Vec<ShardId> = self
            .map
            .shards
            .iter()
            .filter(|s| !s.retired)
            .map(|s| s.id)
            .collect();
        for shard in &ids {
            self.ensure(*shard).await?;
        }
        Ok(ids.iter().filter_map(|s| self.conns.get(s)).collect())
    }

    async fn ensure(&mut self, shard: ShardId) -> Result<(), ImportError> {
        if !self.conns.contains_key(&shard) {
            let conn = ShardConn::open(&self.settings, &self.map, shard).await?;
            // An import's records are changes of the table (the change log records
            // them), unlike a move's copies, which the connection was opened marked as.
            conn.client
                .batch_execute(IMPORT_ORIGIN)
                .await
                .map_err(conn.fail("marking its writes as changes"))?;
            self.conns.insert(shard, conn);
        }
        Ok(())
    }

    /// Raises the cache epoch of every serving shard: records written here did not
    /// pass a gateway, so no gateway may keep serving a copy cached before.
    pub async fn raise_cache_epochs(&mut self) -> Result<(), ImportError> {
        for conn in self.serving().await? {
            conn.client
                .execute("UPDATE shardgate_cache SET epoch = epoch + 1", &[])
                .await
                .map_err(conn.fail("raising its cache epoch"))?;
        }
        Ok(())
    }

    /// Deletes every record of the table on every shard (abort); returns how many.
    pub async fn delete_all(&mut self) -> Result<u64, ImportError> {
        let table = self.table.clone();
        let mut deleted = 0;
        for conn in self.serving().await? {
            deleted += conn
                .client
                .execute("DELETE FROM records WHERE table_name = $1", &[&table])
                .await
                .map_err(conn.fail("deleting imported records"))?;
        }
        Ok(deleted)
    }

    /// The records of the table the shards hold now, each counted on its owner only.
    pub async fn count(&mut self) -> Result<i64, ImportError> {
        let table = self.table.clone();
        let mut total = 0;
        for conn in self.serving().await? {
            let n: i64 = conn
                .client
                .query_one(
                    &format!("SELECT count(*) FROM records WHERE table_name = $1 AND {OWNED}"),
                    &[&table],
                )
                .await
                .map_err(conn.fail("counting records"))?
                .get(0);
            total += n;
        }
        Ok(total)
    }

    /// Every serving shard's connection, for the verification.
    pub async fn connections(&mut self) -> Result<Vec<&ShardConn>, ImportError> {
        self.serving().await
    }
}

/// A slot of the batch moved: reload the map and write it again.
struct Moved;

enum PartError {
    Moved,
    Failed(MoveError),
}

async fn write_part(conn: &ShardConn, table: &str, p: &Part) -> Result<(u64, u64), PartError> {
    let row = conn
        .client
        .query_one(
            APPLY,
            &[
                &table,
                &p.slots,
                &p.keys,
                &p.ids,
                &p.row_slots,
                &p.data,
                &p.gone_keys,
                &p.gone_ids,
            ],
        )
        .await
        .map_err(|e| match e.code() {
            Some(code) if decide(code.code()) == Decision::SlotMoved => PartError::Moved,
            _ => PartError::Failed(conn.fail("writing imported records")(e)),
        })?;
    Ok((row.get::<_, i64>(0) as u64, row.get::<_, i64>(1) as u64))
}
