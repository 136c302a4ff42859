//! Conditional requests on one record (RFC 9110 §13): the record's `ETag`, and the
//! `If-None-Match` of a read and the `If-Match` of a write or delete that compare with it.
//!
//! A record's tag is made from its identity (table, shard key, id) and its version, so it
//! is the same whichever server or cache answers a version, changes with every write,
//! and is never another record's. Clients treat it as opaque; its form is
//! `"<version>.<32 hex digits of XXH3-128 of the identity>"`, always strong.
//!
//! `If-Match` becomes a [`Precondition`] that the shard checks in the write's own
//! statement: the versions of the tags that are this record's (strong comparison: a weak
//! tag never matches), or any version for `*`. `If-None-Match` on a read compares weakly
//! (`W/"x"` matches `"x"`), `*` matching any record that exists.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use serde_json::Value;
use shard_manager::{ClusterError, Precondition};
use xxhash_rust::xxh3::xxh3_128;

use crate::error::ApiError;
use crate::input::idempotency::IdempotencyKeyHeader;
use crate::server::headers::{quote, HeaderError, IF_MATCH, IF_NONE_MATCH};

/// A record's identity as a tag names it: table, shard key, id.
pub type Identity<'a> = (&'a str, &'a str, &'a str);

/// The record's strong entity tag at `version`, quotes included.
pub fn etag(identity: Identity<'_>, version: i64) -> String {
    format!("\"{version}.{:032x}\"", fingerprint(identity))
}

/// The identity's part of its tags: XXH3-128 of each field behind its length.
fn fingerprint((table, key, id): Identity<'_>) -> u128 {
    let mut bytes = Vec::with_capacity(12 + table.len() + key.len() + id.len());
    for field in [table, key, id] {
        bytes.extend_from_slice(&(field.len() as u32).to_le_bytes());
        bytes.extend_from_slice(field.as_bytes());
    }
    xxh3_128(&bytes)
}

/// One entity tag as a client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityTag {
    /// Sent as `W/"..."`.
    pub weak: bool,
    /// What is between the quotes.
    pub opaque: String,
}

impl EntityTag {
    /// The version of `identity` this tag names, if it is one of that record's tags.
    fn version_of(&self, identity: Identity<'_>) -> Option<i64> {
        let (version, hash) = self.opaque.split_once('.')?;
        let ours = format!("{:032x}", fingerprint(identity));
        (hash == ours)
            .then(|| version.parse::<i64>().ok())
            .flatten()
            .filter(|v| *v > 0)
    }
}

/// An `If-Match` or `If-None-Match` value: `*`, or one or more entity tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tags {
    Any,
    List(Vec<EntityTag>),
}

impl Tags {
    /// Parses `* / #entity-tag` (RFC 9110 §13.1.1): empty list elements are allowed, at
    /// least one tag is not; `*` stands alone.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim_matches([' ', '\t']);
        if text == "*" {
            return Ok(Self::Any);
        }
        let mut tags = Vec::new();
        let mut rest = text;
        loop {
            rest = rest.trim_start_matches([' ', '\t']);
            if let Some(after) = rest.strip_prefix(',') {
                rest = after;
                continue;
            }
            if rest.is_empty() {
                break;
            }
            let (tag, after) = one_tag(rest)?;
            tags.push(tag);
            rest = after.trim_start_matches([' ', '\t']);
            if !rest.is_empty() && !rest.starts_with(',') {
                return Err(format!(
                    "expected a comma after an entity tag, found {}",
                    quote(rest)
                ));
            }
        }
        if tags.is_empty() {
            return Err("expected `*` or one or more quoted entity tags, found none".into());
        }
        Ok(Self::List(tags))
    }

    /// `If-None-Match` on a read: whether the record's current tag `etag` matches, by
    /// weak comparison (RFC 9110 §8.8.3.2).
    pub fn matches_weakly(&self, etag: &str) -> bool {
        let current = etag.trim_matches('"');
        match self {
            Self::Any => true,
            Self::List(tags) => tags.iter().any(|t| t.opaque == current),
        }
    }

    /// `If-Match` on a write or delete of `identity`: the condition the shard checks.
    /// Strong comparison: weak tags and other records' tags name no version.
    pub fn precondition(&self, identity: Identity<'_>) -> Precondition {
        match self {
            Self::Any => Precondition::Exists,
            Self::List(tags) => Precondition::AtVersion(
                tags.iter()
                    .filter(|t| !t.weak)
                    .filter_map(|t| t.version_of(identity))
                    .collect(),
            ),
        }
    }
}

