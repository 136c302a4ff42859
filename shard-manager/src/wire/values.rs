//! Values in PostgreSQL's binary format: the parameters a write binds and the columns
//! it reads back.

use bytes::{BufMut, BytesMut};
use chrono::{DateTime, Utc};
use fallible_iterator::FallibleIterator;
use postgres_protocol::message::backend::DataRowBody;
use postgres_protocol::types;
use postgres_protocol::IsNull;

use super::error::WireError;
use crate::store::RawJson;

/// Type OIDs of the parameters the write statements declare.
pub(super) const TEXT: u32 = 25;
pub(super) const INT4: u32 = 23;
pub(super) const JSONB: u32 = 3802;
pub(super) const TEXT_ARRAY: u32 = 1009;
pub(super) const INT4_ARRAY: u32 = 1007;
pub(super) const JSONB_ARRAY: u32 = 3807;

/// The binary format code, for every parameter and every column.
pub(super) const BINARY: i16 = 1;

/// A parameter to bind.
#[derive(Debug, Clone, Copy)]
pub(super) enum Param<'a> {
    Text(&'a str),
    Int4(i32),
    /// JSON text, sent as `jsonb`: a version byte, then the text as is.
    Jsonb(&'a str),
    /// One-dimensional arrays (lower bound 1, no NULLs) of the same three.
    Texts(&'a [&'a str]),
    Int4s(&'a [i32]),
    Jsonbs(&'a [&'a RawJson]),
}

type Boxed = Box<dyn std::error::Error + Sync + Send>;

impl Param<'_> {
    pub(super) fn write(self, buf: &mut BytesMut) -> Result<IsNull, Boxed> {
        match self {
            Param::Text(s) => types::text_to_sql(s, buf),
            Param::Int4(v) => types::int4_to_sql(v, buf),
            Param::Jsonb(s) => jsonb_to_sql(s, buf),
            Param::Texts(items) => {
                array_to_sql(TEXT, items, |s, buf| types::text_to_sql(s, buf), buf)?
            }
            Param::Int4s(items) => {
                array_to_sql(INT4, items, |v, buf| types::int4_to_sql(*v, buf), buf)?
            }
            Param::Jsonbs(items) => {
                array_to_sql(JSONB, items, |j, buf| jsonb_to_sql(j.get(), buf), buf)?
            }
        }
        Ok(IsNull::No)
    }
}

/// A `jsonb` value: a version byte, then the JSON text as is.
fn jsonb_to_sql(s: &str, buf: &mut BytesMut) {
    buf.put_u8(1);
    buf.put_slice(s.as_bytes());
}

fn array_to_sql<T>(
    element_type: u32,
    items: &[T],
    mut write: impl FnMut(&T, &mut BytesMut),
    buf: &mut BytesMut,
) -> Result<(), Boxed> {
    let len = i32::try_from(items.len())?;
    let dimension = types::ArrayDimension {
        len,
        lower_bound: 1,
    };
    types::array_to_sql(
        [dimension],
        element_type,
        items,
        |item, buf| {
            write(item, buf);
            Ok(IsNull::No)
        },
        buf,
    )
}

/// Reads one row's columns in order.
pub(super) struct Columns<'a> {
    row: &'a DataRowBody,
    ranges: postgres_protocol::message::backend::DataRowRanges<'a>,
}

impl<'a> Columns<'a> {
    pub(super) fn new(row: &'a DataRowBody) -> Self {
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

    fn next_value(&mut self, what: &str) -> Result<&'a [u8], WireError> {
        self.next_raw()?
            .ok_or_else(|| WireError::Protocol(format!("{what} was NULL")))
    }

    pub(super) fn int8(&mut self) -> Result<i64, WireError> {
        types::int8_from_sql(self.next_value("an int8")?).map_err(decode)
    }

    pub(super) fn nullable_int8(&mut self) -> Result<Option<i64>, WireError> {
        self.next_raw()?
            .map(|raw| types::int8_from_sql(raw).map_err(decode))
            .transpose()
    }

