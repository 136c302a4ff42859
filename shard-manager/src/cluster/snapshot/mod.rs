//! Reads across shards at one cut: no transaction on several shards is half visible.
//!
//! A transaction on several shards is visible on a shard once its part there is
//! committed (`COMMIT PREPARED`), which follows its decision in the coordinator log.
//! A cut is opened so:
//! 1. a session per shard checks a connection out of the shard's primary ([`session`]);
//! 2. the fence is taken ([`fence`]): no decision is written while it is held;
//! 3. each session, in one round trip, lists our prepared parts on its shard and then
//!    opens `REPEATABLE READ READ ONLY` (the snapshot);
//! 4. of the transactions those lists name, the log says which are decided `commit`:
//!    their parts are still committing. A shard that listed one has its snapshot taken
//!    again, every millisecond, until it lists none. Past [`COMMIT_WAIT`] (a coordinator
//!    that died between its commits, or is that slow) the gateway finishes the part by
//!    the log itself, as the recovery would (`COMMIT PREPARED`: the decision is commit
//!    and cannot change), and takes the snapshot again. A `COMMIT PREPARED` refused
//!    (another session is committing that part: PostgreSQL answers that it is busy) is
//!    looked at again a millisecond later; past [`FENCE_WAIT`] the read fails (503,
//!    naming the shard) and the fence is lifted;
//! 5. the fence is released, then every read runs in the sessions' snapshots.
//!
//! Why this is a cut: a transaction decided `commit` before the fence has every part
//! committed before the snapshots (step 4); one decided after it commits its parts
//! after its decision, so after the fence, so after every snapshot; one never decided
//! `commit` is visible nowhere. What it does not order: commits on one shard alone
//! (single-shard writes, never held back), which PostgreSQL gives no common order.
//!
//! ## Layout
//! - this file: [`Cut`], [`SnapshotError`], the protocol above and the reads at a cut.
//! - [`fence`]: the fence's interface; [`session`]: one shard's held transaction.

pub mod fence;
pub mod session;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use self::fence::{CutFence, HeldFence};
use self::session::{Opened, Session};
use super::Cluster;
use crate::cluster::txn::gid;
use crate::error::ClusterError;
use crate::routing::{Role, RoutedKey, ShardId};
use crate::store::{Cursor, ListQuery, Record, RecordId, TableName};
use crate::wire::read::PointRead;
use crate::wire::write::txn as wire_txn;

/// How long a snapshot waits for a decided transaction's live coordinator to commit
/// its parts before the gateway finishes them by the log itself.
pub const COMMIT_WAIT: Duration = Duration::from_millis(100);
/// The longest the fence is held waiting for decided parts to commit: past it the read
/// fails rather than hold back every decision longer.
pub const FENCE_WAIT: Duration = Duration::from_secs(1);
/// Between two looks at a shard whose parts are still committing.
const RETAKE_EVERY: Duration = Duration::from_millis(1);
/// The longest a cut's transactions stay open (the reads at it run within this).
pub const HOLD: Duration = Duration::from_secs(5);

/// The cut a read was served at: its id, and each shard's snapshot.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Cut {
    /// A name for this cut (random; names it in logs and answers).
    pub id: String,
    /// How long decisions were held back to open it, in microseconds.
    pub fence_us: u64,
    /// Parts the gateway finished by the log while opening it.
    pub finished: usize,
    pub shards: Vec<ShardCut>,
}

/// One shard's snapshot.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ShardCut {
    pub shard: u32,
    /// `pg_current_snapshot()` on the primary: `xmin:xmax:xip,...`.
    pub snapshot: String,
    /// The primary's WAL position when the snapshot was taken.
    pub lsn: String,
}

/// Why a read at a cut could not be served.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// A shard needed did not take part (down, saturated, timed out).
    #[error("a snapshot needs every shard it reads: {0}")]
    Shard(ClusterError),
    /// No fence: the gateway has no metadata database, or it failed.
    #[error("a snapshot read needs the cluster fence in the metadata database, which is unavailable ({reason})")]
    FenceUnavailable { reason: String },
}

impl SnapshotError {
    /// The shard a problem names (none for the fence).
    pub fn shard(&self) -> Option<ShardId> {
        match self {
            Self::Shard(e) => Some(e.shard()),
            Self::FenceUnavailable { .. } => None,
        }
    }
}

/// One read of [`Cluster::read_many_at_cut`].
#[derive(Debug, Clone)]
pub struct CutRead {
    pub table: TableName,
    pub key: RoutedKey,
    pub id: RecordId,
}

