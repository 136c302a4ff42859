//! Reads across shards at one cut: no transaction on several shards is half visible.
//!
//! A transaction on several shards is visible on a shard once its part there is
//! committed (`COMMIT PREPARED`), which follows its decision in the coordinator log.
//! A cut is opened so:
//! 1. a session per shard checks a connection out of the shard's primary ([`session`]);
//! 2. the fence is taken ([`fence`]): no decision is written while it is held;
//! 3. each session, in one round trip, lists our prepared parts on its shard (with
//!    their transaction ids) and then opens `REPEATABLE READ READ ONLY` and reads the
//!    snapshot back (`pg_current_snapshot()`);
//! 4. of the transactions those lists name, the log says which are decided `commit`
//!    (and on which shards): only their parts may still be committing. On each shard of
//!    the cut, such a part is visible iff it was not listed (it had committed) or its
//!    transaction id is visible in the shard's snapshot ([`visibility`]). A transaction
//!    visible on one shard of the cut and not on another is torn ([`torn`]); if none
//!    is, the cut stands as taken. Else the shards where a torn one is not yet visible
//!    have their snapshot taken again, every millisecond, until none is torn. Past
//!    [`COMMIT_WAIT`] (a coordinator that died between its commits, or is that slow)
//!    the gateway finishes the part by the log itself, as the recovery would (`COMMIT
//!    PREPARED`: the decision is commit and cannot change), and takes the snapshot
//!    again. A `COMMIT PREPARED` refused (another session is committing that part:
//!    PostgreSQL answers that it is busy) is looked at again a millisecond later; past
//!    [`FENCE_WAIT`] the read fails (503, naming the shard) and the fence is lifted;
//! 5. the fence is released, then every read runs in the sessions' snapshots.
//!
//! A list or a query longer than a page keeps its cut ([`Cluster::page_at_cut`]): the
//! first page's sessions export their snapshots and are kept for [`HOLD`] from the
//! start (at most [`held_limit`] cuts per gateway, each a pooled connection per shard);
//! the `next` cursor names the exports, and the next page, through any gateway, imports
//! them (`SET TRANSACTION SNAPSHOT`) and reads the same cut without the fence. Past the
//! bound the exports are gone and the page is refused ([`SnapshotError::Expired`]),
//! never read at another cut.
//!
//! Why this is a cut: no decision is written while the fence is held, so the
//! transactions decided `commit` before it are a fixed set, and every part of each was
//! prepared before its decision, so before the lists. Each of them is visible on every
//! shard of the cut or on none (step 4): on none, it commits after the cut. One decided
//! after the fence commits its parts after its decision, so after the fence, so after
//! every snapshot; one never decided `commit` is visible nowhere. What it does not
//! order: commits on one shard alone (single-shard writes, never held back), which
//! PostgreSQL gives no common order.
//!
//! ## Layout
//! - this file: [`Cut`], [`SnapshotError`], the protocol above, a list's pages and
//!   point reads at a cut, and how any page after the first keeps its cut.
//! - [`query`]: a query's pages at a cut (its statements and merge are the ones
//!   `cluster::query` runs at other consistencies).
//! - [`fence`]: the fence's interface; [`session`]: one shard's held transaction;
//!   [`page`]: the cursor of a list's or a query's next page at its cut.
//! - [`visibility`]: whether a transaction id is visible in a snapshot; [`torn`]:
//!   whether a cut's snapshots tear a transaction decided `commit`.
//! - [`holds`]: the cuts kept for next pages, and each caller's share of them.

pub mod fence;
pub mod holds;
pub mod page;
pub mod query;
pub mod session;
pub mod torn;
pub mod visibility;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use tracing::Instrument;

