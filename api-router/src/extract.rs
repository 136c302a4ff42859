//! Extractors that parse request headers into domain types once, at the edge.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use shard_manager::{Consistency, ShardKey, WriteToken};

use crate::error::ApiError;
use crate::state::AppState;

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
    let key = ShardKey::parse(text)?;
    // Under `routing.numeric`, keys must also be integers.
    if let Some(state) = req.app_data::<web::Data<AppState>>() {
        state.cluster.router().check(&key)?;
    }
    Ok(Some(key))
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

pub const MIN_LSN: &str = "x-min-lsn";
pub const SHARD_LSN: &str = "x-shard-lsn";
pub const DURABILITY: &str = "x-durability";

/// The read-your-writes token a client sends back (`x-min-lsn`), as returned by a write
/// in `x-shard-lsn`.
pub struct MinLsnHeader(pub Option<WriteToken>);

impl FromRequest for MinLsnHeader {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let parsed = match req.headers().get(MIN_LSN) {
            None => Ok(None),
            Some(v) => WriteToken::parse(v.to_str().unwrap_or_default())
                .map(Some)
                .map_err(ApiError::from),
        };
        ready(parsed.map(Self))
    }
}

/// How durable a write must be before it is acknowledged (`x-durability`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Committed on the primary (always the case).
    #[default]
    Primary,
    /// Also applied by at least one replica.
    Replica,
}

impl FromRequest for Durability {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let parsed = match req
            .headers()
            .get(DURABILITY)
            .map(|v| v.to_str().unwrap_or_default())
        {
            None => Ok(Self::Primary),
            Some(v) if v.eq_ignore_ascii_case("primary") => Ok(Self::Primary),
            Some(v) if v.eq_ignore_ascii_case("replica") => Ok(Self::Replica),
            Some(v) => Err(ApiError::BadQuery(format!(
                "x-durability is {:?}; use \"primary\" or \"replica\"",
                v.chars().take(32).collect::<String>()
            ))),
        };
        ready(parsed)
    }
}

pub const REQUIRE_ALL_SHARDS: &str = "x-require-all-shards";

/// `x-require-all-shards: true`: a fan-out answers 503 rather than a partial result.
pub struct RequireAllShards(pub bool);

impl FromRequest for RequireAllShards {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let parsed = match req
            .headers()
            .get(REQUIRE_ALL_SHARDS)
            .map(|v| v.to_str().unwrap_or_default())
        {
            None => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") || v == "1" => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") || v == "0" => Ok(false),
            Some(_) => Err(ApiError::BadQuery(
                "x-require-all-shards must be true or false".into(),
            )),
        };
        ready(parsed.map(Self))
    }
}
