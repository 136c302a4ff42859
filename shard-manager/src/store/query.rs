//! A query over one table's records, typed and validated once at the edge: conditions
//! on dotted JSON paths, a sort, the fields to return, a page size and the cursor of
//! the next page. Nothing here is SQL (that is [`super::query_statement`]); this file
//! says what a query means.
//!
//! ## The order of values
//! A sort compares, for each sort field, the value at its path by three keys, in turn:
//! 1. its type's rank: missing 0, `null` 1, string 2, number 3, boolean 4, array 5,
//!    object 6 (PostgreSQL's `jsonb` order of types, with a missing field first);
//! 2. for numbers, the number (exactly, as `numeric`: 2 < 10, 1.0 = 1);
//! 3. for strings, the string in the "C" collation (byte order of its UTF-8); for
//!    booleans `false` < `true`; for arrays and objects, their `jsonb` text in "C".
//!    Only the first [`SORTED_TEXT_CHARS`] characters of a text count (as MySQL's
//!    `max_sort_length`): texts alike that far are tied, and the tie is broken as any.
//!    So a cursor, which holds the last row's sort values, is bounded whatever the
//!    records hold, and a page ends after a long value as after any other.
//!
//! `desc` reverses all three. Ties are broken by the record's shard key, then its id,
//! both ascending in "C", whatever the direction: a query's order is total, so a page's
//! last row says exactly where the next page starts, on every shard.
//!
//! ## Conditions
//! `gt`, `gte`, `lt`, `lte` and `prefix` match only values of their operand's type (a
//! number compares with numbers, a string with strings in "C"); `eq` and `in` match
//! equal JSON (numbers by value); `ne` and `nin` match every record `eq` and `in` do
//! not, a missing field included; `exists` whether the path is present (a JSON `null`
//! is present); `contains` JSON containment (`@>`: an array contains the elements
//! given, an object the members given). A path segment that is a whole number indexes
//! an array (negative from its end), as `#>` does.

use std::cmp::Ordering;

use serde_json::Value;

use super::row::Record;

/// The most conditions one query may have.
pub const MAX_CONDITIONS: usize = 20;
/// The most sort fields.
pub const MAX_SORT_FIELDS: usize = 4;
/// The most fields a query may return.
pub const MAX_FIELDS: usize = 32;
/// The most values of an `in` or `nin`.
pub const MAX_LIST_VALUES: usize = 100;
/// The most segments of a path, and the most bytes of one.
pub const MAX_PATH_SEGMENTS: usize = 8;
pub const MAX_SEGMENT_BYTES: usize = 64;
/// How many characters of a string (or of an array's or object's text) a sort
/// compares: see the module doc.
pub const SORTED_TEXT_CHARS: usize = 1024;
/// The longest cursor accepted, in characters of its text: the hex of its JSON with
/// every sort field's text at [`SORTED_TEXT_CHARS`] characters, each escaped at most as
/// `\uXXXX`, and the longest shard key and id.
pub const MAX_CURSOR_TEXT: usize = 64 << 10;
/// The largest page, in records. The real bound is in bytes: a page stops at the
/// answer's byte budget (`server.max_read_bytes`) whatever its limit, so a page of
/// small records may be this large and a page of large ones is cut short.
pub const MAX_LIMIT: u32 = 10_000;

/// A query a client cannot have meant: each names what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("unknown operator {op:?} on {field:?}; use one of eq, ne, gt, gte, lt, lte, in, nin, exists, prefix, contains")]
    UnknownOperator { field: String, op: String },
    #[error("bad path {path:?}: {reason}")]
    BadPath { path: String, reason: String },
    #[error("`{op}` on {field:?} cannot take {given}: {needs}")]
    Incomparable {
        field: String,
        op: &'static str,
        given: String,
        needs: &'static str,
    },
    #[error("limit is {0}; use a whole number from 1 to {MAX_LIMIT}")]
    Limit(String),
    #[error("{what} has {count} entries; at most {max} are allowed")]
    TooMany {
        what: &'static str,
        count: usize,
        max: usize,
    },
    #[error("`fields` names {0:?} twice")]
    DuplicateField(String),
    #[error("unknown sort order {order:?} on {field:?}; use asc or desc")]
    UnknownOrder { field: String, order: String },
    #[error("unknown count {0:?}; use exact or estimated")]
    UnknownCount(String),
    #[error("invalid cursor; pass back the `next` value of the previous page of the same query unchanged")]
    BadCursor,
}

/// A dotted path into a record's JSON, e.g. `address.city`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    text: String,
    segments: Vec<String>,
}

