//! `range`: contiguous key ranges to shards, as Bigtable, HBase and CockroachDB split
//! their key space. Keys compare byte-wise (lexicographic, the order of UTF-8 text), or
//! with `routing.numeric` as `i64` integers.
//!
//! Ranges are half-open, `[from, to)`, listed in key order; the first has no `from` and
//! the last no `to`, and each starts where the one before ends, so every key has
//! exactly one range. [`RangeMap::new`] rejects any gap or overlap and says where.
//!
//! Guarantees (asserted by `tests/strategies/range.rs`):
//! - Deterministic: a binary search over the configured boundaries; no hashing.
//! - Balance: none in general. Placement follows the key distribution, which is the
//!   point: neighbouring keys share a shard, so range scans touch few shards. With even
//!   ranges over uniformly spread integers, max/mean load ≤ 1.05 over 100,000 keys.
//! - Movement: [`RangeMap::with_added_shard`] splits the widest range at its midpoint
//!   and gives the upper half to the new shard. Exactly the keys in that half move, all
//!   to the new shard: 1/(2N) of uniformly spread integers over N even ranges (within
//!   0.01 over 100,000 keys). Width is measured over `i64`, or for text over the first
//!   16 bytes read as base-128 digits (bytes past ASCII count as 127), so the midpoint
//!   is always an ASCII string strictly inside the range. Real rebalances split where
//!   the data is: [`RangeMap::with_split`] takes any boundary, such as the median key
//!   of the busiest range.

use std::cmp::Ordering;
use std::fmt;

use super::{KeyInput, Sharding};
use crate::key::ShardId;

/// A range boundary: text (compared byte-wise) or an integer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bound {
    Text(String),
    Number(i64),
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(s) => write!(f, "{s:?}"),
            Self::Number(n) => write!(f, "{n}"),
        }
    }
}

/// One range, `[from, to)`: `None` is the start or the end of the key space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    pub from: Option<Bound>,
    pub to: Option<Bound>,
    pub shard: ShardId,
}

/// Why a list of ranges does not map every key to exactly one shard.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("no ranges are listed; the range strategy needs ranges covering the whole key space")]
    NoRanges,
    #[error("range {index} names shard {shard}, but the shards are 0 to {}", .shards - 1)]
    UnknownShard {
        index: usize,
        shard: u32,
        shards: u32,
    },
    #[error("range {index} has {kind} bounds, but the keys are {expected}")]
    Kind {
        index: usize,
        kind: &'static str,
        expected: &'static str,
    },
    #[error("range {index} is empty: from {from} is not below to {to}")]
    Empty {
        index: usize,
        from: Bound,
        to: Bound,
    },
    #[error("range 0 starts at {from}, so keys below it belong to no range; omit `from` on the first range")]
    FirstHasStart { from: Bound },
    #[error("range {index} has no `from`; only the first range starts at the beginning of the key space")]
    MissingStart { index: usize },
    #[error("range {index} has no `to`; only the last range runs to the end of the key space")]
    OpenEnd { index: usize },
    #[error("keys from {to} to the end of the key space belong to no range; omit `to` on the last range")]
    LastHasEnd { to: Bound },
    #[error("keys from {from} up to {to} belong to no range (range {index} ends at {from}, range {} starts at {to})", .index + 1)]
    Gap {
        index: usize,
        from: Bound,
        to: Bound,
    },
    #[error("keys from {from} up to {to} are in range {index} and range {}", .index + 1)]
    Overlap {
        index: usize,
        from: Bound,
        to: Bound,
    },
    #[error("shard {shard} owns no range; every shard needs at least one")]
    Unused { shard: u32 },
    #[error("cannot split at {at}: it is already where a range starts")]
    AlreadyBoundary { at: Bound },
}

/// Where each range starts, after the first (which starts at the beginning).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Splits {
    Text(Vec<String>),
    Numeric(Vec<i64>),
}

/// The range map: sorted boundaries and the shard of each range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeMap {
    /// `splits[i]` is where range `i + 1` starts.
    splits: Splits,
    /// `owners[i]` owns range `i`; one more than there are splits.
    owners: Vec<ShardId>,
    shards: u32,
}

/// Digits of the text position: 16 base-128 digits, 112 bits.
const TEXT_DIGITS: usize = 16;

