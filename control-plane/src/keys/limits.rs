//! A key's own limits ([`KeyLimits`]): its request rate, its burst, and how many queries
//! it may run at once on one shard. Each is the gateways' default (`[limits]`), none,
//! or a number, and is parsed once from the admin CLI's text.
//!
//! Stored in the key's row: NULL is the default, 0 is no limit, and a positive number is
//! the limit. Gateways follow changes like any other key change, within a second.

use std::fmt;
use std::num::NonZeroU32;

/// Largest rate (requests per second) and burst a key may be given: beyond it the
/// limit protects nothing, and GCRA's interval (1 s / rate) stays above a microsecond.
pub const MAX_RATE: u32 = 1_000_000;
/// Largest per-shard concurrency cap a key may be given.
pub const MAX_CONCURRENCY: u32 = 100_000;

/// One limit of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Limit {
    /// The gateways' `[limits]` setting applies.
    #[default]
    Default,
    /// No limit for this key, whatever the gateways' default.
    Unlimited,
    /// This many.
    At(NonZeroU32),
}

impl Limit {
    /// `N`, `default` or `unlimited` (any case). `flag` names the option in messages;
    /// `unlimited` is refused when `may_be_unlimited` is false (a burst always has a size).
    pub fn parse(flag: &str, text: &str, max: u32, may_be_unlimited: bool) -> Result<Self, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("default") {
            return Ok(Self::Default);
        }
        if may_be_unlimited && text.eq_ignore_ascii_case("unlimited") {
            return Ok(Self::Unlimited);
        }
        let words = if may_be_unlimited {
            "`default` or `unlimited`"
        } else {
            "`default`"
        };
        let number = text.parse::<u32>().ok().filter(|n| *n <= max);
        match number.and_then(NonZeroU32::new) {
            Some(n) => Ok(Self::At(n)),
            None => {
                let shown: String = text.chars().take(32).collect();
                Err(format!(
                    "{flag}: {shown:?} is not a limit; use a whole number from 1 to {max}, or {words}"
                ))
            }
        }
    }

    /// As stored: NULL for the default, 0 for none, else the number.
    pub fn to_column(self) -> Option<i32> {
        match self {
            Self::Default => None,
            Self::Unlimited => Some(0),
            Self::At(n) => Some(i32::try_from(n.get()).unwrap_or(i32::MAX)),
        }
    }

    /// From the stored column; a negative number (refused by the table's CHECK) is an
    /// error naming the column.
    pub fn from_column(column: &str, value: Option<i32>) -> Result<Self, String> {
        match value {
            None => Ok(Self::Default),
            Some(0) => Ok(Self::Unlimited),
            Some(n) => u32::try_from(n)
                .ok()
                .and_then(NonZeroU32::new)
                .map(Self::At)
                .ok_or_else(|| format!("{column} is {n}")),
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::Unlimited => f.write_str("unlimited"),
            Self::At(n) => write!(f, "{n}"),
        }
    }
}

/// A key's own limits; each one left at [`Limit::Default`] follows the gateways'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct KeyLimits {
    /// Requests per second, sustained.
    pub rate: Limit,
    /// Requests that may come at once above the rate (never `Unlimited`).
    pub burst: Limit,
    /// Queries the key may have running on one shard at once (each gateway counts its own).
    pub concurrency: Limit,
}

/// What `keys create` and `keys limit` were given, still as text (`None`: not given,
/// left as it is).
#[derive(Debug, Clone, Default)]
pub struct LimitArgs {
    /// `--rate`
    pub rate: Option<String>,
    /// `--burst`
    pub burst: Option<String>,
    /// `--concurrency`
    pub concurrency: Option<String>,
}

impl LimitArgs {
    /// Whether no option was given (`keys limit` then has nothing to do).
    pub fn is_empty(&self) -> bool {
        self.rate.is_none() && self.burst.is_none() && self.concurrency.is_none()
    }

