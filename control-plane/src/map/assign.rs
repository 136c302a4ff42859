//! `map assign-slots`: parsing `SLOTS=SHARD` entries and checking them against a map
//! before anything changes. Pure; every refusal names the slot or shard at fault.

use shard_manager::live_map::shard_map::ShardMap;
use shard_manager::routing::{MapVersion, ShardId, Strategy};

/// One entry: slots `from..=to` go to `shard`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub from: u32,
    pub to: u32,
    pub shard: ShardId,
}

/// Why an assignment was refused. Nothing is changed when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssignError {
    #[error("{0:?} is not SLOTS=SHARD; write e.g. 0-99=1 (slots 0 to 99 to shard 1) or 512=2")]
    Syntax(String),
    #[error("nothing to assign: give at least one SLOTS=SHARD entry, e.g. 0-99=1")]
    Empty,
    #[error(
        "slot {slot} is out of range: this cluster has {count} slots, numbered 0 to {}",
        count - 1
    )]
    SlotOutOfRange { slot: u32, count: u32 },
    #[error("{text:?}: a range runs from the lower slot to the higher, e.g. 10-20")]
    Backwards { text: String },
    #[error(
        "shard {shard} does not exist: the map has {count} shards, numbered 0 to {}",
        count - 1
    )]
    UnknownShard { shard: u32, count: u32 },
    #[error("slot {slot} would have two owners: it is given to {first} and to {second}")]
    TwoOwners {
        slot: u32,
        first: ShardId,
        second: ShardId,
    },
    #[error(
        "slot {first} would have no owner ({count} slot(s) in all, e.g. {}): with --all the entries must cover every slot 0 to {}",
        examples(.unowned), last
    )]
    NoOwner {
        first: u32,
        count: usize,
        unowned: Vec<u32>,
        last: u32,
    },
    #[error(
        "this cluster places keys with routing.strategy = \"{0}\", which has no slot owners to assign; only \"slots\" maps slots to shards"
    )]
    NotSlots(Strategy),
}

fn examples(slots: &[u32]) -> String {
    let shown: Vec<String> = slots.iter().take(5).map(u32::to_string).collect();
    shown.join(", ")
}

/// Parses `0-99=1`, `512=2`.
pub fn parse(texts: &[String], map: &ShardMap) -> Result<Vec<Entry>, AssignError> {
    if texts.is_empty() {
        return Err(AssignError::Empty);
    }
    let count = map.slot_count();
    let shards = map.shards.len() as u32;
    texts
        .iter()
        .map(|text| {
            let syntax = || AssignError::Syntax(text.clone());
            let (slots, shard) = text.trim().split_once('=').ok_or_else(syntax)?;
            let shard: u32 = shard.trim().parse().map_err(|_| syntax())?;
            let number = |s: &str| s.trim().parse::<u32>().map_err(|_| syntax());
            let (from, to) = match slots.split_once('-') {
                Some((a, b)) => (number(a)?, number(b)?),
                None => {
                    let n = number(slots)?;
                    (n, n)
                }
            };
            if from > to {
                return Err(AssignError::Backwards { text: text.clone() });
            }
            if to >= count {
                return Err(AssignError::SlotOutOfRange { slot: to, count });
            }
            if shard >= shards {
                return Err(AssignError::UnknownShard {
                    shard,
                    count: shards,
                });
            }
            Ok(Entry {
                from,
                to,
                shard: ShardId(shard),
            })
        })
        .collect()
}

/// One slot changing hands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub slot: u32,
    pub from: ShardId,
    pub to: ShardId,
}

/// The map after `entries`, at the next version, and the slots that change hands
/// (empty: nothing to do). `all`: the entries are the whole assignment, so a slot
/// they leave out is refused rather than kept where it is.
pub fn apply(
    map: &ShardMap,
    entries: &[Entry],
    all: bool,
) -> Result<(ShardMap, Vec<Change>), AssignError> {
    let strategy = map.routing.strategy;
    if strategy != Strategy::Slots || map.owners.is_empty() {
        return Err(AssignError::NotSlots(strategy));
    }
    let mut named: Vec<Option<ShardId>> = vec![None; map.owners.len()];
    for e in entries {
        for slot in e.from..=e.to {
            match named[slot as usize] {
                Some(first) if first != e.shard => {
                    return Err(AssignError::TwoOwners {
                        slot,
                        first,
                        second: e.shard,
                    })
                }
                _ => named[slot as usize] = Some(e.shard),
            }
        }
    }
    if all {
        let unowned: Vec<u32> = (0..named.len() as u32)
            .filter(|s| named[*s as usize].is_none())
            .collect();
        if let Some(&first) = unowned.first() {
            return Err(AssignError::NoOwner {
                first,
                count: unowned.len(),
                unowned,
                last: map.slot_count() - 1,
            });
        }
    }
    let mut next = map.clone();
    let mut changes = Vec::new();
    for (slot, to) in named.iter().enumerate() {
        let Some(to) = *to else { continue };
        let from = map.owners[slot];
        if from != to {
            changes.push(Change {
                slot: slot as u32,
                from,
                to,
            });
            next.owners[slot] = to;
        }
    }
    next.version = MapVersion(map.version.0 + 1);
    Ok((next, changes))
}

