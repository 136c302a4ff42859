//! The ban and lag rules for one server, as a pure type: what traffic and health checks
//! have learnt (up or down, bans, WAL position, replica lag) and what follows from it
//! (may this replica take reads now?). No I/O and no clock of its own: every rule takes
//! `now`, so the unit tests below drive it through time.
//!
//! In the style of PgDog's banlist: a replica that fails is banned for `ban_for` and
//! reads move elsewhere at once; a passing health check lifts the ban sooner; one lucky
//! query does not. A primary is never banned (writes have nowhere else to go): it is
//! only marked down, and its failures answer 503 naming it.

use std::time::{Duration, Instant};

use crate::config::ReplicationSettings;
use crate::routing::Role;
use crate::wal::Lsn;

/// What traffic and checks have learnt about a server.
#[derive(Debug, Clone, Default)]
pub struct Condition {
    /// Why the last attempt failed, while it is still failing.
    pub down_reason: Option<String>,
    /// Reads skip a replica until then.
    pub banned_until: Option<Instant>,
    /// Why the replica is banned.
    pub ban_reason: Option<String>,
    /// Last seen WAL position: written (primary) or replayed (replica).
    pub wal: Option<Lsn>,
    /// When the last health check passed.
    pub checked_at: Option<Instant>,
    /// Replicas: how far behind the primary, as last measured.
    pub lag: Option<Lag>,
}

/// How far a replica is behind its primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lag {
    /// WAL bytes the replica has not replayed.
    pub bytes: u64,
    /// How long ago the primary passed the replica's replay position (0 when caught up;
    /// does not grow on an idle system).
    pub ms: u64,
}

/// Why a replica does not take eventual reads right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unqualified {
    /// Failed recently: the reason and how much longer the ban lasts.
    Banned {
        reason: String,
        left: Duration,
    },
    /// No recent measurement: unknown lag counts as too much lag.
    LagUnknown,
    Lagging(Lag),
}

impl std::fmt::Display for Unqualified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Banned { reason, left } => {
                write!(f, "{reason} (for {} ms more)", left.as_millis())
            }
            Self::LagUnknown => f.write_str("lag unknown (no recent check)"),
            Self::Lagging(lag) => write!(f, "lagging {} bytes / {} ms", lag.bytes, lag.ms),
        }
    }
}

/// A change worth a log line, returned by the rules so the caller logs it once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Unchanged,
    WentDown,
    CameBack,
}

impl Condition {
    /// The ban still running at `now`, if any.
    pub fn ban_at(&self, now: Instant) -> Option<Instant> {
        self.banned_until.filter(|until| now < *until)
    }

    pub fn is_banned(&self, now: Instant) -> bool {
        self.ban_at(now).is_some()
    }

    /// Whether a replica may take eventual reads at `now`: not banned, lag measured
    /// within `lag_fresh_for` and within both limits.
    pub fn qualification(
        &self,
        now: Instant,
        limits: &ReplicationSettings,
    ) -> Result<(), Unqualified> {
        if let Some(until) = self.ban_at(now) {
            return Err(Unqualified::Banned {
                reason: self.ban_reason.clone().unwrap_or_default(),
                left: until.duration_since(now),
            });
        }
        let fresh = self
            .checked_at
            .is_some_and(|t| now.saturating_duration_since(t) <= limits.lag_fresh_for());
        match self.lag {
            Some(lag) if fresh => {
                if lag.bytes > limits.max_lag_bytes || lag.ms > limits.max_lag_ms {
                    Err(Unqualified::Lagging(lag))
                } else {
                    Ok(())
                }
            }
            _ => Err(Unqualified::LagUnknown),
        }
    }

    /// A query or check failed: the server is down; a replica is also banned until
    /// `now + ban_for` so reads move elsewhere at once.
    pub fn failed(
        &mut self,
        now: Instant,
        role: Role,
        ban_for: Duration,
        reason: &str,
    ) -> Transition {
        let was_up = self.down_reason.is_none();
        self.down_reason = Some(reason.to_owned());
        if role == Role::Replica {
            self.banned_until = Some(now + ban_for);
            self.ban_reason = Some(reason.to_owned());
        }
        if was_up {
            Transition::WentDown
        } else {
            Transition::Unchanged
        }
    }

    /// A query succeeded: the server answers. A ban stays until it ends or a check
    /// passes, so one lucky query does not pull a flapping replica back.
    pub fn answered(&mut self) -> Transition {
        match self.down_reason.take() {
            Some(_) => Transition::CameBack,
            None => Transition::Unchanged,
        }
    }