/// A fan-out's page at a cut.
#[derive(Debug)]
pub struct CutPage {
    pub records: Vec<(ShardId, Record)>,
    pub next: Option<Cursor>,
    pub shards: Vec<ShardId>,
    pub cut: Cut,
}

/// Sessions of an open cut, by shard.
struct OpenCut {
    sessions: BTreeMap<ShardId, Session>,
    cut: Cut,
}

impl Cluster {
    /// Gives snapshot reads their fence. Once; later calls do nothing.
    pub fn set_cut_fence(&self, fence: Arc<dyn CutFence>) {
        let _ = self.cut_fence.set(fence);
    }

    /// A fan-out list (see [`Cluster::fan_out`]) with every shard read at one cut.
    /// Every shard that serves keys must answer: a snapshot is never partial.
    pub async fn fan_out_at_cut(
        &self,
        table: &TableName,
        query: &ListQuery,
    ) -> Result<CutPage, SnapshotError> {
        let ids: Vec<ShardId> = {
            let router = self.router();
            self.shards()
                .iter()
                .filter(|s| router.serves_keys(s.id))
                .map(|s| s.id)
                .collect()
        };
        let mut open = self.open_cut(&ids).await?;
        let part = ListQuery {
            max_bytes: query.max_bytes / ids.len().max(1),
            ..query.clone()
        };
        let pages = join_all(open.sessions.iter_mut().map(|(id, session)| {
            let part = &part;
            async move { (*id, session.list(table.as_str(), part).await) }
        }))
        .await;
        let mut ok = Vec::with_capacity(pages.len());
        for (id, page) in pages {
            ok.push((id, page.map_err(SnapshotError::Shard)?));
        }
        let (records, next) = super::merge::merge(ok, query.limit as usize, query.max_bytes);
        Ok(CutPage {
            records,
            next,
            shards: ids,
            cut: open.cut,
        })
    }

    /// Point reads on their shards, all at one cut; answers in request order, each
    /// with its shard (None: no such record at the cut).
    pub async fn read_many_at_cut(
        &self,
        reads: &[CutRead],
    ) -> Result<(Vec<(ShardId, Option<Record>)>, Cut), SnapshotError> {
        let mut by_shard: BTreeMap<ShardId, Vec<usize>> = BTreeMap::new();
        for (i, read) in reads.iter().enumerate() {
            by_shard.entry(read.key.shard()).or_default().push(i);
        }
        let ids: Vec<ShardId> = by_shard.keys().copied().collect();
        let mut open = self.open_cut(&ids).await?;
        let answers = join_all(open.sessions.iter_mut().map(|(id, session)| {
            let indexes = by_shard.get(id).cloned().unwrap_or_default();
            let asks: Vec<PointRead> = indexes
                .iter()
                .map(|i| {
                    let r = &reads[*i];
                    PointRead {
                        table: r.table.as_str().to_owned(),
                        key: r.key.as_str().to_owned(),
                        slot: r.key.slot().0 as i32,
                        id: r.id.as_str().to_owned(),
                    }
                })
                .collect();
            async move { (*id, indexes, session.find(asks).await) }
        }))
        .await;
        let mut out: Vec<(ShardId, Option<Record>)> =
            reads.iter().map(|r| (r.key.shard(), None)).collect();
        for (_, indexes, found) in answers {
            let found = found.map_err(SnapshotError::Shard)?;
            for (i, record) in indexes.into_iter().zip(found) {
                out[i].1 = record;
            }
        }
        Ok((out, open.cut))
    }

    /// Steps 1 to 5 of the module doc, for the shards `ids`.
    async fn open_cut(&self, ids: &[ShardId]) -> Result<OpenCut, SnapshotError> {
        let Some(fence) = self.cut_fence.get() else {
            return Err(SnapshotError::FenceUnavailable {
                reason: "this gateway has no metadata database".into(),
            });
        };
        let mut sessions = BTreeMap::new();
        for id in ids {
            let shard = self.shard(*id).map_err(SnapshotError::Shard)?;
            shard.ready().map_err(SnapshotError::Shard)?;
            sessions.insert(*id, Session::start(shard.primary.clone(), HOLD));
        }
        let held = fence
            .hold()
            .await
            .map_err(|reason| SnapshotError::FenceUnavailable { reason })?;
        let (held, opened) = self.open_under_fence(held, &mut sessions).await?;
        let fence_time = held
            .release()
            .await
            .map_err(|reason| SnapshotError::FenceUnavailable { reason })?;
        let (opened, finished) = opened;
        let cut = Cut {
            id: gid::new_txid(),
            fence_us: fence_time.as_micros() as u64,
            finished,
            shards: opened
                .into_iter()
                .map(|(id, o)| ShardCut {
                    shard: id.0,
                    snapshot: o.snapshot,
                    lsn: o.lsn,
                })
                .collect(),
        };
        Ok(OpenCut { sessions, cut })
    }

