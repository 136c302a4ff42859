//! The pure part of the plan: given every shard key with its record count and bytes,
//! which records each strategy would move when a shard is added, and where to.
//!
//! Records with the same shard key always live together, so counting per key (with the
//! key's records and bytes) is exact: a key moves, or all of its records stay.

use serde::Serialize;

use shard_manager::routing::strategy::{KeyInput, Layout, Sharding};
use shard_manager::routing::ShardId;
use shard_manager::routing::Strategy;

/// Records and their bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Amount {
    pub records: u64,
    pub bytes: u64,
}

impl Amount {
    pub fn new(records: u64, bytes: u64) -> Self {
        Self { records, bytes }
    }

    fn add(&mut self, other: Amount) {
        self.records += other.records;
        self.bytes += other.bytes;
    }
}

/// One strategy's placement before and after the shard is added.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// How the table names it: the strategy, and how its maps were made when that is
    /// not obvious.
    pub label: String,
    /// The cluster routes with this one (its `before` is the live placement).
    pub configured: bool,
    pub before: Layout,
    pub after: Layout,
}

impl Scenario {
    /// `layout` and the same layout after its own `with_added_shard()`.
    pub fn adding_to(label: impl Into<String>, layout: Layout, configured: bool) -> Self {
        Self {
            label: label.into(),
            configured,
            after: layout.with_added_shard(),
            before: layout,
        }
    }
}

/// What one strategy would move.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub label: String,
    pub strategy: Strategy,
    pub configured: bool,
    /// Every record whose shard changes.
    pub moved: Amount,
    /// The moved records that land on the new shard.
    pub to_new_shard: Amount,
    /// The moved records that go from one old shard to another.
    pub between_old_shards: Amount,
}

/// Records going from one shard to another under the configured strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Flow {
    pub from: ShardId,
    pub to: ShardId,
    #[serde(flatten)]
    pub amount: Amount,
}

/// The counts over all keys seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Shards before the addition; the new one is `ShardId(shards)`.
    pub shards: u32,
    pub total: Amount,
    /// Distinct shard keys.
    pub keys: u64,
    pub strategies: Vec<Tally>,
    /// Where the configured strategy's moving records go, by (from, to).
    pub flows: Vec<Flow>,
    /// Records found on a shard other than the one the configured strategy gives their
    /// key (written under another configuration, or by hand).
    pub misplaced: Amount,
}

/// Tallies moves for every scenario, one key at a time.
#[derive(Debug)]
pub struct MoveCounter {
    scenarios: Vec<Scenario>,
    numeric: bool,
    counts: Counts,
    /// `flows[from][to]` for the configured scenario.
    flows: Vec<Vec<Amount>>,
}

impl MoveCounter {
    /// `numeric`: keys are read as integers where they are ones (`routing.numeric`).
    pub fn new(scenarios: Vec<Scenario>, shards: u32, numeric: bool) -> Self {
        let strategies = scenarios
            .iter()
            .map(|s| Tally {
                label: s.label.clone(),
                strategy: s.before.strategy(),
                configured: s.configured,
                moved: Amount::default(),
                to_new_shard: Amount::default(),
                between_old_shards: Amount::default(),
            })
            .collect();
        let n = shards as usize;
        Self {
            scenarios,
            numeric,
            counts: Counts {
                shards,
                total: Amount::default(),
                keys: 0,
                strategies,
                flows: Vec::new(),
                misplaced: Amount::default(),
            },
            flows: vec![vec![Amount::default(); n + 1]; n],
        }
    }

    /// One shard key found on `source`, holding `amount`.
    pub fn observe(&mut self, source: ShardId, key: &str, amount: Amount) {
        let input = if self.numeric {
            KeyInput::numeric(key).unwrap_or_else(|| KeyInput::text(key))
        } else {
            KeyInput::text(key)
        };
        let new_shard = ShardId(self.counts.shards);
        self.counts.total.add(amount);
        self.counts.keys += 1;
        for (scenario, tally) in self.scenarios.iter().zip(&mut self.counts.strategies) {
            let before = scenario.before.shard_of(&input);
            let after = scenario.after.shard_of(&input);
            if scenario.configured {
                if before != source {
                    self.counts.misplaced.add(amount);
                }
                if before != after {
                    if let Some(cell) = self
                        .flows
                        .get_mut(before.index())
                        .and_then(|row| row.get_mut(after.index()))
                    {
                        cell.add(amount);
                    }
                }
            }
            if before == after {
                continue;
            }
            tally.moved.add(amount);
            if after == new_shard {
                tally.to_new_shard.add(amount);
            } else {
                tally.between_old_shards.add(amount);
            }
        }
    }

