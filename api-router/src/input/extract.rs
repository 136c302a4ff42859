//! Extractors that parse request headers into domain types once, at the edge. The
//! shard key is routed here, and only here: handlers get a [`RoutedKey`].

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use shard_manager::{Consistency, RoutedKey, ShardKey, WriteToken};

use crate::error::ApiError;
use crate::server::headers::{
    self, quote, HeaderError, CONSISTENCY, DURABILITY, MIN_LSN, REQUIRE_ALL_SHARDS, SHARD_KEY,
};
use crate::state::AppState;

/// The required `x-shard-key` header, parsed and routed.
pub struct Routed(pub RoutedKey);

/// The `x-shard-key` header when present, parsed and routed (a list without it reads
/// every shard; bulk records may carry their own keys).
pub struct OptionalRouted(pub Option<RoutedKey>);

/// Parses and routes `x-shard-key`: the one place a request's key is placed.
fn routed_key(req: &HttpRequest) -> Result<Option<RoutedKey>, ApiError> {
    let Some(text) = headers::text(req, SHARD_KEY)? else {
        return Ok(None);
    };
    let bad = |reason: String| ApiError::from(HeaderError::new(SHARD_KEY, reason));
    let key = ShardKey::parse(text).map_err(|e| bad(e.to_string()))?;
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or(ApiError::Misconfigured("AppState is not registered"))?;
    let routed = state.cluster.router().route(key);
    Ok(Some(routed.map_err(|e| bad(e.to_string()))?))
}

impl FromRequest for Routed {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(routed_key(req).and_then(|k| k.map(Self).ok_or(ApiError::MissingShardKey)))
    }
}

impl FromRequest for OptionalRouted {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(routed_key(req).map(Self))
    }
}

/// The `x-consistency` header, if sent. A `consistency` query parameter, where the
/// endpoint has one, wins over the header.
pub struct ConsistencyHeader(pub Option<Consistency>);

impl FromRequest for ConsistencyHeader {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let parsed = headers::text(req, CONSISTENCY).and_then(|text| {
            text.map(|t| Consistency::parse(t).map_err(|e| HeaderError::new(CONSISTENCY, e)))
                .transpose()
        });
        ready(parsed.map(Self).map_err(ApiError::from))
    }
}

/// The read-your-writes token a client sends back (`x-min-lsn`), as returned by a write
/// in `x-shard-lsn`.
pub struct MinLsnHeader(pub Option<WriteToken>);

impl FromRequest for MinLsnHeader {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let parsed = headers::text(req, MIN_LSN).and_then(|text| {
            text.map(|t| WriteToken::parse(t).map_err(|e| HeaderError::new(MIN_LSN, e)))
                .transpose()
        });
        ready(parsed.map(Self).map_err(ApiError::from))
    }
}

/// How durable a write must be before it is acknowledged (`x-durability`; any case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
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
        let parsed = headers::text(req, DURABILITY).and_then(|text| match text {
            None => Ok(Self::Primary),
            Some(v) if v.eq_ignore_ascii_case("primary") => Ok(Self::Primary),
            Some(v) if v.eq_ignore_ascii_case("replica") => Ok(Self::Replica),
            Some(v) => Err(HeaderError::new(
                DURABILITY,
                format!("{} is not \"primary\" or \"replica\"", quote(v)),
            )),
        });
        ready(parsed.map_err(ApiError::from))
    }
}

/// `x-require-all-shards: true`: a fan-out answers 503 rather than a partial result.
pub struct RequireAllShards(pub bool);

impl FromRequest for RequireAllShards {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let parsed = headers::text(req, REQUIRE_ALL_SHARDS).and_then(|text| match text {
            None => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") || v == "1" => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") || v == "0" => Ok(false),
            Some(v) => Err(HeaderError::new(
                REQUIRE_ALL_SHARDS,
                format!("{} is not true or false", quote(v)),
            )),
        });
        ready(parsed.map(Self).map_err(ApiError::from))
    }
}
