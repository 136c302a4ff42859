//! Which server a switchover may promote (pure): every refusal a switchover can give
//! before it changes anything.

use super::SwitchoverError;
use shard_manager::config::ShardFollows;
use shard_manager::live_map::shard_map::ShardMap;
use shard_manager::routing::ShardId;

/// What a candidate was found to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// A standby the HA manager counts as a healthy secondary, this many bytes behind
    /// the primary.
    Ready { lag_bytes: u64 },
    /// Not fit to be promoted, and why (down, not a standby, the HA manager's state).
    Unfit(String),
}

/// The shard's primary and the replicas a switchover may go to: `to` alone when
/// named, else every listed replica.
pub fn candidates(
    map: &ShardMap,
    shard: ShardId,
    to: Option<&str>,
) -> Result<(String, Vec<String>), SwitchoverError> {
    let refuse = |why: String| Err(SwitchoverError::Refused(why));
    let Some(entry) = map.shards.get(shard.index()) else {
        let ids: Vec<String> = map.shards.iter().map(|s| s.id.to_string()).collect();
        return refuse(format!(
            "{shard} is not in the map (its shards: {})",
            ids.join(", ")
        ));
    };
    if entry.retired {
        return refuse(format!("{shard} is retired: it owns no slot"));
    }
    if entry.follow == ShardFollows::Address {
        return refuse(format!(
            "{shard} follows an address ({}), behind which its HA manager moves the primary: \
             switch over with its HA manager: `kubectl cnpg promote`, `patronictl switchover`",
            entry.primary
        ));
    }
    if entry.replicas.is_empty() {
        return refuse(format!(
            "{shard} has no replica to switch over to (its primary: {})",
            entry.primary
        ));
    }
    match to {
        None => Ok((entry.primary.clone(), entry.replicas.clone())),
        Some(to) if to == entry.primary => refuse(format!("{to} is already {shard}'s primary")),
        Some(to) if entry.replicas.iter().any(|r| r == to) => {
            Ok((entry.primary.clone(), vec![to.to_owned()]))
        }
        Some(to) => refuse(format!(
            "{to} is not a server of {shard} (its primary: {}; its replicas: {})",
            entry.primary,
            entry.replicas.join(", ")
        )),
    }
}

/// The candidate to promote: the ready one with the least lag, at most `max_lag`
/// bytes behind.
pub fn choose(
    shard: ShardId,
    found: &[(String, Health)],
    max_lag: u64,
) -> Result<String, SwitchoverError> {
    let best = found
        .iter()
        .filter_map(|(addr, h)| match h {
            Health::Ready { lag_bytes } if *lag_bytes <= max_lag => Some((addr, *lag_bytes)),
            _ => None,
        })
        .min_by_key(|(_, lag)| *lag);
    if let Some((addr, _)) = best {
        return Ok(addr.clone());
    }
    let why: Vec<String> = found
        .iter()
        .map(|(addr, h)| match h {
            Health::Ready { lag_bytes } => {
                format!("{addr} lags {lag_bytes} bytes behind the primary (at most {max_lag})")
            }
            Health::Unfit(reason) => format!("{addr} {reason}"),
        })
        .collect();
    Err(SwitchoverError::Refused(format!(
        "no replica of {shard} can take over: {}",
        why.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shard_manager::live_map::shard_map::three_shards;

    fn refusal(r: Result<impl std::fmt::Debug, SwitchoverError>) -> String {
        match r {
            Err(SwitchoverError::Refused(why)) => why,
            other => panic!("not a refusal: {other:?}"),
        }
    }

    #[test]
    fn a_named_replica_is_the_one_candidate_and_none_named_means_all() {
        let map = three_shards();
        let e = &map.shards[1];
        let (from, to) = candidates(&map, ShardId(1), Some(&e.replicas[0])).unwrap();
        assert_eq!(
            (from.as_str(), to),
            (e.primary.as_str(), vec![e.replicas[0].clone()])
        );
        let (_, all) = candidates(&map, ShardId(1), None).unwrap();
        assert_eq!(all, e.replicas);
    }

    #[test]
    fn a_stranger_the_primary_itself_an_unknown_or_retired_shard_and_no_replica_are_refused() {
        let mut map = three_shards();
        let primary = map.shards[1].primary.clone();
        let why = refusal(candidates(&map, ShardId(1), Some("10.9.9.9:5432")));
        assert!(
            why.starts_with("10.9.9.9:5432 is not a server of shard-1"),
            "{why}"
        );
        let why = refusal(candidates(&map, ShardId(1), Some(&primary)));
        assert_eq!(why, format!("{primary} is already shard-1's primary"));
        let why = refusal(candidates(&map, ShardId(9), None));
        assert!(why.starts_with("shard-9 is not in the map"), "{why}");
        map.shards[2].replicas.clear();
        let why = refusal(candidates(&map, ShardId(2), None));
        assert!(why.starts_with("shard-2 has no replica"), "{why}");
        map.shards[0].retired = true;
        let why = refusal(candidates(&map, ShardId(0), None));
        assert_eq!(why, "shard-0 is retired: it owns no slot");
    }

    #[test]
    fn a_shard_behind_an_address_is_left_to_its_ha_manager() {
        let mut map = three_shards();
        map.shards[1].follow = ShardFollows::Address;
        let primary = map.shards[1].primary.clone();
        let replica = map.shards[1].replicas[0].clone();
        for to in [None, Some(replica.as_str())] {
            let why = refusal(candidates(&map, ShardId(1), to));
            assert_eq!(
                why,
                format!(
                    "shard-1 follows an address ({primary}), behind which its HA manager moves \
                     the primary: switch over with its HA manager: `kubectl cnpg promote`, \
                     `patronictl switchover`"
                )
            );
        }
        assert!(
            candidates(&map, ShardId(2), None).is_ok(),
            "the other shards"
        );
    }

    #[test]
    fn the_least_lagging_ready_replica_is_chosen() {
        let found = vec![
            ("a".to_string(), Health::Ready { lag_bytes: 900 }),
            ("b".to_string(), Health::Ready { lag_bytes: 10 }),
            ("c".to_string(), Health::Unfit("is down".into())),
        ];
        assert_eq!(choose(ShardId(1), &found, 1000).unwrap(), "b");
    }

    #[test]
    fn a_lagging_or_unfit_target_is_refused_naming_why() {
        let found = vec![
            ("a".to_string(), Health::Ready { lag_bytes: 5000 }),
            (
                "b".to_string(),
                Health::Unfit("did not answer: refused".into()),
            ),
        ];
        let why = refusal(choose(ShardId(1), &found, 1000));
        assert_eq!(
            why,
            "no replica of shard-1 can take over: a lags 5000 bytes behind the primary (at most 1000); b did not answer: refused"
        );
    }
}
