//! A record's JSON document as PostgreSQL's `jsonb` text, kept as text both ways: read,
//! it is checked to be JSON but never built into a tree, and written out as it is;
//! written, the client's text is bound as the `jsonb` parameter as it came: no document
//! is built into a tree only to be serialised again.
//! The wire client writes and reads `jsonb`'s binary form (`wire::codec`).

use serde_json::value::RawValue;
use serde_json::Value;

/// A JSON document, as text.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct RawJson(Box<RawValue>);

impl RawJson {
    /// A document's text as a client sent it (serde_json checked it is JSON).
    pub fn from_raw(raw: Box<RawValue>) -> Self {
        Self(raw)
    }

    /// The text of a parsed document (a writer's, for the cache).
    pub fn from_value(value: &Value) -> Self {
        // Serialising a `Value` cannot fail: its keys are strings.
        Self(serde_json::value::to_raw_value(value).unwrap_or_else(|_| RawValue::NULL.to_owned()))
    }

    /// The document's text, owned.
    pub fn into_raw(self) -> Box<RawValue> {
        self.0
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// A tree of the document, for callers that look inside it.
    pub fn to_value(&self) -> Value {
        serde_json::from_str(self.0.get()).unwrap_or(Value::Null)
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_keeps_its_text_and_serialises_as_it_is() {
        let raw = RawJson::from_value(&serde_json::json!({"b": 1, "a": [true, null]}));
        assert_eq!(raw.get(), r#"{"a":[true,null],"b":1}"#);
        let wrapped = serde_json::json!({"data": raw});
        assert_eq!(wrapped.to_string(), r#"{"data":{"a":[true,null],"b":1}}"#);
        assert_eq!(raw.to_value()["b"], 1);
        let back: RawJson = serde_json::from_str(r#"{"x": "y"}"#).unwrap();
        assert_eq!(back.get(), r#"{"x": "y"}"#);
    }
}
