//! The SQL of a query (`super::query`), built from its typed parts: every value the
//! client sent is bound as a parameter; the text around them comes from this file
//! alone. Each shard runs a page statement (its rows in the query's order after the
//! cursor, `limit + 1` of them, so the gateway knows whether more follow) and, when
//! asked, a count, or the plan of the page ([`explain`]).
//!
//! The sort keys of a field are computed as the query's doc says (rank, `numeric`,
//! text in "C"), never NULL, so a keyset predicate on them is plain row comparison,
//! spelled out column by column because directions may differ.
//!
//! ## Written for indexes
//! A field's path is the one part written into the text rather than bound: an
//! expression index (`super::query_index`) serves only a query whose expression is
//! literally its own. Paths are checked at the edge (ASCII letters, digits, `_`, `-`)
//! and still written as SQL string literals, quotes doubled ([`path_literal`]). A
//! field's three sort keys ([`field_keys`]) are both what a sort orders by and what the
//! index holds; conditions that can be said in those keys are (`eq` on a number or a
//! string, the ranges, `prefix`): `gte 40` is "rank is number's and number >= 40", which
//! an index on the field serves as a range scan.

use super::query::{
    Condition, Direction, Operand, Operator, Query, QueryCursor, SORTED_TEXT_CHARS,
};

/// A parameter of a query statement, in the type the statement declares for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bind {
    Text(String),
    /// A `text[]`: a path.
    Texts(Vec<String>),
    Jsonb(String),
    Int4(i32),
    Int8(i64),
    Bool(bool),
}

/// A statement's text and its parameters, `$1` first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryStatement {
    pub sql: String,
    pub binds: Vec<Bind>,
}

impl QueryStatement {
    fn bind(&mut self, b: Bind) -> String {
        self.binds.push(b);
        format!("${}", self.binds.len())
    }
}

/// The rows a shard may show: its table's, in slots it owns (rows left behind by a move
/// stay hidden, as lists do), matching every condition.
fn conditions(s: &mut QueryStatement, table: &str, q: &Query) -> String {
    let table = s.bind(Bind::Text(table.to_owned()));
    let mut all = vec![
        format!("r.table_name = {table}"),
        "(NOT EXISTS (SELECT 1 FROM shardgate_map) \
         OR r.slot IN (SELECT slot FROM shardgate_slots))"
            .to_owned(),
    ];
    all.extend(q.filter.iter().map(|c| condition(s, c)));
    all.join(" AND ")
}

