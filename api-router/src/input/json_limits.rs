//! JSON checked within limits before anything is built from it: nesting depth, total
//! number of values, and the length of one named top-level array (a bulk body's
//! `records`), each checked as the parser reaches it, allocating nothing.
//!
//! Why: parsed into a tree first, 15 MB of `[{"x":0},…]` takes over a gigabyte (every
//! small object is a map node of several hundred bytes) before any check could run.
//! A body is typed only once it passed here, so what it builds can never hold more than
//! `max_values` values: the memory a body can cost is bounded by the limits, not by its
//! shape. (And a body's parts that are only passed on, such as a write's document, are
//! never built at all: they stay text.)

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use shard_manager::store::NameIs;

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

/// Reads `bytes` as one JSON document, refusing it at the first value past a limit.
pub fn check(bytes: &[u8], limits: &JsonLimits) -> Result<(), JsonLimitError> {
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
    let parsed = seed.deserialize(&mut de).and_then(|()| de.end());
    match (parsed, state.tripped.take()) {
        (_, Some(limit)) => Err(limit),
        (Ok(()), None) => Ok(()),
        (Err(e), None) => Err(JsonLimitError::Syntax(e)),
    }
}

/// The most nesting [`check`] allows whatever is configured (serde_json's own limit).
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
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.state.count()
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.state.count()
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.state.count()
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.state.count()
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.state.count()
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.state.count()
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.state.count()?;
        let child = self.child()?;
        let cap = self
            .counted
            .then_some(self.state.limits.counted_array)
            .flatten();
        let mut items = 0;
        while seq.next_element_seed(child)?.is_some() {
            if let Some((field, max)) = cap {
                if items == max {
                    return Err(self.state.trip(JsonLimitError::TooManyItems { field, max }));
                }
            }
            items += 1;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.state.count()?;
        let child = self.child()?;
        let counted_name = (self.depth == 1)
            .then_some(self.state.limits.counted_array)
            .flatten()
            .map(|(name, _)| name);
        while let Some(counted) = map.next_key_seed(NameIs(counted_name))? {
            map.next_value_seed(Node { counted, ..child })?;
        }
        Ok(())
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
    use serde_json::Value;

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
    fn documents_serde_json_accepts_pass() {
        for text in [
            r#"{"a":1,"b":[true,null,-2,3.5,18446744073709551615],"c":{"d":"\u00e9\n"}}"#,
            r#"[]"#,
            r#""text""#,
            r#"{"dup":1,"dup":2}"#,
            " \n {\"x\" : [ [ ] , { } ] } ",
        ] {
            assert!(serde_json::from_str::<Value>(text).is_ok(), "{text}");
            assert!(check(text.as_bytes(), &LOOSE).is_ok(), "{text}");
        }
    }

    #[test]
    fn depth_is_capped_at_the_limit_and_deep_input_cannot_overflow_the_stack() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(check(nested(3).as_bytes(), &limits(3, 100)).is_ok());
        assert!(matches!(
            check(nested(4).as_bytes(), &limits(3, 100)),
            Err(JsonLimitError::TooDeep { max: 3 })
        ));
        let deep = nested(100_000);
        let result = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || check(deep.as_bytes(), &limits(64, 1_000_000)))
            .unwrap()
            .join()
            .unwrap();
        assert!(matches!(result, Err(JsonLimitError::TooDeep { max: 64 })));
    }

    #[test]
    fn the_value_budget_is_exact() {
        // An object with two members: 3 values.
        let text = br#"{"a":1,"b":2}"#;
        assert!(check(text, &limits(8, 3)).is_ok());
        let err = check(text, &limits(8, 2)).unwrap_err();
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
        assert!(check(ok, &capped).is_ok());
        // The cap counts the named array's items: one more is refused.
        let one_more = br#"{"table":"users","records":[1,2,3,4]}"#;
        assert!(check(one_more, &capped).is_err());
        // A name written with an escape is still the name.
        let escaped = br#"{"table":"users","rec\u006frds":[1,2,3,4]}"#;
        assert!(check(escaped, &capped).is_err());
        // Past the cap, then garbage: the cap answers first, the garbage is never read.
        let over = br#"{"table":"users","records":[1,2,3,4,!!!"#;
        assert!(matches!(
            check(over, &capped),
            Err(JsonLimitError::TooManyItems {
                field: "records",
                max: 3
            })
        ));
        // Only the top-level member counts.
        let nested = br#"{"data":{"records":[1,2,3,4,5]},"records":[]}"#;
        assert!(check(nested, &capped).is_ok());
    }

    #[test]
    fn malformed_input_is_a_syntax_error() {
        for text in ["", "{", "{\"a\":}", "[1,2]x", "nul"] {
            assert!(
                matches!(
                    check(text.as_bytes(), &LOOSE),
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
        let err = check(body.as_bytes(), &limits(64, 100_000)).unwrap_err();
        assert!(matches!(
            err,
            JsonLimitError::TooManyValues { max: 100_000 }
        ));
    }
}
