//! `GET /api/changes?table=T`: the table's change stream (`shard_manager::changes`), as
//! a JSON page (`changes`, `next`) that may wait for a change (`wait`), or, with
//! `Accept: text/event-stream`, as Server-Sent Events whose `id` is the cursor right
//! after the event's change. A page or a stream resumes from `after` (a `next` or an
//! event's `id`) or from `Last-Event-ID`, through any gateway; `from=snapshot` starts it
//! with the table as it was at one cut. A page that ends its cut says so (`resolved`);
//! a stream sends it as an `event: resolved` whose `id` is the checkpoint.

use std::time::{Duration, Instant};

use actix_web::http::header::{self, HeaderMap};
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use shard_manager::changes::{Change, ChangeCursor, ChangesError};
use shard_manager::TableName;
use utoipa::IntoParams;

use crate::access::Caller;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// Changes a page holds when `limit` is not given.
const DEFAULT_LIMIT: usize = 100;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesParams {
    /// One of the configured tables.
    #[param(example = "users")]
    pub table: String,
    /// Resume after this cursor (a page's `next`, or an event's `id`). Absent (and no
    /// `Last-Event-ID`): from the oldest change kept.
    #[param(example = "chg-7b2273656e74223a7b7d7d")]
    pub after: Option<String>,
    /// The most changes in the page (1 to `changes.max_page`; 100 when absent).
    #[param(value_type = Option<u64>, example = 100)]
    pub limit: Option<String>,
    /// Milliseconds to wait for a change when there is none yet (0 to
    /// `changes.max_wait_ms`; 0 when absent). JSON pages only.
    #[param(value_type = Option<u64>, example = 100)]
    pub wait: Option<String>,
    /// `snapshot`: start with every record of the table as it was at one cut
    /// (operation `snapshot`), then the changes after that cut. `now`: start after
    /// every change committed now, skipping the history. A cursor (`after`,
    /// `Last-Event-ID`) resumes instead, wherever the stream was.
    #[param(example = "snapshot")]
    pub from: Option<String>,
}

/// A page of changes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChangesPage {
    /// In the stream's order: by cut, then shard, then version.
    #[schema(value_type = Vec<Object>)]
    pub changes: Vec<Change>,
    /// The cursor after the page: send it as `after` for the next one.
    pub next: String,
    /// When the page ends its cut: every change committed before this time (the
    /// gateway's clock), on every shard, is in this page or an earlier one, and `next`
    /// is a checkpoint that says so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved: Option<String>,
}

/// Server-Sent Events' `resolved` at most this often while changes flow (and at each
/// wait that found none).
const RESOLVED_EVERY: Duration = Duration::from_secs(1);

impl From<ChangesError> for ApiError {
    fn from(e: ChangesError) -> Self {
        match e {
            ChangesError::Gone { .. } => ApiError::ChangesGone(e.to_string()),
            ChangesError::Cut(e) => ApiError::from(e),
            ChangesError::Shard(e) => ApiError::Cluster(e),
        }
    }
}

#[utoipa::path(
    get,
    path = "/api/changes",
    tag = "records",
    params(
        ChangesParams,
        ("accept" = Option<String>, Header, example = "application/json",
            description = "`text/event-stream` for Server-Sent Events (`event: change`, `id`: the cursor after it; the stream goes on until the client leaves); anything else gives a JSON page"),
        ("last-event-id" = Option<String>, Header,
            description = "Resume after this event's `id` (when `after` is absent)"),
    ),
    responses(
        (status = 200, description = "A page of changes with the cursor after it, or a stream of them", body = ChangesPage),
        (status = 400, description = "A cursor that is not one (`invalid-change-cursor`), or a `limit` or `wait` out of range", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown table", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The cursor is older than the change log keeps (`changes.retention_secs`): start again without one", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "A shard could not be read, or no cut could be taken (no metadata database)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn changes(
    state: web::Data<AppState>,
    caller: Caller,
    params: web::Query<ChangesParams>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let params = params.into_inner();
    let table = state
        .cluster
        .tables()
        .parse(&params.table)
        .map_err(ApiError::NoSuchTable)?;
    caller.permit(&table)?;
    let bounds = &state.cluster.settings().changes;
    let max_page = bounds.max_page.max(1);
    let limit = match params.limit.as_deref() {
        None => DEFAULT_LIMIT.min(max_page),
        Some(raw) => number(raw, "limit", 1, max_page as u64)? as usize,
    };
    let wait = match params.wait.as_deref() {
        None => 0,
        Some(raw) => number(raw, "wait", 0, bounds.max_wait_ms)?,
    };
    let start = start(
        params.from.as_deref(),
        params.after.as_deref(),
        req.headers(),
    )?;
    let holder = caller.key_name().map(str::to_owned);
    if wants_events(req.headers()) {
        let wait = Duration::from_millis(bounds.max_wait_ms);
        return Ok(events(
            state.into_inner(),
            table,
            start,
            max_page,
            wait,
            holder,
        ));
    }
    let holder = holder.as_deref();
    let page = async {
        match &start {
            Start::Snapshot => {
                state
                    .cluster
                    .snapshot_page(&table, None, limit, holder)
                    .await
            }
            Start::Now => state.cluster.changes_from_now().await,
            Start::After(cursor) => {
                let wait = Duration::from_millis(wait);
                let cluster = &state.cluster;
                cluster
                    .changes_waiting(&table, cursor, limit, wait, holder)
                    .await
            }
        }
    };
    let limit = state.server.request_timeout() + Duration::from_millis(wait);
    let page = match tokio::time::timeout(limit, page).await {
        Ok(page) => page?,
        Err(_) => return Err(ApiError::RequestTimeout(limit.as_millis() as u64)),
    };
    state
        .cluster
        .change_streams()
        .sent(table.as_str(), &page.changes);
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(ChangesPage {
            changes: page.changes,
            next: page.next.encode(),
            resolved: page.resolved.map(|t| t.to_rfc3339()),
        }))
}

