//! A query across shards at one cut: each page's statements are the ones a query at
//! `eventual` or `strong` runs ([`ShardQuery`]), run in the cut's sessions on the
//! primaries, and the shards' pages are merged as theirs are ([`gather`]). The pages
//! after the first are read as a list's are ([`Cluster::page_at_cut`]): their cursor
//! carries the cut (the shards' exported snapshots, until when they are held) and the
//! position every shard resumes after (the query's own cursor), with the query's
//! identity, so a cursor sent with another table, filter or sort is refused. `count`
//! counts at the cut (every page's `total` is the same), `explain` plans in it.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::future::join_all;

use super::cut::Cut;
use super::error::SnapshotError;
use super::pages::Pages;
use super::session::Session;
use crate::cluster::query::{gather, QueryAnswer, ShardQuery};
use crate::cluster::Cluster;
use crate::routing::{Role, ShardId};
use crate::store::query::{Query, QueryCursor};
use crate::store::TableName;

/// A query's page at a cut.
#[derive(Debug)]
pub struct CutQuery {
    /// The page, as at another consistency (each shard answered by its primary); its
    /// own `next` is None: the page's cursor is [`CutQuery::next`].
    pub answer: QueryAnswer,
    /// The next page's cursor (a `PageCursor`, encoded); None on the last page.
    pub next: Option<String>,
    pub cut: Cut,
}

impl Cluster {
    /// One page of `query` over `table` with every shard that serves keys read at one
    /// cut: a new cut without `page`, else the cut `page` (the `next` of this query's
    /// previous page) names. Never partial. `holder`, the caller's API key, may hold its
    /// share of the gateway's cuts (`super::holds`).
    pub async fn query_at_cut(
        &self,
        table: &TableName,
        query: &Query,
        page: Option<&str>,
        holder: Option<&str>,
    ) -> Result<CutQuery, SnapshotError> {
        let identity = query.identity(table.as_str());
        let pages = Pages::Query(&identity);
        let read = async |sessions: &mut BTreeMap<ShardId, Session>, after: Option<&str>| {
            let after = after
                .map(|text| QueryCursor::decode(text, query.sort.len()))
                .transpose()
                .map_err(|_| SnapshotError::BadCursor { what: pages.what() })?;
            let query = Query {
                after: after.or_else(|| query.after.clone()),
                ..query.clone()
            };
            let statements = Arc::new(ShardQuery::new(table, &query, sessions.len()));
            let answers = join_all(sessions.iter_mut().map(|(id, session)| {
                let statements = statements.clone();
                async move { (*id, session.query(statements).await) }
            }))
            .await;
            let mut ok = Vec::with_capacity(answers.len());
            for (id, answer) in answers {
                ok.push((id, Role::Primary, answer.map_err(SnapshotError::Shard)?));
            }
            let mut answer = gather(&query, ok);
            let next = answer.next.take().map(|c| c.encode());
            Ok((answer, next))
        };
        let page = self.page_at_cut(pages, page, holder, read).await?;
        Ok(CutQuery {
            answer: page.value,
            next: page.next,
            cut: page.cut,
        })
    }
}
