//! The floor of a primary behind a service address (`follow = "address"`): which
//! connections through the address may carry a write.
//!
//! A connection stays on the node it reached when it opened, while the address moves
//! to the promoted node. So each new connection is judged once, as it opens
//! ([`Behind::judge`]): a server that reported at sign-in that it is a standby or
//! read-only is refused before its identity is even asked (nothing of a request was
//! sent yet, so the wait for a primary applies); otherwise its identity is read
//! (`store::statements::identity`) and it is refused when it is not writable, when it
//! is another cluster or shard than the one the map recorded, or when it writes on a
//! timeline below the floor (an old primary still reachable through the address).
//! A connection let through is tagged with its timeline.
//!
//! The floor is the highest timeline known to be the primary's: the one the map
//! recorded, raised by every connection that reached a writable primary on a higher
//! one (a promotion: every promotion starts a higher timeline). Raising it retires
//! every connection tagged below: the pool closes them when they would be handed out
//! again (`pool`), and a commit answered on one is not acknowledged
//! ([`Behind::superseded`]): it committed on a primary known to be replaced, so it is
//! answered as a write that may have committed.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::store::identity::{verdict, Identity, Seen, Verdict};
use crate::wire::conn::Reported;

/// What a primary behind an address knows of the node it should reach.
#[derive(Debug, Default)]
pub struct Behind {
    /// The highest timeline known to be the primary's (0: none known yet).
    floor: AtomicU32,
    /// The primary's identity as the map recorded it (None until recorded).
    recorded: Mutex<Option<Identity>>,
    /// What the last connection that opened through the address found, and when.
    last: Mutex<Option<(Seen, Instant)>>,
}

impl Behind {
    /// The highest timeline known to be the primary's (0 before any is known).
    pub fn floor(&self) -> u32 {
        self.floor.load(Ordering::SeqCst)
    }

    /// Raises the floor to `timeline` (never lowers it); whether it rose.
    pub fn raise_floor(&self, timeline: u32) -> bool {
        self.floor.fetch_max(timeline, Ordering::SeqCst) < timeline
    }

    /// The identity the map recorded for the shard's primary; the floor rises to its
    /// timeline.
    pub fn record(&self, identity: Identity) {
        self.raise_floor(identity.timeline);
        *lock(&self.recorded) = Some(identity);
    }

    /// The identity the map recorded, as last told.
    pub fn recorded(&self) -> Option<Identity> {
        lock(&self.recorded).clone()
    }

    /// What the last connection through the address found, and how long ago.
    pub fn last_seen(&self) -> Option<(Seen, Duration)> {
        lock(&self.last)
            .as_ref()
            .map(|(seen, at)| (seen.clone(), at.elapsed()))
    }

    /// Whether a connection tagged `timeline` may still carry a write: at or above the
    /// floor. One never tagged (it opened before the floor was kept) may not.
    pub fn admits(&self, timeline: Option<u32>) -> bool {
        timeline.is_some_and(|t| t >= self.floor())
    }

    /// Whether a commit answered on a connection tagged `timeline` came from a
    /// superseded primary (see the module doc); the floor it is below, if so.
    pub fn superseded(&self, timeline: Option<u32>) -> Option<u32> {
        (!self.admits(timeline)).then(|| self.floor())
    }

    /// Refuses a new connection whose server reported at sign-in that it takes no
    /// writes (nothing else is sent on it).
    pub fn judge_reported(reported: Reported) -> Result<(), String> {
        match reported.refuses_writes() {
            true => Err(format!(
                "reached a server that is not the primary: it reported in_hot_standby = {}, \
                 default_transaction_read_only = {} at sign-in",
                on(reported.in_hot_standby),
                on(reported.default_transaction_read_only)
            )),
            false => Ok(()),
        }
    }

