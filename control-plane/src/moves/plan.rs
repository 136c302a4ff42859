//! Which slots a move takes, checked against the stored map before anything changes.
//! Pure: every refusal names the slot or shard at fault and how to put it right.

use crate::map::ShardMap;
use shard_manager::routing::{ShardId, Strategy};

/// The slots asked for: a list (`0-15,40`) or a count taken from the source's end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Which {
    List(String),
    Count(u32),
}

/// Parses `0-15,40,42-43` into ascending, distinct slots.
pub fn parse_list(text: &str, slot_count: u32) -> Result<Vec<i32>, String> {
    let mut slots = Vec::new();
    for part in text.split(',').map(str::trim) {
        let syntax = || format!("{part:?} is not a slot or a range of slots; write e.g. 0-15,40");
        let number = |s: &str| s.trim().parse::<u32>().map_err(|_| syntax());
        let (from, to) = match part.split_once('-') {
            Some((a, b)) => (number(a)?, number(b)?),
            None => {
                let n = number(part)?;
                (n, n)
            }
        };
        if from > to {
            return Err(format!(
                "{part:?}: a range runs from the lower slot to the higher, e.g. 10-20"
            ));
        }
        if to >= slot_count {
            return Err(format!(
                "slot {to} is out of range: this cluster has {slot_count} slots, numbered 0 to {}",
                slot_count - 1
            ));
        }
        slots.extend((from..=to).map(|s| s as i32));
    }
    slots.sort_unstable();
    slots.dedup();
    Ok(slots)
}

/// The slots moving from `from` to `to`, or why not.
pub fn choose(map: &ShardMap, from: u32, to: u32, which: &Which) -> Result<Vec<i32>, String> {
    let strategy = map.routing.strategy;
    if strategy != Strategy::Slots || map.owners.is_empty() {
        return Err(format!(
            "this cluster places keys with routing.strategy = \"{strategy}\", whose placement is computed, not assigned: moving rows online needs \"slots\" (a map from slots to shards); `shard-admin plan --add-shard` shows what each strategy would move"
        ));
    }
    let shards = map.shards.len() as u32;
    for shard in [from, to] {
        if shard >= shards {
            return Err(format!(
                "shard {shard} does not exist: the map has {shards} shards, numbered 0 to {}",
                shards - 1
            ));
        }
    }
    if from == to {
        return Err(format!(
            "--from and --to are both shard {from}: a move needs two different shards"
        ));
    }
    let owned = map.slots_of(ShardId(from));
    let slots = match which {
        Which::List(text) => parse_list(text, map.slot_count())?,
        Which::Count(0) => return Err("--count 0 moves nothing: give at least 1".into()),
        Which::Count(n) if *n as usize > owned.len() => {
            return Err(format!(
                "shard {from} owns {} slot(s); it cannot give {n}",
                owned.len()
            ))
        }
        Which::Count(n) => owned[owned.len() - *n as usize..].to_vec(),
    };
    if slots.is_empty() {
        return Err("no slots given: write e.g. --slots 0-15 or --count 16".into());
    }
    if let Some(slot) = slots
        .iter()
        .find(|s| map.owners[**s as usize] != ShardId(from))
    {
        return Err(format!(
            "slot {slot} belongs to {}, not to shard {from}: a move takes only the source's slots",
            map.owners[*slot as usize]
        ));
    }
    Ok(slots)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> ShardMap {
        shard_manager::live_map::shard_map::three_shards()
    }

    #[test]
    fn lists_parse_sorted_and_distinct_and_bad_ones_are_named() {
        assert_eq!(parse_list("5, 0-2,1", 12), Ok(vec![0, 1, 2, 5]));
        assert!(parse_list("3-1", 12).unwrap_err().contains("lower slot"));
        assert!(parse_list("12", 12)
            .unwrap_err()
            .contains("slot 12 is out of range"));
        assert!(parse_list("1,,2", 12).is_err());
        assert!(parse_list("a", 12)
            .unwrap_err()
            .contains("\"a\" is not a slot"));
    }

    #[test]
    fn a_move_takes_only_the_sources_slots_between_two_existing_shards() {
        let map = map();
        let first = map.slots_of(ShardId(0));
        assert_eq!(
            choose(&map, 0, 1, &Which::Count(2)),
            Ok(first[first.len() - 2..].to_vec())
        );
        assert_eq!(
            choose(&map, 0, 2, &Which::List(format!("{}", first[0]))),
            Ok(vec![first[0]])
        );
        assert!(choose(&map, 0, 3, &Which::Count(1))
            .unwrap_err()
            .contains("shard 3 does not exist"));
        assert!(choose(&map, 1, 1, &Which::Count(1))
            .unwrap_err()
            .contains("two different shards"));
        assert!(choose(&map, 0, 1, &Which::Count(0))
            .unwrap_err()
            .contains("moves nothing"));
        assert!(choose(&map, 0, 1, &Which::Count(999))
            .unwrap_err()
            .contains("cannot give 999"));
        let theirs = map.slots_of(ShardId(1))[0];
        let err = choose(&map, 0, 2, &Which::List(theirs.to_string())).unwrap_err();
        assert!(
            err.contains(&format!("slot {theirs} belongs to shard-1")),
            "{err}"
        );
    }
}
