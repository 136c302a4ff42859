//! `GET /api/export`: every record of one table from every shard, streamed as NDJSON
//! (the default) or CSV (`Accept: text/csv`), page by page with backpressure: a page is
//! read from a shard only when the previous one has been taken by the client's
//! connection, so a slow client holds the export, never the gateway's memory.
//!
//! Before the first byte, every shard's first page is read: a shard down answers 503
//! naming it, nothing streamed. Once streaming, a failure (a shard failing, a slot
//! changing hands: see `shard_manager::export`) ends an NDJSON stream with an error
//! line, and aborts a CSV stream (the connection closes without the chunked body's
//! last chunk, so no client takes it for a complete file). A complete NDJSON stream
//! ends with an `end` line counting its records.
//!
//! Bounded per gateway: at most `server.max_exports` stream at once (one more gets 503
//! `exports-busy` with `Retry-After`, before any shard is read), each holding its slot
//! until its body is dropped; and a client that takes nothing for
//! `server.export_send_timeout_secs` has its connection closed (`server::stall`),
//! which drops the body, its pages and its slot.
//!
//! CSV is safe to open in a spreadsheet: a cell that starts like a formula (`=`, `+`,
//! `-`, `@`, tab, CR) gets a leading `'` (see `shard_manager::export::format`);
//! `raw=true` writes every cell as stored, for programs. NDJSON is never changed.

use actix_web::http::header::{self, HeaderMap};
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use serde::Deserialize;
use shard_manager::export::{CsvCells, Export, ExportSpec, Format};
use shard_manager::ShardKey;
use utoipa::IntoParams;

use crate::access::Caller;
use crate::error::{ApiError, Problem};
use crate::limits::{ExportSlot, Quota};
use crate::server::stall::{Cutoff, SendWatch};
use crate::state::AppState;

/// Rows per page read from a shard.
pub const PAGE_ROWS: u32 = 1000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// One of the configured tables.
    #[param(example = "users")]
    pub table: String,
    /// Only records whose shard key starts with this (1 to 256 bytes of UTF-8, no NUL).
    #[param(example = "user_1")]
    pub key_prefix: Option<String>,
    /// CSV only: `true` writes every cell as stored, for programs that read the file;
    /// `false` (the default) puts a `'` before a cell that starts with `=`, `+`, `-`,
    /// `@`, a tab or a carriage return, so a spreadsheet shows it rather than running
    /// it as a formula. NDJSON is the same either way (JSON is not run by spreadsheets).
    #[param(value_type = Option<bool>, example = false)]
    pub raw: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/export",
    tag = "records",
    params(
        ExportParams,
        ("accept" = Option<String>, Header, example = "text/csv",
            description = "`text/csv` for CSV (header row `shard_key,id,version,updated_at,data`, RFC 4180 quoting; a cell starting with `=`, `+`, `-`, `@`, tab or CR gets a leading `'` unless `raw=true`); anything else gives NDJSON"),
    ),
    responses(
        (status = 200, description = "The table's records, streamed. NDJSON: one object per record \
            (`shard_key`, `id`, `version`, `updated_at`, `data`), then `{\"end\":{\"records\":N,\"map_version\":V}}`; \
            a failure part-way ends the stream with `{\"error\":{...}}` instead (never a silent truncation). \
            CSV: a header row and one row per record; a failure part-way aborts the connection before the body's end. \
            CSV is safe to open in a spreadsheet: every cell (key, id, version, time, data) that starts with `=`, `+`, `-`, `@`, \
            a tab or a carriage return is written with a leading `'` (OWASP's advice on CSV injection), so it is shown, not run as a formula; \
            `raw=true` writes the cells as stored. NDJSON is never changed (JSON is not run by spreadsheets).",
            content(
                (String = "application/x-ndjson"),
                (String = "text/csv"),
            )),
        (status = 400, description = "No `table`, an invalid `key_prefix`, or a `raw` other than `true` or `false`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown table", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over the API key's rate, or its queries at once on a shard (an export touches every shard)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "A shard could not be read (the problem names it), the shard map moved while the export started, \
            or the gateway already streams `server.max_exports` exports (`exports-busy`, with `Retry-After`). \
            Once streaming, a client that takes nothing for `server.export_send_timeout_secs` has its connection closed.", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "A shard did not answer in time", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn export(
    state: web::Data<AppState>,
    (caller, quota): (Caller, Quota),
    params: web::Query<ExportParams>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let params = params.into_inner();
    let table = state
        .cluster
        .tables()
        .parse(&params.table)
        .map_err(ApiError::NoSuchTable)?;
    caller.permit(&table)?;
    let key_prefix = parse_prefix(params.key_prefix.as_deref())?;
    let format = match parse_raw(params.raw.as_deref())? {
        true => negotiate(req.headers()).raw(),
        false => negotiate(req.headers()),
    };
    // The gateway's cap, before anything is read: held by the body until it is dropped.
    let slot = state.exports.take()?;
    let shards = state.cluster.shards();
    // The export reads every shard: one of the key's permits on each, held until the
    // stream ends.
    let permits = quota.enter(shards.iter().map(|s| s.id)).await?;
    let spec = ExportSpec {
        table,
        key_prefix,
        page_rows: PAGE_ROWS,
        page_bytes: (state.server.max_read_bytes / shards.len().max(1)).max(1),
    };
    let export = state
        .bounded(Export::start(state.cluster.clone(), spec))
        .await?;
    tracing::info!(table = %params.table, map_version = %export.map_version(), ?format, exports = state.exports.in_use(), "export started");
    let watch = SendWatch::spawn(
        state.server.export_send_timeout(),
        Cutoff::of(&req),
        format!("export of {}", params.table),
    );
    let body = Body {
        export,
        format,
        records: 0,
        header: true,
        ended: false,
        watch,
        _permits: permits,
        _slot: slot,
    };
    let stream = futures_util::stream::unfold(body, |mut body| async move {
        // Asked for more: the connection took the last chunk.
        body.watch.asked();
        let chunk = body.next().await?;
        body.watch.handed();
        Some((chunk, body))
    });
    Ok(HttpResponse::Ok()
        .content_type(format.media_type())
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .streaming(stream))
}

/// `key_prefix`: absent means every key; present, a shard key's rules apply.
fn parse_prefix(raw: Option<&str>) -> Result<String, ApiError> {
    let Some(raw) = raw else {
        return Ok(String::new());
    };
    ShardKey::parse(raw).map(|_| raw.to_owned()).map_err(|e| {
        ApiError::BadQuery(format!("`key_prefix` is not a valid shard key prefix: {e}"))
    })
}

/// `raw`: absent is `false`; only `true` and `false` are accepted.
fn parse_raw(raw: Option<&str>) -> Result<bool, ApiError> {
    match raw {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ApiError::BadQuery(format!(
            "`raw` is {:?}; use true or false",
            other.chars().take(32).collect::<String>()
        ))),
    }
}