/// A string as an SQL literal (`standard_conforming_strings`: only `'` is special).
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A path as SQL: `ARRAY['address', 'city']::text[]`. (Not the `'{a,b}'` form: there a
/// segment `NULL` would be a NULL element.)
pub fn path_literal(segments: &[String]) -> String {
    let items: Vec<String> = segments.iter().map(|s| literal(s)).collect();
    format!("ARRAY[{}]::text[]", items.join(", "))
}

/// The value at a path in `column` (`r.data` in a query, `data` in an index).
fn value_at(column: &str, segments: &[String]) -> String {
    format!("({column} #> {})", path_literal(segments))
}

/// A field's sort keys over `column`: rank, number, text (see `super::query`); the
/// expressions a query orders by.
pub fn field_keys(column: &str, segments: &[String]) -> [String; 3] {
    sort_keys(&value_at(column, segments))
}

/// How many characters of a field's text key an index holds: a key of bounded size
/// (at most 256 bytes a field), so no value is too large for an index, whatever its
/// length; the text itself rechecks.
pub const INDEXED_TEXT_CHARS: usize = 64;

/// The indexed prefix of a text key (`text`, an expression or a bound value).
fn indexed_prefix(text: &str) -> String {
    format!("left({text}, {INDEXED_TEXT_CHARS})")
}

/// What an index on a field holds: its rank, its number and the first
/// [`INDEXED_TEXT_CHARS`] characters of its text. A query orders by these and then by
/// the whole text, which in the "C" collation is the same order as the text alone (a
/// prefix that differs decides as the text would), and says every condition on the text
/// in its prefix too, so the index serves both.
pub fn index_keys(column: &str, segments: &[String]) -> [String; 3] {
    let [rank, number, text] = field_keys(column, segments);
    [rank, number, indexed_prefix(&text)]
}

/// A rank's number in the sort keys: the types conditions compare.
const STRING_RANK: i32 = 2;
const NUMBER_RANK: i32 = 3;

fn condition(s: &mut QueryStatement, c: &Condition) -> String {
    let v = value_at("r.data", c.path.segments());
    let [rank, number, text] = sort_keys(&v);
    let cmp = |op: Operator| match op {
        Operator::Gt => ">",
        Operator::Gte => ">=",
        Operator::Lt => "<",
        _ => "<=",
    };
    match (&c.operand, c.op) {
        (Operand::Flag(present), _) => {
            let p = s.bind(Bind::Bool(*present));
            format!("(({v} IS NOT NULL) = {p})")
        }
        // A number or a string equal as `jsonb` is equal: the same type, and the same
        // number (by value) or the same string (byte for byte).
        (Operand::Json(j), Operator::Eq) => match serde_json::from_str(j) {
            Ok(serde_json::Value::Number(n)) => {
                let x = s.bind(Bind::Text(n.to_string()));
                format!("(({rank}) = {NUMBER_RANK} AND ({number}) = {x}::numeric)")
            }
            Ok(serde_json::Value::String(t)) => {
                let x = s.bind(Bind::Text(t));
                let (prefix, value) = (indexed_prefix(&text), text_value(&x));
                format!(
                    "(({rank}) = {STRING_RANK} AND ({number}) = 0 AND {text} = {value} \
                     AND {prefix} = {})",
                    indexed_prefix(&value)
                )
            }
            _ => {
                let x = s.bind(Bind::Jsonb(j.clone()));
                format!("({v} = {x})")
            }
        },
        (Operand::Json(j), Operator::Ne) => {
            let x = s.bind(Bind::Jsonb(j.clone()));
            format!("({v} IS DISTINCT FROM {x})")
        }
        (Operand::Json(j), _) => {
            let x = s.bind(Bind::Jsonb(j.clone()));
            format!("(COALESCE({v} @> {x}, false))")
        }
        (Operand::List(j), op) => {
            let x = s.bind(Bind::Jsonb(j.clone()));
            let not = if op == Operator::Nin { "NOT " } else { "" };
            format!(
                "({not}EXISTS (SELECT 1 FROM jsonb_array_elements({x}) AS e(v) WHERE e.v = {v}))"
            )
        }
        (Operand::Number(n), op) => {
            let x = s.bind(Bind::Text(n.clone()));
            format!(
                "(({rank}) = {NUMBER_RANK} AND ({number}) {} {x}::numeric)",
                cmp(op)
            )
        }
        (Operand::Text(t), Operator::Prefix) => {
            let x = s.bind(Bind::Text(t.clone()));
            format!(
                "(({rank}) = {STRING_RANK} AND ({number}) = 0 AND starts_with({text}, {x}::text) \
                 AND starts_with({}, {}))",
                indexed_prefix(&text),
                indexed_prefix(&text_value(&x))
            )
        }
        (Operand::Text(t), op) => {
            let x = s.bind(Bind::Text(t.clone()));
            let value = text_value(&x);
            // A text after (before) the value has a prefix at or after (before) its.
            let prefix_cmp = match op {
                Operator::Gt | Operator::Gte => ">=",
                _ => "<=",
            };
            format!(
                "(({rank}) = {STRING_RANK} AND ({number}) = 0 AND {text} {} {value} \
                 AND {} {prefix_cmp} {})",
                cmp(op),
                indexed_prefix(&text),
                indexed_prefix(&value)
            )
        }
    }
}

/// A bound text parameter as a text key compares: in the "C" collation.
fn text_value(placeholder: &str) -> String {
    format!("{placeholder}::text COLLATE \"C\"")
}

/// A sort field's three keys (see `super::query`): rank, number, text.
fn sort_keys(v: &str) -> [String; 3] {
    [
        format!(
            "CASE jsonb_typeof({v}) WHEN 'null' THEN 1 WHEN 'string' THEN 2 WHEN 'number' THEN 3 \
             WHEN 'boolean' THEN 4 WHEN 'array' THEN 5 WHEN 'object' THEN 6 ELSE 0 END"
        ),
        format!("CASE WHEN jsonb_typeof({v}) = 'number' THEN ({v})::numeric ELSE 0 END"),
        format!(
            "(CASE jsonb_typeof({v}) WHEN 'string' THEN {v} #>> '{{}}' \
             WHEN 'boolean' THEN {v}::text WHEN 'array' THEN {v}::text \
             WHEN 'object' THEN {v}::text ELSE '' END) COLLATE \"C\""
        ),
    ]
}

/// One page of a query on one shard: its rows in the query's order, after the cursor,
/// at most `limit + 1`.
///
/// Returns the columns of [`crate::store::Record`] in its field order, then for each
/// sort field its rank (int4), number (`numeric` as text) and text (text).
pub fn page(table: &str, q: &Query) -> QueryStatement {
    let mut s = QueryStatement {
        sql: String::new(),
        binds: Vec::new(),
    };
    let mut keys = Vec::new();
    for (i, f) in q.sort.iter().enumerate() {
        let [rank, number, text] = field_keys("r.data", f.path.segments());
        let prefix = indexed_prefix(&text);
        let sorted = format!("left({text}, {SORTED_TEXT_CHARS})");
        for (k, expr) in ["r", "n", "p", "s"]
            .iter()
            .zip([rank, number, prefix, sorted])
        {
            keys.push((
                format!("{expr} AS {k}{i}"),
                format!("q.{k}{i}"),
                f.direction,
            ));
        }
    }
    let where_ = conditions(&mut s, table, q);
    let mut order: Vec<(String, Direction)> =
        keys.iter().map(|(_, col, d)| (col.clone(), *d)).collect();
    order.push(("q.shard_key COLLATE \"C\"".into(), Direction::Asc));
    order.push(("q.id COLLATE \"C\"".into(), Direction::Asc));
    let after = q
        .after
        .as_ref()
        .map(|c| format!(" WHERE {}", keyset(&mut s, &order, c)))
        .unwrap_or_default();
    let limit = s.bind(Bind::Int8(i64::from(q.limit) + 1));
    let computed: String = keys.iter().map(|(e, _, _)| format!(", {e}")).collect();
    let returned: String = (0..q.sort.len())
        .map(|i| format!(", q.r{i}, q.n{i}::text, q.s{i}"))
        .collect();
    let order_by = order
        .iter()
        .map(|(col, d)| match d {
            Direction::Asc => format!("{col} ASC"),
            Direction::Desc => format!("{col} DESC"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    s.sql = format!(
        "SELECT q.table_name, q.shard_key, q.id, q.slot, q.data, q.version, q.created_at, \
         q.updated_at{returned} FROM (SELECT r.table_name, r.shard_key, r.id, r.slot, r.data, \
         r.version, r.created_at, r.updated_at{computed} FROM records r WHERE {where_}) AS q\
         {after} ORDER BY {order_by} LIMIT {limit}"
    );
    s
}

/// The rows strictly after the cursor in the order `order` (every column's value bound
/// once): `(c1 after v1) OR (c1 = v1 AND c2 after v2) OR ...`.
fn keyset(s: &mut QueryStatement, order: &[(String, Direction)], c: &QueryCursor) -> String {
    let mut values = Vec::with_capacity(order.len());
    for v in &c.sort {
        values.push(s.bind(Bind::Int4(v.rank)));
        values.push(format!("{}::numeric", s.bind(Bind::Text(v.number.clone()))));
        let text = text_value(&s.bind(Bind::Text(v.text.clone())));
        values.push(indexed_prefix(&text));
        values.push(text);
    }
    values.push(format!(
        "{}::text COLLATE \"C\"",
        s.bind(Bind::Text(c.shard_key.clone()))
    ));
    values.push(format!(
        "{}::text COLLATE \"C\"",
        s.bind(Bind::Text(c.id.clone()))
    ));
    let mut alternatives = Vec::with_capacity(order.len());
    for i in 0..order.len() {
        let mut terms: Vec<String> = (0..i)
            .map(|j| format!("{} = {}", order[j].0, values[j]))
            .collect();
        let op = match order[i].1 {
            Direction::Asc => ">",
            Direction::Desc => "<",
        };
        terms.push(format!("{} {op} {}", order[i].0, values[i]));
        alternatives.push(format!("({})", terms.join(" AND ")));
    }
    format!("({})", alternatives.join(" OR "))
}

/// How many records match the query's filter on one shard (the cursor and the limit
/// play no part). Returns one int8.
pub fn count(table: &str, q: &Query) -> QueryStatement {
    let mut s = QueryStatement {
        sql: String::new(),
        binds: Vec::new(),
    };
    let where_ = conditions(&mut s, table, q);
    s.sql = format!("SELECT count(*) FROM records r WHERE {where_}");
    s
}

/// The plan of a statement: `EXPLAIN (FORMAT JSON)` of it, with the same parameters.
/// Returns one json text.
pub fn explain(statement: &QueryStatement) -> QueryStatement {
    QueryStatement {
        sql: format!("EXPLAIN (FORMAT JSON) {}", statement.sql),
        binds: statement.binds.clone(),
    }
}

/// The planner's estimate of [`count`]: `EXPLAIN (FORMAT JSON)` of the same rows.
/// Returns one json text; its top plan's `Plan Rows` is the estimate.
pub fn estimate(table: &str, q: &Query) -> QueryStatement {
    let mut s = count(table, q);
    s.sql = s
        .sql
        .replacen("SELECT count(*)", "EXPLAIN (FORMAT JSON) SELECT 1", 1);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::query::{Condition, FieldPath, SortField, SortValue};
    use serde_json::json;

    fn query() -> Query {
        let mut q = Query::new(
            vec![
                Condition::parse("age", "gte", Some(&json!(40))).unwrap(),
                Condition::parse("address.city", "in", Some(&json!(["London", "Paris"]))).unwrap(),
            ],
            vec![SortField {
                path: FieldPath::parse("score").unwrap(),
                direction: Direction::Desc,
            }],
            None,
            &json!(50),
        )
        .unwrap();
        q.after = Some(QueryCursor {
            sort: vec![SortValue::of(Some(&json!(7)))],
            shard_key: "k'; DROP TABLE records; --".into(),
            id: "i".into(),
        });
        q
    }

    #[test]
    fn every_client_value_is_bound_never_spliced() {
        let s = page("users", &query());
        assert!(!s.sql.contains("London") && !s.sql.contains("DROP") && !s.sql.contains("40"));
        // Paths are written, as literals (checked at the edge, quoted anyway).
        assert!(s
            .sql
            .contains("(r.data #> ARRAY['address', 'city']::text[])"));
        assert!(s.sql.contains("(r.data #> ARRAY['score']::text[])"));
        assert!(s.binds.contains(&Bind::Text("40".into())));
        assert!(s
            .binds
            .contains(&Bind::Jsonb(r#"["London","Paris"]"#.into())));
        assert_eq!(s.binds.last(), Some(&Bind::Int8(51)));
        // Every placeholder has its parameter, and each parameter is used.
        for i in 1..=s.binds.len() {
            assert!(s.sql.contains(&format!("${i}")), "${i} unused");
        }
        assert!(!s.sql.contains(&format!("${}", s.binds.len() + 1)));
    }

    #[test]
    fn the_keyset_follows_each_direction_then_the_key_ascending() {
        let s = page("users", &query());
        assert!(s.sql.contains("(q.r0 < $"), "{}", s.sql);
        assert!(s.sql.contains("q.shard_key COLLATE \"C\" > $"), "{}", s.sql);
        assert!(s.sql.contains("ORDER BY q.r0 DESC, q.n0 DESC, q.p0 DESC, q.s0 DESC, q.shard_key COLLATE \"C\" ASC, q.id COLLATE \"C\" ASC LIMIT $"));
        let c = count("users", &query());
        assert!(c.sql.starts_with("SELECT count(*) FROM records r WHERE"));
        assert!(!c.sql.contains("LIMIT"));
    }

    #[test]
    fn path_literals_double_their_quotes_and_never_use_the_array_text_form() {
        assert_eq!(
            path_literal(&["a'b".into(), "NULL".into()]),
            "ARRAY['a''b', 'NULL']::text[]"
        );
    }

    #[test]
    fn ranges_and_equality_are_said_in_the_sort_keys_an_index_holds() {
        let q = Query::new(
            vec![
                Condition::parse("age", "gte", Some(&json!(40))).unwrap(),
                Condition::parse("name", "eq", Some(&json!("Ann"))).unwrap(),
            ],
            vec![],
            None,
            &json!(10),
        )
        .unwrap();
        let s = page("users", &q);
        let [rank, number, text] = field_keys("r.data", &["age".to_owned()]);
        assert!(
            s.sql
                .contains(&format!("(({rank}) = 3 AND ({number}) >= $")),
            "{}",
            s.sql
        );
        let [rank, number, text2] = field_keys("r.data", &["name".to_owned()]);
        assert!(s
            .sql
            .contains(&format!("(({rank}) = 2 AND ({number}) = 0 AND {text2} = $")));
        assert_ne!(text, text2);
    }
}