    /// `limits` with every given option applied; the first bad one is refused.
    pub fn apply(&self, mut limits: KeyLimits) -> Result<KeyLimits, String> {
        if let Some(text) = &self.rate {
            limits.rate = Limit::parse("--rate", text, MAX_RATE, true)?;
        }
        if let Some(text) = &self.burst {
            limits.burst = Limit::parse("--burst", text, MAX_RATE, false)?;
        }
        if let Some(text) = &self.concurrency {
            limits.concurrency = Limit::parse("--concurrency", text, MAX_CONCURRENCY, true)?;
        }
        Ok(limits)
    }
}

impl fmt::Display for KeyLimits {
    /// `default`, or the limits that are the key's own: `rate 100/s, burst 200`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        match self.rate {
            Limit::Default => {}
            Limit::Unlimited => parts.push("rate unlimited".to_owned()),
            Limit::At(n) => parts.push(format!("rate {n}/s")),
        }
        if let Limit::At(n) = self.burst {
            parts.push(format!("burst {n}"));
        }
        match self.concurrency {
            Limit::Default => {}
            other => parts.push(format!("concurrency {other}")),
        }
        match parts.is_empty() {
            true => f.write_str("default"),
            false => f.write_str(&parts.join(", ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(n: u32) -> Limit {
        Limit::At(NonZeroU32::new(n).unwrap())
    }

    #[test]
    fn limits_parse_from_numbers_and_words() {
        assert_eq!(Limit::parse("--rate", "100", MAX_RATE, true), Ok(at(100)));
        assert_eq!(Limit::parse("--rate", " 1 ", MAX_RATE, true), Ok(at(1)));
        assert_eq!(
            Limit::parse("--rate", "1000000", MAX_RATE, true),
            Ok(at(MAX_RATE))
        );
        assert_eq!(
            Limit::parse("--rate", "Default", MAX_RATE, true),
            Ok(Limit::Default)
        );
        assert_eq!(
            Limit::parse("--rate", "UNLIMITED", MAX_RATE, true),
            Ok(Limit::Unlimited)
        );
    }

    #[test]
    fn bad_limits_are_refused_naming_the_option_and_what_is_allowed() {
        for bad in ["0", "-1", "abc", "", "1.5", "1000001", "4294967296", "1e3"] {
            let err = Limit::parse("--rate", bad, MAX_RATE, true).unwrap_err();
            assert!(
                err.starts_with(&format!("--rate: {bad:?} is not a limit"))
                    && err.contains("from 1 to 1000000, or `default` or `unlimited`"),
                "{bad:?}: {err}"
            );
        }
        let err = Limit::parse("--burst", "unlimited", MAX_RATE, false).unwrap_err();
        assert!(err.ends_with("or `default`"), "{err}");
    }

    #[test]
    fn columns_round_trip_and_negative_ones_are_named() {
        for limit in [Limit::Default, Limit::Unlimited, at(7), at(MAX_RATE)] {
            assert_eq!(Limit::from_column("burst", limit.to_column()), Ok(limit));
        }
        assert_eq!(Limit::Default.to_column(), None);
        assert_eq!(Limit::Unlimited.to_column(), Some(0));
        assert_eq!(
            Limit::from_column("burst", Some(-3)),
            Err("burst is -3".into())
        );
    }

    #[test]
    fn args_change_only_what_they_name_and_print_only_the_keys_own() {
        let base = KeyLimits {
            rate: at(10),
            burst: at(20),
            concurrency: Limit::Default,
        };
        let args = LimitArgs {
            concurrency: Some("4".into()),
            ..LimitArgs::default()
        };
        let changed = args.apply(base).unwrap();
        assert_eq!(changed.rate, at(10));
        assert_eq!(changed.concurrency, at(4));
        assert_eq!(changed.to_string(), "rate 10/s, burst 20, concurrency 4");
        assert_eq!(KeyLimits::default().to_string(), "default");
        let unlimited = LimitArgs {
            rate: Some("unlimited".into()),
            burst: Some("default".into()),
            concurrency: Some("unlimited".into()),
        };
        assert_eq!(
            unlimited.apply(base).unwrap().to_string(),
            "rate unlimited, concurrency unlimited"
        );
        let bad = LimitArgs {
            rate: Some("5".into()),
            burst: Some("-1".into()),
            concurrency: None,
        };
        assert!(bad.apply(base).unwrap_err().starts_with("--burst: \"-1\""));
        assert!(LimitArgs::default().is_empty() && !args.is_empty());
    }
}
