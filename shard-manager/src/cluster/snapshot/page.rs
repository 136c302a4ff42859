//! The cursor of a snapshot list's next page: where the page starts (the list's own
//! cursor), which cut, until when it is held, and each shard's exported snapshot. Sent
//! to the client as hex of its JSON behind a `snap-` prefix, as list cursors are hex of
//! theirs; read back checked (an exported snapshot's name goes into SQL text).

use serde::{Deserialize, Serialize};

use super::session::valid_export;

const PREFIX: &str = "snap-";
/// Longest cursor accepted, in bytes of its text.
const MAX_TEXT: usize = 8192;

/// See the module doc.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageCursor {
    /// The list's cursor (`Cursor::encode`) after the last record sent.
    pub after: String,
    /// The cut's id.
    pub cut: String,
    /// When the cut's sessions end (unix ms): later, the page is refused.
    pub until_ms: i64,
    /// (shard, `pg_export_snapshot()`) for every shard read.
    pub exports: Vec<(u32, String)>,
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
        let valid = !cursor.exports.is_empty()
            && cursor.exports.iter().all(|(_, e)| valid_export(e))
            && cursor.cut.len() <= 64;
        valid.then_some(cursor)
    }

    /// Whether `text` is a snapshot list's cursor (by its prefix).
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
        };
        assert_eq!(PageCursor::decode(&cursor.encode()), Some(cursor.clone()));
        let forged = PageCursor {
            exports: vec![(0, "x'; DROP TABLE records; --".into())],
            ..cursor
        };
        assert_eq!(PageCursor::decode(&forged.encode()), None);
        assert_eq!(PageCursor::decode("5b315d"), None);
        assert_eq!(PageCursor::decode("snap-zz"), None);
    }
}