/// `entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE`, etagc = %x21 / %x23-7E / obs-text;
/// the tag and what follows it.
fn one_tag(text: &str) -> Result<(EntityTag, &str), String> {
    let (weak, rest) = match text.strip_prefix("W/") {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let bad = || format!("{} is not a quoted entity tag", quote(text));
    let inner = rest.strip_prefix('"').ok_or_else(bad)?;
    let end = inner.find('"').ok_or_else(bad)?;
    let opaque = &inner[..end];
    let allowed = |c: char| c == '\x21' || ('\x23'..='\x7e').contains(&c) || c >= '\u{80}';
    if !opaque.chars().all(allowed) {
        return Err(format!(
            "{} holds a character an entity tag cannot (a space, a control or a quote)",
            quote(text)
        ));
    }
    let tag = EntityTag {
        weak,
        opaque: opaque.to_owned(),
    };
    Ok((tag, &inner[end + 1..]))
}

/// Every line of `name`, joined as one list (a list header may come on several lines);
/// not UTF-8 or not a list of tags: a problem naming the header.
fn tags_in(req: &HttpRequest, name: &'static str) -> Result<Option<Tags>, HeaderError> {
    let mut lines = Vec::new();
    for value in req.headers().get_all(name) {
        let text = std::str::from_utf8(value.as_bytes())
            .map_err(|_| HeaderError::new(name, "the value is not valid UTF-8"))?;
        lines.push(text);
    }
    if lines.is_empty() {
        return Ok(None);
    }
    Tags::parse(&lines.join(","))
        .map(Some)
        .map_err(|reason| HeaderError::new(name, reason))
}

/// The `If-Match` header: a write or delete applies only to the record at one of these
/// versions (`*`: at any).
pub struct IfMatch(pub Option<Tags>);

impl FromRequest for IfMatch {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(tags_in(req, IF_MATCH).map(Self).map_err(ApiError::from))
    }
}

/// The `If-None-Match` header: a read answers 304 when the record's tag is one of these
/// (`*`: when it exists).
pub struct IfNoneMatch(pub Option<Tags>);

impl FromRequest for IfNoneMatch {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            tags_in(req, IF_NONE_MATCH)
                .map(Self)
                .map_err(ApiError::from),
        )
    }
}

/// An endpoint that takes no conditional header (bulk writes; transactions, whose
/// conditions are `if_version` per operation): `If-Match` or `If-None-Match` sent is a
/// 400 naming it, so a client never believes a condition was checked.
pub struct NoConditions;

impl FromRequest for NoConditions {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let sent = [IF_MATCH, IF_NONE_MATCH]
            .into_iter()
            .find(|name| req.headers().contains_key(*name));
        ready(match sent {
            None => Ok(Self),
            Some(name) => Err(HeaderError::new(
                name,
                "this endpoint takes no conditional header: a transaction's operations carry their own `if_version`; a bulk write takes no condition",
            )
            .into()),
        })
    }
}

/// The conditional headers of a write or delete, checked before anything is written: no
/// `If-None-Match` (a write cannot be made conditional on a record's absence here: a
/// transaction's `if_version: 0` does that), and `If-Match` never with an
/// `Idempotency-Key` (a conditional write never applies twice: sent again after it
/// applied, it is refused by its own condition).
pub fn write_headers(
    if_match: &IfMatch,
    if_none_match: &IfNoneMatch,
    key: &IdempotencyKeyHeader,
) -> Result<(), HeaderError> {
    if if_none_match.0.is_some() {
        return Err(HeaderError::new(
            IF_NONE_MATCH,
            "a write or delete takes If-Match, not If-None-Match (to write a record only if it does not exist, send a transaction with `if_version: 0`)",
        ));
    }
    if if_match.0.is_some() && key.0.is_some() {
        return Err(HeaderError::new(
            IF_MATCH,
            "If-Match and Idempotency-Key cannot be sent together: a conditional write never applies twice (sent again after it applied, it is refused by its own condition)",
        ));
    }
    Ok(())
}

