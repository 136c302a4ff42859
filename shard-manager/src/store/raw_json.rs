//! A record's JSON document as PostgreSQL's `jsonb` text, kept as text both ways: read,
//! it is checked to be JSON but never built into a tree, and written out as it is;
//! written, the client's text is bound as the `jsonb` parameter as it came. (A read
//! used to parse every document into a tree only to serialise it again, and a write
//! built the request's document into a tree only to serialise it for the parameter.)

use std::io::Write;

use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Jsonb;
use serde_json::value::RawValue;
use serde_json::Value;

/// A JSON document, as text.
#[derive(Debug, Clone, FromSqlRow, AsExpression, serde::Serialize, serde::Deserialize)]
#[diesel(sql_type = Jsonb)]
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

impl FromSql<Jsonb, Pg> for RawJson {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        // jsonb's binary form: a version byte (1), then the JSON text.
        let bytes = value.as_bytes();
        let Some((1, text)) = bytes.split_first() else {
            return Err("unsupported jsonb version".into());
        };
        let text = std::str::from_utf8(text)?;
        Ok(Self(RawValue::from_string(text.to_owned())?))
    }
}

impl ToSql<Jsonb, Pg> for RawJson {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        // jsonb's binary form: a version byte (1), then the JSON text.
        out.write_all(&[1])?;
        out.write_all(self.get().as_bytes())?;
        Ok(serialize::IsNull::No)
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