    pub fn finish(mut self) -> Counts {
        for (from, row) in self.flows.iter().enumerate() {
            for (to, amount) in row.iter().enumerate() {
                if amount.records > 0 {
                    self.counts.flows.push(Flow {
                        from: ShardId(from as u32),
                        to: ShardId(to as u32),
                        amount: *amount,
                    });
                }
            }
        }
        self.counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shard_manager::routing::strategy::{HashRing, Modulo, SlotMap};

    fn counter() -> MoveCounter {
        let scenarios = vec![
            Scenario::adding_to("slots", Layout::Slots(SlotMap::even(1024, 3)), true),
            Scenario::adding_to("modulo", Layout::Modulo(Modulo::new(3, true)), false),
            Scenario::adding_to("hash_ring", Layout::HashRing(HashRing::new(3, 64)), false),
        ];
        MoveCounter::new(scenarios, 3, true)
    }

    /// Numeric modulo 3 → 4 with fixed keys: 0..12 keep their shard only when
    /// `x mod 3 = x mod 4`, that is for 0, 1, 2 (x mod 12 < 3).
    #[test]
    fn modulo_moves_are_counted_exactly_with_bytes() {
        let mut c = counter();
        let slots = SlotMap::even(1024, 3);
        for x in 0..12u64 {
            let key = x.to_string();
            let source = slots.shard_of(&KeyInput::text(&key));
            c.observe(source, &key, Amount::new(x + 1, 100 * (x + 1)));
        }
        let counts = c.finish();
        assert_eq!(counts.total, Amount::new(78, 7800));
        assert_eq!(counts.keys, 12);
        assert_eq!(counts.misplaced, Amount::default());
        let modulo = &counts.strategies[1];
        // Stay: 0, 1, 2 with 1 + 2 + 3 records. Move: the other 72.
        assert_eq!(modulo.moved, Amount::new(72, 7200));
        // To shard 3: x mod 4 = 3 and x mod 3 != 3: 3, 7, 11 → 4 + 8 + 12 records.
        assert_eq!(modulo.to_new_shard, Amount::new(24, 2400));
        assert_eq!(modulo.between_old_shards, Amount::new(48, 4800));
    }

    #[test]
    fn slots_and_ring_only_move_to_the_new_shard() {
        let mut c = counter();
        let slots = SlotMap::even(1024, 3);
        let after = slots.with_added_shard();
        let mut expected = Amount::default();
        for i in 0..2000u64 {
            let key = format!("user_{i}");
            let input = KeyInput::text(&key);
            let source = slots.shard_of(&input);
            if after.shard_of(&input) != source {
                expected.add(Amount::new(2, 10));
            }
            c.observe(source, &key, Amount::new(2, 10));
        }
        let counts = c.finish();
        for tally in [&counts.strategies[0], &counts.strategies[2]] {
            assert_eq!(tally.between_old_shards, Amount::default(), "{tally:?}");
            assert_eq!(tally.moved, tally.to_new_shard);
            assert!(tally.moved.records > 0);
        }
        assert_eq!(counts.strategies[0].moved, expected);
        // The configured strategy's flows add up to its moves, all into shard 3.
        let flowed: u64 = counts.flows.iter().map(|f| f.amount.records).sum();
        assert_eq!(flowed, expected.records);
        assert!(counts.flows.iter().all(|f| f.to == ShardId(3)));
    }

    #[test]
    fn records_on_the_wrong_shard_are_reported() {
        let mut c = counter();
        let key = "user_123"; // slot 349: shard 1 under an even 3-shard map.
        c.observe(ShardId(0), key, Amount::new(3, 30));
        c.observe(ShardId(1), "user_2", Amount::new(1, 5)); // slot 938: shard 2
        assert_eq!(c.finish().misplaced, Amount::new(4, 35));
    }
}
