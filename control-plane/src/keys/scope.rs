//! What a key may do: [`Scope`]s, and a key's set of them ([`Scopes`]), parsed once
//! from `read,write` text.

use std::fmt;

use serde::Serialize;

/// One permission. Each endpoint needs exactly one (or none: health is open).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Point reads, keyed lists and fan-out lists.
    Read,
    /// Writes, bulk writes and deletes.
    Write,
    /// The shard map and the servers behind it (`/api/shards`).
    Admin,
    /// Prometheus and the analytics endpoints.
    Metrics,
}

impl Scope {
    /// Every scope, in the order they are printed.
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Write, Scope::Admin, Scope::Metrics];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
            Scope::Metrics => "metrics",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key's scopes: never empty once parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scopes(u8);

impl Scopes {
    /// `read,write` (any case, spaces around names ignored); refuses an empty list and
    /// names it does not know, saying which ones exist.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut bits = 0;
        for name in text.split(',').map(str::trim) {
            let scope = Scope::ALL
                .into_iter()
                .find(|s| s.as_str().eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    let shown = if name.is_empty() {
                        "an empty name".to_owned()
                    } else {
                        format!("{:?}", name.chars().take(32).collect::<String>())
                    };
                    format!("{shown} is not a scope; use one or more of read, write, admin, metrics, separated by commas")
                })?;
            bits |= scope.bit();
        }
        Ok(Self(bits))
    }

    /// The scopes as stored in the metadata database (one name each).
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Result<Self, String> {
        let joined: Vec<&str> = names.iter().map(AsRef::as_ref).collect();
        Self::parse(&joined.join(","))
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// The names, in [`Scope::ALL`] order.
    pub fn names(self) -> Vec<&'static str> {
        Scope::ALL
            .into_iter()
            .filter(|s| self.contains(*s))
            .map(Scope::as_str)
            .collect()
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names().join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_in_any_case_and_print_in_one_order() {
        let s = Scopes::parse("Write, read").unwrap();
        assert!(s.contains(Scope::Read) && s.contains(Scope::Write));
        assert!(!s.contains(Scope::Admin) && !s.contains(Scope::Metrics));
        assert_eq!(s.to_string(), "read,write");
        assert_eq!(
            Scopes::parse("metrics,metrics").unwrap().to_string(),
            "metrics"
        );
        assert_eq!(
            Scopes::from_names(&["admin", "read"]).unwrap().to_string(),
            "read,admin"
        );
    }

    #[test]
    fn unknown_and_empty_scopes_are_refused_naming_the_known_ones() {
        for bad in ["", "read,", "fly", "read,wrote", " , "] {
            let err = Scopes::parse(bad).unwrap_err();
            assert!(
                err.contains("read, write, admin, metrics"),
                "{bad:?}: {err}"
            );
        }
        assert!(Scopes::parse("root")
            .unwrap_err()
            .starts_with("\"root\" is not a scope"));
    }
}
