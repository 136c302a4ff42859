//! What a shard's servers' roles call for. Pure: the watcher asks the servers, this
//! decides.

/// What a server answered when asked its role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Not in recovery: it takes writes.
    Writable,
    /// In recovery: a standby.
    InRecovery,
    /// No answer.
    Down,
}

/// What to do about one shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The map's primary takes writes and no listed replica does.
    Healthy,
    /// The map's primary cannot take writes and no replica has been promoted (yet).
    Waiting,
    /// The map's primary cannot take writes and exactly this listed replica can: the
    /// HA manager promoted it.
    Promote { to: String },
    /// The map's primary takes writes and so do these listed replicas: they must not.
    Fence { servers: Vec<String> },
    /// The map's primary cannot take writes and several replicas can: no choice is
    /// made (an operator must say which one is the primary).
    Ambiguous { writable: Vec<String> },
}

/// The decision for a shard whose map primary answered `primary` and whose listed
/// replicas answered `replicas`.
pub fn decide(primary: Seen, replicas: &[(String, Seen)]) -> Decision {
    let writable: Vec<String> = replicas
        .iter()
        .filter(|(_, seen)| *seen == Seen::Writable)
        .map(|(addr, _)| addr.clone())
        .collect();
    match (primary, writable.len()) {
        (Seen::Writable, 0) => Decision::Healthy,
        (Seen::Writable, _) => Decision::Fence { servers: writable },
        (_, 0) => Decision::Waiting,
        (_, 1) => Decision::Promote {
            to: writable[0].clone(),
        },
        (_, _) => Decision::Ambiguous { writable },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replicas(seen: &[Seen]) -> Vec<(String, Seen)> {
        seen.iter()
            .enumerate()
            .map(|(i, s)| (format!("r{i}"), *s))
            .collect()
    }

    #[test]
    fn a_writable_primary_with_standbys_is_healthy() {
        let r = replicas(&[Seen::InRecovery, Seen::Down]);
        assert_eq!(decide(Seen::Writable, &r), Decision::Healthy);
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
        let r = replicas(&[Seen::InRecovery, Seen::Writable]);
        let to = Decision::Promote { to: "r1".into() };
        assert_eq!(decide(Seen::Down, &r), to);
        assert_eq!(decide(Seen::InRecovery, &r), to);
    }

    #[test]
    fn a_writable_replica_beside_a_writable_primary_is_fenced() {
        let r = replicas(&[Seen::Writable, Seen::InRecovery, Seen::Writable]);
        assert_eq!(
            decide(Seen::Writable, &r),
            Decision::Fence {
                servers: vec!["r0".into(), "r2".into()]
            }
        );
    }

    #[test]
    fn two_promoted_replicas_are_not_chosen_between() {
        let r = replicas(&[Seen::Writable, Seen::Writable]);
        assert_eq!(
            decide(Seen::Down, &r),
            Decision::Ambiguous {
                writable: vec!["r0".into(), "r1".into()]
            }
        );
    }
}
