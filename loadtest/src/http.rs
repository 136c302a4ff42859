//! One request to the gateway, made through goose so it is timed and counted.
//!
//! [`Call`] describes the request (name in the metrics, method, path, `x-shard-key`,
//! `x-min-lsn`, JSON body); [`send`] makes it with a [`GooseUser`]'s client, drains the
//! body (so the connection goes back to the pool) and returns a [`Reply`] with the
//! headers scenarios look at (`x-shard-lsn`, `x-cache`). Outside a load test (prefill,
//! summary) the same function runs on a single user that records nothing.
//!
//! Goose counts a non-2xx status as a failed request by itself; scenarios only call
//! [`GooseUser::set_failure`] for a 2xx that is still wrong (a bulk write with failed
//! records, a partial fan-out) or `set_success` for a status they expect (a 404 that
//! `ryw` counts as a miss).

use goose::goose::{GooseMethod, GooseRequest, GooseUser, TransactionError};
use goose::metrics::GooseRequestMetric;
use serde_json::Value;

use crate::traces::TraceBook;

/// Routes the request to its shard.
pub const SHARD_KEY: &str = "x-shard-key";
/// The write's position in its shard's WAL, once the gateway returns it.
pub const SHARD_LSN: &str = "x-shard-lsn";
/// Read-your-writes token: serve this read from a server that has replayed this far.
pub const MIN_LSN: &str = "x-min-lsn";
/// On point reads when the gateway's cache is enabled: `hit`, `miss` or `bypass`.
pub const X_CACHE: &str = "x-cache";
/// W3C Trace Context: the trace a request belongs to, sent.
pub const TRACEPARENT: &str = "traceparent";
/// W3C Trace Context level 2: the trace the gateway recorded the request under.
pub const TRACERESPONSE: &str = "traceresponse";

/// A request to make.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    name: &'a str,
    method: GooseMethod,
    path: &'a str,
    shard_key: Option<&'a str>,
    min_lsn: Option<&'a str>,
    body: Option<&'a Value>,
    trace: Option<&'a TraceBook>,
}

impl<'a> Call<'a> {
    /// `GET path`, aggregated in the metrics under `name` (paths carry ids, names do not).
    pub fn get(name: &'a str, path: &'a str) -> Self {
        Self {
            name,
            method: GooseMethod::Get,
            path,
            shard_key: None,
            min_lsn: None,
            body: None,
            trace: None,
        }
    }

    /// `POST path` with a JSON body.
    pub fn post(name: &'a str, path: &'a str, body: &'a Value) -> Self {
        Self {
            method: GooseMethod::Post,
            body: Some(body),
            ..Self::get(name, path)
        }
    }

    /// Sets `x-shard-key`.
    pub fn shard_key(self, key: &'a str) -> Self {
        Self {
            shard_key: Some(key),
            ..self
        }
    }

    /// Sends a fresh `traceparent` and books the answer in `book` (every scenario's
    /// request does; the prefill's and the summary's do not).
    pub fn traced(self, book: &'a TraceBook) -> Self {
        Self {
            trace: Some(book),
            ..self
        }
    }

    /// Sets `x-min-lsn` when there is a token to send.
    pub fn min_lsn(self, lsn: Option<&'a str>) -> Self {
        Self {
            min_lsn: lsn,
            ..self
        }
    }
}

/// What came back.
#[derive(Debug)]
pub struct Reply {
    /// Goose's record of the request, needed to mark it failed or successful afterwards.
    pub request: GooseRequestMetric,
    /// The HTTP status, 0 when no response arrived.
    pub status: u16,
    /// The `x-shard-lsn` response header, if any.
    pub lsn: Option<String>,
    /// The `x-cache` response header, if any.
    pub cache: Option<String>,
    /// The response body.
    pub body: Vec<u8>,
    /// Why no response arrived (connection refused, timeout), with its causes.
    pub transport_error: Option<String>,
}

impl Reply {
    /// The body as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The problem's `detail` (or the start of the body) for messages.
    pub fn detail(&self) -> String {
        if let Some(error) = &self.transport_error {
            return error.clone();
        }
        match self.json() {
            Some(problem) if problem.get("detail").is_some() => {
                format!(
                    "{} {}",
                    self.status,
                    problem["detail"].as_str().unwrap_or("")
                )
            }
            _ => format!(
                "{} {}",
                self.status,
                String::from_utf8_lossy(&self.body[..self.body.len().min(300)])
            ),
        }
    }
}

/// Makes `call` as `user` and reads the whole reply.
pub async fn send(user: &mut GooseUser, call: Call<'_>) -> Result<Reply, Box<TransactionError>> {
    let mut builder = user.get_request_builder(&call.method, call.path)?;
    if let Some(key) = call.shard_key {
        builder = builder.header(SHARD_KEY, key);
    }
    if let Some(lsn) = call.min_lsn {
        builder = builder.header(MIN_LSN, lsn);
    }
    if let Some(body) = call.body {
        builder = builder.json(body);
    }
    let trace = call.trace.map(|book| (book, book.start()));
    if let Some((_, sent)) = &trace {
        builder = builder.header(TRACEPARENT, &sent.traceparent);
    }
    let request = GooseRequest::builder()
        .name(call.name)
        .set_request_builder(builder)
        .build();
    let mut goose = user.request(request).await?;
    let response = match goose.response {
        Ok(response) => response,
        Err(error) => {
            if let Some((book, sent)) = &trace {
                book.finish(sent, goose.request.response_time, call.name, 0, None);
            }
            // Goose has already counted the failed request.
            return Ok(Reply {
                request: goose.request,
                status: 0,
                lsn: None,
                cache: None,
                body: Vec::new(),
                transport_error: Some(error_chain(&error)),
            });
        }
    };
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let lsn = header(SHARD_LSN);
    let cache = header(X_CACHE);
    if let Some((book, sent)) = &trace {
        let answered = header(TRACERESPONSE);
        let millis = goose.request.response_time;
        book.finish(sent, millis, call.name, status, answered.as_deref());
    }
    match response.bytes().await {
        Ok(body) => Ok(Reply {
            request: goose.request,
            status,
            lsn,
            cache,
            body: body.to_vec(),
            transport_error: None,
        }),
        Err(error) => {
            let tag = format!("{}: body cut short: {}", call.name, error_chain(&error));
            user.set_failure(&tag, &mut goose.request, None, None)?;
            Err(Box::new(TransactionError::Custom(tag)))
        }
    }
}

/// An error and its causes on one line: "error sending request: ...: Connection refused".
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}