/// Where a stream starts: at a snapshot of the table, after what is committed now, or
/// after a cursor (a new stream's: from the oldest change kept).
#[derive(Clone)]
enum Start {
    Snapshot,
    Now,
    After(ChangeCursor),
}

/// The start `from`, `after` and `Last-Event-ID` ask for. A cursor wins over
/// `from`: a stream that started from a snapshot resumes from its cursor (which
/// knows whether the snapshot was all sent), as a browser's `EventSource` reconnects,
/// with the same URL and `Last-Event-ID`.
fn start(from: Option<&str>, after: Option<&str>, headers: &HeaderMap) -> Result<Start, ApiError> {
    let from = match from.map(str::trim) {
        None => None,
        Some(from) if from.eq_ignore_ascii_case("snapshot") => Some(Start::Snapshot),
        Some(from) if from.eq_ignore_ascii_case("now") => Some(Start::Now),
        Some(other) => {
            return Err(ApiError::BadQuery(format!(
                "`from` is {:?}; it takes `snapshot` (the table, then its changes) or `now` (only changes committed from now on); without it, a stream starts at the oldest change kept",
                other.chars().take(32).collect::<String>()
            )))
        }
    };
    let resumes = after.is_some() || headers.contains_key("last-event-id");
    match from {
        Some(start) if !resumes => Ok(start),
        _ => Ok(Start::After(cursor(after, headers)?)),
    }
}

/// A whole number from `low` to `high` for the parameter `name`.
fn number(raw: &str, name: &str, low: u64, high: u64) -> Result<u64, ApiError> {
    raw.trim()
        .parse::<u64>()
        .ok()
        .filter(|n| (low..=high).contains(n))
        .ok_or_else(|| {
            ApiError::BadQuery(format!(
                "`{name}` is {:?}; use a whole number from {low} to {high}",
                raw.chars().take(32).collect::<String>()
            ))
        })
}

/// The cursor from `after`, else from `Last-Event-ID`, else a new stream's.
fn cursor(after: Option<&str>, headers: &HeaderMap) -> Result<ChangeCursor, ApiError> {
    let (text, named) = match after {
        Some(after) => (after.to_owned(), "`after`"),
        None => match headers.get("last-event-id") {
            None => return Ok(ChangeCursor::default()),
            Some(value) => (value.to_str().unwrap_or("").to_owned(), "`Last-Event-ID`"),
        },
    };
    ChangeCursor::decode(text.trim()).map_err(|why| {
        ApiError::BadChangeCursor(format!(
            "{named} is not a change cursor ({why}); send a page's `next` or an event's `id` as it was given"
        ))
    })
}

/// Whether the client asked for Server-Sent Events.
fn wants_events(headers: &HeaderMap) -> bool {
    crate::input::accept::accepts(headers, "text/event-stream")
}

