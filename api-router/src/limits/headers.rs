//! The rate headers of the IETF httpapi draft "RateLimit header fields for HTTP"
//! (draft-ietf-httpapi-ratelimit-headers-10 and -11): `RateLimit-Policy:
//! "default";q=200;w=2` states the policy, `RateLimit: "default";r=42;t=1` what is left
//! of it now. A refusal also carries `Retry-After`.
//!
//! GCRA has no fixed window, so the policy states as `w` the seconds a full burst takes
//! to come back (at least 1) and as `q` the requests the sustained rate allows in that
//! time; `r` is how many requests could be sent at once now, `t` the seconds until the
//! whole burst is back (rounded up). On a refusal `r` is 0 and `Retry-After` says when
//! one request will be accepted.

use std::time::Duration;

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};

use super::policy::RatePolicy;
use crate::server::headers::{RATELIMIT, RATELIMIT_POLICY};

/// `RateLimit-Policy` of `p`.
pub fn policy_value(p: &RatePolicy) -> String {
    format!("\"{}\";q={};w={}", p.name(), p.quota(), p.window_secs())
}

/// `RateLimit` of `p` with `remaining` requests left and the whole burst back in
/// `full_in`.
pub fn state_value(p: &RatePolicy, remaining: u32, full_in: Duration) -> String {
    format!("\"{}\";r={remaining};t={}", p.name(), ceil_secs(full_in))
}

/// How long `p`'s bucket takes to hold a full burst again with `remaining` left.
pub fn refill_time(p: &RatePolicy, remaining: u32) -> Duration {
    let missing = p.burst.get().saturating_sub(remaining);
    Duration::from_secs(u64::from(missing)) / p.rate.get()
}

/// Whole seconds, rounded up.
pub fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// The two headers of one answer.
#[derive(Debug, Clone)]
pub struct RateHeaders {
    pub policy: Option<HeaderValue>,
    pub state: Option<HeaderValue>,
}

impl RateHeaders {
    /// Sets both on an answer.
    pub fn apply(&self, headers: &mut HeaderMap) {
        for (name, value) in [(RATELIMIT_POLICY, &self.policy), (RATELIMIT, &self.state)] {
            if let Some(value) = value {
                headers.insert(HeaderName::from_static(name), value.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    fn policy(rate: u32, burst: u32, own: bool) -> RatePolicy {
        RatePolicy {
            rate: NonZeroU32::new(rate).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
            own,
        }
    }

    #[test]
    fn the_values_have_the_drafts_shape() {
        let p = policy(100, 200, false);
        assert_eq!(policy_value(&p), "\"default\";q=200;w=2");
        assert_eq!(
            state_value(&p, 42, refill_time(&p, 42)),
            "\"default\";r=42;t=2",
            "158 requests back at 100/s: 1.58 s, rounded up"
        );
        let own = policy(5, 5, true);
        assert_eq!(policy_value(&own), "\"key\";q=5;w=1");
        assert_eq!(
            state_value(&own, 5, refill_time(&own, 5)),
            "\"key\";r=5;t=0"
        );
        assert_eq!(
            state_value(&own, 0, refill_time(&own, 0)),
            "\"key\";r=0;t=1"
        );
    }

    #[test]
    fn seconds_round_up() {
        assert_eq!(ceil_secs(Duration::ZERO), 0);
        assert_eq!(ceil_secs(Duration::from_nanos(1)), 1);
        assert_eq!(ceil_secs(Duration::from_secs(2)), 2);
        assert_eq!(ceil_secs(Duration::from_millis(2001)), 3);
        assert_eq!(
            refill_time(&policy(3, 10, false), 1),
            Duration::from_secs(3)
        );
        assert_eq!(
            refill_time(&policy(4, 10, false), 9),
            Duration::from_millis(250)
        );
    }

    #[test]
    fn both_headers_are_set() {
        let mut map = HeaderMap::new();
        RateHeaders {
            policy: Some(HeaderValue::from_static("\"key\";q=5;w=1")),
            state: Some(HeaderValue::from_static("\"key\";r=4;t=1")),
        }
        .apply(&mut map);
        assert_eq!(map.get("RateLimit-Policy").unwrap(), "\"key\";q=5;w=1");
        assert_eq!(map.get("ratelimit").unwrap(), "\"key\";r=4;t=1");
    }
}