impl FieldPath {
    /// 1 to [`MAX_PATH_SEGMENTS`] segments joined by `.`, each 1 to
    /// [`MAX_SEGMENT_BYTES`] bytes of ASCII letters, digits, `_` and `-`.
    pub fn parse(text: &str) -> Result<Self, QueryError> {
        let bad = |reason: String| QueryError::BadPath {
            path: text.chars().take(80).collect(),
            reason,
        };
        if text.is_empty() {
            return Err(bad("a path is one or more names joined by `.`".into()));
        }
        let segments: Vec<String> = text.split('.').map(str::to_owned).collect();
        if segments.len() > MAX_PATH_SEGMENTS {
            return Err(bad(format!("at most {MAX_PATH_SEGMENTS} segments")));
        }
        for s in &segments {
            if s.is_empty() {
                return Err(bad("an empty segment (two dots, or a dot at an end)".into()));
            }
            if s.len() > MAX_SEGMENT_BYTES {
                return Err(bad(format!(
                    "a segment longer than {MAX_SEGMENT_BYTES} bytes"
                )));
            }
            if let Some(c) = s
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
            {
                return Err(bad(format!(
                    "{c:?} is not allowed; segments hold ASCII letters, digits, `_` and `-`"
                )));
            }
        }
        Ok(Self {
            text: text.to_owned(),
            segments,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// The value at this path, as PostgreSQL's `#>` finds it.
    pub fn get<'a>(&self, doc: &'a Value) -> Option<&'a Value> {
        self.segments.iter().try_fold(doc, |at, s| match at {
            Value::Object(members) => members.get(s),
            Value::Array(items) => {
                let i: i64 = s.parse().ok()?;
                let len = items.len() as i64;
                let i = if i < 0 { len + i } else { i };
                usize::try_from(i).ok().and_then(|i| items.get(i))
            }
            _ => None,
        })
    }
}

/// A condition's operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    Nin,
    Exists,
    Prefix,
    Contains,
}

impl Operator {
    pub const ALL: [Operator; 11] = [
        Self::Eq,
        Self::Ne,
        Self::Gt,
        Self::Gte,
        Self::Lt,
        Self::Lte,
        Self::In,
        Self::Nin,
        Self::Exists,
        Self::Prefix,
        Self::Contains,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Eq => "eq",
            Self::Ne => "ne",
            Self::Gt => "gt",
            Self::Gte => "gte",
            Self::Lt => "lt",
            Self::Lte => "lte",
            Self::In => "in",
            Self::Nin => "nin",
            Self::Exists => "exists",
            Self::Prefix => "prefix",
            Self::Contains => "contains",
        }
    }

    fn parse(field: &str, op: &str) -> Result<Self, QueryError> {
        Self::ALL
            .into_iter()
            .find(|o| o.name() == op)
            .ok_or_else(|| QueryError::UnknownOperator {
                field: field.chars().take(80).collect(),
                op: op.chars().take(32).collect(),
            })
    }
}

/// A condition's value, in the form its operator compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    /// Any JSON, as text (`eq`, `ne`, `contains`).
    Json(String),
    /// A JSON array, as text (`in`, `nin`).
    List(String),
    /// A number, as `numeric` reads it (ranges on numbers).
    Number(String),
    /// A string (ranges on strings, `prefix`).
    Text(String),
    /// `exists`.
    Flag(bool),
}

/// One condition: the value at `path`, compared by `op` with `operand`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub path: FieldPath,
    pub op: Operator,
    pub operand: Operand,
}

