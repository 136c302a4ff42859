//! The cuts a gateway keeps for next pages, and who holds them: at most
//! [`held_limit`] at once, and each caller (an API key) at most
//! [`per_caller`] of them, so one caller's held snapshots never leave another's
//! multi-page snapshot read without a cut. Callers without a key are not told apart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The most cuts one gateway keeps for lists' next pages at once: a quarter of a
/// server's pool (`database.pool_max_size`), at least one, since each holds one of
/// the pool's connections on every shard it reads.
pub fn held_limit(pool_max_size: usize) -> usize {
    (pool_max_size / 4).max(1)
}

/// The most of a gateway's `held` cuts one caller may hold: half, rounded up (with a
/// single cut, whoever asks first holds it).
pub fn per_caller(held: usize) -> usize {
    held.div_ceil(2).max(1)
}

/// How many cuts each caller holds now (a caller holding none is not listed).
type Callers = Arc<Mutex<HashMap<String, usize>>>;

/// A gateway's held cuts (see the module doc).
pub struct Holds {
    gateway: Arc<Semaphore>,
    limit: usize,
    callers: Callers,
}

/// Why no cut could be kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The gateway holds its limit.
    Gateway,
    /// The caller holds its share ([`per_caller`]).
    Caller { holds: usize },
}

/// One cut kept: released, to the gateway and to its caller, when the last session
/// holding it ends.
pub struct Hold {
    _gateway: OwnedSemaphorePermit,
    caller: Option<(String, Callers)>,
}

impl Holds {
    /// Holds of at most `limit` cuts.
    pub fn new(limit: usize) -> Self {
        Self {
            gateway: Arc::new(Semaphore::new(limit)),
            limit,
            callers: Arc::default(),
        }
    }

    /// How many cuts the gateway may hold.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Keeps one cut for `caller` (None: a caller without a key), if the gateway and
    /// the caller are both under their bound.
    pub fn take(&self, caller: Option<&str>) -> Result<Hold, Refused> {
        let gateway = Arc::clone(&self.gateway)
            .try_acquire_owned()
            .map_err(|_| Refused::Gateway)?;
        let Some(caller) = caller else {
            return Ok(Hold {
                _gateway: gateway,
                caller: None,
            });
        };
        let mut callers = lock(&self.callers);
        let holds = callers.entry(caller.to_owned()).or_default();
        if *holds >= per_caller(self.limit) {
            return Err(Refused::Caller { holds: *holds });
        }
        *holds += 1;
        Ok(Hold {
            _gateway: gateway,
            caller: Some((caller.to_owned(), Arc::clone(&self.callers))),
        })
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        if let Some((caller, callers)) = self.caller.take() {
            let mut callers = lock(&callers);
            if let Some(holds) = callers.get_mut(&caller) {
                *holds -= 1;
                if *holds == 0 {
                    callers.remove(&caller);
                }
            }
        }
    }
}

fn lock(
    callers: &Mutex<HashMap<String, usize>>,
) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
    callers.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_caller_holds_at_most_its_share_and_gives_it_back() {
        let holds = Holds::new(4);
        let a1 = holds.take(Some("a")).unwrap();
        let _a2 = holds.take(Some("a")).unwrap();
        assert_eq!(
            holds.take(Some("a")).err(),
            Some(Refused::Caller { holds: 2 })
        );
        // Another caller still gets the rest; callers without a key are not counted.
        let _b = holds.take(Some("b")).unwrap();
        let _anonymous = holds.take(None).unwrap();
        assert_eq!(holds.take(Some("c")).err(), Some(Refused::Gateway));
        // A hold released goes back to the gateway and to its caller.
        drop(a1);
        assert!(holds.take(Some("a")).is_ok());
    }

    #[test]
    fn a_caller_gets_half_of_the_gateways_cuts() {
        assert_eq!(
            [1, 2, 3, 4, 5].map(per_caller),
            [1, 1, 2, 2, 3],
            "rounded up, at least one"
        );
    }
}
