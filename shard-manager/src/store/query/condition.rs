//! A query's conditions: an operator and its operand on a path, checked against each
//! other at the edge, and what a record matches (the meaning a shard's SQL must keep:
//! see the module doc of `super`).

use std::cmp::Ordering;

use serde_json::Value;

use super::order::compare_numeric;
use super::{FieldPath, QueryError, MAX_LIST_VALUES};

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

    /// Whether `doc` matches, by the rules of the module doc of `super`: what the SQL
    /// computes, for the gateway's own checks and for tests.
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
}
