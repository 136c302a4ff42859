//! What a record is, validated once: its id and its JSON document.

use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::member_name::NameIs;
use super::raw_json::RawJson;

/// Longest record id accepted, in bytes.
pub const MAX_ID_BYTES: usize = 256;

/// A record's id within (table, shard key): 1..=256 bytes of text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordId(String);

/// A JSON object PostgreSQL's `jsonb` will accept, kept as its text (bound as the
/// `jsonb` parameter as it is), with its top-level `id` member (the id a record written
/// without one gets).
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    text: RawJson,
    id: Option<Value>,
}

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
    #[error(
        "the JSON number {number} has {scale} digits after the decimal point; PostgreSQL's \
         jsonb holds at most {}",
        super::jsonb_numbers::MAX_SCALE
    )]
    NumberTooFine { number: String, scale: i64 },
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

    /// A fresh random id, for records written without one and without an idempotency key.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    /// A UUID-shaped id from 16 bytes of a hash (RFC 9562 version 8: custom).
    pub(crate) fn from_hash(bytes: [u8; 16]) -> Self {
        Self(
            uuid::Builder::from_custom_bytes(bytes)
                .into_uuid()
                .to_string(),
        )
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
                let id = map.get("id").cloned();
                let text = RawJson::from_value(&Value::Object(map));
                Ok(Self { text, id })
            }
            other => Err(RecordError::NotAnObject(kind(&other))),
        }
    }

    /// [`Document::parse`] for a document's text as the client sent it (serde_json
    /// checked it is JSON), without building it into a tree: only an object's `id`
    /// member is read, and only text that holds `\u0000` is parsed, to name where the
    /// NUL character is (PostgreSQL's `jsonb` refuses one; JSON text cannot hold a NUL
    /// other than as that escape).
    pub fn parse_raw(raw: Box<RawValue>) -> Result<Self, RecordError> {
        let text = raw.get();
        if !text.starts_with('{') {
            return Err(RecordError::NotAnObject(kind_of_text(text)));
        }
        if text.contains("\\u0000") {
            if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) {
                check_nul(&map, &mut String::from("data"))?;
            }
        }
        if let Some((number, scale)) = super::jsonb_numbers::too_fine(text) {
            let number = match number.char_indices().nth(40) {
                Some((cut, _)) => format!("{}…", &number[..cut]),
                None => number.to_owned(),
            };
            return Err(RecordError::NumberTooFine { number, scale });
        }
        let id = serde_json::from_str::<TopLevelId>(text)
            .map_err(|_| RecordError::NotAnObject("malformed JSON"))?
            .0;
        Ok(Self {
            text: RawJson::from_raw(raw),
            id,
        })
    }

    /// The record's id: the one the request names, then `data.id`, then `minted`.
    pub fn derive_id(
        &self,
        explicit: Option<&Value>,
        minted: impl FnOnce() -> RecordId,
    ) -> Result<RecordId, RecordError> {
        Ok(self.named_id(explicit)?.unwrap_or_else(minted))
    }

    /// The id the request gives the record: the one it names, then `data.id`; `None`
    /// when it gives none (the gateway mints one: under an idempotency key, the id the
    /// key gives this record, [`super::idempotency_key::minted_id`]).
    pub fn named_id(&self, explicit: Option<&Value>) -> Result<Option<RecordId>, RecordError> {
        explicit
            .or(self.id.as_ref())
            .map(RecordId::from_json)
            .transpose()
    }

    /// The document's text.
    pub fn as_raw(&self) -> &RawJson {
        &self.text
    }

    /// The document's text, owned (a list's `where` filter, checked as a document).
    pub fn into_raw(self) -> RawJson {
        self.text
    }
}

/// What JSON text is, from its first character (serde_json trimmed the whitespace).
fn kind_of_text(text: &str) -> &'static str {
    match text.as_bytes().first() {
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// An object's top-level `id` member (the last one, as a tree keeps it), read from its
/// text while every other member is skipped unbuilt.
struct TopLevelId(Option<Value>);

impl<'de> serde::Deserialize<'de> for TopLevelId {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        de.deserialize_map(TopLevelIdVisitor)
    }
}

