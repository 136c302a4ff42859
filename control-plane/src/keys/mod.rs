//! API keys: who may call a gateway, and for what.
//!
//! A key is a random secret with a name, [`Scopes`] and optionally a list of tables.
//! The admin CLI (`shard-admin keys ...`) creates (or adopts), lists, revokes and
//! rotates keys in the metadata database, which stores only each secret's SHA-256;
//! gateways hold the live keys in memory ([`KeyRing`]) and follow every change within
//! milliseconds (LISTEN/NOTIFY, a poll as fallback). Nothing here knows HTTP: the
//! gateway maps a presented key to a caller and a missing scope to its own answers.
//!
//! With no live key at all a gateway runs in protected mode (loopback clients only);
//! once one exists, every client needs a key.
//!
//! ## Layout
//! - [`scope`]: [`Scope`] and a key's [`Scopes`], parsed from `read,write`.
//! - [`limits`]: a key's own rate, burst and per-shard concurrency ([`KeyLimits`]), each
//!   a number, none, or the gateways' default.
//! - [`name`]: [`KeyName`], how people and the audit log call a key.
//! - [`secret`]: new secrets ([`Secret`]) and what is stored of them ([`KeyHash`]).
//! - [`store`]: create (or adopt), list, revoke, rotate, limit; the live [`KeyTable`];
//!   the channel a change is announced on. (The `api_keys` table is a metadata
//!   migration.)
//! - [`ring`]: a gateway's [`KeyRing`] and the [`KeyFollower`] that keeps it current.

pub mod limits;
pub mod name;
pub mod ring;
pub mod scope;
pub mod secret;
pub mod store;

pub use limits::{KeyLimits, Limit, LimitArgs};
pub use name::KeyName;
pub use ring::{KeyFollower, KeyRing};
pub use scope::{Scope, Scopes};
pub use secret::{KeyHash, Secret};
pub use store::{ApiKey, KeyRow, KeyTable, NewKey};

use crate::map::MapError;

/// Why a key command or a key reload failed. A refused command changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0}")]
    Invalid(String),
    #[error("a live key is already named {0:?}: revoke or rotate it, or choose another name")]
    NameTaken(String),
    #[error("no live key is named {0:?} (`shard-admin keys list` shows them)")]
    NoSuchKey(String),
    #[error(transparent)]
    Map(#[from] MapError),
    #[error("the metadata database did not answer: {0}")]
    Unreachable(String),
    #[error("the api_keys table holds a row that cannot be read: {0}")]
    Corrupt(String),
    #[error("metadata query failed: {0}")]
    Query(#[from] tokio_postgres::Error),
}
