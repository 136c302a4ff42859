//! PostgreSQL WAL positions (LSNs) and the read-your-writes token built on them.

use std::fmt;

use crate::routing::ShardId;

/// A WAL position in bytes. Ordered: a server that has replayed past a write's commit
/// LSN shows that write to every new query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

impl Lsn {
    /// Parses PostgreSQL's `X/Y` text form (two hex numbers).
    pub fn parse(text: &str) -> Option<Self> {
        let (hi, lo) = text.trim().split_once('/')?;
        let hi = u64::from_str_radix(hi, 16).ok()?;
        let lo = u64::from_str_radix(lo, 16).ok()?;
        (hi <= u64::from(u32::MAX) && lo <= u64::from(u32::MAX)).then_some(Self((hi << 32) | lo))
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// What a write hands back so a later read can insist on seeing it: the shard and the
/// primary's WAL position after the commit. Text form `<shard>:<lsn>`, e.g. `1:0/3000060`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteToken {
    pub shard: ShardId,
    pub lsn: Lsn,
}

/// A token that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid read-your-writes token {0:?}; expected <shard>:<lsn> as returned in x-shard-lsn, e.g. 1:0/3000060")]
pub struct TokenError(pub String);

impl WriteToken {
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        let bad = || TokenError(text.chars().take(64).collect());
        let (shard, lsn) = text.trim().split_once(':').ok_or_else(bad)?;
        Ok(Self {
            shard: ShardId(shard.parse().map_err(|_| bad())?),
            lsn: Lsn::parse(lsn).ok_or_else(bad)?,
        })
    }
}

impl fmt::Display for WriteToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.shard.0, self.lsn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsn_round_trips_and_orders() {
        let a = Lsn::parse("0/3000060").unwrap();
        assert_eq!(a, Lsn(0x3000060));
        assert_eq!(a.to_string(), "0/3000060");
        let b = Lsn::parse("16/B374D848").unwrap();
        assert_eq!(b.0, (0x16 << 32) | 0xB374D848);
        assert_eq!(b.to_string(), "16/B374D848");
        assert!(a < b);
        assert_eq!(Lsn::parse("nope"), None);
        assert_eq!(Lsn::parse("1/100000000"), None);
    }

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        let t = WriteToken::parse("2:0/5077F58").unwrap();
        assert_eq!(t.shard, ShardId(2));
        assert_eq!(t.to_string(), "2:0/5077F58");
        assert!(WriteToken::parse("0/5077F58").is_err());
        assert!(WriteToken::parse("x:0/1").is_err());
    }
}
