//! The OpenAPI 3 document, served at `/api-docs/openapi.json` and shown by Swagger UI.

use utoipa::OpenApi;

use crate::body::{FanOutResponse, ListResponse};
use crate::error::Problem;
use crate::routes::{analytics, bulk, delete, health, read, shards, write};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Shardgate",
        description = "HTTP gateway for sharded PostgreSQL. Every request names its shard key in \
                       `x-shard-key`; the gateway routes it (key → slot → shard), writes to the \
                       shard's primary and reads from its replicas. Errors are \
                       `application/problem+json`.",
    ),
    paths(
        write::write,
        read::read,
        bulk::bulk_write,
        delete::delete,
        health::health,
        health::live,
        shards::shards,
        shards::locate,
        analytics::metrics,
        analytics::errors,
        analytics::prometheus,
    ),
    components(schemas(Problem, ListResponse, FanOutResponse)),
    tags(
        (name = "records", description = "Keyed JSON records"),
        (name = "operations", description = "Health and placement"),
        (name = "analytics", description = "Latency, throughput, errors; Prometheus"),
    )
)]
pub struct ApiDoc;