/// CSV (safe cells) when the client accepts `text/csv`, else NDJSON.
fn negotiate(headers: &HeaderMap) -> Format {
    match crate::input::accept::accepts(headers, "text/csv") {
        true => Format::Csv(CsvCells::Safe),
        false => Format::Ndjson,
    }
}

/// The stream's state: the export, what was sent, the permits and the slot it holds,
/// the watch on its client.
struct Body {
    export: Export,
    format: Format,
    records: u64,
    header: bool,
    ended: bool,
    watch: SendWatch,
    _permits: crate::limits::Permits,
    _slot: ExportSlot,
}

impl Body {
    /// The next chunk: the CSV header, a page of records, the end (or error) line.
    async fn next(&mut self) -> Option<Result<Bytes, std::io::Error>> {
        if self.ended {
            return None;
        }
        if std::mem::take(&mut self.header) && !self.format.header().is_empty() {
            return Some(Ok(Bytes::from_static(self.format.header().as_bytes())));
        }
        match self.export.next_page().await {
            Ok(Some(page)) => {
                let mut out = Vec::new();
                for record in &page.records {
                    self.format.write(record, &mut out);
                }
                self.records += page.records.len() as u64;
                Some(Ok(Bytes::from(out)))
            }
            Ok(None) => {
                self.ended = true;
                tracing::info!(records = self.records, "export complete");
                match self.format {
                    Format::Ndjson => Some(Ok(end_line(self.records, &self.export))),
                    Format::Csv(_) => None,
                }
            }
            Err(e) => {
                self.ended = true;
                tracing::warn!(records = self.records, shard = ?e.shard(), error = ?e, "export stopped part-way");
                let e = ApiError::from(e);
                match self.format {
                    Format::Ndjson => Some(Ok(error_line(&e, self.records))),
                    Format::Csv(_) => Some(Err(std::io::Error::other(e.detail()))),
                }
            }
        }
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        if !self.ended {
            tracing::info!(
                records = self.records,
                "export dropped before its end (the client went away or was cut off)"
            );
        }
    }
}

fn end_line(records: u64, export: &Export) -> Bytes {
    let line =
        serde_json::json!({"end": {"records": records, "map_version": export.map_version().0}});
    Bytes::from(format!("{line}\n"))
}

/// The line that ends an NDJSON export that failed part-way: the problem, as a
/// problem+json body would name it, and how many records came before it.
fn error_line(e: &ApiError, records: u64) -> Bytes {
    let mut problem = serde_json::to_value(e.problem()).unwrap_or_default();
    problem["records"] = records.into();
    let line = serde_json::json!({ "error": problem });
    Bytes::from(format!("{line}\n"))
}