use self::fence::{CutFence, HeldFence};
pub use self::page::PageCursor;
pub use self::query::CutQuery;
use self::session::{Opened, Session};
use super::Cluster;
use crate::cluster::txn::gid;
use crate::error::ClusterError;
use crate::routing::{Role, RoutedKey, ShardId};
use crate::spans;
use crate::store::answer_budget::WAVE;
use crate::store::{
    record_bytes, AnswerBudget, Cursor, ListQuery, OverBudget, Record, RecordId, TableName,
};
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
/// The longest a cut's transactions stay open: the reads of a request, and the pages of
/// a list after its first, run within this.
pub const HOLD: Duration = Duration::from_secs(5);
/// The most cuts one gateway keeps for lists' next pages at once: a quarter of a
/// server's pool (`database.pool_max_size`), at least one, since each holds one of
/// the pool's connections on every shard it reads.
pub fn held_limit(pool_max_size: usize) -> usize {
    (pool_max_size / 4).max(1)
}

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
    /// A next page's cut is no longer held (`what`: a list or a query).
    #[error("this {what}'s snapshot expired: its pages can be read for {held_ms} ms after its first page (at most {limit} such snapshots held per gateway); start the {what} again without a cursor")]
    Expired {
        what: &'static str,
        held_ms: u64,
        limit: usize,
    },
    /// The gateway holds as many cuts for next pages as it may.
    #[error("this gateway already holds {limit} snapshots for next pages of lists and queries, its limit; retry shortly, or ask a larger `limit` so the {what} fits one page")]
    HoldsFull { what: &'static str, limit: usize },
    /// The caller holds its share of the gateway's cuts ([`holds::per_caller`]).
    #[error("the API key {caller:?} already holds {holds} of this gateway's {limit} snapshots for next pages, its share; read their pages to their end (or let them expire, 5 s) first, or ask a larger `limit` so the {what} fits one page")]
    CallerHoldsFull {
        what: &'static str,
        caller: String,
        holds: usize,
        limit: usize,
    },
    /// A cursor that is not a snapshot list's (or query's, as `what` says).
    #[error("the cursor is not one a snapshot {what} gave; pass back the `next` of its previous page unchanged")]
    BadCursor { what: &'static str },
    /// A snapshot query's cursor sent with another query.
    #[error("the cursor is a snapshot query's for another table, filter or sort; send it with the query that gave it (only `limit`, `fields`, `count` and `explain` may change), or start again without a cursor")]
    OtherQuery,
    /// The records found would pass the answer's read budget.
    #[error(transparent)]
    OverBudget(#[from] OverBudget),
}

impl SnapshotError {
    /// The shard a problem names (none for the fence).
    pub fn shard(&self) -> Option<ShardId> {
        match self {
            Self::Shard(e) => Some(e.shard()),
            _ => None,
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

/// Whose pages a cursor at a cut reads: a list's, or a query's (by its identity,
/// `Query::identity`).
#[derive(Debug, Clone, Copy)]
pub(super) enum Pages<'a> {
    List,
    Query(&'a str),
}

impl Pages<'_> {
    /// As problems name it.
    fn what(self) -> &'static str {
        match self {
            Self::List => "list",
            Self::Query(_) => "query",
        }
    }

    /// What a cursor of these pages carries in its `query`.
    fn identity(self) -> Option<String> {
        match self {
            Self::List => None,
            Self::Query(id) => Some(id.to_owned()),
        }
    }
}

/// A page read at a cut, by [`Cluster::page_at_cut`]: what it read, the next page's
/// cursor (a [`PageCursor`], encoded), the shards read and the cut.
pub(super) struct AtCut<T> {
    pub value: T,
    pub next: Option<String>,
    pub shards: Vec<ShardId>,
    pub cut: Cut,
}

/// A fan-out's page at a cut.
#[derive(Debug)]
pub struct CutPage {
    pub records: Vec<(ShardId, Record)>,
    /// The next page's cursor (a [`PageCursor`], encoded).
    pub next: Option<String>,
    pub shards: Vec<ShardId>,
    pub cut: Cut,
}

/// Sessions of an open cut, by shard.
struct OpenCut {
    sessions: BTreeMap<ShardId, Session>,
    cut: Cut,
    /// When the sessions' bound passes (unix ms).
    until_ms: i64,
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
    fn read_done(&mut self, read: Duration) {
        self.phases.read = read;
        self.phases.total += read;
        self.phases.log(&self.cut.id, self.sessions.len());
    }
}

impl Cluster {
    /// How many cuts this gateway keeps for next pages at once ([`held_limit`]).
    fn held_limit(&self) -> usize {
        self.held_cuts.limit()
    }

    /// Gives snapshot reads their fence. Once; later calls do nothing.
    pub fn set_cut_fence(&self, fence: Arc<dyn CutFence>) {
        let _ = self.cut_fence.set(fence);
    }

    /// A fan-out list (see [`Cluster::fan_out`]) with every shard read at one cut:
    /// a new cut without `page`, else the cut `page` (a [`PageCursor`]) names. Every
    /// shard that serves keys must answer: a snapshot is never partial. `holder`, the
    /// caller's API key, may hold its share of the gateway's cuts ([`holds`]).
    pub async fn fan_out_at_cut(
        &self,
        table: &TableName,
        query: &ListQuery,
        page: Option<&str>,
        holder: Option<&str>,
    ) -> Result<CutPage, SnapshotError> {
        let read = async |sessions: &mut BTreeMap<ShardId, Session>, after: Option<&str>| {
            let query = match after {
                None => query.clone(),
                Some(text) => ListQuery {
                    after: Some(Cursor::decode(text).map_err(|_| SnapshotError::BadCursor {
                        what: Pages::List.what(),
                    })?),
                    ..query.clone()
                },
            };
            let (records, next) = list_in(sessions, table, &query).await?;
            Ok((records, next.map(|c| c.encode())))
        };
        let page = self.page_at_cut(Pages::List, page, holder, read).await?;
        Ok(CutPage {
            records: page.value,
            next: page.next,
            shards: page.shards,
            cut: page.cut,
        })
    }

    /// One page of `pages` read at one cut, on every shard that serves keys: a new
    /// cut without `page`, else the cut `page` (a [`PageCursor`] of the same pages)
    /// names. `read` reads the page in the cut's sessions from where it starts (the
    /// position the cursor carries; None on the first page) and answers where the
    /// next one starts (None: the last). A first page with more after it keeps its
    /// cut for them (exported, held for [`HOLD`]); a later page imports it.
    pub(super) async fn page_at_cut<T>(
        &self,
        pages: Pages<'_>,
        page: Option<&str>,
        holder: Option<&str>,
        read: impl AsyncFnOnce(
            &mut BTreeMap<ShardId, Session>,
            Option<&str>,
        ) -> Result<(T, Option<String>), SnapshotError>,
    ) -> Result<AtCut<T>, SnapshotError> {
        let Some(text) = page else {
            return self.first_page(pages, holder, read).await;
        };
        let bad = || SnapshotError::BadCursor { what: pages.what() };
        let cursor = PageCursor::decode(text).ok_or_else(bad)?;
        match (cursor.query.as_deref(), pages) {
            (None, Pages::List) => {}
            (Some(given), Pages::Query(asked)) if given == asked => {}
            (Some(_), Pages::Query(_)) => return Err(SnapshotError::OtherQuery),
            _ => return Err(bad()),
        }
        self.later_page(pages, cursor, read).await
    }

    async fn first_page<T>(
        &self,
        pages: Pages<'_>,
        holder: Option<&str>,
        read: impl AsyncFnOnce(
            &mut BTreeMap<ShardId, Session>,
            Option<&str>,
        ) -> Result<(T, Option<String>), SnapshotError>,
    ) -> Result<AtCut<T>, SnapshotError> {
        let ids: Vec<ShardId> = {
            let router = self.router();
            self.shards()
                .iter()
                .filter(|s| router.serves_keys(s.id))
                .map(|s| s.id)
                .collect()
        };
        let mut open = self.open_cut(&ids).await?;
        let reading = Instant::now();
        let (value, next) = read(&mut open.sessions, None).await?;
        open.read_done(reading.elapsed());
        let Some(after) = next else {
            return Ok(AtCut {
                value,
                next: None,
                shards: ids,
                cut: open.cut,
            });
        };
        // More pages: the cut is kept for them, within the gateway's bound and the
        // caller's share of it.
        let permit = self
            .held_cuts
            .take(holder)
            .map_err(|refused| match refused {
                holds::Refused::Gateway => SnapshotError::HoldsFull {
                    what: pages.what(),
                    limit: self.held_limit(),
                },
                holds::Refused::Caller { holds } => SnapshotError::CallerHoldsFull {
                    what: pages.what(),
                    caller: holder.unwrap_or_default().to_owned(),
                    holds,
                    limit: self.held_limit(),
                },
            })?;
        let permit = Arc::new(permit);
        let mut exports = Vec::with_capacity(open.sessions.len());
        for (id, session) in open.sessions.iter_mut() {
            exports.push((id.0, session.export().await.map_err(SnapshotError::Shard)?));
        }
        for (_, session) in std::mem::take(&mut open.sessions) {
            session.keep(permit.clone()).await;
        }
        let cursor = PageCursor {
            after,
            cut: open.cut.id.clone(),
            until_ms: open.until_ms,
            exports,
            query: pages.identity(),
        };
        Ok(AtCut {
            value,
            next: Some(cursor.encode()),
            shards: ids,
            cut: open.cut,
        })
    }

    /// A page after the first, at the cut `cursor` names (imported on each shard).
    async fn later_page<T>(
        &self,
        pages: Pages<'_>,
        cursor: PageCursor,
        read: impl AsyncFnOnce(
            &mut BTreeMap<ShardId, Session>,
            Option<&str>,
        ) -> Result<(T, Option<String>), SnapshotError>,
    ) -> Result<AtCut<T>, SnapshotError> {
        let expired = || SnapshotError::Expired {
            what: pages.what(),
            held_ms: HOLD.as_millis() as u64,
            limit: self.held_limit(),
        };
        if unix_ms() >= cursor.until_ms {
            return Err(expired());
        }
        let mut sessions = BTreeMap::new();
        for (id, _) in &cursor.exports {
            // A shard this gateway does not know: no cursor it gave names one.
            let shard = self
                .shard(ShardId(*id))
                .map_err(|_| SnapshotError::BadCursor { what: pages.what() })?;
            sessions.insert(ShardId(*id), Session::start(shard.primary.clone(), HOLD));
        }
        let exported: BTreeMap<ShardId, &str> = cursor
            .exports
            .iter()
            .map(|(id, name)| (ShardId(*id), name.as_str()))
            .collect();
        let imported = join_all(sessions.iter_mut().map(|(id, session)| {
            let name = exported.get(id).copied().unwrap_or_default();
            async move { (*id, session.import(name).await) }
        }))
        .await;
        let mut shards = Vec::with_capacity(imported.len());
        for (id, opened) in imported {
            match opened {
                Ok(o) => shards.push(ShardCut {
                    shard: id.0,
                    snapshot: o.snapshot,
                    lsn: o.lsn,
                }),
                // The export is gone: its session ended (its bound, its gateway).
                Err(e) if e.sqlstate() == Some(INVALID_SNAPSHOT) => return Err(expired()),
                Err(e) => return Err(SnapshotError::Shard(e)),
            }
        }
        let (value, next) = read(&mut sessions, Some(&cursor.after)).await?;
        let next = next.map(|after| {
            PageCursor {
                after,
                ..cursor.clone()
            }
            .encode()
        });
        Ok(AtCut {
            value,
            next,
            shards: sessions.keys().copied().collect(),
            cut: Cut {
                id: cursor.cut,
                fence_us: 0,
                finished: 0,
                shards,
            },
        })
    }

    /// Point reads on their shards, all at one cut; answers in request order, each
    /// with its shard (None: no such record at the cut). Each shard reads [`WAVE`]
    /// records at a time, counted into `budget` as they come: past it the read stops
    /// ([`SnapshotError::OverBudget`]) holding no more than the budget and a wave.
    pub async fn read_many_at_cut(
        &self,
        reads: &[CutRead],
        budget: &mut AnswerBudget,
    ) -> Result<(Vec<(ShardId, Option<Record>)>, Cut), SnapshotError> {
        let mut by_shard: BTreeMap<ShardId, Vec<usize>> = BTreeMap::new();
        for (i, read) in reads.iter().enumerate() {
            by_shard.entry(read.key.shard()).or_default().push(i);
        }
        let ids: Vec<ShardId> = by_shard.keys().copied().collect();
        let mut open = self.open_cut(&ids).await?;
        let reading = Instant::now();
        let mut out: Vec<(ShardId, Option<Record>)> =
            reads.iter().map(|r| (r.key.shard(), None)).collect();
        let rounds = by_shard.values().map(|v| v.len().div_ceil(WAVE)).max();
        for round in 0..rounds.unwrap_or(0) {
            let answers = join_all(open.sessions.iter_mut().map(|(id, session)| {
                let indexes: Vec<usize> = by_shard
                    .get(id)
                    .map(|all| all.iter().skip(round * WAVE).take(WAVE).copied().collect())
                    .unwrap_or_default();
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
                async move {
                    match asks.is_empty() {
                        true => (indexes, Ok(Vec::new())),
                        false => (indexes, session.find(asks).await),
                    }
                }
            }))
            .await;
            for (indexes, found) in answers {
                let found = found.map_err(SnapshotError::Shard)?;
                for (i, record) in indexes.into_iter().zip(found) {
                    if let Some(record) = &record {
                        budget.admit(i, record_bytes(record))?;
                    }
                    out[i].1 = record;
                }
            }
        }
        open.read_done(reading.elapsed());
        Ok((out, open.cut))
    }

    /// Steps 1 to 5 of the module doc, for the shards `ids`.
    async fn open_cut(&self, ids: &[ShardId]) -> Result<OpenCut, SnapshotError> {
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

/// PostgreSQL's answer to `SET TRANSACTION SNAPSHOT` of a snapshot no longer exported
/// (invalid_parameter_value).
const INVALID_SNAPSHOT: &str = "22023";
/// A next page's cursor expires this long before its cut's sessions end, so a page is
/// never begun on a cut about to go.
const CURSOR_MARGIN_MS: i64 = 250;

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// One page of a fan-out list in `sessions`' snapshots, merged as [`Cluster::fan_out`]
/// merges (each shard's part a share of the byte budget).
async fn list_in(
    sessions: &mut BTreeMap<ShardId, Session>,
    table: &TableName,
    query: &ListQuery,
) -> Result<(Vec<(ShardId, Record)>, Option<Cursor>), SnapshotError> {
    let part = ListQuery {
        max_bytes: query.max_bytes / sessions.len().max(1),
        ..query.clone()
    };
    let pages = join_all(sessions.iter_mut().map(|(id, session)| {
        let part = &part;
        async move { (*id, session.list(table.as_str(), part).await) }
    }))
    .await;
    let mut ok = Vec::with_capacity(pages.len());
    for (id, page) in pages {
        ok.push((id, page.map_err(SnapshotError::Shard)?));
    }
    Ok(super::merge::merge(
        ok,
        query.limit as usize,
        query.max_bytes,
    ))
}