/// The stream's state: where it is, when it last said `resolved`, since when its
/// shards fail to answer, and whether it ended (after an error event).
struct Stream {
    state: std::sync::Arc<AppState>,
    table: TableName,
    start: Start,
    page: usize,
    wait: Duration,
    holder: Option<String>,
    resolved_at: Option<Instant>,
    failing_since: Option<Instant>,
    /// The last page was not full: the next look waits for the next tick's shared cut
    /// (`Cluster::changes_following`), so a stream of a busy table takes at most one cut
    /// a tick rather than one a page.
    caught_up: bool,
    ended: bool,
    /// Counts the stream open in the gateway's metrics while it lives.
    _open: shard_manager::changes::stats::OpenStream,
}

/// Between two tries of a stream whose shards do not answer (a primary failing over).
const RETRY_EVERY: Duration = Duration::from_millis(250);

/// Server-Sent Events: a page at a time (at most `page` changes held), each change an
/// `event: change` with its cursor as `id`; an `event: resolved` (its `id` the
/// checkpoint) when a page ends its cut, at most every [`RESOLVED_EVERY`] while changes
/// flow and after every wait that found none (so a client gone is noticed). A shard that
/// A stream that has caught up looks again at the next tick (every 200 ms), even while
/// changes flow. A shard that
/// does not answer (503: a primary lost, a failover) is tried again from the same place
/// for up to `failover.hold_ms`, with a comment line each time; past it, or on any
/// other failure, the stream ends with an `event: error` holding the problem.
fn events(
    state: std::sync::Arc<AppState>,
    table: TableName,
    start: Start,
    page: usize,
    wait: Duration,
    holder: Option<String>,
) -> HttpResponse {
    let open = state.cluster.change_streams().opened(table.as_str());
    let stream = Stream {
        _open: open,
        state,
        table,
        start,
        page,
        wait,
        holder,
        resolved_at: None,
        failing_since: None,
        caught_up: false,
        ended: false,
    };
    let body = futures_util::stream::unfold(stream, |mut s| async move {
        if s.ended {
            return None;
        }
        let cluster = &s.state.cluster;
        let holder = s.holder.as_deref();
        let read = match &s.start {
            Start::Snapshot => cluster.snapshot_page(&s.table, None, s.page, holder).await,
            Start::Now => cluster.changes_from_now().await,
            Start::After(cursor) if s.caught_up => {
                cluster
                    .changes_following(&s.table, cursor, s.page, s.wait, holder)
                    .await
            }
            Start::After(cursor) => {
                cluster
                    .changes_waiting(&s.table, cursor, s.page, s.wait, holder)
                    .await
            }
        };
        let chunk = match read {
            Ok(page) => {
                s.caught_up = page.changes.len() < s.page;
                cluster
                    .change_streams()
                    .sent(s.table.as_str(), &page.changes);
                let mut chunk: String = page.changes.iter().map(event).collect();
                let due = page.changes.is_empty()
                    || s.resolved_at
                        .is_none_or(|at| at.elapsed() >= RESOLVED_EVERY);
                if let (Some(time), true) = (page.resolved, due) {
                    s.resolved_at = Some(Instant::now());
                    let data = serde_json::json!({
                        "table": s.table.as_str(),
                        "resolved": time.to_rfc3339(),
                    });
                    chunk.push_str(&format!(
                        "event: resolved\nid: {}\ndata: {data}\n\n",
                        page.next.encode()
                    ));
                }
                if chunk.is_empty() {
                    chunk.push_str(": waiting\n\n");
                }
                s.start = Start::After(page.next);
                s.failing_since = None;
                chunk
            }
            Err(e) => {
                let error = ApiError::from(e);
                let status = error.kind().0;
                let since = *s.failing_since.get_or_insert_with(Instant::now);
                let hold = s.state.cluster.settings().failover.hold();
                if status.as_u16() == 503 && since.elapsed() < hold {
                    tokio::time::sleep(RETRY_EVERY).await;
                    let why = error.to_string().replace(['\r', '\n'], " ");
                    let chunk = format!(": waiting: {why}\n\n");
                    return Some((Ok(Bytes::from(chunk)), s));
                }
                s.ended = true;
                let problem = serde_json::to_string(&error.problem()).unwrap_or_default();
                format!("event: error\ndata: {problem}\n\n")
            }
        };
        Some((Ok::<_, actix_web::Error>(Bytes::from(chunk)), s))
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .streaming(body)
}

/// One change as an event; without an `id` when the change has no cursor of its own (a
/// row inside a starting snapshot's page).
fn event(change: &Change) -> String {
    let data = serde_json::to_string(change).unwrap_or_default();
    match change.cursor.is_empty() {
        true => format!("event: change\ndata: {data}\n\n"),
        false => format!("event: change\nid: {}\ndata: {data}\n\n", change.cursor),
    }
}
