//! A query across every shard: each shard that serves keys answers its ordered page
//! (`limit + 1` rows after the cursor, within its share of the byte budget), and the
//! pages are merged as ordered streams, a k-way merge that holds no more than the
//! shards sent. The cursor of the next page is the last row's sort values and key:
//! every shard resumes exactly after it (a keyset predicate, never an offset), so a
//! record is neither repeated nor skipped, whichever shard it is on.
//!
//! Why the merged page is exact: a shard that sent all its rows hides none; one that
//! sent `limit + 1` hides only rows after its last, and at most `limit` rows are
//! taken; one that stopped early for its budget (`cut`) may hide rows right after its
//! last, so the merged page ends at the earliest such row. Any of these leaves a
//! cursor after the last row kept.
//!
//! A record is on one shard, except for a moment while its slot changes hands: the
//! target is told it owns the slot just before the source lets it go, and a page read
//! then finds the record on both. The two are the same row (writes to the slot wait
//! while it switches), so they meet in the merge, and it keeps one.
//!
//! A query is never partial: a shard that fails fails it (the error names the shard).

use futures_util::future::join_all;

use super::Cluster;
use crate::error::ClusterError;
use crate::routing::{Role, ShardId};
use crate::store::query::{compare_positions, CountMode, Query, QueryCursor, QueryRow};
use crate::store::query_statement::{self, QueryStatement};
use crate::store::{record_bytes, Budget, TableName};
use crate::wal::Consistency;
use crate::wire::query::QueryPage;
use crate::wire::{WireConn, WireError};

/// A query's page across the cluster.
#[derive(Debug, Default)]
pub struct QueryAnswer {
    /// In the query's order, each with its shard.
    pub rows: Vec<(ShardId, QueryRow)>,
    /// Where the next page starts; None on the last page.
    pub next: Option<QueryCursor>,
    /// With `count`: the records that match, every shard's summed.
    pub total: Option<u64>,
    /// The shards that answered, and which role served each.
    pub answered: Vec<(ShardId, Role)>,
    /// With `explain`: each shard's plan of its page (`EXPLAIN (FORMAT JSON)`, on the
    /// server that answered, with the page's parameters).
    pub plans: Vec<(ShardId, serde_json::Value)>,
}

/// What each shard runs for one page of a query: the page statement and, when asked,
/// the count and the plan. Built once a page, the same wherever it runs: on the server
/// a consistency picks ([`Cluster::query`]) or in a cut's session on the primary
/// (`snapshot::query`).
#[derive(Debug)]
pub struct ShardQuery {
    page: QueryStatement,
    counting: Option<(CountMode, QueryStatement)>,
    explain: Option<QueryStatement>,
    sort_fields: usize,
    /// Each shard's share of the page's byte budget.
    share: usize,
}

/// One shard's answer to a [`ShardQuery`].
#[derive(Debug, Default)]
pub struct ShardAnswer {
    pub page: QueryPage,
    pub total: Option<u64>,
    pub plan: Option<serde_json::Value>,
}

impl ShardQuery {
    /// The statements of `query`'s page over `table`, read from `shards` shards.
    pub fn new(table: &TableName, query: &Query, shards: usize) -> Self {
        let page = query_statement::page(table.as_str(), query);
        let counting = query.count.map(|mode| match mode {
            CountMode::Exact => (mode, query_statement::count(table.as_str(), query)),
            CountMode::Estimated => (mode, query_statement::estimate(table.as_str(), query)),
        });
        let explain = query.explain.then(|| query_statement::explain(&page));
        Self {
            page,
            counting,
            explain,
            sort_fields: query.sort.len(),
            share: query.max_bytes / shards.max(1),
        }
    }

    /// Runs the statements on `conn`, in one transaction or none: the page, then the
    /// count, then the plan.
    pub async fn run(&self, conn: &mut WireConn) -> Result<ShardAnswer, WireError> {
        use crate::wire::query::{query_count, query_estimate, query_page, query_plan};
        let page = query_page(conn, &self.page, self.sort_fields, self.share).await?;
        let total = match &self.counting {
            None => None,
            Some((CountMode::Exact, s)) => Some(query_count(conn, s).await?),
            Some((CountMode::Estimated, s)) => Some(query_estimate(conn, s).await?),
        };
        let plan = match &self.explain {
            None => None,
            Some(s) => Some(query_plan(conn, s).await?),
        };
        Ok(ShardAnswer { page, total, plan })
    }
}

