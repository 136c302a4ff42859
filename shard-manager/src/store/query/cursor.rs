//! Where a query's next page starts, as the opaque text a client passes back: read back
//! checked, so nothing a shard would refuse reaches it.

use super::{Position, QueryError, QueryRow, SortValue, MAX_CURSOR_TEXT, SORTED_TEXT_CHARS};

/// Where the next page of a query starts: just after the row with these sort values
/// and this key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryCursor {
    pub sort: Vec<SortValue>,
    pub shard_key: String,
    pub id: String,
}

impl QueryCursor {
    pub fn after(row: &QueryRow) -> Self {
        Self {
            sort: row.sort.clone(),
            shard_key: row.record.shard_key.clone(),
            id: row.record.id.clone(),
        }
    }

    pub fn position(&self) -> Position<'_> {
        Position {
            sort: &self.sort,
            shard_key: &self.shard_key,
            id: &self.id,
        }
    }

    /// Opaque text form: hex of a compact JSON triple.
    pub fn encode(&self) -> String {
        let json = serde_json::json!([self.sort, self.shard_key, self.id]);
        json.to_string()
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Reads a cursor back for a query sorted by `sort_fields` fields. What a shard
    /// would refuse (a rank out of range, a number `numeric` cannot read, a NUL) is
    /// refused here.
    pub fn decode(text: &str, sort_fields: usize) -> Result<Self, QueryError> {
        if !text.len().is_multiple_of(2) || text.len() > MAX_CURSOR_TEXT {
            return Err(QueryError::BadCursor);
        }
        let bytes = (0..text.len())
            .step_by(2)
            .map(|i| {
                text.get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or(QueryError::BadCursor)
            })
            .collect::<Result<Vec<u8>, _>>()?;
        let (sort, shard_key, id): (Vec<SortValue>, String, String) =
            serde_json::from_slice(&bytes).map_err(|_| QueryError::BadCursor)?;
        let valid = sort.len() == sort_fields
            && sort.iter().all(|v| {
                (0..=6).contains(&v.rank)
                    && is_decimal(&v.number)
                    && !v.text.contains('\0')
                    && v.text.chars().count() <= SORTED_TEXT_CHARS
            })
            && !shard_key.contains('\0')
            && !id.contains('\0');
        if !valid {
            return Err(QueryError::BadCursor);
        }
        Ok(Self {
            sort,
            shard_key,
            id,
        })
    }
}

/// `-`, digits, an optional fraction: what `numeric` prints (and reads back).
fn is_decimal(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, "0"));
    text.len() <= 200
        && !int.is_empty()
        && !frac.is_empty()
        && int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cursors_round_trip_and_refuse_what_a_shard_would() {
        let c = QueryCursor {
            sort: vec![SortValue::of(Some(&json!(1.5))), SortValue::of(None)],
            shard_key: "k".into(),
            id: "i".into(),
        };
        assert_eq!(QueryCursor::decode(&c.encode(), 2), Ok(c.clone()));
        assert_eq!(
            QueryCursor::decode(&c.encode(), 1),
            Err(QueryError::BadCursor)
        );
        assert_eq!(QueryCursor::decode("zz", 0), Err(QueryError::BadCursor));
        let mut forged = c.clone();
        forged.sort[0].number = "1; DROP".into();
        assert_eq!(
            QueryCursor::decode(&forged.encode(), 2),
            Err(QueryError::BadCursor)
        );
        forged.sort[0] = SortValue {
            rank: 9,
            ..SortValue::of(None)
        };
        assert_eq!(
            QueryCursor::decode(&forged.encode(), 2),
            Err(QueryError::BadCursor)
        );
    }
}
