//! A whole query as a client asked it, validated: its conditions, sort, fields, page
//! size, count and cursor, and the identity its snapshot pages are checked against.

use std::cmp::Ordering;

use serde_json::Value;

use super::{
    compare_positions, Condition, Direction, FieldPath, Operand, QueryCursor, QueryError, QueryRow,
    SortField, MAX_CONDITIONS, MAX_FIELDS, MAX_LIMIT, MAX_SORT_FIELDS,
};

/// How a query counts the records that match it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountMode {
    /// Every shard counts its matching records.
    Exact,
    /// Every shard's planner estimates them (cheap, approximate).
    Estimated,
}

impl CountMode {
    pub fn parse(raw: &str) -> Result<Self, QueryError> {
        match raw {
            "exact" => Ok(Self::Exact),
            "estimated" => Ok(Self::Estimated),
            other => Err(QueryError::UnknownCount(other.chars().take(32).collect())),
        }
    }
}

/// A whole query, validated.
#[derive(Debug, Clone)]
pub struct Query {
    /// All must hold.
    pub filter: Vec<Condition>,
    /// Then the key; empty: by the key alone.
    pub sort: Vec<SortField>,
    /// None: whole records.
    pub fields: Option<Vec<FieldPath>>,
    pub limit: u32,
    pub after: Option<QueryCursor>,
    pub count: Option<CountMode>,
    /// The most bytes of records a page holds (its first record always fits).
    pub max_bytes: usize,
    /// Each shard's plan of its page is answered too (`EXPLAIN (FORMAT JSON)`).
    pub explain: bool,
}

impl Query {
    /// Checks the counts of each part and the page size (a JSON whole number); the
    /// parts are parsed already.
    pub fn new(
        filter: Vec<Condition>,
        sort: Vec<SortField>,
        fields: Option<Vec<FieldPath>>,
        limit: &Value,
    ) -> Result<Self, QueryError> {
        let too_many = |what, count, max| {
            (count > max)
                .then_some(QueryError::TooMany { what, count, max })
                .map_or(Ok(()), Err)
        };
        too_many("`filter`", filter.len(), MAX_CONDITIONS)?;
        too_many("`sort`", sort.len(), MAX_SORT_FIELDS)?;
        if let Some(fields) = &fields {
            too_many("`fields`", fields.len(), MAX_FIELDS)?;
            for (i, f) in fields.iter().enumerate() {
                if fields[..i].contains(f) {
                    return Err(QueryError::DuplicateField(f.as_str().to_owned()));
                }
            }
        }
        let limit = limit
            .as_u64()
            .and_then(|l| u32::try_from(l).ok())
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| QueryError::Limit(limit.to_string().chars().take(32).collect()))?;
        Ok(Self {
            filter,
            sort,
            fields,
            limit,
            after: None,
            count: None,
            max_bytes: usize::MAX,
            explain: false,
        })
    }

    /// What makes two requests pages of one query over `table`: the table, the
    /// conditions and the sort, as a digest (32 hex digits of SHA-256 over their
    /// canonical JSON), the same on every gateway. The page size, the fields, the count
    /// and the plan may change from page to page and are left out. A cursor at a cut
    /// carries it, so one sent with another query is refused rather than resumed at a
    /// position of another order.
    pub fn identity(&self, table: &str) -> String {
        use sha2::{Digest, Sha256};
        let operand = |o: &Operand| match o {
            Operand::Json(t) => serde_json::json!(["json", t]),
            Operand::List(t) => serde_json::json!(["list", t]),
            Operand::Number(n) => serde_json::json!(["number", n]),
            Operand::Text(t) => serde_json::json!(["text", t]),
            Operand::Flag(b) => serde_json::json!(["flag", b]),
        };
        let filter: Vec<Value> = self
            .filter
            .iter()
            .map(|c| serde_json::json!([c.path.as_str(), c.op.name(), operand(&c.operand)]))
            .collect();
        let sort: Vec<Value> = self
            .sort
            .iter()
            .map(|f| {
                let order = match f.direction {
                    Direction::Asc => "asc",
                    Direction::Desc => "desc",
                };
                serde_json::json!([f.path.as_str(), order])
            })
            .collect();
        let canonical = serde_json::json!([table, filter, sort]).to_string();
        Sha256::digest(canonical.as_bytes())
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The order of two rows of this query (see the module doc of `super`).
    pub fn compare(&self, a: &QueryRow, b: &QueryRow) -> Ordering {
        compare_positions(&self.sort, &a.position(), &b.position())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_query_is_identified_by_its_table_filter_and_sort_alone() {
        let query = |filter: Vec<Condition>, sort: Vec<SortField>, fields, limit| {
            Query::new(filter, sort, fields, &json!(limit)).unwrap()
        };
        let age = |v: Value| Condition::parse("age", "gte", Some(&v)).unwrap();
        let by = |field: &str, direction| SortField {
            path: FieldPath::parse(field).unwrap(),
            direction,
        };
        let base = query(
            vec![age(json!(40))],
            vec![by("score", Direction::Desc)],
            None,
            10,
        );
        let id = base.identity("users");
        assert_eq!(id.len(), 32);
        // Another page size, fields, count or plan: the same query.
        let mut same = query(
            vec![age(json!(40))],
            vec![by("score", Direction::Desc)],
            Some(vec![FieldPath::parse("name").unwrap()]),
            500,
        );
        same.count = Some(CountMode::Exact);
        same.explain = true;
        assert_eq!(same.identity("users"), id);
        // Another table, operand (even of another type), condition or sort: another.
        let others = [
            base.identity("people"),
            query(vec![age(json!(41))], base.sort.clone(), None, 10).identity("users"),
            query(vec![age(json!("40"))], base.sort.clone(), None, 10).identity("users"),
            query(vec![], base.sort.clone(), None, 10).identity("users"),
            query(
                base.filter.clone(),
                vec![by("score", Direction::Asc)],
                None,
                10,
            )
            .identity("users"),
            query(
                base.filter.clone(),
                vec![by("name", Direction::Desc)],
                None,
                10,
            )
            .identity("users"),
        ];
        for other in &others {
            assert_ne!(other, &id);
        }
    }
}
