//! The rows of the `records` table as the request path reads and writes them.

use chrono::{DateTime, Utc};

use super::raw_json::RawJson;

/// A stored record as clients see it. Its fields are the `records` table's columns, in
/// the order the read statements select them (`statements::FIND`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    #[serde(rename = "table")]
    pub table_name: String,
    pub shard_key: String,
    pub id: String,
    #[serde(skip, default)]
    pub slot: i32,
    /// The document as stored, as text (see `raw_json`).
    pub data: RawJson,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A row to insert or update.
#[derive(Debug, Clone)]
pub struct NewRecord<'a> {
    pub table_name: &'a str,
    pub shard_key: &'a str,
    pub id: &'a str,
    pub slot: i32,
    pub data: &'a RawJson,
}

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upserted {
    pub version: i64,
    pub created: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// (shard key, id, version, created_at, updated_at) of a row a bulk write stored.
pub type WrittenRow = (String, String, i64, DateTime<Utc>, DateTime<Utc>);

/// Where a write committed, as the primary says right after the commit, in one
/// statement: its WAL position (for the read-your-writes token) and the shard's cache
/// epoch (the key space the writer updates; see `cache::epochs`). `cache_epoch` is None
/// only on a shard without the `cache_epoch` migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitPosition {
    pub wal: String,
    pub cache_epoch: Option<i64>,
}
