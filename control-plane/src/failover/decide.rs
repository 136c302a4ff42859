//! What a shard's servers' roles call for. Pure: the watcher asks the servers, this
//! decides.
//!
//! Among servers that take writes, the one on the highest timeline is the shard's real
//! primary: every promotion starts a new, higher timeline, so a server on a lower one
//! is a primary from before a promotion (an old primary its HA manager restarted in
//! place for a moment, or one an operator brought back). The map's primary wins only a
//! tie, which no promotion makes.

/// What a server answered when asked its role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Not in recovery: it takes writes, on this timeline.
    Writable { timeline: u32 },
    /// In recovery: a standby.
    InRecovery,
    /// No answer.
    Down,
}

impl Seen {
    fn timeline(self) -> Option<u32> {
        match self {
            Seen::Writable { timeline } => Some(timeline),
            _ => None,
        }
    }
}

/// What to do about one shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The map's primary takes writes and no listed replica does.
    Healthy,
    /// No server of the shard that could be its primary takes writes (yet).
    Waiting,
    /// This listed replica takes writes on the highest timeline of the shard, above
    /// the map's primary's (down, in recovery, or writable on an older timeline): the
    /// HA manager promoted it.
    Promote { to: String },
    /// The map's primary takes writes on the highest timeline, and so do these listed
    /// replicas, on that timeline or an older one: they must not.
    Fence { servers: Vec<String> },
    /// Several listed replicas take writes on the same highest timeline, above the
    /// map's primary's: no choice is made (an operator must say which is the primary).
    Ambiguous { writable: Vec<String> },
}

/// The decision for a shard whose map primary answered `primary` and whose listed
/// replicas answered `replicas`.
pub fn decide(primary: Seen, replicas: &[(String, Seen)]) -> Decision {
    let writable: Vec<(&String, u32)> = replicas
        .iter()
        .filter_map(|(addr, seen)| Some((addr, seen.timeline()?)))
        .collect();
    let newest = writable.iter().map(|(_, tl)| *tl).max();
    let primary_leads = match (primary.timeline(), newest) {
        (Some(_), None) => return Decision::Healthy,
        (Some(own), Some(newest)) => own >= newest,
        (None, None) => return Decision::Waiting,
        (None, Some(_)) => false,
    };
    if primary_leads {
        return Decision::Fence {
            servers: writable.iter().map(|(a, _)| (*a).clone()).collect(),
        };
    }
    let newest = newest.unwrap_or_default();
    let mut leaders: Vec<String> = writable
        .iter()
        .filter(|(_, tl)| *tl == newest)
        .map(|(a, _)| (*a).clone())
        .collect();
    match leaders.len() {
        1 => Decision::Promote {
            to: leaders.remove(0),
        },
        _ => Decision::Ambiguous { writable: leaders },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W1: Seen = Seen::Writable { timeline: 1 };
    const W2: Seen = Seen::Writable { timeline: 2 };

    fn replicas(seen: &[Seen]) -> Vec<(String, Seen)> {
        seen.iter()
            .enumerate()
            .map(|(i, s)| (format!("r{i}"), *s))
            .collect()
    }

    #[test]
    fn a_writable_primary_with_standbys_is_healthy() {
        let r = replicas(&[Seen::InRecovery, Seen::Down]);
        assert_eq!(decide(W1, &r), Decision::Healthy);
        assert_eq!(decide(W2, &[]), Decision::Healthy);
    }

    #[test]
    fn a_lost_primary_waits_until_a_replica_is_promoted() {
        let r = replicas(&[Seen::InRecovery, Seen::InRecovery]);
        assert_eq!(decide(Seen::Down, &r), Decision::Waiting);
        assert_eq!(decide(Seen::InRecovery, &r), Decision::Waiting);
        assert_eq!(decide(Seen::Down, &[]), Decision::Waiting);
    }

    #[test]
    fn the_one_promoted_replica_becomes_the_primary_whether_the_old_is_down_or_demoted() {
        let r = replicas(&[Seen::InRecovery, W2]);
        let to = Decision::Promote { to: "r1".into() };
        assert_eq!(decide(Seen::Down, &r), to);
        assert_eq!(decide(Seen::InRecovery, &r), to);
    }

    #[test]
    fn an_old_primary_restarted_writable_does_not_fence_the_promoted_replica() {
        // The HA manager promoted r0 (timeline 2) while the keeper restarted the map's
        // primary in place, still on timeline 1: r0 is the primary, the old one is not.
        let r = replicas(&[W2, Seen::InRecovery]);
        assert_eq!(decide(W1, &r), Decision::Promote { to: "r0".into() });
    }

    #[test]
    fn a_writable_replica_beside_the_primary_on_the_newest_timeline_is_fenced() {
        // After the map recorded the promotion: the old primary, listed as a replica,
        // is writable on its old timeline.
        let r = replicas(&[W1, Seen::InRecovery, W2]);
        assert_eq!(
            decide(W2, &r),
            Decision::Fence {
                servers: vec!["r0".into(), "r2".into()]
            }
        );
    }

    #[test]
    fn on_a_tie_the_maps_primary_wins() {
        let r = replicas(&[W1]);
        assert_eq!(
            decide(W1, &r),
            Decision::Fence {
                servers: vec!["r0".into()]
            }
        );
    }

    #[test]
    fn two_replicas_promoted_onto_the_same_timeline_are_not_chosen_between() {
        let r = replicas(&[W2, W2]);
        assert_eq!(
            decide(Seen::Down, &r),
            Decision::Ambiguous {
                writable: vec!["r0".into(), "r1".into()]
            }
        );
        assert_eq!(
            decide(W1, &r),
            Decision::Ambiguous {
                writable: vec!["r0".into(), "r1".into()]
            }
        );
    }

    #[test]
    fn of_two_promoted_replicas_the_newer_timeline_wins() {
        let r = replicas(&[W2, Seen::Writable { timeline: 3 }]);
        assert_eq!(
            decide(Seen::Down, &r),
            Decision::Promote { to: "r1".into() }
        );
    }
}