    /// Steps 3 and 4 with the fence held; on failure the fence is dropped (lifted).
    #[allow(clippy::type_complexity)]
    async fn open_under_fence(
        &self,
        mut held: Box<dyn HeldFence>,
        sessions: &mut BTreeMap<ShardId, Session>,
    ) -> Result<(Box<dyn HeldFence>, (BTreeMap<ShardId, Opened>, usize)), SnapshotError> {
        let started = Instant::now();
        let mut opened: BTreeMap<ShardId, Opened> = BTreeMap::new();
        let mut pending: Vec<ShardId> = sessions.keys().copied().collect();
        // The transactions decided `commit`, learnt once: no decision is written while
        // the fence is held, and every part of one decided before it was prepared
        // before it, so the first lists name every part still committing.
        let mut committed: Option<HashSet<String>> = None;
        let mut finished = 0;
        loop {
            let round = join_all(
                sessions
                    .iter_mut()
                    .filter(|(id, _)| pending.contains(id))
                    .map(|(id, session)| async move { (*id, session.open(false).await) }),
            )
            .await;
            for (id, result) in round {
                opened.insert(id, result.map_err(SnapshotError::Shard)?);
            }
            if committed.is_none() {
                let txids: Vec<String> = opened
                    .values()
                    .flat_map(|o| o.prepared.iter())
                    .filter_map(|g| gid::parse(g).map(|(txid, _)| txid))
                    .collect::<HashSet<_>>()
                    .into_iter()
                    .collect();
                committed = Some(match txids.is_empty() {
                    true => HashSet::new(),
                    false => held
                        .committed(&txids)
                        .await
                        .map_err(|reason| SnapshotError::FenceUnavailable { reason })?,
                });
            }
            let decided = committed.as_ref().map_or(0, |c| c.len());
            let still: Vec<(ShardId, String)> = opened
                .iter()
                .flat_map(|(id, o)| o.prepared.iter().map(move |g| (*id, g)))
                .filter(|(_, g)| {
                    decided > 0
                        && gid::parse(g).is_some_and(|(txid, _)| {
                            committed.as_ref().is_some_and(|c| c.contains(&txid))
                        })
                })
                .map(|(id, g)| (id, g.clone()))
                .collect();
            if still.is_empty() {
                return Ok((held, (opened, finished)));
            }
            pending = still.iter().map(|(id, _)| *id).collect();
            pending.dedup();
            if started.elapsed() >= FENCE_WAIT {
                let (shard, name) = &still[0];
                return Err(SnapshotError::Shard(ClusterError::Unavailable {
                    shard: *shard,
                    role: Role::Primary,
                    server: sessions.get(shard).map(|s| s.server.clone()).unwrap_or_default(),
                    reason: format!(
                        "the committed part {name} was still committing after {} ms; the snapshot was not taken",
                        FENCE_WAIT.as_millis()
                    ),
                    maybe_committed: false,
                }));
            }
            if started.elapsed() >= COMMIT_WAIT {
                finished += self.finish_by_the_log(&still).await;
            }
            tokio::time::sleep(RETAKE_EVERY).await;
        }
    }

    /// `COMMIT PREPARED` of parts whose decision is commit (as the recovery does);
    /// how many this call committed. A part it could not commit (another session is
    /// committing it, or the shard failed) is left to the next look.
    async fn finish_by_the_log(&self, parts: &[(ShardId, String)]) -> usize {
        let Ok(after) = wire_txn::after_commit_text() else {
            return 0;
        };
        let done = join_all(parts.iter().map(|(id, name)| async move {
            let shard = self.shard(*id)?;
            tracing::info!(shard = %id, gid = %name, "snapshot: finishing a committed part by the log");
            shard
                .primary
                .run_write(async |conn| wire_txn::commit_prepared(conn, name, after).await)
                .await
                .map_err(|f| f.into_error())
        }))
        .await;
        let mut count = 0;
        for (d, (shard, name)) in done.into_iter().zip(parts) {
            match d {
                Ok(Some(_)) => count += 1,
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(%shard, gid = %name, error = %e, "snapshot: committed part not finished yet; looking again")
                }
            }
        }
        count
    }
}