impl RangeMap {
    /// Checks that `ranges`, in key order, cover every key exactly once and use every one
    /// of `shards` shards; `numeric` says whether bounds must be integers or text.
    /// `from = ""` (text) and `from = i64::MIN` (numeric) mean the start.
    pub fn new(ranges: &[KeyRange], numeric: bool, shards: u32) -> Result<Self, RangeError> {
        let last = ranges.len().checked_sub(1).ok_or(RangeError::NoRanges)?;
        let expected = if numeric { "integers" } else { "text" };
        let start = |b: &Option<Bound>| match b {
            Some(Bound::Text(s)) if s.is_empty() => None,
            Some(Bound::Number(i64::MIN)) => None,
            other => other.clone(),
        };
        let mut starts = Vec::with_capacity(last);
        for (index, r) in ranges.iter().enumerate() {
            if r.shard.0 >= shards {
                return Err(RangeError::UnknownShard {
                    index,
                    shard: r.shard.0,
                    shards,
                });
            }
            for b in r.from.iter().chain(&r.to) {
                let kind = match b {
                    Bound::Text(_) if numeric => "text",
                    Bound::Number(_) if !numeric => "integer",
                    _ => continue,
                };
                return Err(RangeError::Kind {
                    index,
                    kind,
                    expected,
                });
            }
            let from = start(&r.from);
            if let (Some(from), Some(to)) = (&from, &r.to) {
                if from >= to {
                    return Err(RangeError::Empty {
                        index,
                        from: from.clone(),
                        to: to.clone(),
                    });
                }
            }
            match (index, from) {
                (0, Some(from)) => return Err(RangeError::FirstHasStart { from }),
                (0, None) => {}
                (_, None) => return Err(RangeError::MissingStart { index }),
                (_, Some(from)) => starts.push(from),
            }
            match (&r.to, index == last) {
                (None, false) => return Err(RangeError::OpenEnd { index }),
                (Some(to), true) => return Err(RangeError::LastHasEnd { to: to.clone() }),
                _ => {}
            }
        }
        for (index, pair) in ranges.windows(2).enumerate() {
            // Every range but the last has a `to`, checked above.
            let (Some(end), next) = (&pair[0].to, &starts[index]) else {
                continue;
            };
            match end.cmp(next) {
                Ordering::Less => {
                    return Err(RangeError::Gap {
                        index,
                        from: end.clone(),
                        to: next.clone(),
                    })
                }
                Ordering::Greater => {
                    let to = pair[1].to.as_ref().map_or(end, |after| end.min(after));
                    return Err(RangeError::Overlap {
                        index,
                        from: next.clone(),
                        to: to.clone(),
                    });
                }
                Ordering::Equal => {}
            }
        }
        if let Some(shard) = (0..shards).find(|&s| ranges.iter().all(|r| r.shard.0 != s)) {
            return Err(RangeError::Unused { shard });
        }
        let splits = if numeric {
            Splits::Numeric(
                starts
                    .into_iter()
                    .map(|b| match b {
                        Bound::Number(n) => n,
                        Bound::Text(_) => unreachable!("kinds were checked above"),
                    })
                    .collect(),
            )
        } else {
            Splits::Text(
                starts
                    .into_iter()
                    .map(|b| match b {
                        Bound::Text(s) => s,
                        Bound::Number(_) => unreachable!("kinds were checked above"),
                    })
                    .collect(),
            )
        };
        Ok(Self {
            splits,
            owners: ranges.iter().map(|r| r.shard).collect(),
            shards,
        })
    }

    /// Whether bounds and keys are integers.
    pub fn is_numeric(&self) -> bool {
        matches!(self.splits, Splits::Numeric(_))
    }

    /// How many ranges there are.
    pub fn len(&self) -> usize {
        self.owners.len()
    }

