//! `consistency=snapshot`: reads across shards at one cut (`shard_manager::cluster::
//! snapshot`), so no transaction on several shards is seen half committed. A fan-out
//! list at a cut is answered as any fan-out, with the cut it was read at (`snapshot`);
//! it is never partial: a shard that cannot take part fails the read (503, naming it).
//! Its `next` cursor reads the same cut, through any gateway, while the cut is held
//! (410 `snapshot-expired` after, naming the bound).

use actix_web::HttpResponse;
use serde::Serialize;
use shard_manager::cluster::snapshot::{Cut, SnapshotError};
use shard_manager::{ListQuery, TableName};
use utoipa::ToSchema;

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

/// The cut a snapshot read was served at.
#[derive(Debug, Serialize, ToSchema)]
pub struct CutBody {
    /// Names this cut (in the gateway's logs too).
    #[schema(example = "5f0c4a9be1d34b8c9a7e2f6d1c3b5a79")]
    pub id: String,
    /// How long transaction decisions were held back to open it, in microseconds.
    pub fence_us: u64,
    /// Parts of committed transactions the gateway finished by the log while opening
    /// it (their coordinator had died or was slow), usually 0.
    pub finished: usize,
    /// Each shard read, with its snapshot and its primary's WAL position then.
    pub shards: Vec<ShardCutBody>,
}

/// One shard's snapshot.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShardCutBody {
    pub shard: u32,
    /// PostgreSQL's `pg_current_snapshot()` on the shard's primary (`xmin:xmax:xip`).
    #[schema(example = "7751:7751:")]
    pub snapshot: String,
    #[schema(example = "0/3A1B2C8")]
    pub lsn: String,
}

impl From<Cut> for CutBody {
    fn from(cut: Cut) -> Self {
        Self {
            id: cut.id,
            fence_us: cut.fence_us,
            finished: cut.finished,
            shards: cut
                .shards
                .into_iter()
                .map(|s| ShardCutBody {
                    shard: s.shard,
                    snapshot: s.snapshot,
                    lsn: s.lsn,
                })
                .collect(),
        }
    }
}

impl From<SnapshotError> for ApiError {
    /// A shard that could not take part is answered as that shard's failure (503/504
    /// naming it); no fence is a 503 of its own.
    fn from(e: SnapshotError) -> Self {
        match e {
            SnapshotError::Shard(e) => ApiError::Cluster(e),
            SnapshotError::Expired { .. } => ApiError::SnapshotExpired(e.to_string()),
            SnapshotError::HoldsFull { .. } => ApiError::SnapshotsBusy(e.to_string()),
            SnapshotError::BadCursor => ApiError::BadQuery(e.to_string()),
            SnapshotError::FenceUnavailable { .. } => ApiError::SnapshotUnavailable(e.to_string()),
        }
    }
}

/// A fan-out list at one cut: a new one, or the one `cursor` (a previous page's
/// `next`) names.
pub async fn fan_out(
    state: &AppState,
    table: &TableName,
    query: ListQuery,
    cursor: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    let page = state
        .bounded(state.cluster.fan_out_at_cut(table, &query, cursor))
        .await?;
    let rows = page.records.len() as u64;
    let body = FanOutResponse {
        partial: false,
        count: page.records.len(),
        records: page
            .records
            .into_iter()
            .map(|(shard, r)| ShardRecord {
                shard: shard.0,
                record: r.into(),
            })
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