impl Condition {
    /// A condition as a client wrote it; `value` absent is refused but for `exists`
    /// (absent there means `true`).
    pub fn parse(field: &str, op: &str, value: Option<&Value>) -> Result<Self, QueryError> {
        let path = FieldPath::parse(field)?;
        let op = Operator::parse(field, op)?;
        let refuse = |needs: &'static str| QueryError::Incomparable {
            field: field.chars().take(80).collect(),
            op: op.name(),
            given: value.map_or("no value".into(), kind_of),
            needs,
        };
        let operand = match (op, value) {
            (Operator::Exists, None) => Operand::Flag(true),
            (Operator::Exists, Some(Value::Bool(b))) => Operand::Flag(*b),
            (Operator::Exists, _) => return Err(refuse("it takes true or false")),
            (_, None) => return Err(refuse("it needs a `value`")),
            (Operator::Eq | Operator::Ne | Operator::Contains, Some(v)) => {
                Operand::Json(json_text(v).map_err(|_| refuse("a string without NUL"))?)
            }
            (Operator::In | Operator::Nin, Some(Value::Array(items))) => {
                if items.len() > MAX_LIST_VALUES {
                    return Err(QueryError::TooMany {
                        what: "an `in` or `nin` list",
                        count: items.len(),
                        max: MAX_LIST_VALUES,
                    });
                }
                let list = Value::Array(items.clone());
                Operand::List(json_text(&list).map_err(|_| refuse("strings without NUL"))?)
            }
            (Operator::In | Operator::Nin, Some(_)) => {
                return Err(refuse("it needs an array of values"))
            }
            (Operator::Gt | Operator::Gte | Operator::Lt | Operator::Lte, Some(v)) => match v {
                Value::Number(n) => Operand::Number(n.to_string()),
                Value::String(s) if !s.contains('\0') => Operand::Text(s.clone()),
                _ => return Err(refuse("it compares a number or a string")),
            },
            (Operator::Prefix, Some(Value::String(s))) if !s.contains('\0') => {
                Operand::Text(s.clone())
            }
            (Operator::Prefix, Some(_)) => return Err(refuse("it needs a string")),
        };
        Ok(Self { path, op, operand })
    }

    /// Whether `doc` matches, by the rules of this file's doc: what the SQL computes,
    /// for the gateway's own checks and for tests.
    pub fn matches(&self, doc: &Value) -> bool {
        let v = self.path.get(doc);
        let operand = || -> Value {
            match &self.operand {
                Operand::Json(t) | Operand::List(t) => {
                    serde_json::from_str(t).unwrap_or(Value::Null)
                }
                _ => Value::Null,
            }
        };
        match (self.op, &self.operand) {
            (Operator::Exists, Operand::Flag(b)) => v.is_some() == *b,
            (Operator::Eq, _) => v.is_some_and(|v| json_eq(v, &operand())),
            (Operator::Ne, _) => !v.is_some_and(|v| json_eq(v, &operand())),
            (Operator::In | Operator::Nin, _) => {
                let list = operand();
                let found = v.is_some_and(|v| {
                    list.as_array()
                        .is_some_and(|items| items.iter().any(|i| json_eq(v, i)))
                });
                found == (self.op == Operator::In)
            }
            (Operator::Contains, _) => v.is_some_and(|v| contains(v, &operand(), true)),
            (Operator::Prefix, Operand::Text(p)) => {
                matches!(v, Some(Value::String(s)) if s.starts_with(p.as_str()))
            }
            (op, Operand::Number(n)) => match v {
                Some(Value::Number(x)) => in_range(op, compare_numeric(&x.to_string(), n)),
                _ => false,
            },
            (op, Operand::Text(t)) => match v {
                Some(Value::String(s)) => in_range(op, s.as_str().cmp(t.as_str())),
                _ => false,
            },
            _ => false,
        }
    }
}

fn in_range(op: Operator, o: Ordering) -> bool {
    match op {
        Operator::Gt => o == Ordering::Greater,
        Operator::Gte => o != Ordering::Less,
        Operator::Lt => o == Ordering::Less,
        Operator::Lte => o != Ordering::Greater,
        _ => false,
    }
}

/// JSON equality as `jsonb`'s: numbers by value.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            compare_numeric(&x.to_string(), &y.to_string()) == Ordering::Equal
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, a)| y.get(k).is_some_and(|b| json_eq(a, b)))
        }
        _ => a == b,
    }
}

/// `jsonb`'s `@>`: an object contains the members given (each contained), an array
/// every element given (each contained in one of its elements of the same kind); at the
/// top, an array contains a scalar it holds. Scalars contain equal scalars.
fn contains(have: &Value, want: &Value, top: bool) -> bool {
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => w
            .iter()
            .all(|(k, wv)| h.get(k).is_some_and(|hv| contains(hv, wv, false))),
        (Value::Array(h), Value::Array(w)) => w.iter().all(|wv| {
            h.iter().any(|hv| match (hv, wv) {
                (Value::Array(_), Value::Array(_)) | (Value::Object(_), Value::Object(_)) => {
                    contains(hv, wv, false)
                }
                (Value::Array(_) | Value::Object(_), _)
                | (_, Value::Array(_) | Value::Object(_)) => false,
                _ => json_eq(hv, wv),
            })
        }),
        (Value::Array(h), w) if top && !matches!(w, Value::Object(_)) => {
            h.iter().any(|hv| json_eq(hv, w))
        }
        (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => false,
        _ => json_eq(have, want),
    }
}

