//! A key's effective limits: its own where it has them, else the gateway's `[limits]`.

use std::num::NonZeroU32;

use control_plane::keys::{KeyLimits, Limit};

use crate::server::settings::LimitsSettings;

/// A request rate as GCRA enforces it: `rate` requests per second sustained, up to
/// `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RatePolicy {
    pub rate: NonZeroU32,
    pub burst: NonZeroU32,
    /// The key has its own rate or burst: the policy is named `key`, else `default`.
    pub own: bool,
}

impl RatePolicy {
    /// The policy's name in the `RateLimit-Policy` and `RateLimit` headers.
    pub fn name(&self) -> &'static str {
        match self.own {
            true => "key",
            false => "default",
        }
    }

    /// The window the policy header states, in seconds: long enough for a full burst
    /// to come back at the rate, and at least one second.
    pub fn window_secs(&self) -> u32 {
        self.burst.get().div_ceil(self.rate.get()).max(1)
    }

    /// Requests per [`window_secs`](Self::window_secs) at the sustained rate.
    pub fn quota(&self) -> u64 {
        u64::from(self.rate.get()) * u64::from(self.window_secs())
    }
}

/// What limits one key's requests here; `None` is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Effective {
    pub rate: Option<RatePolicy>,
    /// Queries of the key running at once on one shard (through this gateway).
    pub concurrency: Option<NonZeroU32>,
}

impl Effective {
    /// The key's own limits over the defaults. A burst goes with its rate: the default
    /// burst with the default rate; a key with its own rate and no burst of its own
    /// gets one second's worth (its rate); `burst = 0` in `[limits]` means the same.
    pub fn resolve(key: &KeyLimits, defaults: &LimitsSettings) -> Self {
        let own_burst = match key.burst {
            Limit::At(n) => Some(n),
            Limit::Default | Limit::Unlimited => None,
        };
        let rate = match key.rate {
            Limit::Default => NonZeroU32::new(defaults.rate_per_sec).map(|rate| RatePolicy {
                rate,
                burst: own_burst
                    .or(NonZeroU32::new(defaults.burst))
                    .unwrap_or(rate),
                own: own_burst.is_some(),
            }),
            Limit::Unlimited => None,
            Limit::At(rate) => Some(RatePolicy {
                rate,
                burst: own_burst.unwrap_or(rate),
                own: true,
            }),
        };
        let concurrency = match key.concurrency {
            Limit::Default => NonZeroU32::new(defaults.concurrency_per_shard),
            Limit::Unlimited => None,
            Limit::At(n) => Some(n),
        };
        Self { rate, concurrency }
    }

    pub fn is_unlimited(&self) -> bool {
        self.rate.is_none() && self.concurrency.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(v: u32) -> NonZeroU32 {
        NonZeroU32::new(v).unwrap()
    }

    fn defaults(rate: u32, burst: u32, concurrency: u32) -> LimitsSettings {
        LimitsSettings {
            rate_per_sec: rate,
            burst,
            concurrency_per_shard: concurrency,
            ..LimitsSettings::default()
        }
    }

    fn key(rate: Limit, burst: Limit, concurrency: Limit) -> KeyLimits {
        KeyLimits {
            rate,
            burst,
            concurrency,
        }
    }

    #[test]
    fn the_defaults_apply_unless_the_key_has_its_own() {
        use Limit::{At, Default as D, Unlimited as U};
        let d = defaults(100, 200, 8);
        let plain = Effective::resolve(&KeyLimits::default(), &d);
        assert_eq!(
            plain.rate,
            Some(RatePolicy {
                rate: n(100),
                burst: n(200),
                own: false
            })
        );
        assert_eq!(plain.concurrency, Some(n(8)));
        // Its own rate brings one second's worth of burst, not the default's.
        let own = Effective::resolve(&key(At(n(5)), D, U), &d);
        assert_eq!(
            own.rate,
            Some(RatePolicy {
                rate: n(5),
                burst: n(5),
                own: true
            })
        );
        assert_eq!(own.concurrency, None);
        // Its own burst with the default rate.
        let burst = Effective::resolve(&key(D, At(n(7)), At(n(2))), &d);
        assert_eq!(
            burst.rate.map(|r| (r.rate, r.burst, r.own)),
            Some((n(100), n(7), true))
        );
        assert_eq!(burst.concurrency, Some(n(2)));
        assert!(Effective::resolve(&key(U, At(n(7)), U), &d).is_unlimited());
    }

    #[test]
    fn zero_in_the_defaults_is_no_limit_and_a_zero_burst_is_one_seconds_worth() {
        use Limit::{At, Default as D};
        let off = defaults(0, 0, 0);
        assert!(Effective::resolve(&KeyLimits::default(), &off).is_unlimited());
        let own = Effective::resolve(&key(At(n(3)), D, At(n(1))), &off);
        assert_eq!(own.rate.map(|r| r.burst), Some(n(3)));
        let rate_only = Effective::resolve(&KeyLimits::default(), &defaults(50, 0, 0));
        assert_eq!(
            rate_only.rate.map(|r| (r.burst, r.own)),
            Some((n(50), false))
        );
    }

    #[test]
    fn the_stated_window_holds_a_full_burst_at_the_rate() {
        let p = |rate, burst| RatePolicy {
            rate: n(rate),
            burst: n(burst),
            own: false,
        };
        assert_eq!((p(100, 200).window_secs(), p(100, 200).quota()), (2, 200));
        assert_eq!((p(100, 1).window_secs(), p(100, 1).quota()), (1, 100));
        assert_eq!((p(1, 5).window_secs(), p(1, 5).quota()), (5, 5));
        assert_eq!((p(3, 10).window_secs(), p(3, 10).quota()), (4, 12));
        assert_eq!(p(1, 1).name(), "default");
    }
}