impl Cluster {
    /// One page of `query` over `table`, at `consistency` (eventual or strong).
    pub async fn query(
        &self,
        table: &TableName,
        query: &Query,
        consistency: Consistency,
    ) -> Result<QueryAnswer, ClusterError> {
        let shards: Vec<_> = {
            let router = self.router();
            self.shards()
                .iter()
                .filter(|s| router.serves_keys(s.id))
                .cloned()
                .collect()
        };
        let statements = &ShardQuery::new(table, query, shards.len());
        let reads = shards.iter().map(|shard| async move {
            shard.ready()?;
            let served = shard
                .read(consistency, &self.settings.replication, async |conn| {
                    statements.run(conn).await
                })
                .await?;
            Ok::<_, ClusterError>((shard.id, served.role, served.value))
        });
        let mut answers = Vec::with_capacity(shards.len());
        for result in join_all(reads).await {
            answers.push(result?);
        }
        Ok(gather(query, answers))
    }
}

/// The page of every shard's answer: the rows merged ([`merge`]), the counts summed,
/// the plans in the shards' order.
pub fn gather(query: &Query, answers: Vec<(ShardId, Role, ShardAnswer)>) -> QueryAnswer {
    let mut answer = QueryAnswer::default();
    let mut pages = Vec::with_capacity(answers.len());
    for (shard, role, one) in answers {
        answer.answered.push((shard, role));
        if let Some(plan) = one.plan {
            answer.plans.push((shard, plan));
        }
        if let Some(n) = one.total {
            *answer.total.get_or_insert(0) += n;
        }
        pages.push((shard, one.page));
    }
    if query.count.is_some() && answer.total.is_none() {
        answer.total = Some(0);
    }
    (answer.rows, answer.next) = merge(query, pages);
    answer
}