    /// Never: a map always has at least one range.
    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }

    /// The index of the range that holds `key`.
    pub fn index_of(&self, key: &KeyInput<'_>) -> usize {
        match &self.splits {
            Splits::Text(s) => s.partition_point(|b| b.as_str() <= key.as_str()),
            Splits::Numeric(s) => s.partition_point(|&b| b <= key.integer()),
        }
    }

    /// Range `index` (`0..len()`), with its bounds and shard.
    pub fn range(&self, index: usize) -> KeyRange {
        let bound = |i: usize| match &self.splits {
            Splits::Text(s) => s.get(i).cloned().map(Bound::Text),
            Splits::Numeric(s) => s.get(i).copied().map(Bound::Number),
        };
        KeyRange {
            from: index.checked_sub(1).and_then(bound),
            to: bound(index),
            shard: self.owners[index],
        }
    }

    /// Every range, in key order.
    pub fn ranges(&self) -> Vec<KeyRange> {
        (0..self.len()).map(|i| self.range(i)).collect()
    }

    /// The ranges `shard` owns, in key order.
    pub fn ranges_of(&self, shard: ShardId) -> Vec<KeyRange> {
        self.ranges()
            .into_iter()
            .filter(|r| r.shard == shard)
            .collect()
    }

    /// Splits the range holding `at` so that its keys from `at` up go to `shard` (an
    /// existing shard, or `ShardId(shard_count())` to add one). Only those keys move.
    pub fn with_split(&self, at: Bound, shard: ShardId) -> Result<Self, RangeError> {
        let index = self.len();
        if shard.0 > self.shards {
            return Err(RangeError::UnknownShard {
                index,
                shard: shard.0,
                shards: self.shards + 1,
            });
        }
        let mut next = self.clone();
        let i = match (&mut next.splits, &at) {
            (Splits::Text(s), Bound::Text(t)) if !t.is_empty() => {
                let i = s.partition_point(|b| b <= t);
                if i > 0 && &s[i - 1] == t {
                    return Err(RangeError::AlreadyBoundary { at });
                }
                s.insert(i, t.clone());
                i
            }
            (Splits::Numeric(s), Bound::Number(n)) if *n != i64::MIN => {
                let i = s.partition_point(|b| b <= n);
                if i > 0 && s[i - 1] == *n {
                    return Err(RangeError::AlreadyBoundary { at });
                }
                s.insert(i, *n);
                i
            }
            (Splits::Text(_), Bound::Number(_)) | (Splits::Numeric(_), Bound::Text(_)) => {
                return Err(RangeError::Kind {
                    index,
                    kind: if self.is_numeric() { "text" } else { "integer" },
                    expected: if self.is_numeric() {
                        "integers"
                    } else {
                        "text"
                    },
                })
            }
            // The very start of the key space is where range 0 begins.
            _ => return Err(RangeError::AlreadyBoundary { at }),
        };
        next.owners.insert(i + 1, shard);
        next.shards = self.shards.max(shard.0 + 1);
        Ok(next)
    }

    /// The midpoint of the widest range: where [`Sharding::with_added_shard`] splits.
    pub fn widest_midpoint(&self) -> Bound {
        match &self.splits {
            Splits::Numeric(s) => {
                let (start, end) = (i128::from(i64::MIN), i128::from(i64::MAX) + 1);
                let mid = widest_midpoint(s.iter().map(|&n| i128::from(n)), start, end);
                Bound::Number(mid as i64)
            }
            Splits::Text(s) => {
                let end = 1i128 << (7 * TEXT_DIGITS);
                let mid = widest_midpoint(s.iter().map(|t| text_position(t)), 0, end);
                Bound::Text(text_at(mid))
            }
        }
    }
}

/// The midpoint of the widest of the ranges `[start, b0), [b0, b1), …, [bn, end)`
/// (the first widest on ties).
fn widest_midpoint(bounds: impl Iterator<Item = i128>, start: i128, end: i128) -> i128 {
    let mut edges = vec![start];
    edges.extend(bounds);
    edges.push(end);
    let (from, to) = edges
        .windows(2)
        .map(|w| (w[0], w[1]))
        .fold((start, start), |best, (a, b)| {
            if b - a > best.1 - best.0 {
                (a, b)
            } else {
                best
            }
        });
    from + (to - from) / 2
}

/// Text as a number that never decreases in byte order: its first 16 bytes as base-128
/// digits, bytes past ASCII counting as 127, missing bytes as 0.
fn text_position(text: &str) -> i128 {
    let bytes = text.as_bytes();
    (0..TEXT_DIGITS).fold(0i128, |pos, k| {
        pos * 128 + i128::from(bytes.get(k).map_or(0, |&b| b.min(127)))
    })
}

/// The ASCII text at a position, trailing zero digits dropped (they do not change it).
fn text_at(pos: i128) -> String {
    let mut digits: Vec<u8> = (0..TEXT_DIGITS)
        .rev()
        .map(|k| ((pos >> (7 * k)) & 127) as u8)
        .collect();
    while digits.last() == Some(&0) {
        digits.pop();
    }
    digits.into_iter().map(char::from).collect()
}

impl Sharding for RangeMap {
    fn shard_count(&self) -> u32 {
        self.shards
    }

    fn shard_of(&self, key: &KeyInput<'_>) -> ShardId {
        self.owners[self.index_of(key)]
    }

