//! One page of a list or a query at a cut ([`Cluster::page_at_cut`]): a first page
//! opens a new cut ([`super::cut`]) and, with more pages after it, exports its sessions'
//! snapshots and keeps them for [`HOLD`] ([`super::holds`]); a later page, through any
//! gateway, imports the snapshots its cursor ([`PageCursor`]) names and reads the same
//! cut without the fence, or is refused once they are gone.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use futures_util::future::join_all;

use super::cut::{unix_ms, Cut, ShardCut, HOLD};
use super::error::SnapshotError;
use super::holds;
use super::page::PageCursor;
use super::session::Session;
use crate::cluster::Cluster;
use crate::error::sqlstate::INVALID_PARAMETER_VALUE;
use crate::routing::ShardId;

/// Whose pages a cursor at a cut reads: a list's, or a query's (by its identity,
/// `Query::identity`).
#[derive(Debug, Clone, Copy)]
pub(super) enum Pages<'a> {
    List,
    Query(&'a str),
}

impl Pages<'_> {
    /// As problems name it.
    pub(super) fn what(self) -> &'static str {
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

impl Cluster {
    /// How many cuts this gateway keeps for next pages at once ([`held_limit`]).
    fn held_limit(&self) -> usize {
        self.held_cuts.limit()
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
                // The export is gone: its session ended (its bound, its gateway), and
                // `SET TRANSACTION SNAPSHOT` answers that the snapshot is not valid.
                Err(e) if e.sqlstate() == Some(INVALID_PARAMETER_VALUE) => return Err(expired()),
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
}
