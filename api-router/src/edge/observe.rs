//! The analytics middleware: times every request and records it with the shard,
//! the role that served it and, for errors, their class.

use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::HttpResponse;
use analytics::{Analytics, ErrorClass, ErrorInfo, RequestSample, ServedBy};
use shard_manager::{Role, ShardId};

use crate::error::ErrorNote;

/// What a handler did, attached to its response for the middleware to record.
#[derive(Debug, Clone, Copy, Default)]
pub struct Outcome {
    pub shard: Option<u32>,
    pub served_by: Option<ServedBy>,
    pub rows_written: u64,
    pub rows_read: u64,
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
        }
    }

    pub fn read(shard: ShardId, role: Role, rows: u64) -> Self {
        Self {
            shard: Some(shard.0),
            served_by: Some(served_by(role)),
            rows_written: 0,
            rows_read: rows,
        }
    }

    /// The read was answered by the cache.
    pub fn from_cache(mut self) -> Self {
        self.served_by = Some(ServedBy::Cache);
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
    });
    Ok(res)
}
