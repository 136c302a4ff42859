//! A cut, and opening one: steps 1 to 5 of the module doc ([`super`]), for the shards a
//! read needs. The sessions of a cut opened here are read in by [`super::pages`] and
//! [`super::read_many`]; how long each step took is logged at debug (`snapshot phases`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use tracing::Instrument;

use super::error::SnapshotError;
use super::fence::{CutFence, HeldFence};
use super::session::{Opened, Session};
use super::torn;
use crate::cluster::txn::gid;
use crate::cluster::Cluster;
use crate::error::ClusterError;
use crate::routing::{Role, ShardId};
use crate::spans;
use crate::wire::write::txn as wire_txn;

/// How long a snapshot waits for a decided transaction's live coordinator to commit
/// its parts before the gateway finishes them by the log itself.
pub const COMMIT_WAIT: Duration = Duration::from_millis(100);
/// The longest the fence is held waiting for decided parts to commit: past it the read
/// fails rather than hold back every decision longer.
pub const FENCE_WAIT: Duration = Duration::from_secs(1);
/// Between two looks at a shard whose parts are still committing.
const RETAKE_EVERY: Duration = Duration::from_millis(1);
/// The longest a cut's transactions stay open: the reads of a request, and the pages of
/// a list after its first, run within this.
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

/// Sessions of an open cut, by shard.
pub(super) struct OpenCut {
    pub(super) sessions: BTreeMap<ShardId, Session>,
    pub(super) cut: Cut,
    /// When the sessions' bound passes (unix ms).
    pub(super) until_ms: i64,
    /// How long each step took, logged once the reads are done.
    phases: Phases,
}

/// How long each step of a snapshot read took, logged at debug (`snapshot phases`)
/// once its reads are done: where a read's time goes.
#[derive(Debug, Default, Clone, Copy)]
struct Phases {
    /// From the read's start until the fence was held (the metadata database's round
    /// trip, and any wait for decisions being written or another reader's fence).
    take: Duration,
    /// The first round of lists and snapshots on every shard (the slowest shard's
    /// round trip, with its connection's checkout if that was not done yet).
    open: Duration,
    /// The coordinator log's answer for the transactions listed (zero if none was).
    log: Duration,
    /// Rounds after the first, for shards whose snapshot tore a transaction (their
    /// round trips, not the [`RETAKE_EVERY`] between them).
    retake: Duration,
    /// Lifting the fence.
    release: Duration,
    /// The reads in the snapshots.
    read: Duration,
    /// The whole read, from its start.
    total: Duration,
}

impl Phases {
    fn log(&self, cut: &str, shards: usize) {
        let us = |d: Duration| d.as_micros() as u64;
        tracing::debug!(
            cut,
            shards,
            take_us = us(self.take),
            open_us = us(self.open),
            log_us = us(self.log),
            retake_us = us(self.retake),
            release_us = us(self.release),
            read_us = us(self.read),
            total_us = us(self.total),
            "snapshot phases"
        );
    }
}

impl OpenCut {
    /// The reads took `read`: the phases are complete, and logged.
    pub(super) fn read_done(&mut self, read: Duration) {
        self.phases.read = read;
        self.phases.total += read;
        self.phases.log(&self.cut.id, self.sessions.len());
    }
}

/// A next page's cursor expires this long before its cut's sessions end, so a page is
/// never begun on a cut about to go.
const CURSOR_MARGIN_MS: i64 = 250;

