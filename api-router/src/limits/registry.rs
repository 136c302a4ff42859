//! The gateway's limiters by key name ([`Limits`]), and the [`Quota`] extractor through
//! which handlers take their shard permits.

use std::future::{ready, Ready};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use analytics::exposition::LimitedCount;
use control_plane::keys::ApiKey;
use dashmap::DashMap;
use shard_manager::ShardId;

use super::error::Limited;
use super::key::{KeyLimiter, Permits};
use super::policy::Effective;
use crate::server::settings::LimitsSettings;

/// Every key's limiter on this gateway, made when the key is first seen. A key's entry
/// outlives its revocation (a few hundred bytes per key ever used, keys being made by
/// hand), so its refusal counts stay in `/metrics`.
pub struct Limits {
    defaults: LimitsSettings,
    wait: Duration,
    keys: DashMap<String, Arc<KeyLimiter>>,
}

impl Limits {
    pub fn new(settings: &LimitsSettings) -> Self {
        Self {
            defaults: settings.clone(),
            wait: Duration::from_millis(settings.concurrency_wait_ms),
            keys: DashMap::new(),
        }
    }

    /// The limiter of `key` for its current limits (made again when they changed);
    /// `None` when nothing limits it.
    pub fn for_key(&self, key: &ApiKey) -> Option<Arc<KeyLimiter>> {
        let effective = Effective::resolve(&key.limits, &self.defaults);
        if let Some(found) = self.keys.get(key.name.as_str()) {
            if found.effective() == effective {
                return (!effective.is_unlimited()).then(|| found.clone());
            }
        }
        if effective.is_unlimited() && !self.keys.contains_key(key.name.as_str()) {
            return None;
        }
        let make = |refusals| Arc::new(KeyLimiter::new(&key.name, effective, self.wait, refusals));
        let mut entry = self
            .keys
            .entry(key.name.clone())
            .or_insert_with(|| make(Arc::default()));
        if entry.effective() != effective {
            let refusals = entry.refusals().clone();
            *entry = make(refusals);
        }
        let limiter = entry.clone();
        drop(entry);
        (!effective.is_unlimited()).then_some(limiter)
    }

    /// Requests each key's limits refused, for `/metrics` (by key, then limit).
    pub fn refused(&self) -> Vec<LimitedCount> {
        let mut counts: Vec<LimitedCount> = self
            .keys
            .iter()
            .flat_map(|entry| {
                let refusals = entry.value().refusals();
                [
                    ("rate", refusals.rate.load(Ordering::Relaxed)),
                    ("concurrency", refusals.concurrency.load(Ordering::Relaxed)),
                ]
                .map(|(limit, count)| LimitedCount {
                    key: entry.key().clone(),
                    limit,
                    count,
                })
            })
            .collect();
        counts.sort_by(|a, b| (&a.key, a.limit).cmp(&(&b.key, b.limit)));
        counts
    }
}

/// The caller's limiter, as the access check left it in the request. Anonymous callers
/// and keys without limits have none, and take no permits.
#[derive(Clone, Default)]
pub struct Quota(Option<Arc<KeyLimiter>>);

impl Quota {
    pub fn new(limiter: Option<Arc<KeyLimiter>>) -> Self {
        Self(limiter)
    }

    /// The key's permits on `shards` (see [`KeyLimiter::enter`]); hold them until the
    /// shard work is done.
    pub async fn enter(
        &self,
        shards: impl IntoIterator<Item = ShardId>,
    ) -> Result<Permits, Limited> {
        match &self.0 {
            Some(limiter) => limiter.enter(shards).await,
            None => Ok(Permits::default()),
        }
    }
}

impl FromRequest for Quota {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(req
            .extensions()
            .get::<Quota>()
            .cloned()
            .unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use control_plane::keys::{KeyLimits, Limit, Scopes};

    use super::*;
    use crate::limits::RateCheck;

    fn key(name: &str, rate: Limit) -> ApiKey {
        ApiKey {
            name: name.into(),
            scopes: Scopes::parse("read").unwrap(),
            tables: None,
            limits: KeyLimits {
                rate,
                ..KeyLimits::default()
            },
        }
    }

    fn at(n: u32) -> Limit {
        Limit::At(NonZeroU32::new(n).unwrap())
    }

    #[test]
    fn each_key_has_its_own_bucket_and_a_change_of_limits_keeps_the_counts() {
        let limits = Limits::new(&LimitsSettings {
            rate_per_sec: 1,
            burst: 1,
            ..LimitsSettings::default()
        });
        let a = key("a", Limit::Default);
        let b = key("b", Limit::Default);
        let check = |k: &ApiKey| limits.for_key(k).map(|l| l.check_rate());
        assert!(matches!(check(&a), Some(RateCheck::Allowed(_))));
        assert!(matches!(check(&a), Some(RateCheck::Refused(..))));
        assert!(
            matches!(check(&b), Some(RateCheck::Allowed(_))),
            "another key's bucket is its own"
        );
        // Its own limit: a new bucket, the count of refusals kept.
        let a_own = key("a", at(1000));
        assert!(matches!(check(&a_own), Some(RateCheck::Allowed(_))));
        let unlimited = key("a", Limit::Unlimited);
        assert!(limits.for_key(&unlimited).is_none());
        assert!(limits
            .for_key(&key("never-limited", Limit::Unlimited))
            .is_none());
        let counts: Vec<(String, &str, u64)> = limits
            .refused()
            .into_iter()
            .map(|c| (c.key, c.limit, c.count))
            .collect();
        assert_eq!(
            counts,
            [
                ("a".into(), "concurrency", 0),
                ("a".into(), "rate", 1),
                ("b".into(), "concurrency", 0),
                ("b".into(), "rate", 0)
            ]
        );
    }

    #[test]
    fn without_limits_nothing_is_kept() {
        let limits = Limits::new(&LimitsSettings::default());
        assert!(limits.for_key(&key("a", Limit::Default)).is_none());
        assert!(limits.refused().is_empty());
    }
}
