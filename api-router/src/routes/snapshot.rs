//! `consistency=snapshot`: reads across shards at one cut (`shard_manager::cluster::
//! snapshot`), so no transaction on several shards is seen half committed. A fan-out
//! list at a cut is answered as any fan-out, with the cut it was read at (`snapshot`);
//! it is never partial: a shard that cannot take part fails the read (503, naming it).
//! Its `next` cursor reads the same cut, through any gateway, while the cut is held
//! (410 `snapshot-expired` after, naming the bound). A query at a cut (`routes::query`)
//! keeps its cut the same way.

use actix_web::HttpResponse;
use shard_manager::cluster::snapshot::SnapshotError;
use shard_manager::{ListQuery, TableName};

use crate::edge::observe::Outcome;
use crate::error::ApiError;
use crate::input::body::{FanOutResponse, ShardRecord, ShardSource};
use crate::state::AppState;

/// The consistency name that asks for a read at one cut.
pub const SNAPSHOT: &str = "snapshot";

/// Whether a `consistency` value asks for a snapshot (in any case).
pub fn asks_snapshot(raw: Option<&str>) -> bool {
    raw.is_some_and(|r| r.trim().eq_ignore_ascii_case(SNAPSHOT))
}

impl From<SnapshotError> for ApiError {
    /// A shard that could not take part is answered as that shard's failure (503/504
    /// naming it); no fence is a 503 of its own.
    fn from(e: SnapshotError) -> Self {
        match e {
            SnapshotError::Shard(e) => ApiError::Cluster(e),
            SnapshotError::Expired { .. } => ApiError::SnapshotExpired(e.to_string()),
            SnapshotError::HoldsFull { .. } => ApiError::SnapshotsBusy(e.to_string()),
            SnapshotError::CallerHoldsFull { .. } => ApiError::SnapshotsHeld(e.to_string()),
            SnapshotError::BadCursor { .. } | SnapshotError::OtherQuery => {
                ApiError::BadQuery(e.to_string())
            }
            SnapshotError::OverBudget(o) => ApiError::ReadBudget {
                max_bytes: o.max_bytes,
                index: o.index,
            },
            SnapshotError::FenceUnavailable { .. } => ApiError::SnapshotUnavailable(e.to_string()),
        }
    }
}

/// A fan-out list at one cut: a new one, or the one `cursor` (a previous page's
/// `next`) names.
/// `holder`: the caller's API key, which may hold its share of the gateway's cuts.
pub async fn fan_out(
    state: &AppState,
    table: &TableName,
    query: ListQuery,
    cursor: Option<&str>,
    holder: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    let page = state
        .bounded(state.cluster.fan_out_at_cut(table, &query, cursor, holder))
        .await?;
    let rows = page.records.len() as u64;
    let body = FanOutResponse {
        partial: false,
        count: page.records.len(),
        records: page
            .records
            .into_iter()
            .map(|(shard, r)| ShardRecord::new(shard, r.into()))
            .collect(),
        shards: page
            .shards
            .iter()
            .map(|shard| ShardSource {
                shard: shard.0,
                source: "primary".to_owned(),
            })
            .collect(),
        failed_shards: Vec::new(),
        next: page.next,
        snapshot: Some(page.cut.into()),
    };
    let mut res = HttpResponse::Ok().json(body);
    Outcome {
        rows_read: rows,
        ..Outcome::default()
    }
    .attach(&mut res);
    Ok(res)
}