    pub(super) fn int4(&mut self) -> Result<i32, WireError> {
        types::int4_from_sql(self.next_value("an int4")?).map_err(decode)
    }

    /// A `jsonb` column as its JSON text (a version byte, then the text), checked to be
    /// JSON as `RawJson` requires.
    pub(super) fn jsonb(&mut self) -> Result<RawJson, WireError> {
        let Some((1, text)) = self.next_value("a jsonb")?.split_first() else {
            return Err(WireError::Protocol("unsupported jsonb version".into()));
        };
        let text = std::str::from_utf8(text).map_err(|e| decode(e.into()))?;
        let raw = serde_json::value::RawValue::from_string(text.to_owned())
            .map_err(|e| decode(e.into()))?;
        Ok(RawJson::from_raw(raw))
    }

    pub(super) fn nullable_text(&mut self) -> Result<Option<String>, WireError> {
        self.next_raw()?
            .map(|raw| Ok(types::text_from_sql(raw).map_err(decode)?.to_owned()))
            .transpose()
    }

    pub(super) fn boolean(&mut self) -> Result<bool, WireError> {
        types::bool_from_sql(self.next_value("a bool")?).map_err(decode)
    }

    pub(super) fn text(&mut self) -> Result<String, WireError> {
        Ok(types::text_from_sql(self.next_value("a text")?)
            .map_err(decode)?
            .to_owned())
    }

    pub(super) fn timestamptz(&mut self) -> Result<DateTime<Utc>, WireError> {
        let micros =
            types::timestamp_from_sql(self.next_value("a timestamptz")?).map_err(decode)?;
        from_pg_micros(micros)
    }
}

/// Microseconds since PostgreSQL's epoch (2000-01-01 UTC) as a UTC time.
fn from_pg_micros(micros: i64) -> Result<DateTime<Utc>, WireError> {
    const PG_EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;
    micros
        .checked_add(PG_EPOCH_UNIX_MICROS)
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(|| WireError::Protocol(format!("timestamp out of range: {micros}")))
}

fn decode(e: Boxed) -> WireError {
    WireError::Protocol(format!("undecodable column: {e}"))
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
    }

    #[test]
    fn a_jsonb_parameter_is_version_one_then_the_text() {
        let mut buf = BytesMut::new();
        Param::Jsonb(r#"{"a":1}"#).write(&mut buf).unwrap();
        assert_eq!(&buf[..], b"\x01{\"a\":1}");
        buf.clear();
        Param::Int4(258).write(&mut buf).unwrap();
        assert_eq!(&buf[..], &[0, 0, 1, 2]);
    }

    #[test]
    fn arrays_are_one_dimension_from_one_of_their_element_type() {
        let mut buf = BytesMut::new();
        Param::Texts(&["a", "bc"]).write(&mut buf).unwrap();
        let array = types::array_from_sql(&buf).unwrap();
        assert_eq!(array.element_type(), TEXT);
        assert!(!array.has_nulls());
        let dims: Vec<_> = array.dimensions().collect().unwrap();
        assert_eq!(
            dims,
            [types::ArrayDimension {
                len: 2,
                lower_bound: 1
            }]
        );
        let values: Vec<_> = array.values().collect().unwrap();
        assert_eq!(values, [Some(&b"a"[..]), Some(&b"bc"[..])]);

        let doc = RawJson::from_value(&serde_json::json!({"n": 1}));
        let mut buf = BytesMut::new();
        Param::Jsonbs(&[&doc]).write(&mut buf).unwrap();
        let array = types::array_from_sql(&buf).unwrap();
        assert_eq!(array.element_type(), JSONB);
        let values: Vec<_> = array.values().collect().unwrap();
        assert_eq!(values, [Some(&b"\x01{\"n\":1}"[..])]);

        let mut buf = BytesMut::new();
        Param::Int4s(&[]).write(&mut buf).unwrap();
        let array = types::array_from_sql(&buf).unwrap();
        assert_eq!(array.element_type(), INT4);
        assert_eq!(array.dimensions().count().unwrap(), 1);
    }
}
