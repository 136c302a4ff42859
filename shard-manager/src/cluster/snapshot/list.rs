//! A fan-out list with every shard read at one cut ([`Cluster::fan_out_at_cut`]): each
//! page merged as [`Cluster::fan_out`] merges, its pages after the first at the same
//! cut ([`super::pages`]).

use std::collections::BTreeMap;

use futures_util::future::join_all;

use super::cut::Cut;
use super::error::SnapshotError;
use super::pages::Pages;
use super::session::Session;
use crate::cluster::Cluster;
use crate::routing::ShardId;
use crate::store::{Cursor, ListQuery, Record, TableName};

/// A fan-out's page at a cut.
#[derive(Debug)]
pub struct CutPage {
    pub records: Vec<(ShardId, Record)>,
    /// The next page's cursor (a [`PageCursor`], encoded).
    pub next: Option<String>,
    pub shards: Vec<ShardId>,
    pub cut: Cut,
}

impl Cluster {
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
    Ok(crate::cluster::merge::merge(
        ok,
        query.limit as usize,
        query.max_bytes,
    ))
}
