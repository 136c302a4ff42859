//! A query's order: sort fields and directions, each row's sort values as the shard
//! computed them, and the comparison the gateway merges the shards' pages by, the same
//! as the shards' (see the module doc of `super`).

use std::cmp::Ordering;

use serde_json::Value;

use super::{FieldPath, QueryError};
use crate::store::row::Record;

/// A sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Asc,
    Desc,
}

impl Direction {
    pub fn parse(field: &str, raw: Option<&str>) -> Result<Self, QueryError> {
        match raw {
            None | Some("asc") => Ok(Self::Asc),
            Some("desc") => Ok(Self::Desc),
            Some(other) => Err(QueryError::UnknownOrder {
                field: field.chars().take(80).collect(),
                order: other.chars().take(32).collect(),
            }),
        }
    }

    fn apply(self, o: Ordering) -> Ordering {
        match self {
            Self::Asc => o,
            Self::Desc => o.reverse(),
        }
    }
}

/// One sort field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortField {
    pub path: FieldPath,
    pub direction: Direction,
}

/// The value of one sort field in one row, as the shard computed it: its type's rank,
/// its number (`numeric` text, "0" for other types) and its text ("" for numbers).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SortValue {
    pub rank: i32,
    pub number: String,
    pub text: String,
}

impl SortValue {
    /// The sort value of `v` (None: missing), as the shard computes it; for numbers,
    /// strings, booleans and null exactly (arrays and objects need `jsonb`'s text,
    /// which only the shard has).
    pub fn of(v: Option<&Value>) -> Self {
        let (rank, number, text) = match v {
            None => (0, "0".to_owned(), String::new()),
            Some(Value::Null) => (1, "0".into(), String::new()),
            Some(Value::String(s)) => (2, "0".into(), s.clone()),
            Some(Value::Number(n)) => (3, n.to_string(), String::new()),
            Some(Value::Bool(b)) => (4, "0".into(), b.to_string()),
            Some(v @ Value::Array(_)) => (5, "0".into(), v.to_string()),
            Some(v @ Value::Object(_)) => (6, "0".into(), v.to_string()),
        };
        Self { rank, number, text }
    }

    fn compare(&self, other: &Self) -> Ordering {
        self.rank
            .cmp(&other.rank)
            .then_with(|| compare_numeric(&self.number, &other.number))
            .then_with(|| self.text.as_bytes().cmp(other.text.as_bytes()))
    }
}

/// A row of a query's page: the record and its sort values.
#[derive(Debug, Clone)]
pub struct QueryRow {
    pub record: Record,
    pub sort: Vec<SortValue>,
}

impl QueryRow {
    pub fn position(&self) -> Position<'_> {
        Position {
            sort: &self.sort,
            shard_key: &self.record.shard_key,
            id: &self.record.id,
        }
    }
}

/// Where a row stands in a query's order.
#[derive(Debug, Clone, Copy)]
pub struct Position<'a> {
    pub sort: &'a [SortValue],
    pub shard_key: &'a str,
    pub id: &'a str,
}

/// The query order of two positions under `sort`.
pub fn compare_positions(sort: &[SortField], a: &Position<'_>, b: &Position<'_>) -> Ordering {
    sort.iter()
        .zip(a.sort.iter().zip(b.sort))
        .map(|(f, (x, y))| f.direction.apply(x.compare(y)))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
        .then_with(|| a.shard_key.as_bytes().cmp(b.shard_key.as_bytes()))
        .then_with(|| a.id.as_bytes().cmp(b.id.as_bytes()))
}

/// Compares two decimal numbers written as `numeric` prints them or JSON writes them
/// (an optional `-`, digits, an optional fraction, an optional exponent), exactly.
/// Text that is not a number sorts as zero.
pub fn compare_numeric(a: &str, b: &str) -> Ordering {
    let (a, b) = (Decimal::parse(a), Decimal::parse(b));
    match (a.negative, b.negative) {
        (false, true) => Ordering::Greater,
        (true, false) => Ordering::Less,
        (false, false) => a.magnitude_cmp(&b),
        (true, true) => b.magnitude_cmp(&a),
    }
}

/// A decimal as digits and the power of ten of the first: `0.0123` is digits "123" at
/// exponent -2. Zero has no digits and is never negative.
struct Decimal {
    negative: bool,
    digits: Vec<u8>,
    exponent: i64,
}

impl Decimal {
    fn parse(text: &str) -> Self {
        let zero = Self {
            negative: false,
            digits: Vec::new(),
            exponent: 0,
        };
        let (negative, rest) = match text.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, text),
        };
        let (mantissa, exp) = match rest.find(['e', 'E']) {
            Some(i) => (&rest[..i], rest[i + 1..].parse::<i64>().unwrap_or(0)),
            None => (rest, 0),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
            return zero;
        }
        let all: Vec<u8> = int.bytes().chain(frac.bytes()).collect();
        let Some(first) = all.iter().position(|d| *d != b'0') else {
            return zero;
        };
        let last = all.iter().rposition(|d| *d != b'0').unwrap_or(first);
        Self {
            negative,
            digits: all[first..=last].to_vec(),
            exponent: int.len() as i64 - 1 - first as i64 + exp,
        }
    }

    fn magnitude_cmp(&self, other: &Self) -> Ordering {
        match (self.digits.is_empty(), other.digits.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            _ => {}
        }
        self.exponent
            .cmp(&other.exponent)
            .then_with(|| self.digits.cmp(&other.digits))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_compare_exactly() {
        use Ordering::*;
        assert_eq!(compare_numeric("2", "10"), Less);
        assert_eq!(compare_numeric("1.0", "1"), Equal);
        assert_eq!(compare_numeric("-3", "-20"), Greater);
        assert_eq!(compare_numeric("0.001", "1e-3"), Equal);
        assert_eq!(compare_numeric("-0", "0"), Equal);
        assert_eq!(
            compare_numeric("12345678901234567890.5", "12345678901234567890.49"),
            Greater
        );
        assert_eq!(compare_numeric("-0.5", "0"), Less);
        assert_eq!(compare_numeric("100", "99.999"), Greater);
    }
}
