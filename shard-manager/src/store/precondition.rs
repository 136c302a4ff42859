//! What a conditional write or delete expects of the record it changes (HTTP's
//! `If-Match`): that it exists, or that it is at one of some versions. The check and the
//! change are one statement on the primary, with the record locked between them
//! ([`crate::store::statements::REPLACE_IF`], [`crate::store::statements::DELETE_IF`]): no
//! other write of the record comes between.

/// The condition a conditional write or delete puts on the record's current version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// The record exists, at whatever version (`If-Match: *`).
    Exists,
    /// The record exists at one of these versions. Empty: no version can match (every
    /// tag sent was another record's), so the write is refused whatever the record is.
    AtVersion(Vec<i64>),
}

impl Precondition {
    /// Whether any version will do, and the versions that do otherwise: the two binds
    /// the conditional statements take.
    pub fn binds(&self) -> (bool, &[i64]) {
        match self {
            Self::Exists => (true, &[]),
            Self::AtVersion(versions) => (false, versions),
        }
    }
}

/// What a conditional write or delete did: applied (with its own answer), or refused
/// because the record was at another version, named (0: the record does not exist).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conditional<T> {
    Applied(T),
    Refused { current: i64 },
}

impl<T> Conditional<T> {
    /// The same answer, an applied one turned into another.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Conditional<U> {
        match self {
            Self::Applied(done) => Conditional::Applied(f(done)),
            Self::Refused { current } => Conditional::Refused { current },
        }
    }
}
