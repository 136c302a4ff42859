//! `fan-out` (PENDING): `GET /api/read?table=users&limit=10` without `x-shard-key`.
//!
//! A read across every shard (scatter-gather, merged newest first) is not built yet:
//! today the gateway answers 400 because the shard key is missing, and goose counts
//! each of those as a failed request. The scenario is here so the request is already
//! measured, unchanged, the day the gateway serves it.

use goose::prelude::{GooseUser, TransactionResult};

use crate::http::{send, Call};
use crate::workload::Workload;

/// One keyless list read.
pub async fn fan_out(user: &mut GooseUser, _workload: &Workload) -> TransactionResult {
    send(
        user,
        Call::get("fan-out (pending)", "/api/read?table=users&limit=10"),
    )
    .await?;
    Ok(())
}
