//! JSON parsed within limits: nesting depth, total number of values, and the length of
//! one named top-level array (a bulk body's `records`), each checked as the parser
//! reaches it, before the value past the limit is allocated.
//!
//! Why: parsed into a tree first, 15 MB of `[{"x":0},…]` takes over a gigabyte (every
//! small object is a map node of several hundred bytes) before any check could run.
//! Here the tree can never hold more than `max_values` values, so the memory a body
//! can cost is bounded by the limits, not by its shape.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Limits on one JSON document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonLimits {
    /// Deepest nesting of arrays and objects (the document itself is depth 1).
    pub max_depth: usize,
    /// Most values in the document: every scalar, array and object counts one.
    pub max_values: usize,
    /// A top-level array member whose length is capped (e.g. `("records", 10_000)`).
    pub counted_array: Option<(&'static str, usize)>,
}

/// Why a document was refused.
#[derive(Debug, thiserror::Error)]
pub enum JsonLimitError {
    #[error("the JSON body nests deeper than {max} levels")]
    TooDeep { max: usize },
    #[error("the JSON body has more than {max} values")]
    TooManyValues { max: usize },
    #[error("`{field}` has more than {max} items")]
    TooManyItems { field: &'static str, max: usize },
    #[error("{0}")]
    Syntax(serde_json::Error),
}

/// Parses `bytes` into a [`Value`], refusing it at the first value past a limit.
pub fn parse(bytes: &[u8], limits: &JsonLimits) -> Result<Value, JsonLimitError> {
    let state = State {
        limits,
        values: Cell::new(0),
        tripped: Cell::new(None),
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    // Our own depth limit is checked before serde_json's recursion limit (128) could be
    // reached, as long as max_depth stays below it; cap it there to be sure.
    let seed = Node {
        state: &state,
        depth: 1,
        counted: false,
    };
    let parsed = seed.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    match (parsed, state.tripped.take()) {
        (_, Some(limit)) => Err(limit),
        (Ok(v), None) => Ok(v),
        (Err(e), None) => Err(JsonLimitError::Syntax(e)),
    }
}

/// The most nesting [`parse`] allows whatever is configured (serde_json's own limit).
pub const DEPTH_CEILING: usize = 120;

struct State<'l> {
    limits: &'l JsonLimits,
    values: Cell<usize>,
    /// The limit that stopped the parse (the serde error only carries text).
    tripped: Cell<Option<JsonLimitError>>,
}

impl State<'_> {
    fn trip<E: de::Error>(&self, limit: JsonLimitError) -> E {
        let text = limit.to_string();
        self.tripped.set(Some(limit));
        E::custom(text)
    }

    /// Counts one value; fails past the budget.
    fn count<E: de::Error>(&self) -> Result<(), E> {
        let n = self.values.get() + 1;
        if n > self.limits.max_values {
            return Err(self.trip(JsonLimitError::TooManyValues {
                max: self.limits.max_values,
            }));
        }
        self.values.set(n);
        Ok(())
    }
}

/// One value at `depth`; `counted` when it is the capped top-level array.
#[derive(Clone, Copy)]
struct Node<'s, 'l> {
    state: &'s State<'l>,
    depth: usize,
    counted: bool,
}

