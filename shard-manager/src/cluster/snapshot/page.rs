//! The cursor of the next page of a list or a query at a cut: where the page starts
//! (the list's or the query's own cursor: the position every shard resumes after),
//! which cut, until when it is held, each shard's exported snapshot and, for a query,
//! which query it pages (so a cursor sent with another filter or sort is refused). Sent
//! to the client as hex of its JSON behind a `snap-` prefix, as list cursors are hex of
//! theirs; read back checked (an exported snapshot's name goes into SQL text).

use serde::{Deserialize, Serialize};

use super::session::valid_export;
use crate::store::query::MAX_CURSOR_TEXT;

const PREFIX: &str = "snap-";
/// Longest cursor accepted, in bytes of its text: a query's own cursor (up to
/// `MAX_CURSOR_TEXT` of text, `QueryCursor::decode`) written again as hex, with the
/// exports.
const MAX_TEXT: usize = 2 * MAX_CURSOR_TEXT + (8 << 10);

/// See the module doc.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageCursor {
    /// The list's cursor (`Cursor::encode`) or the query's (`QueryCursor::encode`)
    /// after the last record sent.
    pub after: String,
    /// The cut's id.
    pub cut: String,
    /// When the cut's sessions end (unix ms): later, the page is refused.
    pub until_ms: i64,
    /// (shard, `pg_export_snapshot()`) for every shard read.
    pub exports: Vec<(u32, String)>,
    /// A query's pages: the query's identity (`Query::identity`); a list's: none
    /// (and absent from its text, as before queries had cursors at a cut).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

impl PageCursor {
    pub fn encode(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        let hex: String = json.bytes().map(|b| format!("{b:02x}")).collect();
        format!("{PREFIX}{hex}")
    }

    /// The cursor `text` holds, None when it is not one (or carries what no export is).
    pub fn decode(text: &str) -> Option<Self> {
        let hex = text.strip_prefix(PREFIX)?;
        if hex.len() > MAX_TEXT || !hex.len().is_multiple_of(2) {
            return None;
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        let cursor: Self = serde_json::from_slice(&bytes).ok()?;
        // One export per shard: a shard named twice would start a session per entry.
        let mut shards: Vec<u32> = cursor.exports.iter().map(|(s, _)| *s).collect();
        shards.sort_unstable();
        shards.dedup();
        let valid = !cursor.exports.is_empty()
            && shards.len() == cursor.exports.len()
            && cursor.exports.iter().all(|(_, e)| valid_export(e))
            && cursor.cut.len() <= 64
            && cursor.query.as_ref().is_none_or(|q| q.len() <= 64);
        valid.then_some(cursor)
    }

    /// Whether `text` is a cursor at a cut (by its prefix).
    pub fn is_one(text: &str) -> bool {
        text.starts_with(PREFIX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_as_written_and_forged_exports_are_refused() {
        let cursor = PageCursor {
            after: "5b315d".into(),
            cut: "c0ffee".into(),
            until_ms: 1_700_000_000_000,
            exports: vec![
                (0, "00000003-0000001B-1".into()),
                (2, "00000004-0000002C-1".into()),
            ],
            query: None,
        };
        assert_eq!(PageCursor::decode(&cursor.encode()), Some(cursor.clone()));
        // A list's cursor has no `query` field; only a query's cursor carries one.
        let text = cursor.encode();
        let json: Vec<u8> = (PREFIX.len()..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect();
        assert!(!String::from_utf8(json).unwrap().contains("query"));
        let query = PageCursor {
            query: Some("9f86d081884c7d659a2feaa0c55ad015".into()),
            ..cursor.clone()
        };
        assert_eq!(PageCursor::decode(&query.encode()), Some(query));
        let forged = PageCursor {
            exports: vec![(0, "x'; DROP TABLE records; --".into())],
            ..cursor.clone()
        };
        assert_eq!(PageCursor::decode(&forged.encode()), None);
        // A shard named twice (thousands of times, it would start a session each).
        let repeated = PageCursor {
            exports: vec![(0, "00000003-0000001B-1".into()); 3],
            ..cursor
        };
        assert_eq!(PageCursor::decode(&repeated.encode()), None);
        assert_eq!(PageCursor::decode("5b315d"), None);
        assert_eq!(PageCursor::decode("snap-zz"), None);
    }
}
