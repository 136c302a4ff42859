//! A field's dotted path into a record's JSON, checked at the edge, and the value it
//! names in a document.

use serde_json::Value;

use super::{QueryError, MAX_PATH_SEGMENTS, MAX_SEGMENT_BYTES};

/// A dotted path into a record's JSON, e.g. `address.city`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    text: String,
    segments: Vec<String>,
}

impl FieldPath {
    /// 1 to [`MAX_PATH_SEGMENTS`] segments joined by `.`, each 1 to
    /// [`MAX_SEGMENT_BYTES`] bytes of ASCII letters, digits, `_` and `-`.
    pub fn parse(text: &str) -> Result<Self, QueryError> {
        let bad = |reason: String| QueryError::BadPath {
            path: text.chars().take(80).collect(),
            reason,
        };
        if text.is_empty() {
            return Err(bad("a path is one or more names joined by `.`".into()));
        }
        let segments: Vec<String> = text.split('.').map(str::to_owned).collect();
        if segments.len() > MAX_PATH_SEGMENTS {
            return Err(bad(format!("at most {MAX_PATH_SEGMENTS} segments")));
        }
        for s in &segments {
            if s.is_empty() {
                return Err(bad("an empty segment (two dots, or a dot at an end)".into()));
            }
            if s.len() > MAX_SEGMENT_BYTES {
                return Err(bad(format!(
                    "a segment longer than {MAX_SEGMENT_BYTES} bytes"
                )));
            }
            if let Some(c) = s
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
            {
                return Err(bad(format!(
                    "{c:?} is not allowed; segments hold ASCII letters, digits, `_` and `-`"
                )));
            }
        }
        Ok(Self {
            text: text.to_owned(),
            segments,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// The value at this path, as PostgreSQL's `#>` finds it.
    pub fn get<'a>(&self, doc: &'a Value) -> Option<&'a Value> {
        self.segments.iter().try_fold(doc, |at, s| match at {
            Value::Object(members) => members.get(s),
            Value::Array(items) => {
                let i: i64 = s.parse().ok()?;
                let len = items.len() as i64;
                let i = if i < 0 { len + i } else { i };
                usize::try_from(i).ok().and_then(|i| items.get(i))
            }
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_name_their_fault() {
        assert_eq!(
            FieldPath::parse("address.city").unwrap().segments(),
            ["address", "city"]
        );
        for bad in ["", "a..b", ".a", "a.", "a b", "a.'x'", &"x".repeat(65)] {
            let err = FieldPath::parse(bad).unwrap_err();
            assert!(matches!(err, QueryError::BadPath { .. }), "{bad}: {err}");
        }
        let doc = json!({"a": {"b": [10, 20, 30]}});
        assert_eq!(
            FieldPath::parse("a.b.1").unwrap().get(&doc),
            Some(&json!(20))
        );
        assert_eq!(
            FieldPath::parse("a.b.-1").unwrap().get(&doc),
            Some(&json!(30))
        );
        assert_eq!(FieldPath::parse("a.b.x").unwrap().get(&doc), None);
    }
}
