//! Domain names for routing: shard keys, shard ids, slots and server roles.

use std::fmt;

/// Longest shard key accepted, in bytes. Keys are stored and indexed, and travel in a
/// header, so a bound keeps every one of those cheap.
pub const MAX_KEY_BYTES: usize = 256;

/// A validated shard key: any UTF-8 string of 1..=256 bytes.
///
/// Parse, don't validate: once a `ShardKey` exists, every layer below can trust it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardKey(String);

/// Why a string is not a shard key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the shard key is empty; it must be 1 to {MAX_KEY_BYTES} bytes of UTF-8")]
    Empty,
    #[error("the shard key is {0} bytes; at most {MAX_KEY_BYTES} bytes are allowed")]
    TooLong(usize),
    #[error("the shard key contains a NUL character, which PostgreSQL text cannot store")]
    Nul,
}

impl ShardKey {
    /// Accepts 1..=256 bytes without NUL; everything else is a client mistake.
    pub fn parse(raw: &str) -> Result<Self, KeyError> {
        match raw.len() {
            0 => Err(KeyError::Empty),
            n if n > MAX_KEY_BYTES => Err(KeyError::TooLong(n)),
            _ if raw.contains('\0') => Err(KeyError::Nul),
            _ => Ok(Self(raw.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Display for ShardKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A shard's index in the configuration (0-based, in `[[shards]]` order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct ShardId(pub u32);

impl ShardId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shard-{}", self.0)
    }
}

/// A routing slot: `hash(key) % slot_count`. Slots, not keys, are assigned to shards,
/// so moving data between shards means moving whole slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Slot(pub u32);

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Which kind of server answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Primary,
    Replica,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Replica => "replica",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_bounds_are_bytes_not_chars() {
        assert_eq!(ShardKey::parse(""), Err(KeyError::Empty));
        assert!(ShardKey::parse(&"a".repeat(256)).is_ok());
        assert_eq!(
            ShardKey::parse(&"a".repeat(257)),
            Err(KeyError::TooLong(257))
        );
        // 86 three-byte characters = 258 bytes.
        assert_eq!(
            ShardKey::parse(&"€".repeat(86)),
            Err(KeyError::TooLong(258))
        );
        assert_eq!(
            ShardKey::parse("@alice:matrix.org").unwrap().as_str(),
            "@alice:matrix.org"
        );
        assert_eq!(ShardKey::parse("a\0b"), Err(KeyError::Nul));
    }
}
