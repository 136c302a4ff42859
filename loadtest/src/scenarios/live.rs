//! `live`: `GET /api/health/live`, a route that touches no database. It measures the
//! HTTP ceiling of the gateway and of goose itself (compare with `wrk` on the same
//! route to see when the load tool, not the gateway, is the limit).

use goose::prelude::{GooseUser, TransactionResult};

use crate::http::{send, Call};
use crate::workload::Workload;

pub async fn live(user: &mut GooseUser, workload: &Workload) -> TransactionResult {
    let call = Call::get("live", "/api/health/live");
    send(user, call.traced(&workload.traces)).await?;
    Ok(())
}
