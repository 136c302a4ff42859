//! A change stream's resume cursor: self-contained, so any gateway continues a stream
//! another started. Per shard, the snapshot (`pg_current_snapshot()`, `xmin:xmax:xip`)
//! whose transactions were all sent; and, when a page stopped inside a cut's delta, that
//! cut's snapshots and the last change sent of it (shard, version); while a stream that
//! started from a snapshot (`from=snapshot`) is still sending the table as it was at its
//! first cut, the next page of that read. Sent as hex of its JSON behind a `chg-` prefix;
//! read back checked, since a snapshot's text goes into SQL.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

const PREFIX: &str = "chg-";
/// Longest cursor accepted, in bytes of its text (a snapshot lists the transactions in
/// progress when it was taken: a few per connection at most).
const MAX_TEXT: usize = 256 << 10;

/// See the module doc.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeCursor {
    /// Per shard, the snapshot whose transactions' changes were all sent. A shard not
    /// named (a new stream, or a shard added since) starts at its oldest retained change.
    pub sent: BTreeMap<u32, String>,
    /// A cut whose delta a page stopped inside of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<Within>,
    /// A stream started from a snapshot, still sending the table as it was at the cut
    /// `sent` names: the next page of that read at the cut (a snapshot list's cursor,
    /// checked when read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
}

/// A cut's delta, partly sent: every change of it up to `last` in the stream's order
/// (shard, then version) was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Within {
    /// Per shard, the cut's snapshot.
    pub upto: BTreeMap<u32, String>,
    /// The last change sent: (shard, version).
    pub last: (u32, i64),
}

impl ChangeCursor {
    pub fn encode(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        let hex: String = json.bytes().map(|b| format!("{b:02x}")).collect();
        format!("{PREFIX}{hex}")
    }

    /// The cursor `text` holds; why not, when it holds none.
    pub fn decode(text: &str) -> Result<Self, &'static str> {
        let hex = text
            .strip_prefix(PREFIX)
            .ok_or("it does not start with `chg-`")?;
        if hex.len() > MAX_TEXT || !hex.len().is_multiple_of(2) {
            return Err("its length is not a cursor's");
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()
            .ok_or("it is not hex")?;
        let cursor: Self =
            serde_json::from_slice(&bytes).map_err(|_| "it does not hold a position")?;
        let snapshots = cursor
            .sent
            .values()
            .chain(cursor.within.iter().flat_map(|w| w.upto.values()));
        for snapshot in snapshots {
            if !valid_snapshot(snapshot) {
                return Err("it names a snapshot no server gave");
            }
        }
        Ok(cursor)
    }
}

/// Whether `text` is a snapshot as `pg_current_snapshot()::text` writes it:
/// `xmin:xmax:xip,...`, decimal numbers, xmin ≤ each xip < xmax (xmin = xmax when none).
pub fn valid_snapshot(text: &str) -> bool {
    let mut parts = text.split(':');
    let (Some(xmin), Some(xmax), Some(xip), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let number = |s: &str| {
        (!s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    let (Some(xmin), Some(xmax)) = (number(xmin), number(xmax)) else {
        return false;
    };
    xmin <= xmax
        && (xip.is_empty()
            || xip
                .split(',')
                .all(|x| number(x).is_some_and(|x| xmin <= x && x < xmax)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_as_written() {
        let cursor = ChangeCursor {
            sent: BTreeMap::from([(0, "740:745:740,742".into()), (2, "12:12:".into())]),
            within: Some(Within {
                upto: BTreeMap::from([(0, "750:750:".into()), (2, "20:21:20".into())]),
                last: (0, 9_001),
            }),
            snapshot: None,
        };
        let text = cursor.encode();
        assert!(text.starts_with("chg-"));
        assert_eq!(ChangeCursor::decode(&text), Ok(cursor));
        let fresh = ChangeCursor::default();
        assert_eq!(ChangeCursor::decode(&fresh.encode()), Ok(fresh));
        let in_snapshot = ChangeCursor {
            sent: BTreeMap::from([(1, "30:31:30".into())]),
            within: None,
            snapshot: Some("cut-page".into()),
        };
        assert_eq!(ChangeCursor::decode(&in_snapshot.encode()), Ok(in_snapshot));
    }

    #[test]
    fn forged_or_broken_cursors_are_refused_with_a_reason() {
        let hex = |json: &str| -> String {
            let h: String = json.bytes().map(|b| format!("{b:02x}")).collect();
            format!("chg-{h}")
        };
        assert_eq!(
            ChangeCursor::decode("snap-00"),
            Err("it does not start with `chg-`")
        );
        assert_eq!(
            ChangeCursor::decode("chg-abc"),
            Err("its length is not a cursor's")
        );
        assert_eq!(ChangeCursor::decode("chg-zz"), Err("it is not hex"));
        assert_eq!(
            ChangeCursor::decode(&hex("[1]")),
            Err("it does not hold a position")
        );
        assert_eq!(
            ChangeCursor::decode(&hex(r#"{"sent":{"0":"1:2:'; DROP TABLE records; --"}}"#)),
            Err("it names a snapshot no server gave")
        );
    }

    #[test]
    fn snapshots_are_checked_as_postgres_writes_them() {
        assert!(valid_snapshot("740:745:740,742"));
        assert!(valid_snapshot("12:12:"));
        assert!(!valid_snapshot("745:740:"));
        assert!(!valid_snapshot("740:745:746"));
        assert!(!valid_snapshot("740:745"));
        assert!(!valid_snapshot("740:745::"));
        assert!(!valid_snapshot("a:745:"));
        assert!(!valid_snapshot("740:745:,"));
    }
}