/// "slots 0-99, 512" for a summary: `slots` ascending, merged into ranges.
pub fn describe(slots: impl IntoIterator<Item = u32>) -> String {
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    for s in slots {
        match ranges.last_mut() {
            Some((_, end)) if *end + 1 == s => *end = s,
            _ => ranges.push((s, s)),
        }
    }
    let parts: Vec<String> = ranges
        .iter()
        .map(|(a, b)| match a == b {
            true => a.to_string(),
            false => format!("{a}-{b}"),
        })
        .collect();
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use shard_manager::live_map::shard_map::three_shards;

    fn entries(texts: &[&str]) -> Result<Vec<Entry>, AssignError> {
        let texts: Vec<String> = texts.iter().map(|s| s.to_string()).collect();
        parse(&texts, &three_shards())
    }

    #[test]
    fn entries_parse_and_bad_ones_are_named() {
        assert_eq!(
            entries(&["0-9=1", " 512 = 2 "]).unwrap(),
            vec![
                Entry {
                    from: 0,
                    to: 9,
                    shard: ShardId(1)
                },
                Entry {
                    from: 512,
                    to: 512,
                    shard: ShardId(2)
                }
            ]
        );
        assert_eq!(entries(&[]), Err(AssignError::Empty));
        assert_eq!(entries(&["0-9"]), Err(AssignError::Syntax("0-9".into())));
        assert_eq!(
            entries(&["9-0=1"]),
            Err(AssignError::Backwards {
                text: "9-0=1".into()
            })
        );
        let err = entries(&["1024=0"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "slot 1024 is out of range: this cluster has 1024 slots, numbered 0 to 1023"
        );
        let err = entries(&["5=3"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "shard 3 does not exist: the map has 3 shards, numbered 0 to 2"
        );
    }

    #[test]
    fn a_slot_given_twice_is_refused_naming_it() {
        let map = three_shards();
        let list = entries(&["0-99=1", "90-120=2"]).unwrap();
        let err = apply(&map, &list, false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "slot 90 would have two owners: it is given to shard-1 and to shard-2"
        );
        // The same owner twice is no conflict.
        let list = entries(&["0-99=1", "50-60=1"]).unwrap();
        assert_eq!(apply(&map, &list, false).unwrap().1.len(), 100);
    }

    #[test]
    fn a_whole_assignment_must_cover_every_slot() {
        let map = three_shards();
        let list = entries(&["0-500=0", "502-1023=1"]).unwrap();
        let err = apply(&map, &list, true).unwrap_err();
        assert_eq!(
            err.to_string(),
            "slot 501 would have no owner (1 slot(s) in all, e.g. 501): with --all the entries \
             must cover every slot 0 to 1023"
        );
        let list = entries(&["0-1023=0"]).unwrap();
        let (next, changes) = apply(&map, &list, true).unwrap();
        assert_eq!(changes.len(), 1024 - 342);
        assert!(next.slots_of(ShardId(1)).is_empty());
    }

    #[test]
    fn changes_are_the_slots_that_move_and_the_version_grows() {
        let map = three_shards();
        let list = entries(&["340-343=2"]).unwrap();
        let (next, changes) = apply(&map, &list, false).unwrap();
        assert_eq!(next.version, MapVersion(2));
        let moved: Vec<(u32, u32, u32)> =
            changes.iter().map(|c| (c.slot, c.from.0, c.to.0)).collect();
        assert_eq!(
            moved,
            vec![(340, 0, 2), (341, 0, 2), (342, 1, 2), (343, 1, 2)]
        );
        assert_eq!(describe(changes.iter().map(|c| c.slot)), "340-343");
        assert_eq!(describe([1, 2, 3, 7, 9, 10]), "1-3, 7, 9-10");
        let (_, none) = apply(&next, &list, false).unwrap();
        assert!(none.is_empty(), "already there: nothing changes");
    }
}