/// A single write's `if_version` (the body's form of `If-Match`) as its condition: a
/// whole number from 1, sent with neither `If-Match` nor an `Idempotency-Key`, which a
/// conditional write cannot take either. None when it is absent.
pub fn body_version(
    if_version: Option<&Value>,
    if_match: &IfMatch,
    key: &IdempotencyKeyHeader,
) -> Result<Option<Precondition>, ApiError> {
    let Some(sent) = if_version else {
        return Ok(None);
    };
    let version = sent.as_i64().filter(|v| *v >= 0).ok_or_else(|| {
        ApiError::Unprocessable(format!(
            "`if_version` must be a whole number, 1 or more (the version the record must be at), got {sent}"
        ))
    })?;
    if version == 0 {
        return Err(ApiError::Unprocessable(
            "`if_version: 0` (the record must not exist) is a transaction's: send POST /api/transaction with one `put` and `if_version: 0`".into(),
        ));
    }
    if if_match.0.is_some() {
        return Err(HeaderError::new(
            IF_MATCH,
            "If-Match and the body's `if_version` cannot be sent together: send the condition once",
        )
        .into());
    }
    if key.0.is_some() {
        return Err(ApiError::Unprocessable(
            "`if_version` and an Idempotency-Key cannot be sent together: a conditional write never applies twice (sent again after it applied, it is refused by its own condition)".into(),
        ));
    }
    Ok(Some(Precondition::AtVersion(vec![version])))
}

/// A conditional write's refusal, answered with the record's current version and tag
/// (412); any other error as it is.
pub fn refused(err: ApiError, identity: Identity<'_>) -> ApiError {
    match err {
        ApiError::Cluster(ClusterError::PreconditionFailed { current, .. }) => {
            ApiError::PreconditionFailed {
                current,
                etag: (current > 0).then(|| etag(identity, current)),
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: Identity<'static> = ("users", "user_1", "u1");

    fn tag(weak: bool, opaque: &str) -> EntityTag {
        EntityTag {
            weak,
            opaque: opaque.into(),
        }
    }

    #[test]
    fn a_records_tag_names_its_version_and_no_other_records() {
        let t = etag(ID, 42);
        assert!(t.starts_with("\"42.") && t.ends_with('"'), "{t}");
        assert_eq!(t, etag(ID, 42));
        assert_ne!(t, etag(ID, 43));
        assert_ne!(t, etag(("users", "user_1", "u2"), 42));
        assert_ne!(t, etag(("users", "user_1u", "2"), 42));
        assert_ne!(t, etag(("orders", "user_1", "u1"), 42));
        let Tags::List(parsed) = Tags::parse(&t).unwrap() else {
            panic!("a list")
        };
        assert_eq!(parsed[0].version_of(ID), Some(42));
        assert_eq!(parsed[0].version_of(("users", "user_1", "u2")), None);
    }

    /// Fixed: gateways of two releases side by side, and the tags clients and caches
    /// hold, must agree on a version's tag.
    #[test]
    fn a_tag_is_a_fixed_function_of_identity_and_version() {
        assert_eq!(
            etag(("users", "user_123", "42"), 1),
            "\"1.8ef043f95bad8a0eab157d8b724104be\""
        );
    }

    #[test]
    fn lists_stars_and_weak_tags_parse() {
        assert_eq!(Tags::parse(" * ").unwrap(), Tags::Any);
        assert_eq!(
            Tags::parse(r#""a", W/"b" ,, "c""#).unwrap(),
            Tags::List(vec![tag(false, "a"), tag(true, "b"), tag(false, "c")])
        );
        assert_eq!(
            Tags::parse(r#""""#).unwrap(),
            Tags::List(vec![tag(false, "")])
        );
    }

    #[test]
    fn malformed_values_are_refused_with_a_reason() {
        for bad in [
            "",
            " , ",
            "abc",
            r#""a"b"#,
            r#""a" "b""#,
            r#"w/"a""#,
            r#""a"#,
            r#""a b""#,
            r#"*, "a""#,
            r#""a", *"#,
        ] {
            assert!(Tags::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn if_none_match_compares_weakly() {
        let current = etag(ID, 7);
        let opaque = current.trim_matches('"');
        assert!(Tags::parse(&current).unwrap().matches_weakly(&current));
        assert!(Tags::parse(&format!("W/{current}"))
            .unwrap()
            .matches_weakly(&current));
        assert!(Tags::parse(&format!(r#""x", {current}"#))
            .unwrap()
            .matches_weakly(&current));
        assert!(Tags::Any.matches_weakly(&current));
        assert!(!Tags::parse(&etag(ID, 8)).unwrap().matches_weakly(&current));
        assert!(!Tags::parse(&format!("\"{opaque}x\""))
            .unwrap()
            .matches_weakly(&current));
    }

    #[test]
    fn if_match_names_only_this_records_strong_versions() {
        let list = format!(
            "{}, W/{}, {}, \"junk\"",
            etag(ID, 3),
            etag(ID, 4),
            etag(("users", "user_1", "other"), 5)
        );
        assert_eq!(
            Tags::parse(&list).unwrap().precondition(ID),
            Precondition::AtVersion(vec![3])
        );
        assert_eq!(Tags::Any.precondition(ID), Precondition::Exists);
    }
}