/// The merged page of every shard's page and where the next one starts (see the
/// file's doc). A k-way merge: each step takes the least head of the shards' pages.
pub fn merge(
    query: &Query,
    pages: Vec<(ShardId, QueryPage)>,
) -> (Vec<(ShardId, QueryRow)>, Option<QueryCursor>) {
    let limit = query.limit as usize;
    let horizon = pages
        .iter()
        .filter(|(_, p)| p.cut)
        .filter_map(|(_, p)| p.rows.last())
        .min_by(|a, b| query.compare(a, b))
        .cloned();
    let mut more = horizon.is_some();
    let mut streams: Vec<(ShardId, std::iter::Peekable<std::vec::IntoIter<QueryRow>>)> = pages
        .into_iter()
        .map(|(shard, p)| (shard, p.rows.into_iter().peekable()))
        .collect();
    let mut budget = Budget::new(query.max_bytes);
    let mut rows = Vec::new();
    loop {
        let least = streams
            .iter_mut()
            .enumerate()
            .filter_map(|(i, (_, s))| s.peek().map(|r| (i, r)))
            .min_by(|(_, a), (_, b)| query.compare(a, b))
            .map(|(i, _)| i);
        let Some(i) = least else { break };
        if rows.len() == limit {
            more = true;
            break;
        }
        // The least head is taken unless it lies past the horizon, where a cut shard's
        // rows may still come between: those wait for the next page.
        let (shard, stream) = &mut streams[i];
        let beyond = |head: &QueryRow| {
            horizon
                .as_ref()
                .is_some_and(|h| query.compare(head, h).is_gt())
        };
        let Some(row) = stream.next_if(|head| !beyond(head)) else {
            break;
        };
        let again = rows.last().is_some_and(|(_, last): &(ShardId, QueryRow)| {
            compare_positions(&query.sort, &last.position(), &row.position()).is_eq()
        });
        if again {
            // The same record on the slot's source and its target, mid-switch.
            continue;
        }
        if !budget.admit(record_bytes(&row.record)) {
            more = true;
            break;
        }
        rows.push((*shard, row));
    }
    let next = more
        .then(|| rows.last().map(|(_, r)| QueryCursor::after(r)))
        .flatten();
    debug_assert!(rows.windows(2).all(|w| compare_positions(
        &query.sort,
        &w[0].1.position(),
        &w[1].1.position()
    )
    .is_lt()));
    (rows, next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::query::{Direction, FieldPath, SortField, SortValue};
    use crate::store::{RawJson, Record};
    use chrono::DateTime;
    use serde_json::json;

    fn row(key: &str, score: i64) -> QueryRow {
        let at = DateTime::from_timestamp_micros(0).unwrap();
        QueryRow {
            record: Record {
                table_name: "t".into(),
                shard_key: key.into(),
                id: key.into(),
                slot: 0,
                data: RawJson::from_value(&json!({"score": score})),
                version: 1,
                created_at: at,
                updated_at: at,
            },
            sort: vec![SortValue::of(Some(&json!(score)))],
        }
    }

    fn query(limit: i64) -> Query {
        let sort = vec![SortField {
            path: FieldPath::parse("score").unwrap(),
            direction: Direction::Desc,
        }];
        Query::new(vec![], sort, None, &json!(limit)).unwrap()
    }

    fn keys(rows: &[(ShardId, QueryRow)]) -> Vec<&str> {
        rows.iter()
            .map(|(_, r)| r.record.shard_key.as_str())
            .collect()
    }

    #[test]
    fn streams_merge_in_order_with_ties_broken_by_the_key() {
        let pages = vec![
            (
                ShardId(0),
                QueryPage {
                    rows: vec![row("b", 9), row("d", 5)],
                    cut: false,
                },
            ),
            (
                ShardId(1),
                QueryPage {
                    rows: vec![row("a", 9), row("c", 7), row("e", 1)],
                    cut: false,
                },
            ),
        ];
        let (rows, next) = merge(&query(10), pages);
        assert_eq!(keys(&rows), ["a", "b", "c", "d", "e"]);
        assert_eq!(next, None);
    }

    #[test]
    fn a_record_both_shards_show_while_its_slot_switches_is_kept_once() {
        let pages = vec![
            (
                ShardId(0),
                QueryPage {
                    rows: vec![row("a", 9), row("b", 8), row("c", 7)],
                    cut: false,
                },
            ),
            (
                ShardId(1),
                QueryPage {
                    rows: vec![row("b", 8), row("d", 6)],
                    cut: false,
                },
            ),
        ];
        let (rows, next) = merge(&query(3), pages);
        assert_eq!(keys(&rows), ["a", "b", "c"]);
        assert_eq!(next, Some(QueryCursor::after(&rows[2].1)));
    }

    #[test]
    fn the_limit_and_a_shard_cut_short_each_leave_a_cursor() {
        let pages = vec![
            (
                ShardId(0),
                QueryPage {
                    rows: vec![row("a", 9), row("b", 8), row("c", 7)],
                    cut: false,
                },
            ),
            (
                ShardId(1),
                QueryPage {
                    rows: vec![row("x", 1)],
                    cut: false,
                },
            ),
        ];
        let (rows, next) = merge(&query(2), pages);
        assert_eq!(keys(&rows), ["a", "b"]);
        assert_eq!(next, Some(QueryCursor::after(&rows[1].1)));
        // Shard 1 stopped at 8 for its budget: what follows it there is unknown.
        let pages = vec![
            (
                ShardId(0),
                QueryPage {
                    rows: vec![row("a", 9), row("c", 7)],
                    cut: false,
                },
            ),
            (
                ShardId(1),
                QueryPage {
                    rows: vec![row("b", 8)],
                    cut: true,
                },
            ),
        ];
        let (rows, next) = merge(&query(10), pages);
        assert_eq!(keys(&rows), ["a", "b"]);
        assert_eq!(next, Some(QueryCursor::after(&rows[1].1)));
    }
}
