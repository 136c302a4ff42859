//! Range bounds: text or integer boundaries, the check that turns a listed set of ranges
//! into sorted split points, and where the widest range splits in the middle.

use std::cmp::Ordering;
use std::fmt;

use crate::routing::ShardId;

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
pub(super) enum Splits {
    Text(Vec<String>),
    Numeric(Vec<i64>),
}

/// Digits of the text position: 16 base-128 digits, 112 bits.
const TEXT_DIGITS: usize = 16;

impl Splits {
    /// Checks that `ranges`, in key order, cover every key exactly once and use every one
    /// of `shards` shards, and returns where each range after the first starts. `numeric`
    /// says whether bounds must be integers or text; `from = ""` (text) and
    /// `from = i64::MIN` (numeric) mean the start.
    pub(super) fn from_ranges(
        ranges: &[KeyRange],
        numeric: bool,
        shards: u32,
    ) -> Result<Self, RangeError> {
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
        Ok(if numeric {
            Self::Numeric(
                starts
                    .into_iter()
                    .map(|b| match b {
                        Bound::Number(n) => n,
                        Bound::Text(_) => unreachable!("kinds were checked above"),
                    })
                    .collect(),
            )
        } else {
            Self::Text(
                starts
                    .into_iter()
                    .map(|b| match b {
                        Bound::Text(s) => s,
                        Bound::Number(_) => unreachable!("kinds were checked above"),
                    })
                    .collect(),
            )
        })
    }

    /// The midpoint of the widest range. Width is measured over `i64`, or for text over
    /// the first 16 bytes read as base-128 digits, so a text midpoint is always ASCII.
    pub(super) fn widest_midpoint(&self) -> Bound {
        match self {
            Self::Numeric(s) => {
                let (start, end) = (i128::from(i64::MIN), i128::from(i64::MAX) + 1);
                let mid = widest_midpoint(s.iter().map(|&n| i128::from(n)), start, end);
                Bound::Number(mid as i64)
            }
            Self::Text(s) => {
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::routing::strategy::range) fn text(s: &str) -> Option<Bound> {
        Some(Bound::Text(s.into()))
    }

    pub(in crate::routing::strategy::range) fn span(
        from: Option<Bound>,
        to: Option<Bound>,
        shard: u32,
    ) -> KeyRange {
        KeyRange {
            from,
            to,
            shard: ShardId(shard),
        }
    }

    fn error(ranges: &[KeyRange]) -> String {
        Splits::from_ranges(ranges, false, 2)
            .unwrap_err()
            .to_string()
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
}
