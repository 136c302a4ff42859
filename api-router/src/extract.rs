//! Extractors that parse request headers into domain types once, at the edge.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use shard_manager::{Consistency, ShardKey};

use crate::error::ApiError;

pub const SHARD_KEY: &str = "x-shard-key";
pub const CONSISTENCY: &str = "x-consistency";

/// The required `x-shard-key` header, as a [`ShardKey`].
pub struct ShardKeyHeader(pub ShardKey);

/// The `x-shard-key` header when present (bulk writes may carry keys per record).
pub struct OptionalShardKey(pub Option<ShardKey>);

fn shard_key(req: &HttpRequest) -> Result<Option<ShardKey>, ApiError> {
    let Some(value) = req.headers().get(SHARD_KEY) else {
        return Ok(None);
    };
    let text = std::str::from_utf8(value.as_bytes())
        .map_err(|_| ApiError::BadShardKey("the value is not valid UTF-8".into()))?;
    Ok(Some(ShardKey::parse(text)?))
}

impl FromRequest for ShardKeyHeader {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(shard_key(req).and_then(|k| k.map(Self).ok_or(ApiError::MissingShardKey)))
    }
}

impl FromRequest for OptionalShardKey {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(shard_key(req).map(Self))
    }
}

/// The `x-consistency` header, if sent. A `consistency` query parameter, where the
/// endpoint has one, wins over the header.
pub struct ConsistencyHeader(pub Option<Consistency>);

impl FromRequest for ConsistencyHeader {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let parsed = match req.headers().get(CONSISTENCY) {
            None => Ok(None),
            Some(v) => match v.to_str() {
                Ok(text) => Consistency::parse(text).map(Some).map_err(ApiError::from),
                Err(_) => Err(ApiError::BadQuery("x-consistency is not ASCII".into())),
            },
        };
        ready(parsed.map(Self))
    }
}
