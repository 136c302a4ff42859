//! What a record is, validated once: its id and its JSON document.

use serde_json::{Map, Value};

/// Longest record id accepted, in bytes.
pub const MAX_ID_BYTES: usize = 256;

/// A record's id within (table, shard key): 1..=256 bytes of text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordId(String);

/// A JSON object PostgreSQL's `jsonb` will accept.
#[derive(Debug, Clone, PartialEq)]
pub struct Document(Map<String, Value>);

/// Why a record cannot be stored. Every variant is the client's to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("`data` must be a JSON object, got {0}")]
    NotAnObject(&'static str),
    #[error("the id must be a non-empty string or an integer, got {0}")]
    BadId(&'static str),
    #[error("the id is {0} bytes; at most {MAX_ID_BYTES} bytes are allowed")]
    IdTooLong(usize),
    #[error(
        "the JSON contains a NUL character (\\u0000) at {0}, which PostgreSQL's jsonb cannot store"
    )]
    NulCharacter(String),
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl RecordId {
    /// Accepts a string (1..=256 bytes) or an integer (kept as its decimal text).
    pub fn from_json(v: &Value) -> Result<Self, RecordError> {
        let text = match v {
            Value::String(s) if !s.is_empty() => s.clone(),
            Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
            Value::String(_) => return Err(RecordError::BadId("an empty string")),
            other => return Err(RecordError::BadId(kind(other))),
        };
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self, RecordError> {
        if text.is_empty() {
            return Err(RecordError::BadId("an empty string"));
        }
        if text.len() > MAX_ID_BYTES {
            return Err(RecordError::IdTooLong(text.len()));
        }
        if text.contains('\0') {
            return Err(RecordError::NulCharacter("the id".into()));
        }
        Ok(Self(text.to_owned()))
    }

    /// An id as a shard stored it (it was parsed before it was written).
    pub(crate) fn stored(text: String) -> Self {
        Self(text)
    }

    /// A fresh random id, for records written without one.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Document {
    /// Accepts a JSON object whose every key and string is storable in `jsonb`.
    pub fn parse(v: Value) -> Result<Self, RecordError> {
        match v {
            Value::Object(map) => {
                check_nul(&map, &mut String::from("data"))?;
                Ok(Self(map))
            }
            other => Err(RecordError::NotAnObject(kind(&other))),
        }
    }

    /// The id a record gets when the request names none: `data.id`, then a new UUID.
    pub fn derive_id(&self, explicit: Option<&Value>) -> Result<RecordId, RecordError> {
        match explicit.or_else(|| self.0.get("id")) {
            Some(v) => RecordId::from_json(v),
            None => Ok(RecordId::generate()),
        }
    }

    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    pub fn into_value(self) -> Value {
        Value::Object(self.0)
    }
}

fn check_nul(map: &Map<String, Value>, path: &mut String) -> Result<(), RecordError> {
    for (k, v) in map {
        let len = path.len();
        path.push('.');
        path.push_str(k);
        if k.contains('\0') {
            return Err(RecordError::NulCharacter(path.clone()));
        }
        check_value(v, path)?;
        path.truncate(len);
    }
    Ok(())
}

fn check_value(v: &Value, path: &mut String) -> Result<(), RecordError> {
    match v {
        Value::String(s) if s.contains('\0') => Err(RecordError::NulCharacter(path.clone())),
        Value::Object(m) => check_nul(m, path),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                check_value(item, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn id_comes_from_request_then_data_then_uuid() {
        let doc = Document::parse(json!({"id": 42, "name": "x"})).unwrap();
        assert_eq!(doc.derive_id(None).unwrap().as_str(), "42");
        assert_eq!(doc.derive_id(Some(&json!("a"))).unwrap().as_str(), "a");
        let doc = Document::parse(json!({"name": "x"})).unwrap();
        assert_eq!(doc.derive_id(None).unwrap().as_str().len(), 36);
    }

    #[test]
    fn bad_ids_and_documents_are_named() {
        let doc = Document::parse(json!({"id": {"a": 1}})).unwrap();
        assert_eq!(doc.derive_id(None), Err(RecordError::BadId("an object")));
        assert_eq!(
            Document::parse(json!([1, 2])),
            Err(RecordError::NotAnObject("an array"))
        );
        assert_eq!(
            RecordId::parse(&"x".repeat(257)),
            Err(RecordError::IdTooLong(257))
        );
        assert_eq!(
            RecordId::from_json(&json!(1.5)),
            Err(RecordError::BadId("a number"))
        );
    }

    #[test]
    fn nul_characters_are_found_with_their_path() {
        let err = Document::parse(json!({"a": {"b": ["ok", "bad\u{0}"]}})).unwrap_err();
        assert_eq!(err, RecordError::NulCharacter("data.a.b[1]".into()));
    }
}