struct TopLevelIdVisitor;

impl<'de> Visitor<'de> for TopLevelIdVisitor {
    type Value = TopLevelId;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TopLevelId, A::Error> {
        let mut id = None;
        while let Some(is_id) = map.next_key_seed(NameIs(Some("id")))? {
            if is_id {
                id = Some(map.next_value::<Value>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(TopLevelId(id))
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
        assert_eq!(
            doc.derive_id(None, RecordId::generate).unwrap().as_str(),
            "42"
        );
        assert_eq!(
            doc.derive_id(Some(&json!("a")), RecordId::generate)
                .unwrap()
                .as_str(),
            "a"
        );
        let doc = Document::parse(json!({"name": "x"})).unwrap();
        assert_eq!(
            doc.derive_id(None, RecordId::generate)
                .unwrap()
                .as_str()
                .len(),
            36
        );
    }

    #[test]
    fn bad_ids_and_documents_are_named() {
        let doc = Document::parse(json!({"id": {"a": 1}})).unwrap();
        assert_eq!(
            doc.derive_id(None, RecordId::generate),
            Err(RecordError::BadId("an object"))
        );
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

    fn raw(text: &str) -> Result<Document, RecordError> {
        Document::parse_raw(serde_json::from_str(text).unwrap())
    }

    #[test]
    fn a_sent_document_keeps_its_text_and_agrees_with_the_tree_parse() {
        let text = r#"{"b":1.50,"id":"x","n":{"id":"inner"},"id":7}"#;
        let doc = raw(text).unwrap();
        // Bound as sent (jsonb normalises it), not re-serialised.
        assert_eq!(doc.as_raw().get(), text);
        // The last top-level `id` wins, as in the tree; a nested one is not it.
        let tree = Document::parse(serde_json::from_str(text).unwrap()).unwrap();
        assert_eq!(
            doc.derive_id(None, RecordId::generate).unwrap().as_str(),
            "7"
        );
        assert_eq!(
            tree.derive_id(None, RecordId::generate).unwrap().as_str(),
            "7"
        );
        // An escaped member name is still `id`.
        assert_eq!(
            raw(r#"{"i\u0064":"e"}"#)
                .unwrap()
                .derive_id(None, RecordId::generate)
                .unwrap()
                .as_str(),
            "e"
        );
        assert_eq!(
            raw(r#"{"name":"x"}"#)
                .unwrap()
                .derive_id(None, RecordId::generate)
                .unwrap()
                .as_str()
                .len(),
            36
        );
        assert_eq!(
            raw(r#"{"id":[1]}"#)
                .unwrap()
                .derive_id(None, RecordId::generate),
            Err(RecordError::BadId("an array"))
        );
    }

    #[test]
    fn a_sent_document_is_refused_as_the_tree_parse_refuses_it() {
        for (text, kind) in [
            ("[1]", "an array"),
            (r#""s""#, "a string"),
            ("true", "a boolean"),
            ("null", "null"),
            ("-1.5", "a number"),
        ] {
            assert_eq!(raw(text), Err(RecordError::NotAnObject(kind)), "{text}");
        }
        assert_eq!(
            raw(r#"{"a":{"b":["ok","bad\u0000"]}}"#),
            Err(RecordError::NulCharacter("data.a.b[1]".into()))
        );
        assert_eq!(
            raw(r#"{"k\u0000":1}"#),
            Err(RecordError::NulCharacter("data.k\0".into()))
        );
        assert_eq!(
            raw(r#"{"v":[1,-1.5e-20000]}"#),
            Err(RecordError::NumberTooFine {
                number: "-1.5e-20000".into(),
                scale: 20001
            })
        );
        // An escaped backslash followed by the text u0000 is no NUL.
        let fine = raw(r#"{"path":"C:\\u0000"}"#).unwrap();
        assert_eq!(fine.as_raw().get(), r#"{"path":"C:\\u0000"}"#);
    }
}
