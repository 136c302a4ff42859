//! Who is calling, as the access check found: a key, or nobody in particular when no
//! key exists. Handlers take it as an extractor to check the tables a key may use.

use std::future::{ready, Ready};
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use control_plane::keys::ApiKey;
use shard_manager::TableName;

use crate::error::ApiError;

/// The caller of a route that needs a scope (put in the request by the access check).
#[derive(Debug, Clone)]
pub enum Caller {
    /// A live key with the route's scope.
    Key(Arc<ApiKey>),
    /// No key exists: a loopback client (protected mode), or any client with
    /// protected mode turned off.
    Anonymous,
}

impl Caller {
    /// The name the audit log gives the caller.
    pub fn name(&self) -> &str {
        match self {
            Self::Key(key) => &key.name,
            Self::Anonymous => "anonymous (no keys)",
        }
    }

    /// The caller's key's name; None without keys (callers are not told apart).
    pub fn key_name(&self) -> Option<&str> {
        match self {
            Self::Key(key) => Some(&key.name),
            Self::Anonymous => None,
        }
    }

    /// Whose idempotency keys these are: the key's name, or '' without keys. Keys of
    /// different callers never meet.
    pub fn scope(&self) -> &str {
        match self {
            Self::Key(key) => &key.name,
            Self::Anonymous => "",
        }
    }

    /// Refuses a table the key is not allowed to use.
    pub fn permit(&self, table: &TableName) -> Result<(), ApiError> {
        match self {
            Self::Key(key) if !key.may_use(table.as_str()) => Err(ApiError::Forbidden(format!(
                "this API key may not use the table {:?}",
                table.as_str()
            ))),
            _ => Ok(()),
        }
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<Caller>()
                .cloned()
                .ok_or(ApiError::Misconfigured(
                    "a route that reads tables has no access check",
                )),
        )
    }
}