    /// A health check passed at `now`: up, any ban lifted, lag freshly measured, WAL
    /// position raised (it only moves forward).
    pub fn check_passed(&mut self, now: Instant, wal: Option<Lsn>) -> Transition {
        let was_out = self.down_reason.is_some() || self.banned_until.is_some();
        self.down_reason = None;
        self.banned_until = None;
        self.ban_reason = None;
        self.checked_at = Some(now);
        self.saw_wal(wal);
        if was_out {
            Transition::CameBack
        } else {
            Transition::Unchanged
        }
    }

    /// Raises the known WAL position; never lowers it.
    pub fn saw_wal(&mut self, wal: Option<Lsn>) {
        if wal.is_some() {
            self.wal = self.wal.max(wal);
        }
    }
}

/// A point-in-time view of a server's counters, for health and shard listings.
#[derive(Debug, Clone)]
pub struct ServerStats {
    pub condition: Condition,
    pub in_flight: u64,
    pub served: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    const BAN: Duration = Duration::from_secs(5);

    fn limits() -> ReplicationSettings {
        ReplicationSettings::default()
    }

    fn measured(now: Instant, bytes: u64, ms: u64) -> Condition {
        let mut c = Condition::default();
        c.check_passed(now, Some(Lsn(100)));
        c.lag = Some(Lag { bytes, ms });
        c
    }

    #[test]
    fn unknown_lag_is_too_much_lag() {
        let now = Instant::now();
        assert_eq!(
            Condition::default().qualification(now, &limits()),
            Err(Unqualified::LagUnknown)
        );
        // Measured, but longer ago than the freshness window.
        let c = measured(now, 0, 0);
        let later = now + limits().lag_fresh_for() + Duration::from_millis(1);
        assert_eq!(
            c.qualification(later, &limits()),
            Err(Unqualified::LagUnknown)
        );
        assert_eq!(c.qualification(now, &limits()), Ok(()));
    }

    #[test]
    fn lag_past_either_limit_disqualifies() {
        let now = Instant::now();
        let l = limits();
        assert_eq!(
            measured(now, l.max_lag_bytes, l.max_lag_ms).qualification(now, &l),
            Ok(())
        );
        let over_bytes = measured(now, l.max_lag_bytes + 1, 0);
        assert_eq!(
            over_bytes.qualification(now, &l),
            Err(Unqualified::Lagging(Lag {
                bytes: l.max_lag_bytes + 1,
                ms: 0
            }))
        );
        let over_ms = measured(now, 0, l.max_lag_ms + 1);
        assert!(matches!(
            over_ms.qualification(now, &l),
            Err(Unqualified::Lagging(_))
        ));
    }

    #[test]
    fn a_failed_replica_is_banned_until_the_ban_ends() {
        let now = Instant::now();
        let mut c = measured(now, 0, 0);
        assert_eq!(
            c.failed(now, Role::Replica, BAN, "connection refused"),
            Transition::WentDown
        );
        assert_eq!(
            c.failed(now, Role::Replica, BAN, "again"),
            Transition::Unchanged
        );
        let err = c
            .qualification(now + Duration::from_secs(1), &limits())
            .unwrap_err();
        assert_eq!(
            err,
            Unqualified::Banned {
                reason: "again".into(),
                left: Duration::from_secs(4)
            }
        );
        assert_eq!(err.to_string(), "again (for 4000 ms more)");
        assert!(!c.is_banned(now + BAN));
    }

    #[test]
    fn one_lucky_query_does_not_lift_a_ban_but_a_passing_check_does() {
        let now = Instant::now();
        let mut c = measured(now, 0, 0);
        c.failed(now, Role::Replica, BAN, "reset");
        assert_eq!(c.answered(), Transition::CameBack);
        assert!(c.down_reason.is_none());
        assert!(c.is_banned(now), "still banned after one good query");
        assert_eq!(c.check_passed(now, None), Transition::CameBack);
        assert!(!c.is_banned(now));
        assert_eq!(c.qualification(now, &limits()), Ok(()));
    }

    #[test]
    fn a_primary_is_marked_down_but_never_banned() {
        let now = Instant::now();
        let mut c = Condition::default();
        assert_eq!(
            c.failed(now, Role::Primary, BAN, "refused"),
            Transition::WentDown
        );
        assert_eq!(c.down_reason.as_deref(), Some("refused"));
        assert!(!c.is_banned(now));
    }

    #[test]
    fn the_wal_position_only_moves_forward() {
        let now = Instant::now();
        let mut c = Condition::default();
        c.saw_wal(Some(Lsn(50)));
        c.saw_wal(Some(Lsn(40)));
        c.saw_wal(None);
        assert_eq!(c.wal, Some(Lsn(50)));
        c.check_passed(now, Some(Lsn(60)));
        assert_eq!(c.wal, Some(Lsn(60)));
    }
}
