//! How fresh a read must be: eventual, strong, or at least a write's WAL position.

use crate::wal::lsn::Lsn;

/// How fresh a read must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consistency {
    /// Any qualifying replica; may miss the newest writes by a few milliseconds.
    #[default]
    Eventual,
    /// The primary: sees every acknowledged write.
    Strong,
    /// A replica that has replayed at least this WAL position (a write's token), else
    /// the primary: never misses that write.
    ReadYourWrites(Lsn),
}

/// Why a string is not a consistency level.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown consistency {0:?}; use \"eventual\" or \"strong\" (or \"snapshot\" for reads across shards at one cut)")]
pub struct ConsistencyError(pub String);

impl Consistency {
    /// The WAL position a read must reflect: a token's, else none (0).
    pub fn min_lsn(&self) -> Lsn {
        match self {
            Self::ReadYourWrites(lsn) => *lsn,
            Self::Eventual | Self::Strong => Lsn(0),
        }
    }

    pub fn parse(raw: &str) -> Result<Self, ConsistencyError> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "eventual" => Ok(Self::Eventual),
            "strong" => Ok(Self::Strong),
            _ => Err(ConsistencyError(raw.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consistency_parses_case_insensitively() {
        assert_eq!(Consistency::parse("Strong").unwrap(), Consistency::Strong);
        assert_eq!(
            Consistency::parse("eventual").unwrap(),
            Consistency::Eventual
        );
        assert!(Consistency::parse("linearizable").is_err());
    }
}
