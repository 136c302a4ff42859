//! `GET /api/analytics/metrics`, `GET /api/analytics/errors`,
//! `GET /api/analytics/slowest` and `GET /metrics`.

use actix_web::{web, HttpRequest, HttpResponse};
use analytics::cluster::{ClusterMetricsReport, Scope};
use analytics::exposition::{
    Format, GatewayFigures, MapGauges, ProcessStats, ShardTerm, TraceSpans,
};
use analytics::recording::{ErrorEvent, SlowRequest};
use analytics::reports::MetricsReport;
use serde::Deserialize;
use shard_manager::live_map::PromotionKind;
use shard_manager::servers::ServerStatus;
use utoipa::IntoParams;

use super::moves;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MetricsParams {
    /// Window for rates and percentiles: `60s`, `10s`, `5m`... (default 60s, max 15m).
    #[param(example = "60s")]
    pub window: Option<String>,
    /// The ancestor's form of the window, in milliseconds (`window` wins).
    #[serde(rename = "timeRange")]
    #[param(rename = "timeRange", example = "60000")]
    pub time_range: Option<String>,
    /// `local` (default): this gateway's traffic; `cluster`: every live gateway's,
    /// merged exactly, with `gateways`, `missing_gateways` and `partial`.
    #[param(example = "cluster")]
    pub scope: Option<String>,
}

/// Copies the monitor's replica lag into analytics so reports carry it.
fn refresh_replica_lag(state: &AppState) {
    let limits = &state.cluster.settings().replication;
    for shard in state.cluster.shards().iter() {
        for replica in &shard.replicas {
            let s = ServerStatus::of(replica, limits, shard.read_primary);
            state.analytics.set_replica_lag(
                shard.id.0,
                &s.server,
                s.lag_bytes,
                s.lag_ms,
                s.up && !s.banned,
            );
        }
    }
}

