//! `live`: `GET /api/health/live`, a route that touches no database. It measures the
//! HTTP ceiling of the gateway and of goose itself (compare with `wrk` on the same
//! route to see when the load tool, not the gateway, is the limit).

use goose::prelude::{GooseUser, TransactionResult};

use crate::http::{send, Call};
use crate::workload::Workload;

pub async fn live(user: &mut GooseUser, _workload: &Workload) -> TransactionResult {
    send(user, Call::get("live", "/api/health/live")).await?;
    Ok(())
}
