//! Parameters in PostgreSQL's binary format, with the type OIDs the statements declare
//! (the columns read back are in `columns`).

use bytes::{BufMut, BytesMut};
use chrono::{DateTime, Utc};
use postgres_protocol::types;
use postgres_protocol::IsNull;

use crate::store::RawJson;

/// Type OIDs of the parameters the write statements declare.
pub(in crate::wire) const TEXT: u32 = 25;
pub(in crate::wire) const INT4: u32 = 23;
pub(in crate::wire) const JSONB: u32 = 3802;
pub(in crate::wire) const INT8: u32 = 20;
pub(in crate::wire) const BYTEA: u32 = 17;
pub(in crate::wire) const BOOL: u32 = 16;
pub(in crate::wire) const TIMESTAMPTZ: u32 = 1184;
pub(in crate::wire) const TEXT_ARRAY: u32 = 1009;
pub(in crate::wire) const INT4_ARRAY: u32 = 1007;
pub(in crate::wire) const INT8_ARRAY: u32 = 1016;
pub(in crate::wire) const JSONB_ARRAY: u32 = 3807;

/// The binary format code, for every parameter and every column.
pub(in crate::wire) const BINARY: i16 = 1;

/// A parameter to bind.
#[derive(Debug, Clone, Copy)]
pub(in crate::wire) enum Param<'a> {
    Text(&'a str),
    Int4(i32),
    /// JSON text, sent as `jsonb`: a version byte, then the text as is.
    Jsonb(&'a str),
    Int8(i64),
    Bytea(&'a [u8]),
    /// An `int4` or NULL.
    NullableInt4(Option<i32>),
    /// An `int8` or NULL.
    NullableInt8(Option<i64>),
    Bool(bool),
    /// A `timestamptz`.
    Timestamptz(DateTime<Utc>),
    /// One-dimensional arrays (lower bound 1, no NULLs) of text, int4, int8 and jsonb.
    Texts(&'a [&'a str]),
    Int4s(&'a [i32]),
    Int8s(&'a [i64]),
    Jsonbs(&'a [&'a RawJson]),
}

type Boxed = Box<dyn std::error::Error + Sync + Send>;

impl Param<'_> {
    pub(in crate::wire) fn write(self, buf: &mut BytesMut) -> Result<IsNull, Boxed> {
        match self {
            Param::Text(s) => types::text_to_sql(s, buf),
            Param::Int4(v) => types::int4_to_sql(v, buf),
            Param::Jsonb(s) => jsonb_to_sql(s, buf),
            Param::Int8(v) => types::int8_to_sql(v, buf),
            Param::Bytea(b) => types::bytea_to_sql(b, buf),
            Param::NullableInt4(None) => return Ok(IsNull::Yes),
            Param::NullableInt4(Some(v)) => types::int4_to_sql(v, buf),
            Param::NullableInt8(None) => return Ok(IsNull::Yes),
            Param::NullableInt8(Some(v)) => types::int8_to_sql(v, buf),
            Param::Bool(v) => types::bool_to_sql(v, buf),
            Param::Timestamptz(t) => types::timestamp_to_sql(to_pg_micros(t), buf),
            Param::Texts(items) => {
                array_to_sql(TEXT, items, |s, buf| types::text_to_sql(s, buf), buf)?
            }
            Param::Int4s(items) => {
                array_to_sql(INT4, items, |v, buf| types::int4_to_sql(*v, buf), buf)?
            }
            Param::Int8s(items) => {
                array_to_sql(INT8, items, |v, buf| types::int8_to_sql(*v, buf), buf)?
            }
            Param::Jsonbs(items) => {
                array_to_sql(JSONB, items, |j, buf| jsonb_to_sql(j.get(), buf), buf)?
            }
        }
        Ok(IsNull::No)
    }
}

/// Microseconds since PostgreSQL's epoch (2000-01-01 UTC), as `timestamptz` counts.
pub(in crate::wire) fn to_pg_micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros() - PG_EPOCH_UNIX_MICROS
}

/// PostgreSQL's epoch in Unix microseconds.
pub(in crate::wire) const PG_EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;

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

#[cfg(test)]
mod tests {
    use super::*;
    use fallible_iterator::FallibleIterator;

    #[test]
    fn a_jsonb_parameter_is_version_one_then_the_text() {
        let mut buf = BytesMut::new();
        Param::Jsonb(r#"{"a":1}"#).write(&mut buf).unwrap();
        assert_eq!(&buf[..], b"\x01{\"a\":1}");
        buf.clear();
        Param::Int4(258).write(&mut buf).unwrap();
        assert_eq!(&buf[..], &[0, 0, 1, 2]);
        buf.clear();
        assert!(matches!(
            Param::NullableInt4(None).write(&mut buf),
            Ok(IsNull::Yes)
        ));
        assert!(buf.is_empty());
        assert!(matches!(
            Param::NullableInt4(Some(1)).write(&mut buf),
            Ok(IsNull::No)
        ));
        assert_eq!(&buf[..], &[0, 0, 0, 1]);
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
