//! Why a request was refused by a limit: the key, the limit, and when to retry.

use std::time::Duration;

use shard_manager::ShardId;

use super::headers::ceil_secs;

/// A request over one of its key's limits (a 429 problem naming both).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Limited {
    #[error("the API key {key:?} is over its rate limit of {rate} per second (burst {burst}); retry in {} s", ceil_secs(*.retry_after).max(1))]
    Rate {
        key: String,
        rate: u32,
        burst: u32,
        /// How long until one more request is accepted.
        retry_after: Duration,
    },
    #[error("the API key {key:?} already has {cap} queries running on {shard}, its limit per shard; retry shortly")]
    Concurrency {
        key: String,
        shard: ShardId,
        cap: u32,
    },
}

impl Limited {
    /// `Retry-After`, in whole seconds rounded up (at least 1).
    pub fn retry_after_secs(&self) -> u64 {
        match self {
            Self::Rate { retry_after, .. } => ceil_secs(*retry_after).max(1),
            Self::Concurrency { .. } => 1,
        }
    }

    /// The shard of a concurrency refusal.
    pub fn shard(&self) -> Option<ShardId> {
        match self {
            Self::Concurrency { shard, .. } => Some(*shard),
            Self::Rate { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_key_and_the_limit_and_round_the_wait_up() {
        let rate = Limited::Rate {
            key: "billing".into(),
            rate: 5,
            burst: 10,
            retry_after: Duration::from_millis(1200),
        };
        assert_eq!(
            rate.to_string(),
            "the API key \"billing\" is over its rate limit of 5 per second (burst 10); retry in 2 s"
        );
        assert_eq!(rate.retry_after_secs(), 2);
        let soon = Limited::Rate {
            key: "k".into(),
            rate: 100,
            burst: 1,
            retry_after: Duration::from_millis(3),
        };
        assert_eq!(soon.retry_after_secs(), 1, "never 0");
        let busy = Limited::Concurrency {
            key: "hot".into(),
            shard: ShardId(2),
            cap: 4,
        };
        assert_eq!(
            busy.to_string(),
            "the API key \"hot\" already has 4 queries running on shard-2, its limit per shard; retry shortly"
        );
        assert_eq!(
            (busy.retry_after_secs(), busy.shard()),
            (1, Some(ShardId(2)))
        );
    }
}
