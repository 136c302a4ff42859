//! Columns in PostgreSQL's binary format, read from a row in order: each kind either
//! required (NULL is an undecodable value) or nullable. A value that does not decode is
//! [`WireError::Undecodable`] (the data's fault); a row short of columns is a protocol
//! error.

use chrono::{DateTime, Utc};
use fallible_iterator::FallibleIterator;
use postgres_protocol::message::backend::{DataRowBody, DataRowRanges};
use postgres_protocol::types;

use super::values::PG_EPOCH_UNIX_MICROS;
use crate::store::RawJson;
use crate::wire::error::WireError;

type Boxed = Box<dyn std::error::Error + Sync + Send>;

/// Reads one row's columns in order.
pub(in crate::wire) struct Columns<'a> {
    row: &'a DataRowBody,
    ranges: DataRowRanges<'a>,
}

impl<'a> Columns<'a> {
    pub(in crate::wire) fn new(row: &'a DataRowBody) -> Self {
        Self {
            row,
            ranges: row.ranges(),
        }
    }

    /// The next column's bytes, None for NULL.
    fn next_raw(&mut self) -> Result<Option<&'a [u8]>, WireError> {
        let range = self
            .ranges
            .next()?
            .ok_or_else(|| WireError::Protocol("a row with fewer columns than asked".into()))?;
        Ok(range.map(|r| &self.row.buffer()[r]))
    }

    /// The next column, which must not be NULL.
    fn required<T>(
        &mut self,
        what: &str,
        read: impl FnOnce(&'a [u8]) -> Result<T, WireError>,
    ) -> Result<T, WireError> {
        let raw = self
            .next_raw()?
            .ok_or_else(|| WireError::Undecodable(format!("{what} was NULL")))?;
        read(raw)
    }

    /// The next column, None for NULL.
    fn nullable<T>(
        &mut self,
        read: impl FnOnce(&'a [u8]) -> Result<T, WireError>,
    ) -> Result<Option<T>, WireError> {
        self.next_raw()?.map(read).transpose()
    }

    pub(in crate::wire) fn int8(&mut self) -> Result<i64, WireError> {
        self.required("an int8", int8)
    }

    pub(in crate::wire) fn nullable_int8(&mut self) -> Result<Option<i64>, WireError> {
        self.nullable(int8)
    }

    pub(in crate::wire) fn int4(&mut self) -> Result<i32, WireError> {
        self.required("an int4", |raw| types::int4_from_sql(raw).map_err(decode))
    }

    /// A `jsonb` column as its JSON text, checked to be JSON as `RawJson` requires.
    pub(in crate::wire) fn jsonb(&mut self) -> Result<RawJson, WireError> {
        let text = self.required("a jsonb", jsonb_text)?;
        let raw = serde_json::value::RawValue::from_string(text.to_owned())
            .map_err(|e| decode(e.into()))?;
        Ok(RawJson::from_raw(raw))
    }

    /// A nullable `jsonb` column, parsed.
    pub(in crate::wire) fn nullable_json(
        &mut self,
    ) -> Result<Option<serde_json::Value>, WireError> {
        self.nullable(|raw| serde_json::from_str(jsonb_text(raw)?).map_err(|e| decode(e.into())))
    }

    pub(in crate::wire) fn text(&mut self) -> Result<String, WireError> {
        self.required("a text", text)
    }

    pub(in crate::wire) fn nullable_text(&mut self) -> Result<Option<String>, WireError> {
        self.nullable(text)
    }

    pub(in crate::wire) fn boolean(&mut self) -> Result<bool, WireError> {
        self.required("a bool", boolean)
    }

    pub(in crate::wire) fn nullable_boolean(&mut self) -> Result<Option<bool>, WireError> {
        self.nullable(boolean)
    }

    pub(in crate::wire) fn timestamptz(&mut self) -> Result<DateTime<Utc>, WireError> {
        self.required("a timestamptz", timestamptz)
    }

    pub(in crate::wire) fn nullable_timestamptz(
        &mut self,
    ) -> Result<Option<DateTime<Utc>>, WireError> {
        self.nullable(timestamptz)
    }

    pub(in crate::wire) fn nullable_bytea(&mut self) -> Result<Option<Vec<u8>>, WireError> {
        self.nullable(|raw| Ok(raw.to_vec()))
    }
}

fn int8(raw: &[u8]) -> Result<i64, WireError> {
    types::int8_from_sql(raw).map_err(decode)
}

fn text(raw: &[u8]) -> Result<String, WireError> {
    Ok(types::text_from_sql(raw).map_err(decode)?.to_owned())
}

fn boolean(raw: &[u8]) -> Result<bool, WireError> {
    types::bool_from_sql(raw).map_err(decode)
}

fn timestamptz(raw: &[u8]) -> Result<DateTime<Utc>, WireError> {
    from_pg_micros(types::timestamp_from_sql(raw).map_err(decode)?)
}

/// A `jsonb` value's text: a version byte (1), then the text.
fn jsonb_text(raw: &[u8]) -> Result<&str, WireError> {
    let Some((1, text)) = raw.split_first() else {
        return Err(WireError::Undecodable("unsupported jsonb version".into()));
    };
    std::str::from_utf8(text).map_err(|e| decode(e.into()))
}

/// Microseconds since PostgreSQL's epoch (2000-01-01 UTC) as a UTC time.
fn from_pg_micros(micros: i64) -> Result<DateTime<Utc>, WireError> {
    micros
        .checked_add(PG_EPOCH_UNIX_MICROS)
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(|| {
            let what = match micros {
                i64::MAX => "infinity".to_owned(),
                i64::MIN => "-infinity".to_owned(),
                _ => format!("{micros} us after 2000-01-01"),
            };
            WireError::Undecodable(format!("timestamp out of range: {what}"))
        })
}

fn decode(e: Boxed) -> WireError {
    WireError::Undecodable(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_epoch_times_convert() {
        assert_eq!(
            from_pg_micros(0).unwrap().to_rfc3339(),
            "2000-01-01T00:00:00+00:00"
        );
        assert_eq!(
            from_pg_micros(-1).unwrap().to_rfc3339(),
            "1999-12-31T23:59:59.999999+00:00"
        );
        assert!(from_pg_micros(i64::MAX).is_err(), "infinity is not a time");
        let t = from_pg_micros(123_456_789).unwrap();
        assert_eq!(
            crate::wire::codec::values::to_pg_micros(t),
            123_456_789,
            "round trip"
        );
    }

    #[test]
    fn jsonb_is_version_one_then_the_text() {
        assert_eq!(jsonb_text(b"\x01{\"a\":1}").unwrap(), r#"{"a":1}"#);
        assert!(
            jsonb_text(b"\x02{}").is_err(),
            "an unknown version is refused"
        );
        assert!(jsonb_text(b"").is_err());
    }
}