    /// Splits the widest range at its midpoint ([`RangeMap::widest_midpoint`]); the
    /// upper half goes to the new shard.
    fn with_added_shard(&self) -> Self {
        let new = ShardId(self.shards);
        self.with_split(self.widest_midpoint(), new)
            // Unreachable: the widest range spans at least 2¹¹²/len() positions.
            .unwrap_or_else(|_| Self {
                shards: self.shards + 1,
                ..self.clone()
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Option<Bound> {
        Some(Bound::Text(s.into()))
    }

    fn span(from: Option<Bound>, to: Option<Bound>, shard: u32) -> KeyRange {
        KeyRange {
            from,
            to,
            shard: ShardId(shard),
        }
    }

    fn error(ranges: &[KeyRange]) -> String {
        RangeMap::new(ranges, false, 2).unwrap_err().to_string()
    }

    #[test]
    fn keys_go_to_the_range_that_holds_them() {
        let map = RangeMap::new(
            &[
                span(None, text("h"), 0),
                span(text("h"), text("p"), 1),
                span(text("p"), None, 0),
            ],
            false,
            2,
        )
        .unwrap();
        let shard = |k: &str| map.shard_of(&KeyInput::text(k)).0;
        assert_eq!(
            [shard("a"), shard("g~"), shard("h"), shard("ozz")],
            [0, 0, 1, 1]
        );
        assert_eq!([shard("p"), shard("zebra"), shard("é")], [0, 0, 0]);
        assert_eq!(
            map.ranges_of(ShardId(1)),
            vec![span(text("h"), text("p"), 1)]
        );
    }

    #[test]
    fn gaps_overlaps_and_open_ends_are_named() {
        let gap = [span(None, text("h"), 0), span(text("i"), None, 1)];
        assert_eq!(
            error(&gap),
            "keys from \"h\" up to \"i\" belong to no range (range 0 ends at \"h\", range 1 starts at \"i\")"
        );
        let overlap = [span(None, text("h"), 0), span(text("g"), None, 1)];
        assert_eq!(
            error(&overlap),
            "keys from \"g\" up to \"h\" are in range 0 and range 1"
        );
        let closed = [span(None, text("h"), 0), span(text("h"), text("z"), 1)];
        assert!(error(&closed).starts_with("keys from \"z\" to the end of the key space"));
        let open = [span(None, None, 0), span(text("h"), None, 1)];
        assert!(error(&open).starts_with("range 0 has no `to`"));
        let late = [span(text("a"), text("h"), 0), span(text("h"), None, 1)];
        assert!(error(&late).starts_with("range 0 starts at \"a\""));
        let unused = [span(None, text("h"), 0), span(text("h"), None, 0)];
        assert_eq!(
            error(&unused),
            "shard 1 owns no range; every shard needs at least one"
        );
        let empty = [span(None, text("h"), 0), span(text("h"), text("c"), 1)];
        assert!(error(&empty).starts_with("range 1 is empty: from \"h\" is not below to \"c\""));
        let unknown = [span(None, None, 2)];
        assert_eq!(
            error(&unknown),
            "range 0 names shard 2, but the shards are 0 to 1"
        );
    }

    #[test]
    fn numeric_ranges_compare_as_integers() {
        let n = |v: i64| Some(Bound::Number(v));
        let map = RangeMap::new(
            &[span(n(i64::MIN), n(1000), 0), span(n(1000), None, 1)],
            true,
            2,
        )
        .unwrap();
        let shard = |k: &str| map.shard_of(&KeyInput::numeric(k).unwrap()).0;
        // Lexicographically "999" > "1000"; as integers it is below.
        assert_eq!(
            [shard("-5"), shard("999"), shard("1000"), shard("20000")],
            [0, 0, 1, 1]
        );
        assert!(RangeMap::new(&[span(None, text("a"), 0)], true, 1).is_err());
    }

    #[test]
    fn adding_a_shard_splits_the_widest_range_in_the_middle() {
        let map = RangeMap::new(&[span(None, None, 0)], false, 1).unwrap();
        let two = map.with_added_shard();
        assert_eq!(two.ranges()[1], span(text("@"), None, 1));
        let three = two.with_added_shard();
        assert_eq!(three.ranges()[0], span(None, text(" "), 0));
        assert_eq!(three.ranges()[1], span(text(" "), text("@"), 2));
        let numeric = RangeMap::new(&[span(None, None, 0)], true, 1).unwrap();
        assert_eq!(
            numeric.with_added_shard().ranges()[1].from,
            Some(Bound::Number(0))
        );
        assert_eq!(
            map.with_split(Bound::Text("@".into()), ShardId(1))
                .unwrap()
                .with_split(Bound::Text("@".into()), ShardId(1)),
            Err(RangeError::AlreadyBoundary {
                at: Bound::Text("@".into())
            })
        );
    }
}
