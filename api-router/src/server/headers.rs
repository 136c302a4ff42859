//! Every header the gateway reads or writes, by name, and the one rule for reading one.
//!
//! The rule: a header is UTF-8 text. A value that is not is refused with a 400 problem
//! that names the header (never an empty value standing in for it). What the text
//! must be is then up to the header's own parser, whose error names the header too.

use actix_web::HttpRequest;

/// The request's shard key (requests), 1 to 256 bytes of UTF-8.
pub const SHARD_KEY: &str = "x-shard-key";
/// `eventual` or `strong` (requests).
pub const CONSISTENCY: &str = "x-consistency";
/// A read-your-writes token sent back (requests).
pub const MIN_LSN: &str = "x-min-lsn";
/// The read-your-writes token of a write (responses).
pub const SHARD_LSN: &str = "x-shard-lsn";
/// `primary` or `replica`: when a write is acknowledged (requests).
pub const DURABILITY: &str = "x-durability";
/// `true`: a fan-out answers 503 rather than a partial result (requests).
pub const REQUIRE_ALL_SHARDS: &str = "x-require-all-shards";
/// `hit`, `miss` or `bypass` on point reads when the cache is on (responses).
pub const X_CACHE: &str = "x-cache";
/// `true` on a fan-out that some shards did not answer (responses).
pub const PARTIAL_RESULTS: &str = "x-partial-results";
/// A client's key for a write it may send again: each key is written once (requests).
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// `true` when the answer is an earlier request's with the same key (responses).
pub const IDEMPOTENCY_REPLAYED: &str = "idempotency-replayed";
/// The record's entity tag at its version, opaque (responses: point reads, writes, a
/// write's 412).
pub const ETAG: &str = "etag";
/// Entity tags (or `*`) a write or delete must match, else 412 (requests).
pub const IF_MATCH: &str = "if-match";
/// Entity tags (or `*`) for which a point read answers 304 (requests).
pub const IF_NONE_MATCH: &str = "if-none-match";
/// Echoed or generated request id (both).
pub const REQUEST_ID: &str = "x-request-id";
/// The caller's W3C trace context, continued when tracing is on (requests).
pub const TRACEPARENT: &str = "traceparent";
/// Vendor data of the caller's trace, passed on with it (requests).
pub const TRACESTATE: &str = "tracestate";
/// The trace and server span of this answer, `00-<trace-id>-<span-id>-<flags>` (W3C
/// Trace Context level 2; responses, when tracing is on).
pub const TRACERESPONSE: &str = "traceresponse";
/// A rate-limited key's policy, `"default";q=200;w=2` (responses; IETF ratelimit draft).
pub const RATELIMIT_POLICY: &str = "ratelimit-policy";
/// What is left of that policy now, `"default";r=42;t=1` (responses).
pub const RATELIMIT: &str = "ratelimit";

/// A header that is present but not what it must be (a 400 naming it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {header} header: {reason}")]
pub struct HeaderError {
    pub header: &'static str,
    pub reason: String,
}

impl HeaderError {
    pub fn new(header: &'static str, reason: impl std::fmt::Display) -> Self {
        Self {
            header,
            reason: reason.to_string(),
        }
    }
}

/// Most bytes of a bad value quoted back in a problem.
const QUOTE_BYTES: usize = 32;

/// The header's text, `None` when absent; not UTF-8 is a client mistake naming it.
pub fn text<'r>(req: &'r HttpRequest, name: &'static str) -> Result<Option<&'r str>, HeaderError> {
    let Some(value) = req.headers().get(name) else {
        return Ok(None);
    };
    std::str::from_utf8(value.as_bytes())
        .map(Some)
        .map_err(|_| {
            let shown = quote_bytes(value.as_bytes());
            HeaderError::new(
                name,
                format!("the value is not valid UTF-8 (starts {shown})"),
            )
        })
}

/// A client's value, shortened and escaped, for an error message.
pub fn quote(value: &str) -> String {
    let mut end = value.len().min(QUOTE_BYTES);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    let more = if end < value.len() { "…" } else { "" };
    format!("{:?}{more}", &value[..end])
}

fn quote_bytes(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(QUOTE_BYTES)];
    format!("{:?}", String::from_utf8_lossy(shown))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;
    use actix_web::test::TestRequest;

    #[test]
    fn text_is_utf8_or_a_problem_naming_the_header() {
        let req = TestRequest::default()
            .insert_header((SHARD_KEY, "ключ"))
            .to_http_request();
        assert_eq!(text(&req, SHARD_KEY).unwrap(), Some("ключ"));
        assert_eq!(text(&req, CONSISTENCY).unwrap(), None);

        let req = TestRequest::default()
            .insert_header((CONSISTENCY, HeaderValue::from_bytes(b"str\xffong").unwrap()))
            .to_http_request();
        let err = text(&req, CONSISTENCY).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid x-consistency header: the value is not valid UTF-8 (starts \"str\u{fffd}ong\")"
        );
    }

    #[test]
    fn quotes_are_short_and_cut_on_a_character() {
        assert_eq!(quote("strong"), "\"strong\"");
        let long = "é".repeat(40);
        assert_eq!(quote(&long), format!("{:?}…", "é".repeat(16)));
    }
}
