//! The `Idempotency-Key` request header (IETF httpapi draft): a client's name for one
//! write, so that sending it again (after a timeout, a dropped connection, a gateway
//! that died before answering) writes nothing twice. The shard stores the answer with
//! the write, in the same statement ([`shard_manager::store::idempotent_answer`]).
//!
//! A key is 1 to 255 visible ASCII characters, bare or as a quoted structured-field
//! string (`"abc"`). Keys belong to their caller: two API keys never share one.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use serde_json::value::RawValue;
use shard_manager::store::IdempotencyKey;

use crate::access::Caller;
use crate::error::ApiError;
use crate::server::headers::{self, HeaderError, IDEMPOTENCY_KEY, IDEMPOTENCY_REPLAYED};

/// Longest key accepted, in characters.
pub const MAX_KEY_CHARS: usize = 255;

/// The request's `Idempotency-Key`, when it sent one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKeyHeader(pub Option<String>);

impl IdempotencyKeyHeader {
    /// The [`IdempotencyKey`] this request is sent with (caller, key, fingerprint and
    /// time to live), when it has a key: what the shard keeps for it. `describe` lists the
    /// request as sent (operation, table, keys, body), so that the same key sent with
    /// another request is refused; it runs only when there is a key.
    pub fn for_request(
        &self,
        caller: &Caller,
        ttl_secs: u32,
        describe: impl FnOnce() -> Vec<String>,
    ) -> Option<IdempotencyKey> {
        let key = self.0.as_deref()?;
        let parts = describe();
        let parts: Vec<&[u8]> = parts.iter().map(|p| p.as_bytes()).collect();
        Some(IdempotencyKey::new(
            caller.scope(),
            key,
            &parts,
            i64::from(ttl_secs),
        ))
    }
}

/// How long the answer to a write sent under the gateway's own key is kept: long enough
/// for the gateway's own retries on a new primary (at most `failover.hold_ms`, 2 min).
pub const GATEWAY_KEY_TTL_SECS: i64 = 300;

/// The key a single write or delete is sent with: the client's when it sent one, else,
/// when `on` (`failover.key_every_write`), one of the gateway's own, random, in a scope
/// of its own beside the caller's (no client key ever meets it), so that the write's
/// fate is never unknown: lost on the wire with its primary, it is sent again on the new
/// primary as a keyed one is, and its record answers the second copy if the first
/// committed.
pub fn sent_with(
    clients: Option<IdempotencyKey>,
    caller: &Caller,
    on: bool,
) -> Option<IdempotencyKey> {
    clients.or_else(|| on.then(|| IdempotencyKey::gateways(caller.scope(), GATEWAY_KEY_TTL_SECS)))
}

/// A document's text in one spelling (members sorted, no spaces), so that a request
/// resent with its key is the same request however its JSON was laid out.
pub fn canonical(data: &RawValue) -> String {
    serde_json::from_str::<serde_json::Value>(data.get())
        .map_or_else(|_| data.get().to_owned(), |v| v.to_string())
}

/// Marks an answer that an earlier request with the same key earned.
pub fn mark_replayed(res: &mut HttpResponse, replayed: bool) {
    if replayed {
        res.headers_mut().insert(
            HeaderName::from_static(IDEMPOTENCY_REPLAYED),
            HeaderValue::from_static("true"),
        );
    }
}

/// Parses a key: bare token or sf-string, visible ASCII, 1 to 255 characters.
pub fn parse(text: &str) -> Result<String, HeaderError> {
    let bad = |reason: &str| HeaderError::new(IDEMPOTENCY_KEY, reason);
    let key = match text.strip_prefix('"') {
        Some(rest) => unquote(rest)
            .ok_or_else(|| bad("a quoted key must end with `\"` and escape only `\\` and `\"`"))?,
        None => text.to_owned(),
    };
    if key.is_empty() {
        return Err(bad(
            "the key is empty; send 1 to 255 visible ASCII characters",
        ));
    }
    if key.len() > MAX_KEY_CHARS {
        return Err(bad(&format!(
            "the key is {} characters; at most {MAX_KEY_CHARS}",
            key.len()
        )));
    }
    if let Some(c) = key.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(bad(&format!(
            "{c:?} is not allowed; a key is visible ASCII characters (no spaces)"
        )));
    }
    Ok(key)
}

/// The inside of a quoted string (after its opening quote), escapes undone.
fn unquote(rest: &str) -> Option<String> {
    let mut out = String::with_capacity(rest.len());
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                e @ ('\\' | '"') => out.push(e),
                _ => return None,
            },
            '"' => return chars.next().is_none().then_some(out),
            c => out.push(c),
        }
    }
    None
}

impl FromRequest for IdempotencyKeyHeader {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let parsed = headers::text(req, IDEMPOTENCY_KEY)
            .and_then(|text| text.map(parse).transpose())
            .map(Self)
            .map_err(ApiError::from);
        ready(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_and_quoted_keys_parse_alike() {
        assert_eq!(parse("order-42").unwrap(), "order-42");
        assert_eq!(parse("\"order-42\"").unwrap(), "order-42");
        assert_eq!(parse(r#""a\"b\\c""#).unwrap(), r#"a"b\c"#);
        let longest = "k".repeat(MAX_KEY_CHARS);
        assert_eq!(parse(&longest).unwrap(), longest);
    }

    #[test]
    fn bad_keys_are_refused_naming_the_reason() {
        let reason = |t: &str| parse(t).unwrap_err().reason;
        assert!(reason("").contains("empty"), "{}", reason(""));
        assert!(reason("\"\"").contains("empty"));
        assert!(reason(&"k".repeat(256)).contains("256 characters"));
        assert!(reason("two words").contains("' '"));
        assert!(reason("ключ").contains("'к'"));
        assert!(reason("\"open").contains("quoted"));
        assert!(reason("\"a\"b\"").contains("quoted"));
        assert!(reason(r#""a\nb""#).contains("quoted"));
        assert_eq!(parse("x").unwrap(), "x");
    }
}
