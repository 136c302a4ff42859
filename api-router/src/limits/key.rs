//! One key's limiter: its GCRA bucket, its semaphores (one per shard, made when first
//! needed) and how many of its requests each limit refused.
//!
//! A limiter is made for a key's effective limits; when they change (its own changed in
//! the metadata database) the registry makes a new one: the bucket starts full and new
//! semaphores count from zero (queries holding the old ones finish undisturbed), while
//! the refusal counts carry over.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use actix_web::http::header::HeaderValue;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use shard_manager::ShardId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::Limited;
use super::headers::{policy_value, refill_time, state_value, RateHeaders};
use super::policy::{Effective, RatePolicy};

type Bucket = RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

/// Requests of one key each limit refused (this gateway, since it started).
#[derive(Debug, Default)]
pub struct Refusals {
    pub rate: AtomicU64,
    pub concurrency: AtomicU64,
}

/// The key's rate: the policy, its bucket, and the policy header (the same on every
/// answer).
struct Rate {
    policy: RatePolicy,
    bucket: Bucket,
    header: Option<HeaderValue>,
}

/// What the rate said about one request.
#[derive(Debug)]
pub enum RateCheck {
    /// The key has no rate limit.
    Unlimited,
    /// Taken from the bucket; these headers go on the answer.
    Allowed(RateHeaders),
    /// Over the rate: a 429 with these headers.
    Refused(Limited, RateHeaders),
}

/// The concurrency permits of one request, released when dropped (when the handler
/// returns).
#[must_use = "the permits are released when dropped"]
#[derive(Debug, Default)]
pub struct Permits(Vec<OwnedSemaphorePermit>);

impl Permits {
    /// How many shards' permits these are.
    pub fn held(&self) -> usize {
        self.0.len()
    }
}

/// One key's limits, as this gateway enforces them.
pub struct KeyLimiter {
    name: String,
    effective: Effective,
    rate: Option<Rate>,
    /// How long a request waits for a shard's permit before it is refused.
    wait: Duration,
    shards: Mutex<HashMap<ShardId, Arc<Semaphore>>>,
    refusals: Arc<Refusals>,
}

impl KeyLimiter {
    pub fn new(name: &str, effective: Effective, wait: Duration, refusals: Arc<Refusals>) -> Self {
        let rate = effective.rate.map(|policy| Rate {
            bucket: RateLimiter::direct(Quota::per_second(policy.rate).allow_burst(policy.burst))
                .with_middleware::<StateInformationMiddleware>(),
            header: HeaderValue::try_from(policy_value(&policy)).ok(),
            policy,
        });
        Self {
            name: name.to_owned(),
            effective,
            rate,
            wait,
            shards: Mutex::default(),
            refusals,
        }
    }

    /// The limits this limiter was made for.
    pub fn effective(&self) -> Effective {
        self.effective
    }

    pub fn refusals(&self) -> &Arc<Refusals> {
        &self.refusals
    }

    /// Takes one request from the key's bucket.
    pub fn check_rate(&self) -> RateCheck {
        let Some(rate) = &self.rate else {
            return RateCheck::Unlimited;
        };
        let p = &rate.policy;
        let headers = |remaining: u32, full_in: Duration| RateHeaders {
            policy: rate.header.clone(),
            state: HeaderValue::try_from(state_value(p, remaining, full_in)).ok(),
        };
        match rate.bucket.check() {
            Ok(snapshot) => {
                let left = snapshot.remaining_burst_capacity();
                RateCheck::Allowed(headers(left, refill_time(p, left)))
            }
            Err(not_until) => {
                self.refusals.rate.fetch_add(1, Ordering::Relaxed);
                let wait = not_until.wait_time_from(rate.bucket.clock().now());
                let limited = Limited::Rate {
                    key: self.name.clone(),
                    rate: p.rate.get(),
                    burst: p.burst.get(),
                    retry_after: wait,
                };
                RateCheck::Refused(limited, headers(0, wait + refill_time(p, 1)))
            }
        }
    }

