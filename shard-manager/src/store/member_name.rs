//! One JSON member name, read only to answer whether it is a given name: for passes
//! over a document that skip what they do not need, allocating nothing.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error, Visitor};

/// Seeds a member name; yields whether it is the name held (`None`: never).
#[derive(Debug, Clone, Copy)]
pub struct NameIs(pub Option<&'static str>);

impl<'de> DeserializeSeed<'de> for NameIs {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<bool, D::Error> {
        de.deserialize_str(self)
    }
}

impl Visitor<'_> for NameIs {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: Error>(self, v: &str) -> Result<bool, E> {
        Ok(self.0 == Some(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_compared_after_its_escapes_are_read() {
        let mut de = serde_json::Deserializer::from_str(r#""i\u0064""#);
        assert!(NameIs(Some("id")).deserialize(&mut de).unwrap());
        let mut de = serde_json::Deserializer::from_str(r#""idx""#);
        assert!(!NameIs(Some("id")).deserialize(&mut de).unwrap());
        let mut de = serde_json::Deserializer::from_str(r#""id""#);
        assert!(!NameIs(None).deserialize(&mut de).unwrap());
    }
}
