//! `GET /api/read`: one record by id (with its `ETag`; `If-None-Match` answers 304), or a
//! shard key's newest records.

use actix_web::{web, HttpResponse};
use shard_manager::cache::CacheEvent;
use shard_manager::{Consistency, Found, RecordId};

use super::{list, snapshot};
use crate::access::Caller;
use crate::edge::observe::Outcome;
use crate::error::{ApiError, Problem};
use crate::input::body::{ConsistencyName, FanOutResponse, ReadAnswer, ReadParams, ReadResponse};
use crate::input::conditional::{self, IfNoneMatch};
use crate::input::extract::{ConsistencyHeader, MinLsnHeader, OptionalRouted, RequireAllShards};
use crate::limits::Quota;
use crate::server::headers::{ETAG, X_CACHE};
use crate::state::AppState;

fn cache_header(event: CacheEvent) -> &'static str {
    match event {
        CacheEvent::Hit => "hit",
        CacheEvent::Miss => "miss",
        _ => "bypass",
    }
}

#[utoipa::path(
    get,
    path = "/api/read",
    tag = "records",
    params(
        ReadParams,
        ("x-shard-key" = Option<String>, Header, min_length = 1, max_length = 256, example = "user_123",
            description = "Shard key, 1 to 256 bytes of UTF-8. Required with `id`; a list without it reads every shard (fan-out)"),
        ("x-require-all-shards" = Option<bool>, Header, description = "Fan-out: answer 503 rather than a partial (206) result when a shard fails (`true`/`1` or `false`/`0`)"),
        ("x-consistency" = inline(Option<ConsistencyName>), Header, description = "`eventual` (default) or `strong`, in any case; the `consistency` parameter wins (`snapshot` is a parameter only)"),
        ("x-min-lsn" = Option<String>, Header, example = "1:0/3000060", description = "Read-your-writes token from a write's `x-shard-lsn`: the read is served by a server that has that write"),
        ("if-none-match" = Option<String>, Header, example = "\"42.9f8e0c2d4b6a81735e2f0a9c3d4b5e6f\"", description = "With `id`: `*` or entity tags (RFC 9110; `W/` tags compare weakly): 304 Not Modified, with no body, when the record's `ETag` is one of them (`*`: when it exists). Lists ignore it"),
    ),
    responses(
        (status = 200, description = "With `id`: the record (ReadResponse). Without `id`: the key's records (ListResponse), or without `x-shard-key` every shard's (FanOutResponse; with `consistency=snapshot` all at one cut, named in `snapshot`).", body = ReadAnswer,
            headers(("x-cache" = String, description = "Point reads, when the cache is enabled: `hit`, `miss` or `bypass`"),
                ("etag" = String, description = "With `id`: the record's strong entity tag, opaque, the same from the primary, a replica or the cache for one version; it changes with every write of the record and is never another record's"))),
        (status = 304, description = "With `id` and `if-none-match`: the record's `ETag` matched; no body",
            headers(("etag" = String, description = "The record's entity tag"),
                ("x-cache" = String, description = "When the cache is enabled: `hit`, `miss` or `bypass`"))),
        (status = 206, description = "Fan-out answered by some shards only (`partial`, `failed_shards`)", body = FanOutResponse,
            headers(("x-partial-results" = String, description = "`true`: some shards did not answer"))),
        (status = 400, description = "`id` without `x-shard-key`; an invalid header (the problem's `header` names it; `if-none-match` that is not `*` or a list of quoted entity tags); an invalid `limit`, `consistency`, `where` or `cursor`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such record", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "(`snapshot-expired`) A snapshot list's `cursor` whose cut is no longer held (kept 5 s from its first page): start the list again", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown table, invalid id, or a `where` filter with a NUL character or a number `jsonb` cannot hold", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over the API key's rate (`rate-limited`), or its queries at once on a shard this read touches (`concurrency-limited`; a fan-out touches every shard), or (`snapshots-held`) the key holds its share (half) of the gateway's snapshots for next pages", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The shard failed the query (logged; the problem names the shard)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No server of the shard is available, or (x-require-all-shards, or a snapshot list) a shard of a fan-out did not answer; (`snapshot-unavailable`) the cluster fence could not be taken; (`snapshots-busy`) the gateway holds its most snapshots for next pages (a quarter of `database.pool_max_size`)", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The shard did not answer in time", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn read(
    state: web::Data<AppState>,
    // Who calls, and their limiter (one argument: the handler takes many).
    (caller, quota): (Caller, Quota),
    key: OptionalRouted,
    // How fresh the answer must be: asked consistency, read-your-writes token.
    (header, token): (ConsistencyHeader, MinLsnHeader),
    require_all: RequireAllShards,
    if_none_match: IfNoneMatch,
    params: web::Query<ReadParams>,
) -> Result<HttpResponse, ApiError> {
    let mut params = params.into_inner();
    let table = state.cluster.tables().parse(&params.table)?;
    caller.permit(&table)?;
    // `snapshot`: a read across shards at one cut; one key's read is on one shard, and
    // is read as `strong` (the primary).
    let at_cut = snapshot::asks_snapshot(params.consistency.as_deref());
    let asked = match params.consistency.as_deref() {
        _ if at_cut => Some(Consistency::Strong),
        Some(text) => Some(Consistency::parse(text)?),
        None => header.0,
    };
    let Some(key) = key.0 else {
        if params.id.is_some() {
            return Err(ApiError::MissingShardKey);
        }
        // A snapshot list's cursor names its cut, and is read by the snapshot's own rules.
        let page = at_cut.then(|| params.cursor.take()).flatten();
        let query = list::query(&params, state.server.max_read_bytes)?;
        // A fan-out touches every shard: one of the key's permits on each.
        let _permits = quota
            .enter(state.cluster.shards().iter().map(|s| s.id))
            .await?;
        if at_cut {
            return snapshot::fan_out(&state, &table, query, page.as_deref(), caller.key_name())
                .await;
        }
        return list::fan_out(
            &state,
            &table,
            query,
            asked.unwrap_or_default(),
            require_all.0,
        )
        .await;
    };
    let shard = key.shard();
    let consistency = match (asked, token.0) {
        (Some(Consistency::Strong), _) => Consistency::Strong,
        // A token names a write on one shard. For a key this gateway routes to another
        // shard, the key may have moved since (a gateway a moment behind the map), and
        // positions of two servers do not compare: the primary answers (and refuses a
        // slot it gave away, which reroutes the read).
        (_, Some(t)) if t.shard == shard => Consistency::ReadYourWrites(t.lsn),
        (_, Some(_)) => Consistency::Strong,
        (asked, _) => asked.unwrap_or_default(),
    };
    let Some(id) = params.id.as_deref() else {
        let query = list::query(&params, state.server.max_read_bytes)?;
        let _permits = quota.enter([shard]).await?;
        return list::keyed(&state, &table, &key, query, consistency).await;
    };
    let id = RecordId::parse(id)?;
    let _permits = quota.enter([shard]).await?;
    let asked_at = std::time::Instant::now();
    let served = state
        .bounded(state.cluster.read(&table, &key, &id, consistency))
        .await?;
    let shard_time = asked_at.elapsed();
    state.record_cache(&served.cache);
    let Some(found) = served.value else {
        return Err(ApiError::RecordNotFound {
            table: params.table.clone(),
            id: id.as_str().to_owned(),
        });
    };
    // The tag is the version's, whoever answered it: primary, replica or cache.
    let etag = conditional::etag((table.as_str(), key.as_str(), id.as_str()), found.version());
    let unchanged = if_none_match
        .0
        .is_some_and(|tags| tags.matches_weakly(&etag));
    let mut builder = if unchanged {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    builder.insert_header((ETAG, etag));
    if let Some(status) = served.cache.status() {
        builder.insert_header((X_CACHE, cache_header(status)));
    }
    let mut res = match found {
        _ if unchanged => builder.finish(),
        Found::Stored(record) => builder.json(ReadResponse {
            shard: served.shard.0,
            source: served.role.as_str().to_owned(),
            record: record.into(),
        }),
        // The cached JSON is a RecordBody already (Record serializes the same fields in
        // the same order): sent as it is, with no decoding and re-encoding.
        Found::Cached(cached) => builder.content_type(mime::APPLICATION_JSON).body(format!(
            r#"{{"shard":{},"source":"cache","record":{}}}"#,
            served.shard.0, cached.json
        )),
    };
    let outcome = Outcome::read(served.shard, served.role, 1).in_slot(key.slot(), shard_time);
    // A read the cache answered counts as a request, not as load on its slot.
    if served.from_cache {
        outcome.from_cache().attach(&mut res);
    } else {
        outcome.attach(&mut res);
    }
    Ok(res)
}