    /// One permit on each of `shards` (each shard once, in id order, so two requests of
    /// the key never wait on each other crosswise for long), waiting up to the
    /// configured wait in all; refused naming the first shard still at the cap.
    pub async fn enter(
        &self,
        shards: impl IntoIterator<Item = ShardId>,
    ) -> Result<Permits, Limited> {
        let Some(cap) = self.effective.concurrency else {
            return Ok(Permits::default());
        };
        let mut shards: Vec<ShardId> = shards.into_iter().collect();
        shards.sort_unstable();
        shards.dedup();
        let deadline = tokio::time::Instant::now() + self.wait;
        let mut permits = Vec::with_capacity(shards.len());
        for shard in shards {
            let semaphore = self.semaphore(shard, cap);
            let permit = match semaphore.clone().try_acquire_owned() {
                Ok(permit) => Ok(permit),
                Err(_) => tokio::time::timeout_at(deadline, semaphore.acquire_owned())
                    .await
                    .map_err(drop)
                    .and_then(|got| got.map_err(drop)),
            };
            match permit {
                Ok(permit) => permits.push(permit),
                Err(()) => {
                    self.refusals.concurrency.fetch_add(1, Ordering::Relaxed);
                    return Err(Limited::Concurrency {
                        key: self.name.clone(),
                        shard,
                        cap: cap.get(),
                    });
                }
            }
        }
        Ok(Permits(permits))
    }

    fn semaphore(&self, shard: ShardId, cap: NonZeroU32) -> Arc<Semaphore> {
        let mut shards = self.shards.lock().unwrap_or_else(PoisonError::into_inner);
        shards
            .entry(shard)
            .or_insert_with(|| Arc::new(Semaphore::new(cap.get() as usize)))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(rate: Option<(u32, u32)>, concurrency: Option<u32>, wait_ms: u64) -> KeyLimiter {
        let effective = Effective {
            rate: rate.map(|(rate, burst)| RatePolicy {
                rate: NonZeroU32::new(rate).unwrap(),
                burst: NonZeroU32::new(burst).unwrap(),
                own: true,
            }),
            concurrency: concurrency.and_then(NonZeroU32::new),
        };
        KeyLimiter::new(
            "k",
            effective,
            Duration::from_millis(wait_ms),
            Arc::default(),
        )
    }

    fn state(check: &RateCheck) -> String {
        let headers = match check {
            RateCheck::Allowed(h) | RateCheck::Refused(_, h) => h,
            RateCheck::Unlimited => panic!("unlimited"),
        };
        headers.state.as_ref().unwrap().to_str().unwrap().to_owned()
    }

    #[test]
    fn a_burst_is_let_through_then_refused_with_the_wait() {
        // 1 per second (a refill takes a second: nothing comes back during the test).
        let k = limiter(Some((1, 3)), None, 0);
        let checks: Vec<RateCheck> = (0..4).map(|_| k.check_rate()).collect();
        assert_eq!(state(&checks[0]), "\"key\";r=2;t=1");
        assert_eq!(state(&checks[2]), "\"key\";r=0;t=3");
        let RateCheck::Refused(limited, headers) = &checks[3] else {
            panic!("the fourth request passed: {:?}", checks[3]);
        };
        assert_eq!(
            headers.policy.as_ref().unwrap().to_str().unwrap(),
            "\"key\";q=3;w=3"
        );
        assert_eq!(state(&checks[3]), "\"key\";r=0;t=3");
        let Limited::Rate { retry_after, .. } = limited else {
            panic!("{limited:?}");
        };
        assert!(
            *retry_after > Duration::from_millis(900) && *retry_after <= Duration::from_secs(1),
            "{retry_after:?}"
        );
        assert_eq!(limited.retry_after_secs(), 1);
        assert_eq!(k.refusals().rate.load(Ordering::Relaxed), 1);
        assert!(matches!(
            limiter(None, Some(1), 0).check_rate(),
            RateCheck::Unlimited
        ));
    }

    #[tokio::test]
    async fn at_the_cap_a_shard_refuses_after_the_wait_and_other_shards_do_not() {
        let k = limiter(None, Some(2), 30);
        let held = k.enter([ShardId(1), ShardId(1), ShardId(0)]).await.unwrap();
        assert_eq!(held.held(), 2, "a shard named twice takes one permit");
        let second = k.enter([ShardId(1)]).await.unwrap();
        let started = tokio::time::Instant::now();
        let refused = k.enter([ShardId(0), ShardId(1)]).await.unwrap_err();
        assert!(
            started.elapsed() >= Duration::from_millis(30),
            "waited first"
        );
        assert_eq!(refused.shard(), Some(ShardId(1)));
        assert_eq!(k.refusals().concurrency.load(Ordering::Relaxed), 1);
        // The refused request gave back the permit it had taken on shard 0.
        let _third = k.enter([ShardId(0)]).await.unwrap();
        assert!(
            k.enter([ShardId(2)]).await.is_ok(),
            "another shard has its own cap"
        );
        // A permit freed during the wait is taken.
        let (waited, ()) = tokio::join!(k.enter([ShardId(1)]), async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            drop(second);
        });
        assert!(waited.is_ok());
        drop(held);
        assert!(
            limiter(None, None, 0)
                .enter([ShardId(0)])
                .await
                .unwrap()
                .held()
                == 0
        );
    }
}