    /// Judges a new connection by what its identity statement found (see the module
    /// doc): Ok with the timeline to tag it with, or why it may carry no write.
    pub fn judge(&self, seen: Seen) -> Result<u32, String> {
        let timeline = seen.identity.timeline;
        let node = seen.identity.node.clone().unwrap_or_else(|| "?".into());
        let recorded = self.recorded();
        *lock(&self.last) = Some((seen.clone(), Instant::now()));
        let judged = recorded.as_ref().map(|r| verdict(r, &seen));
        if judged == Some(Verdict::Elsewhere) {
            let r = recorded.unwrap_or_else(|| unreachable!("judged against it"));
            return Err(format!(
                "reached {node}, another cluster or shard than the recorded primary \
                 (system identifier {}, shard {}; recorded {}, shard {}): never followed \
                 until an operator adopts it",
                text(&seen.identity.system_identifier),
                text(&seen.identity.shard),
                text(&r.system_identifier),
                text(&r.shard),
            ));
        }
        if !seen.writable() {
            return Err(format!(
                "reached {node}, which takes no writes (in recovery: {}, read-only: {})",
                seen.in_recovery, seen.read_only
            ));
        }
        let floor = self.floor();
        if timeline < floor {
            return Err(format!(
                "reached {node}, an old primary on timeline {timeline}: the primary writes on \
                 timeline {floor} or later"
            ));
        }
        if self.raise_floor(timeline) && floor > 0 {
            tracing::warn!(%node, from = floor, to = timeline, "the primary behind the address is on a new timeline: connections to the old one are retired");
        }
        Ok(timeline)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn on(value: Option<bool>) -> &'static str {
    match value {
        Some(true) => "on",
        Some(false) => "off",
        None => "unreported",
    }
}

fn text<T: std::fmt::Display>(value: &Option<T>) -> String {
    value
        .as_ref()
        .map_or_else(|| "unknown".into(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(timeline: u32, writable: bool) -> Seen {
        Seen {
            identity: Identity {
                timeline,
                system_identifier: Some("7712694351163466401".into()),
                node: Some("10.0.0.7:5432".into()),
                shard: Some(0),
            },
            in_recovery: !writable,
            read_only: !writable,
            synchronous: true,
        }
    }

    #[test]
    fn a_new_timeline_raises_the_floor_and_retires_the_old_connections() {
        let behind = Behind::default();
        assert_eq!(behind.judge(seen(1, true)), Ok(1));
        assert!(behind.admits(Some(1)));
        assert_eq!(behind.judge(seen(2, true)), Ok(2));
        assert_eq!(behind.floor(), 2);
        assert!(!behind.admits(Some(1)), "a connection to the old primary");
        assert_eq!(behind.superseded(Some(1)), Some(2));
        assert_eq!(behind.superseded(Some(2)), None);
        assert!(!behind.admits(None), "never tagged");
        let old = behind.judge(seen(1, true)).unwrap_err();
        assert_eq!(
            old,
            "reached 10.0.0.7:5432, an old primary on timeline 1: the primary writes on \
             timeline 2 or later"
        );
    }

    #[test]
    fn a_standby_is_refused_and_leaves_the_floor_alone() {
        let behind = Behind::default();
        behind.record(seen(2, true).identity);
        let why = behind.judge(seen(3, false)).unwrap_err();
        assert!(why.contains("takes no writes (in recovery: true"), "{why}");
        assert_eq!(behind.floor(), 2);
        assert_eq!(behind.last_seen().unwrap().0, seen(3, false));
    }

    #[test]
    fn another_cluster_is_refused_whatever_its_timeline() {
        let behind = Behind::default();
        behind.record(seen(1, true).identity);
        let mut other = seen(4, true);
        other.identity.system_identifier = Some("1".into());
        let why = behind.judge(other).unwrap_err();
        assert!(why.contains("another cluster or shard"), "{why}");
        assert!(
            why.contains("never followed until an operator adopts it"),
            "{why}"
        );
        assert_eq!(behind.floor(), 1);
    }

    #[test]
    fn a_server_that_reports_itself_a_standby_is_refused_at_sign_in() {
        let standby = Reported {
            in_hot_standby: Some(true),
            default_transaction_read_only: Some(false),
        };
        let why = Behind::judge_reported(standby).unwrap_err();
        assert_eq!(
            why,
            "reached a server that is not the primary: it reported in_hot_standby = on, \
             default_transaction_read_only = off at sign-in"
        );
        assert!(
            Behind::judge_reported(Reported::default()).is_ok(),
            "an older server"
        );
        let primary = Reported {
            in_hot_standby: Some(false),
            default_transaction_read_only: Some(false),
        };
        assert!(Behind::judge_reported(primary).is_ok());
    }
}
