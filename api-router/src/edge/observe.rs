//! The analytics middleware: times every request and records it with the shard,
//! the role that served it and, for errors, their class; a request for one key that
//! reached its shard also counts toward its slot's load (`routes::load`, what
//! `rebalance --by load` and the automatic balancer weigh). A read the cache answered
//! is a request, but no load: it cost its shard nothing.

use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse};
use analytics::load::{SlotHit, SlotLoad};
use analytics::recording::{ErrorClass, ErrorInfo, RequestSample, ServedBy};
use analytics::Analytics;
use shard_manager::{Role, ShardId};

use crate::error::ErrorNote;
use crate::server::traces::server_span::TraceIds;
use crate::state::AppState;

/// What a handler did, attached to its response for the middleware to record.
#[derive(Debug, Clone, Copy, Default)]
pub struct Outcome {
    pub shard: Option<u32>,
    pub served_by: Option<ServedBy>,
    pub rows_written: u64,
    pub rows_read: u64,
    /// The slot of the request's one key, and the time its shard took: the slot's load.
    /// None when no shard answered it (a read from the cache).
    pub slot: Option<(u32, std::time::Duration)>,
}

fn served_by(role: Role) -> ServedBy {
    match role {
        Role::Primary => ServedBy::Primary,
        Role::Replica => ServedBy::Replica,
    }
}

impl Outcome {
    pub fn write(shard: ShardId, role: Role, rows: u64) -> Self {
        Self {
            shard: Some(shard.0),
            served_by: Some(served_by(role)),
            rows_written: rows,
            rows_read: 0,
            slot: None,
        }
    }

    pub fn read(shard: ShardId, role: Role, rows: u64) -> Self {
        Self {
            shard: Some(shard.0),
            served_by: Some(served_by(role)),
            rows_written: 0,
            rows_read: rows,
            slot: None,
        }
    }

    /// The request's key fell in `slot`, and its shard took `shard_time`.
    pub fn in_slot(
        mut self,
        slot: shard_manager::routing::Slot,
        shard_time: std::time::Duration,
    ) -> Self {
        self.slot = Some((slot.0, shard_time));
        self
    }

    /// The read was answered by the cache: a request of its shard's in the analytics,
    /// but no load on its slot, so that keys read from the cache never steer slot moves.
    pub fn from_cache(mut self) -> Self {
        self.served_by = Some(ServedBy::Cache);
        self.slot = None;
        self
    }

    /// A write spread over several shards.
    pub fn bulk(rows: u64) -> Self {
        Self {
            rows_written: rows,
            ..Self::default()
        }
    }

    pub fn attach(self, res: &mut HttpResponse) {
        res.extensions_mut().insert(self);
    }
}

/// `from_fn` middleware: records every request once it has its response.
pub async fn observe(
    analytics: Arc<Analytics>,
    load: Arc<SlotLoad>,
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let res = next.call(req).await?;
    let latency = started.elapsed();
    let endpoint = res.request().match_pattern();
    let endpoint = endpoint.as_deref().unwrap_or("other");
    let outcome = res
        .response()
        .extensions()
        .get::<Outcome>()
        .copied()
        .unwrap_or_default();
    let note = res.response().extensions().get::<ErrorNote>().cloned();
    if note.as_ref().is_some_and(|n| n.may_have_committed) {
        if let Some(state) = res.request().app_data::<web::Data<AppState>>() {
            state.cluster.handovers().answered_may_have_committed();
        }
    }
    let status = res.status().as_u16();
    let error = note.as_ref().map(|n| ErrorInfo {
        class: n.class,
        message: &n.message,
    });
    let error = error.or_else(|| {
        (status >= 400).then_some(ErrorInfo {
            class: if status >= 500 {
                ErrorClass::Internal
            } else {
                ErrorClass::Client
            },
            message: res.status().canonical_reason().unwrap_or("error"),
        })
    });
    // The trace a sampled request was recorded under, for the errors and the slowest.
    let trace_id = res
        .request()
        .extensions()
        .get::<TraceIds>()
        .filter(|ids| ids.sampled)
        .map(|ids| ids.trace_id.clone());
    analytics.record(&RequestSample {
        endpoint,
        method: res.request().method().as_str(),
        status,
        latency,
        shard: outcome.shard.or(note.as_ref().and_then(|n| n.shard)),
        served_by: outcome.served_by,
        rows_written: outcome.rows_written,
        rows_read: outcome.rows_read,
        error,
        trace_id: trace_id.as_deref(),
    });
    if let Some((slot, shard_time)) = outcome.slot {
        let request = res.request();
        let header = |name: &str| request.headers().get(name).map(|v| v.as_bytes());
        let key = header("x-shard-key").and_then(|k| std::str::from_utf8(k).ok());
        let bytes_written = header("content-length")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let bytes_read = match res.response().body().size() {
            actix_web::body::BodySize::Sized(n) => n,
            _ => 0,
        };
        load.record(&SlotHit {
            slot,
            key: key.unwrap_or_default(),
            bytes_written,
            bytes_read,
            shard_time,
        });
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shard_manager::routing::Slot;
    use std::time::Duration;

    #[test]
    fn a_read_from_the_cache_is_no_load_on_its_slot() {
        let shard_read = Outcome::read(ShardId(1), Role::Replica, 1)
            .in_slot(Slot(42), Duration::from_micros(300));
        assert_eq!(shard_read.slot, Some((42, Duration::from_micros(300))));
        let cached = Outcome::read(ShardId(1), Role::Replica, 1)
            .in_slot(Slot(42), Duration::ZERO)
            .from_cache();
        assert_eq!(cached.slot, None, "a cache hit weighs on its slot");
        // Still a request of its shard's, served by the cache.
        assert_eq!(cached.shard, Some(1));
        assert!(matches!(cached.served_by, Some(ServedBy::Cache)));
        assert_eq!(cached.rows_read, 1);
    }
}