/// Now, in unix milliseconds: what a cursor's bound is counted in.
pub(super) fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Cluster {
    /// Gives snapshot reads their fence. Once; later calls do nothing.
    pub fn set_cut_fence(&self, fence: Arc<dyn CutFence>) {
        let _ = self.cut_fence.set(fence);
    }
    /// Opens a cut on the shards `ids` and lets its sessions go at once: its snapshots,
    /// for a reader that reads by them on connections of its own (`crate::changes`).
    pub async fn take_cut(&self, ids: &[ShardId]) -> Result<Cut, SnapshotError> {
        let open = self.open_cut(ids).await?;
        Ok(open.cut.clone())
    }

    /// Steps 1 to 5 of the module doc, for the shards `ids`.
    pub(super) async fn open_cut(&self, ids: &[ShardId]) -> Result<OpenCut, SnapshotError> {
        let Some(fence) = self.cut_fence.get() else {
            return Err(SnapshotError::FenceUnavailable {
                reason: "this gateway has no metadata database".into(),
            });
        };
        let began = Instant::now();
        let until_ms = unix_ms() + HOLD.as_millis() as i64 - CURSOR_MARGIN_MS;
        let mut sessions = BTreeMap::new();
        for id in ids {
            let shard = self.shard(*id).map_err(SnapshotError::Shard)?;
            shard.ready().map_err(SnapshotError::Shard)?;
            sessions.insert(*id, Session::start(shard.primary.clone(), HOLD));
        }
        // Every connection held before the fence is: the fence never waits for a pool.
        let checked_out = join_all(sessions.values_mut().map(|s| s.ready())).await;
        for ready in checked_out {
            ready.map_err(SnapshotError::Shard)?;
        }
        let held = fence
            .hold()
            .instrument(spans::snapshot_fence("take snapshot fence"))
            .await
            .map_err(|reason| SnapshotError::FenceUnavailable { reason })?;
        let mut phases = Phases {
            take: began.elapsed(),
            ..Phases::default()
        };
        let (held, opened) = self
            .open_under_fence(held, &mut sessions, &mut phases)
            .await?;
        let releasing = Instant::now();
        let fence_time = held
            .release()
            .instrument(spans::snapshot_fence("release snapshot fence"))
            .await
            .map_err(|reason| SnapshotError::FenceUnavailable { reason })?;
        phases.release = releasing.elapsed();
        phases.total = began.elapsed();
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
        Ok(OpenCut {
            sessions,
            cut,
            until_ms,
            phases,
        })
    }

    /// Steps 3 and 4 with the fence held; on failure the fence is dropped (lifted).
    #[allow(clippy::type_complexity)]
    async fn open_under_fence(
        &self,
        mut held: Box<dyn HeldFence>,
        sessions: &mut BTreeMap<ShardId, Session>,
        phases: &mut Phases,
    ) -> Result<(Box<dyn HeldFence>, (BTreeMap<ShardId, Opened>, usize)), SnapshotError> {
        let started = Instant::now();
        let mut opened: BTreeMap<ShardId, Opened> = BTreeMap::new();
        let mut pending: Vec<ShardId> = sessions.keys().copied().collect();
        // The transactions decided `commit` (with their shards), learnt once: no
        // decision is written while the fence is held, and every part of one decided
        // before it was prepared before it, so the first lists name every part that
        // may still be committing.
        let mut committed: Option<HashMap<String, Vec<ShardId>>> = None;
        let mut finished = 0;
        loop {
            let round_began = Instant::now();
            let round = join_all(
                sessions
                    .iter_mut()
                    .filter(|(id, _)| pending.contains(id))
                    .map(|(id, session)| async move { (*id, session.open().await) }),
            )
            .await;
            for (id, result) in round {
                opened.insert(id, result.map_err(SnapshotError::Shard)?);
            }
            match committed {
                None => phases.open = round_began.elapsed(),
                Some(_) => phases.retake += round_began.elapsed(),
            }
            if committed.is_none() {
                let asking = Instant::now();
                let txids: Vec<String> = opened
                    .values()
                    .flat_map(|o| o.prepared.iter())
                    .filter_map(|p| gid::parse(&p.gid).map(|(txid, _)| txid))
                    .collect::<HashSet<_>>()
                    .into_iter()
                    .collect();
                committed = Some(match txids.is_empty() {
                    true => HashMap::new(),
                    false => held
                        .committed(&txids)
                        .await
                        .map_err(|reason| SnapshotError::FenceUnavailable { reason })?,
                });
                phases.log = asking.elapsed();
            }
            let decided = committed.as_ref().map_or(0, |c| c.len());
            let retake = match (decided, committed.as_ref()) {
                (0, _) | (_, None) => BTreeMap::new(),
                (_, Some(committed)) => {
                    let views: BTreeMap<ShardId, torn::ShardView<'_>> = opened
                        .iter()
                        .map(|(id, o)| {
                            (
                                *id,
                                torn::ShardView {
                                    prepared: &o.prepared,
                                    snapshot: &o.snapshot,
                                },
                            )
                        })
                        .collect();
                    torn::retake(&views, committed)
                }
            };
            // No transaction torn: the cut stands as it is.
            if retake.is_empty() {
                return Ok((held, (opened, finished)));
            }
            let still: Vec<(ShardId, String)> = retake
                .iter()
                .flat_map(|(id, gids)| gids.iter().map(move |g| (*id, g.clone())))
                .collect();
            pending = retake.keys().copied().collect();
            if let Some((shard, name)) = still.first().filter(|_| started.elapsed() >= FENCE_WAIT) {
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
        let done = join_all(parts.iter().map(|(id, name)| async move {
            let shard = self.shard(*id)?;
            tracing::info!(shard = %id, gid = %name, "snapshot: finishing a committed part by the log");
            shard
                .primary
                .run_write_as("COMMIT PREPARED", async |conn| wire_txn::commit_prepared(conn, name).await)
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
