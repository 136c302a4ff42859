//! The cache's value format: `<version>|<seen_at>|<json>`, an empty JSON for a
//! tombstone, where `seen_at` is a WAL position the entry is known to reflect.

use crate::wal::Lsn;

/// A cached record: its version and its JSON, exactly as [`crate::store::Record`] serializes, served
/// to clients as they are (no decoding and re-encoding on a hit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedRecord {
    pub version: i64,
    /// The entry reflects every commit of its shard up to this WAL position (0: not
    /// known). A read-your-writes token further on is not served from the entry: the
    /// write it names may not be in the cache (its writer could not reach Redis).
    pub seen_at: Lsn,
    pub json: String,
}

/// A parsed cache value: a record, or a tombstone, and the WAL position it reflects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Entry {
    Record(CachedRecord),
    Tombstone { seen_at: Lsn },
}

impl Entry {
    pub(super) fn seen_at(&self) -> Lsn {
        match self {
            Entry::Record(r) => r.seen_at,
            Entry::Tombstone { seen_at } => *seen_at,
        }
    }

    /// Reads a cache value, `<version>|<seen_at>|<json>`, with an empty JSON for a
    /// tombstone. Anything else (never written by a gateway) is an error: the caller
    /// treats the entry as missing.
    pub(super) fn parse(mut text: String) -> Result<Self, ()> {
        let first = text.find('|').ok_or(())?;
        let second = first + 1 + text[first + 1..].find('|').ok_or(())?;
        let version: i64 = text[..first].parse().map_err(|_| ())?;
        let seen_at = Lsn(text[first + 1..second].parse().map_err(|_| ())?);
        let json = text.split_off(second + 1);
        if json.is_empty() {
            return Ok(Entry::Tombstone { seen_at });
        }
        // Only gateways write these values, each a record serde serialized: the bytes are
        // not parsed again on every hit. An object's first and last byte catch a value
        // cut short or padded (anything else was never written by a gateway).
        if !(json.starts_with('{') && json.ends_with('}')) {
            return Err(());
        }
        Ok(Entry::Record(CachedRecord {
            version,
            seen_at,
            json,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::{CachedRecord, Entry};
    use crate::wal::Lsn;

    #[test]
    fn cache_values_are_versioned_json_or_tombstones_with_their_wal_position() {
        assert_eq!(
            Entry::parse(r#"42|7|{"id":"a|b"}"#.into()),
            Ok(Entry::Record(CachedRecord {
                version: 42,
                seen_at: Lsn(7),
                json: r#"{"id":"a|b"}"#.into()
            }))
        );
        assert_eq!(
            Entry::parse("43|0|".into()),
            Ok(Entry::Tombstone { seen_at: Lsn(0) })
        );
        for bad in [
            "",
            "x|1|{}",
            "42|{}",
            "42",
            "42|1|{",
            "42|x|{}",
            "42|1|{} trailing",
        ] {
            assert_eq!(Entry::parse(bad.into()), Err(()), "{bad:?}");
        }
    }
}