impl<'de> DeserializeSeed<'de> for Node<'_, '_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Value, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.state.count()?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.state.count()?;
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.state.count()?;
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.state.count()?;
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.state.count()?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.state.count()?;
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.state.count()?;
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.state.count()?;
        let child = self.child()?;
        let cap = self
            .counted
            .then_some(self.state.limits.counted_array)
            .flatten();
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(child)? {
            if let Some((field, max)) = cap {
                if items.len() == max {
                    return Err(self.state.trip(JsonLimitError::TooManyItems { field, max }));
                }
            }
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.state.count()?;
        let child = self.child()?;
        let counted_name = (self.depth == 1)
            .then_some(self.state.limits.counted_array)
            .flatten()
            .map(|(name, _)| name);
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(Node {
                counted: counted_name == Some(key.as_str()),
                ..child
            })?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

impl Node<'_, '_> {
    /// Entering a container at this depth: refused past the limit. Returns the seed
    /// for its members, one level deeper.
    fn child<E: de::Error>(self) -> Result<Self, E> {
        let max = self.state.limits.max_depth.min(DEPTH_CEILING);
        if self.depth > max {
            return Err(self.state.trip(JsonLimitError::TooDeep { max }));
        }
        Ok(Self {
            depth: self.depth + 1,
            counted: false,
            ..self
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LOOSE: JsonLimits = JsonLimits {
        max_depth: 64,
        max_values: 1_000_000,
        counted_array: None,
    };

    fn limits(max_depth: usize, max_values: usize) -> JsonLimits {
        JsonLimits {
            max_depth,
            max_values,
            counted_array: None,
        }
    }

    #[test]
    fn documents_parse_as_serde_json_parses_them() {
        for text in [
            r#"{"a":1,"b":[true,null,-2,3.5,18446744073709551615],"c":{"d":"\u00e9\n"}}"#,
            r#"[]"#,
            r#""text""#,
            r#"{"dup":1,"dup":2}"#,
            " \n {\"x\" : [ [ ] , { } ] } ",
        ] {
            let ours = parse(text.as_bytes(), &LOOSE).unwrap();
            let theirs: Value = serde_json::from_str(text).unwrap();
            assert_eq!(ours, theirs, "{text}");
        }
    }

    #[test]
    fn depth_is_capped_at_the_limit_and_deep_input_cannot_overflow_the_stack() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(parse(nested(3).as_bytes(), &limits(3, 100)).is_ok());
        assert!(matches!(
            parse(nested(4).as_bytes(), &limits(3, 100)),
            Err(JsonLimitError::TooDeep { max: 3 })
        ));
        let deep = nested(100_000);
        let result = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || parse(deep.as_bytes(), &limits(64, 1_000_000)))
            .unwrap()
            .join()
            .unwrap();
        assert!(matches!(result, Err(JsonLimitError::TooDeep { max: 64 })));
    }

    #[test]
    fn the_value_budget_is_exact() {
        // An object with two members: 3 values.
        let text = br#"{"a":1,"b":2}"#;
        assert!(parse(text, &limits(8, 3)).is_ok());
        let err = parse(text, &limits(8, 2)).unwrap_err();
        assert!(matches!(err, JsonLimitError::TooManyValues { max: 2 }));
        assert_eq!(err.to_string(), "the JSON body has more than 2 values");
    }

    #[test]
    fn the_counted_array_stops_at_its_cap_before_reading_further() {
        let capped = JsonLimits {
            counted_array: Some(("records", 3)),
            ..LOOSE
        };
        let ok = br#"{"table":"users","records":[1,2,3]}"#;
        assert_eq!(parse(ok, &capped).unwrap()["records"], json!([1, 2, 3]));
        // Past the cap, then garbage: the cap answers first, the garbage is never read.
        let over = br#"{"table":"users","records":[1,2,3,4,!!!"#;
        assert!(matches!(
            parse(over, &capped),
            Err(JsonLimitError::TooManyItems {
                field: "records",
                max: 3
            })
        ));
        // Only the top-level member counts.
        let nested = br#"{"data":{"records":[1,2,3,4,5]},"records":[]}"#;
        assert!(parse(nested, &capped).is_ok());
    }

    #[test]
    fn malformed_input_is_a_syntax_error() {
        for text in ["", "{", "{\"a\":}", "[1,2]x", "nul"] {
            assert!(
                matches!(
                    parse(text.as_bytes(), &LOOSE),
                    Err(JsonLimitError::Syntax(_))
                ),
                "{text:?}"
            );
        }
    }

    #[test]
    fn a_body_of_tiny_objects_stops_at_the_budget() {
        let mut body = String::from(r#"{"data":{"a":["#);
        while body.len() < 16 << 20 {
            body.push_str(r#"{"x":0},"#);
        }
        body.push_str(r#"{"x":0}]}}"#);
        let err = parse(body.as_bytes(), &limits(64, 100_000)).unwrap_err();
        assert!(matches!(
            err,
            JsonLimitError::TooManyValues { max: 100_000 }
        ));
    }
}
