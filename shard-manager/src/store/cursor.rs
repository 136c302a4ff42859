//! List queries: the optional JSON filter, the page size, and the keyset cursor.
//!
//! Lists are ordered by `(updated_at DESC, shard_key DESC, id DESC)`. That tuple is
//! unique within a table across all shards (a shard key lives on one shard), so a
//! cursor naming the last row of a page continues exactly after it: no duplicates, no
//! gaps, even when the pages are merged from several shards.

use chrono::{DateTime, Datelike, Utc};

use super::raw_json::RawJson;
use super::row::Record;

/// Where the next page starts: just after this row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub updated_at: DateTime<Utc>,
    pub shard_key: String,
    pub id: String,
}

/// A cursor that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cursor; pass back the `next` value of the previous page unchanged")]
pub struct CursorError;

impl Cursor {
    pub fn after(record: &Record) -> Self {
        Self {
            updated_at: record.updated_at,
            shard_key: record.shard_key.clone(),
            id: record.id.clone(),
        }
    }

    /// Opaque text form: hex of a compact JSON triple.
    pub fn encode(&self) -> String {
        let json = serde_json::json!([self.updated_at.timestamp_micros(), self.shard_key, self.id]);
        json.to_string()
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    pub fn decode(text: &str) -> Result<Self, CursorError> {
        if !text.len().is_multiple_of(2) || text.len() > 4096 {
            return Err(CursorError);
        }
        let bytes = (0..text.len())
            .step_by(2)
            .map(|i| {
                u8::from_str_radix(text.get(i..i + 2).ok_or(CursorError)?, 16)
                    .map_err(|_| CursorError)
            })
            .collect::<Result<Vec<u8>, _>>()?;
        let (micros, shard_key, id): (i64, String, String) =
            serde_json::from_slice(&bytes).map_err(|_| CursorError)?;
        // A forged cursor could carry what no stored key or id holds.
        if shard_key.contains('\0') || id.contains('\0') {
            return Err(CursorError);
        }
        // Nor a time outside the years rows are written in: PostgreSQL would fail the
        // query on one before 4713 BC.
        let updated_at = DateTime::from_timestamp_micros(micros)
            .filter(|t| (1..=9999).contains(&t.year()))
            .ok_or(CursorError)?;
        Ok(Self {
            updated_at,
            shard_key,
            id,
        })
    }

    /// The list order, newest first: true when `a` comes before `b`.
    pub fn sort_key(
        r: &Record,
    ) -> (
        std::cmp::Reverse<DateTime<Utc>>,
        std::cmp::Reverse<String>,
        std::cmp::Reverse<String>,
    ) {
        use std::cmp::Reverse;
        (
            Reverse(r.updated_at),
            Reverse(r.shard_key.clone()),
            Reverse(r.id.clone()),
        )
    }
}

/// What a list asks for.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub limit: u32,
    /// JSON containment (`data @> filter`), backed by the GIN index; the text the
    /// client sent (checked as a document is), bound as it is, so no digit is lost.
    pub filter: Option<RawJson>,
    pub after: Option<Cursor>,
    /// The most bytes of rows a page holds (see [`super::page`]): a page stops early,
    /// with a cursor for the rest, rather than hold `limit` rows of any size.
    pub max_bytes: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_tampering() {
        let c = Cursor {
            updated_at: DateTime::from_timestamp_micros(1_763_770_000_123_456).unwrap(),
            shard_key: "@alice:matrix.org".into(),
            id: "e-1".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Ok(c.clone()));
        assert_eq!(Cursor::decode("zz"), Err(CursorError));
        let forged = Cursor {
            shard_key: "a\0".into(),
            ..c.clone()
        };
        assert_eq!(Cursor::decode(&forged.encode()), Err(CursorError));
        let ancient = Cursor {
            updated_at: DateTime::from_timestamp_micros(-8_000_000_000_000_000_000).unwrap(),
            ..c.clone()
        };
        assert_eq!(Cursor::decode(&ancient.encode()), Err(CursorError));
        assert_eq!(Cursor::decode(&c.encode()[2..]), Err(CursorError));
    }
}