#[utoipa::path(get, path = "/api/analytics/metrics", tag = "analytics", params(MetricsParams),
    responses(
        (status = 200, description = "Throughput, latency percentiles, errors, per-shard and per-role distribution, cache, replica lag; with `scope=cluster`, every live gateway's merged (ClusterMetricsReport: the same fields, and `gateways`, `missing_gateways`, `partial`)", body = MetricsReport),
        (status = 400, description = "Invalid window or scope", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn metrics(
    state: web::Data<AppState>,
    params: web::Query<MetricsParams>,
) -> Result<HttpResponse, ApiError> {
    let window = state
        .analytics
        .window_from_query(params.window.as_deref(), params.time_range.as_deref())
        .map_err(|e| ApiError::BadQuery(e.to_string()))?;
    let scope = match params.scope.as_deref() {
        Some(text) => Scope::parse(text).map_err(ApiError::BadQuery)?,
        None => Scope::Local,
    };
    refresh_replica_lag(&state);
    match scope {
        Scope::Local => Ok(HttpResponse::Ok().json(state.analytics.report(window))),
        Scope::Cluster => {
            let (others, coverage) = super::cluster_view::gather(&state, window).await;
            let report = state.analytics.cluster_report(window, &others);
            Ok(HttpResponse::Ok().json(ClusterMetricsReport { report, coverage }))
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ErrorsParams {
    /// How many of the most recent errors (1 to 1000, default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000, example = 50)]
    pub limit: Option<String>,
    /// The ancestor's name for `limit`, held to the same rule (`limit` wins when both
    /// are given).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000, example = 50)]
    pub count: Option<String>,
}

pub const MAX_ERRORS: usize = 1000;

/// A `limit` or `count` as given: a whole number from 1 to [`MAX_ERRORS`], else a 400
/// that names the parameter.
fn error_limit(name: &str, text: &str) -> Result<usize, ApiError> {
    count_up_to(name, text, MAX_ERRORS)
}

/// Parameter `name` as given: a whole number from 1 to `max`, else a 400 that names it.
fn count_up_to(name: &str, text: &str, max: usize) -> Result<usize, ApiError> {
    match text.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::BadQuery(format!(
            "{name} is {:?}; use a whole number from 1 to {max}",
            text.chars().take(32).collect::<String>()
        ))),
    }
}

#[utoipa::path(get, path = "/api/analytics/errors", tag = "analytics", params(ErrorsParams),
    responses(
        (status = 200, description = "Most recent errors, newest first", body = Vec<ErrorEvent>),
        (status = 400, description = "Invalid limit or count", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn errors(
    state: web::Data<AppState>,
    params: web::Query<ErrorsParams>,
) -> Result<HttpResponse, ApiError> {
    // Each parameter given is checked, so that the alias is an integer as the spec says
    // even where `limit` wins.
    let count = params
        .count
        .as_deref()
        .map(|text| error_limit("count", text))
        .transpose()?;
    let limit = params
        .limit
        .as_deref()
        .map(|text| error_limit("limit", text))
        .transpose()?;
    let limit = limit.or(count).unwrap_or(50);
    Ok(HttpResponse::Ok().json(state.analytics.recent_errors(limit)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SlowestParams {
    /// The window the requests finished in: `60s`, `5m`... (default 5m, max as for
    /// metrics).
    #[param(example = "5m")]
    pub window: Option<String>,
    /// How many (1 to 100, default 10).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, example = 10)]
    pub limit: Option<String>,
}

pub const MAX_SLOWEST: usize = 100;

#[utoipa::path(get, path = "/api/analytics/slowest", tag = "analytics", params(SlowestParams),
    responses(
        (status = 200, description = "This gateway's slowest requests in the window, slowest first, each with its trace id when it was traced (each minute keeps its 20 slowest)", body = Vec<SlowRequest>),
        (status = 400, description = "Invalid window or limit", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn slowest(
    state: web::Data<AppState>,
    params: web::Query<SlowestParams>,
) -> Result<HttpResponse, ApiError> {
    let window = state
        .analytics
        .parse_window(params.window.as_deref().unwrap_or("5m"))
        .map_err(|e| ApiError::BadQuery(e.to_string()))?;
    let limit = match params.limit.as_deref() {
        None => 10,
        Some(text) => count_up_to("limit", text, MAX_SLOWEST)?,
    };
    Ok(HttpResponse::Ok().json(state.analytics.slowest(window, limit)))
}

/// The map routed with, for the exposition: version, live gateways (once heard),
/// every shard's term and promotions as the map's history counts them.
fn map_gauges(state: &AppState) -> MapGauges {
    let map = state.cluster.map();
    let promotions = map.promotions();
    let gateways = map.gateways();
    MapGauges {
        version: map.version().0,
        gateways_live: (!gateways.is_empty()).then_some(gateways.len()),
        shards: state
            .cluster
            .shards()
            .iter()
            .map(|s| ShardTerm {
                shard: s.id.0,
                term: map.term(s.id.index()),
                failovers: promotions.count(s.id.0, PromotionKind::Failover),
                switchovers: promotions.count(s.id.0, PromotionKind::Switchover),
            })
            .collect(),
    }
}

#[utoipa::path(get, path = "/metrics", tag = "analytics",
    responses((status = 200, description = "Prometheus text exposition (slot moves in progress, requests refused by API keys' limits, transactions by protocol and outcome with the parts in doubt, `shardgate_batch_size{kind,shard,server}`: requests per batch sent to a server, requests held for a shard's new primary (`shardgate_handovers_total`, `shardgate_requests_held_now`, `shardgate_requests_held_total{outcome}`, `shardgate_requests_held_seconds_total`), writes answered without knowing whether they applied (`shardgate_writes_may_have_committed_total`), change streams per table (`shardgate_change_streams_open{table}`, `shardgate_changes_sent_total{table}`, `shardgate_change_lag_seconds{table}`) and the change log's retention (`shardgate_change_retention_seconds`), with the cache's memory tier on, `shardgate_cache_memory_hits_total`, `shardgate_cache_memory_invalidations_total`, `shardgate_cache_memory_flushes_total` and `shardgate_cache_memory_entries`, and the shard map: `shardgate_map_version`, `shardgate_gateways_live` once the metadata database listed them, `shardgate_shard_term{shard}`, and `shardgate_failovers_total{shard,kind}` counting the failovers and switchovers (`kind`) in the map's history; with traces on, `shardgate_trace_spans_exported_total` and `shardgate_trace_spans_dropped_total{reason}`; the process's own, as Prometheus clients name them: `process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_virtual_memory_bytes`, `process_open_fds`, `process_max_fds`, `process_start_time_seconds`). A scraper whose `Accept` prefers `application/openmetrics-text; version=1.0.0` (Prometheus with exemplar storage on) gets the same families as OpenMetrics 1.0, each bucket of `shardgate_http_request_duration_seconds` carrying the trace id of the latest sampled request that fell in it as an exemplar", body = String, content_type = "text/plain")))]
pub async fn prometheus(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    refresh_replica_lag(&state);
    let accept = req
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let format = Format::negotiate(accept);
    let moves = moves::progress(&state.moves.seen());
    let limited = state.limits.refused();
    let spans = trace_spans(&state);
    let process = ProcessStats::read();
    let memory_tier = memory_tier(&state);
    let gateway = GatewayFigures {
        moves: &moves,
        limited: &limited,
        map: &map_gauges(&state),
        transactions: &transactions(&state),
        batches: &batch_sizes(&state),
        held: &held(&state),
        changes: &change_streams(&state),
        memory_tier: memory_tier.as_ref(),
        spans: spans.as_ref(),
        process: process.as_ref(),
    };
    HttpResponse::Ok()
        .content_type(format.content_type())
        .insert_header((actix_web::http::header::VARY, "Accept"))
        .body(state.analytics.exposition_of_gateway(format, &gateway))
}

/// What the change streams served, per table, and the log's retention.
fn change_streams(state: &AppState) -> analytics::exposition::ChangeStreams {
    analytics::exposition::ChangeStreams {
        tables: state
            .cluster
            .change_streams()
            .tables()
            .into_iter()
            .map(|(table, t)| analytics::exposition::TableChanges {
                table,
                open: t.open,
                sent: t.sent,
                lag_secs: t.lag_secs,
            })
            .collect(),
        retention_secs: state.cluster.settings().changes.retention_secs,
        cuts: state.cluster.change_streams().cuts(),
    }
}

/// The cache's memory tier, when it has one.
fn memory_tier(state: &AppState) -> Option<analytics::exposition::MemoryTier> {
    let t = state.cluster.cache()?.memory_stats()?;
    Some(analytics::exposition::MemoryTier {
        hits: t.hits,
        invalidations: t.invalidations,
        flushes: t.flushes,
        entries: t.entries,
    })
}

/// The requests the cluster held for a shard's new primary.
fn held(state: &AppState) -> analytics::exposition::HeldRequests {
    let h = state.cluster.handovers().stats();
    analytics::exposition::HeldRequests {
        handovers: h.opened,
        held: h.held,
        released: h.released,
        timed_out: h.timed_out,
        refused_at_bound: h.refused_at_bound,
        held_secs: h.held_ms as f64 / 1000.0,
        may_have_committed: h.may_have_committed,
    }
}

/// With traces on, the spans exported and dropped (by reason); nothing otherwise.
fn trace_spans(state: &AppState) -> Option<TraceSpans> {
    let counts = state.spans.as_ref()?.counts();
    Some(TraceSpans {
        exported: counts.exported,
        dropped_queue_full: counts.dropped_queue_full,
        dropped_export_failed: counts.dropped_export_failed,
    })
}

/// Every server's batches: point reads, and single writes committed as one group.
fn batch_sizes(state: &AppState) -> Vec<analytics::exposition::BatchSizes> {
    let shards = state.cluster.shards();
    shards
        .iter()
        .flat_map(|s| std::iter::once(&s.primary).chain(&s.replicas))
        .flat_map(|server| {
            [
                ("read", server.read_batch_sizes().snapshot()),
                ("write", server.write_batch_sizes().snapshot()),
            ]
            .map(|(kind, seen)| analytics::exposition::BatchSizes {
                kind,
                shard: server.shard.0,
                server: server.addr.clone(),
                cumulative: seen.cumulative,
                batches: seen.batches,
                requests: seen.requests,
            })
        })
        .filter(|s| s.batches > 0)
        .collect()
}

/// The cluster's transaction counts and the recovery's view of parts in doubt.
fn transactions(state: &AppState) -> analytics::exposition::TransactionStats {
    use shard_manager::cluster::txn::tally::{Ended, Protocol};
    let tally = state.cluster.txn_tally();
    let ended = Protocol::ALL
        .iter()
        .flat_map(|p| {
            Ended::ALL
                .iter()
                .map(move |e| (p.as_str(), e.as_str(), tally.get(*p, *e)))
        })
        .collect();
    let (in_doubt, oldest_ms, _) = state.cluster.in_doubt().get();
    analytics::exposition::TransactionStats {
        ended,
        in_doubt,
        oldest_in_doubt_secs: oldest_ms as f64 / 1000.0,
    }
}