fn kind_of(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "a boolean".into(),
        Value::Number(_) => "a number".into(),
        Value::String(_) => "a string".into(),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// JSON text `jsonb` accepts: no NUL in any string (`\u0000`).
fn json_text(v: &Value) -> Result<String, ()> {
    fn clean(v: &Value) -> bool {
        match v {
            Value::String(s) => !s.contains('\0'),
            Value::Array(items) => items.iter().all(clean),
            Value::Object(m) => m.iter().all(|(k, v)| !k.contains('\0') && clean(v)),
            _ => true,
        }
    }
    clean(v).then(|| v.to_string()).ok_or(())
}

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

    /// The order of two rows of this query (see the file's doc).
    pub fn compare(&self, a: &QueryRow, b: &QueryRow) -> Ordering {
        compare_positions(&self.sort, &a.position(), &b.position())
    }
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

/// The parts of `doc` that `fields` name, nested as in `doc`; a field the record lacks
/// is left out. A path through an array keeps the element it names only (under its
/// index as a member name).
pub fn project(doc: &Value, fields: &[FieldPath]) -> Value {
    let mut out = Value::Object(Default::default());
    for f in fields {
        let (Some(v), Some((last, init))) = (f.get(doc), f.segments().split_last()) else {
            continue;
        };
        let mut at = &mut out;
        for s in init {
            let Value::Object(members) = at else { break };
            at = members
                .entry(s.clone())
                .or_insert_with(|| Value::Object(Default::default()));
        }
        if let Value::Object(members) = at {
            members.insert(last.clone(), v.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_name_their_fault() {
        assert_eq!(
            FieldPath::parse("address.city").unwrap().segments(),
            ["address", "city"]
        );
        for bad in ["", "a..b", ".a", "a.", "a b", "a.'x'", &"x".repeat(65)] {
            let err = FieldPath::parse(bad).unwrap_err();
            assert!(matches!(err, QueryError::BadPath { .. }), "{bad}: {err}");
        }
        let doc = json!({"a": {"b": [10, 20, 30]}});
        assert_eq!(
            FieldPath::parse("a.b.1").unwrap().get(&doc),
            Some(&json!(20))
        );
        assert_eq!(
            FieldPath::parse("a.b.-1").unwrap().get(&doc),
            Some(&json!(30))
        );
        assert_eq!(FieldPath::parse("a.b.x").unwrap().get(&doc), None);
    }

    #[test]
    fn operands_are_checked_against_their_operator() {
        let p = |op, v: Value| Condition::parse("age", op, Some(&v));
        assert!(p("gte", json!(40)).is_ok());
        assert!(p("gte", json!("m")).is_ok());
        assert!(matches!(
            p("gte", json!(true)),
            Err(QueryError::Incomparable { .. })
        ));
        assert!(matches!(
            p("prefix", json!(4)),
            Err(QueryError::Incomparable { .. })
        ));
        assert!(matches!(
            p("in", json!(4)),
            Err(QueryError::Incomparable { .. })
        ));
        assert!(matches!(
            p("exists", json!(1)),
            Err(QueryError::Incomparable { .. })
        ));
        assert!(matches!(
            p("like", json!(1)),
            Err(QueryError::UnknownOperator { .. })
        ));
        assert!(matches!(
            Condition::parse("age", "eq", None),
            Err(QueryError::Incomparable { .. })
        ));
        let msg = p("prefix", json!(4)).unwrap_err().to_string();
        assert!(msg.contains("prefix") && msg.contains("a number"), "{msg}");
    }

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

    #[test]
    fn conditions_match_as_documented() {
        let doc = json!({"age": 41, "name": "Ann", "tags": ["a", "b"], "n": null});
        let m =
            |f: &str, op: &str, v: Value| Condition::parse(f, op, Some(&v)).unwrap().matches(&doc);
        assert!(m("age", "eq", json!(41.0)));
        assert!(m("age", "gt", json!(40)));
        assert!(!m("age", "gt", json!("40")));
        assert!(m("name", "lt", json!("B")));
        assert!(m("missing", "ne", json!(1)));
        assert!(m("missing", "nin", json!([1])));
        assert!(m("n", "exists", json!(true)));
        assert!(m("tags", "contains", json!(["b"])));
        assert!(m("tags", "contains", json!("a")));
        assert!(!m("tags", "contains", json!(["c"])));
        assert!(m("name", "prefix", json!("An")));
        assert!(m("age", "in", json!([1, 41])));
    }

    #[test]
    fn projection_keeps_the_fields_named_nested() {
        let doc = json!({"a": {"b": 1, "c": 2}, "d": 3});
        let fields: Vec<FieldPath> = ["a.b", "d", "x.y"]
            .iter()
            .map(|f| FieldPath::parse(f).unwrap())
            .collect();
        assert_eq!(project(&doc, &fields), json!({"a": {"b": 1}, "d": 3}));
    }
}
