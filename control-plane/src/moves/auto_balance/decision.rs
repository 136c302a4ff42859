//! What one check decides (pure but for the hold it keeps): from each slot's load, the
//! shards and the balancer's recent moves, a move of the plan's slots within the
//! hour's cap, or a hold and why.

use std::time::{Duration, Instant};

use shard_manager::routing::ShardId;

use super::history::Recent;
use super::settings::BalancerSettings;
use crate::moves::balance::{plan, totals, Planned};

/// What the runner decided at one check.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Nothing moves, and why.
    Hold(Hold),
    /// These moves run, one after another (the plan, within the hour's cap).
    Move(Vec<Planned>),
}

/// Why nothing moves at one check. The history records a hold when its kind differs
/// from the last line the runner wrote, so a steady state is one line, not one a check.
#[derive(Debug, Clone, PartialEq)]
pub enum Hold {
    /// No gateway published any request in the last minute.
    NoLoad,
    /// The busiest shard is within the margin of the mean.
    Balanced {
        busiest: u64,
        mean: u64,
        margin: u32,
    },
    /// The busiest shard is above the margin, not yet for `hold_secs`.
    Rising {
        busiest: u64,
        mean: u64,
        held_secs: u64,
        hold_secs: u64,
    },
    /// The last move was less than `spacing_secs` ago.
    Spacing { since_secs: u64, spacing_secs: u64 },
    /// Moving slots would not narrow the gap (one slot alone is hotter than the gap).
    NoUsefulMove,
    /// The hour's cap of moved slots is reached.
    HourlyCap { moved: u32, cap: u32 },
    /// A move is under way (the runner's or an operator's): the load is weighed again
    /// once the placement stands still.
    MoveRunning { id: i64, source: u32, target: u32 },
}

impl Hold {
    /// The reason's kind, one word: a line is written when it changes.
    pub fn kind(&self) -> &'static str {
        match self {
            Hold::NoLoad => "no load",
            Hold::Balanced { .. } => "balanced",
            Hold::Rising { .. } => "above the mean",
            Hold::Spacing { .. } => "spacing",
            Hold::NoUsefulMove => "no useful move",
            Hold::HourlyCap { .. } => "hourly cap",
            Hold::MoveRunning { .. } => "move running",
        }
    }
}

impl std::fmt::Display for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Hold::NoLoad => write!(f, "no requests in the last minute"),
            Hold::Balanced {
                busiest,
                mean,
                margin,
            } => write!(
                f,
                "the busiest shard's {busiest} requests a minute are within {margin}% of the mean {mean}"
            ),
            Hold::Rising {
                busiest,
                mean,
                held_secs,
                hold_secs,
            } => write!(
                f,
                "the busiest shard's {busiest} requests a minute are above the mean {mean} for {held_secs}s of {hold_secs}s"
            ),
            Hold::Spacing {
                since_secs,
                spacing_secs,
            } => write!(f, "the last move was {since_secs}s ago, spacing {spacing_secs}s"),
            Hold::NoUsefulMove => write!(
                f,
                "no slot move narrows the gap (one slot alone is too hot to move)"
            ),
            Hold::HourlyCap { moved, cap } => {
                write!(f, "{moved} slots moved in the last hour, the cap is {cap}")
            }
            Hold::MoveRunning { id, source, target } => write!(
                f,
                "move {id} (shard-{source} -> shard-{target}) is running; weighed again when it ends"
            ),
        }
    }
}

/// What one check weighs: each slot's owner and requests, the shards, the retired ones.
#[derive(Debug, Clone, Copy)]
pub struct Weighed<'a> {
    /// Each slot's owner, by slot.
    pub owners: &'a [ShardId],
    /// Each slot's requests over the last minute, by slot.
    pub weights: &'a [u64],
    /// How many shards the map has (retired ones included).
    pub shards: usize,
    /// The retired shards: they give slots, never take them, and set no mean.
    pub retired: &'a [ShardId],
}

/// The runner's memory between checks: the hysteresis. The spacing and the hourly cap
/// are not kept here but read from the history ([`Recent`]).
#[derive(Debug, Default)]
pub struct Hysteresis {
    above_since: Option<Instant>,
}

impl Hysteresis {
    /// Decides at `now` from what is `weighed` and the balancer's `recent` moves (pure
    /// but for the hold it keeps).
    pub fn decide(
        &mut self,
        settings: &BalancerSettings,
        weighed: &Weighed<'_>,
        recent: Recent,
        now: Instant,
    ) -> Decision {
        let Weighed {
            owners,
            weights,
            shards,
            retired,
        } = *weighed;
        let per_shard = totals(owners, weights, shards);
        let active: Vec<u64> = (0..shards)
            .filter(|i| !retired.contains(&ShardId(*i as u32)))
            .map(|i| per_shard[i])
            .collect();
        let total: u64 = active.iter().sum();
        if active.is_empty() || total == 0 {
            self.above_since = None;
            return Decision::Hold(Hold::NoLoad);
        }
        let mean = total as f64 / active.len() as f64;
        let margin = f64::from(settings.margin_percent) / 100.0;
        let busiest = active.iter().copied().max().unwrap_or(0) as f64;
        if busiest <= mean * (1.0 + margin) {
            self.above_since = None;
            return Decision::Hold(Hold::Balanced {
                busiest: busiest as u64,
                mean: mean.round() as u64,
                margin: settings.margin_percent,
            });
        }
        let since = *self.above_since.get_or_insert(now);
        let held = now.saturating_duration_since(since);
        if held < Duration::from_secs(settings.hold_secs) {
            return Decision::Hold(Hold::Rising {
                busiest: busiest as u64,
                mean: mean.round() as u64,
                held_secs: held.as_secs(),
                hold_secs: settings.hold_secs,
            });
        }
        if let Some(since_move) = recent.since_last_move {
            if since_move < Duration::from_secs(settings.spacing_secs) {
                return Decision::Hold(Hold::Spacing {
                    since_secs: since_move.as_secs(),
                    spacing_secs: settings.spacing_secs,
                });
            }
        }
        let moved = recent.slots_last_hour;
        let room = settings.max_slots_per_hour.saturating_sub(moved);
        let mut planned = plan(owners, weights, shards, margin, retired);
        if planned.is_empty() {
            return Decision::Hold(Hold::NoUsefulMove);
        }
        if room == 0 {
            return Decision::Hold(Hold::HourlyCap {
                moved,
                cap: settings.max_slots_per_hour,
            });
        }
        // The heaviest moves first, and each move's heaviest slots, within the hour's cap.
        planned.sort_by_key(|m| std::cmp::Reverse(m.weight));
        let mut left = room as usize;
        let mut taken = Vec::new();
        for mut m in planned {
            if left == 0 {
                break;
            }
            if m.slots.len() > left {
                m.slots
                    .sort_by_key(|s| std::cmp::Reverse(weights[*s as usize]));
                m.slots.truncate(left);
                m.weight = m.slots.iter().map(|s| weights[*s as usize]).sum();
                m.slots.sort_unstable();
            }
            left -= m.slots.len();
            taken.push(m);
        }
        self.above_since = None;
        Decision::Move(taken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(i: u32) -> ShardId {
        ShardId(i)
    }

    fn quick() -> BalancerSettings {
        BalancerSettings {
            auto: true,
            margin_percent: 25,
            hold_secs: 10,
            spacing_secs: 60,
            max_slots_per_hour: 3,
            check_secs: 1,
        }
    }

    /// Three shards, none retired.
    fn weighed<'a>(owners: &'a [ShardId], weights: &'a [u64]) -> Weighed<'a> {
        Weighed {
            owners,
            weights,
            shards: 3,
            retired: &[],
        }
    }

    /// The history's `move` lines as a runner leaves them: when, and how many slots.
    #[derive(Default)]
    struct History(Vec<(Instant, u32)>);

    impl History {
        /// What [`Recent::read`] reads from these lines at `now`.
        fn at(&self, now: Instant) -> Recent {
            let hour = Duration::from_secs(3600);
            Recent {
                slots_last_hour: self
                    .0
                    .iter()
                    .filter(|(at, _)| now.saturating_duration_since(*at) < hour)
                    .map(|(_, n)| n)
                    .sum(),
                since_last_move: self
                    .0
                    .iter()
                    .map(|(at, _)| now.saturating_duration_since(*at))
                    .min(),
            }
        }

        /// Decides as the runner does: the history read first, a move's line written.
        fn decide(
            &mut self,
            memory: &mut Hysteresis,
            settings: &BalancerSettings,
            weighed: &Weighed<'_>,
            now: Instant,
        ) -> Decision {
            let decision = memory.decide(settings, weighed, self.at(now), now);
            if let Decision::Move(moves) = &decision {
                let slots = moves.iter().map(|m| m.slots.len() as u32).sum();
                self.0.push((now, slots));
            }
            decision
        }
    }

    #[test]
    fn acts_once_after_the_hold_then_holds_while_balanced() {
        // 12 slots, 4 per shard; shard 0's slots each take 10 requests, the others 1.
        let mut owners: Vec<ShardId> = (0..12).map(|i| s(i % 3)).collect();
        let weights: Vec<u64> = (0..12).map(|i| if i % 3 == 0 { 10 } else { 1 }).collect();
        let mut memory = Hysteresis::default();
        let mut history = History::default();
        let t0 = Instant::now();
        let at = |secs| t0 + Duration::from_secs(secs);
        let mut decide = |m: &mut Hysteresis, o: &[ShardId], t| {
            history.decide(m, &quick(), &weighed(o, &weights), t)
        };
        assert!(matches!(
            decide(&mut memory, &owners, at(0)),
            Decision::Hold(Hold::Rising {
                held_secs: 0,
                hold_secs: 10,
                ..
            })
        ));
        assert!(matches!(
            decide(&mut memory, &owners, at(9)),
            Decision::Hold(_)
        ));
        let Decision::Move(planned) = decide(&mut memory, &owners, at(10)) else {
            panic!("no move after the hold");
        };
        assert!(planned.iter().all(|m| m.from == s(0)));
        assert!(planned.iter().map(|m| m.slots.len()).sum::<usize>() <= 3);
        for m in &planned {
            for slot in &m.slots {
                owners[*slot as usize] = m.to;
            }
        }
        // Afterwards: within the margin, or spaced; never a move back.
        for secs in 11..200 {
            match decide(&mut memory, &owners, at(secs)) {
                Decision::Hold(_) => {}
                Decision::Move(moves) => {
                    assert!(secs >= 70, "a second move {secs}s in, before the spacing");
                    for m in moves {
                        assert_ne!(m.to, s(0), "a move back to the busy shard");
                        for slot in &m.slots {
                            owners[*slot as usize] = m.to;
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_burst_shorter_than_the_hold_moves_nothing() {
        let owners: Vec<ShardId> = (0..6).map(|i| s(i % 3)).collect();
        let busy: Vec<u64> = vec![10, 1, 1, 10, 1, 1];
        let calm = vec![1u64; 6];
        let mut memory = Hysteresis::default();
        let t0 = Instant::now();
        let at = |secs| t0 + Duration::from_secs(secs);
        let none = Recent::default();
        for secs in 0..9 {
            let d = memory.decide(&quick(), &weighed(&owners, &busy), none, at(secs));
            assert!(matches!(d, Decision::Hold(_)));
        }
        let d = memory.decide(&quick(), &weighed(&owners, &calm), none, at(9));
        assert!(matches!(d, Decision::Hold(Hold::Balanced { .. })));
        let d = memory.decide(&quick(), &weighed(&owners, &busy), none, at(12));
        assert!(
            matches!(d, Decision::Hold(Hold::Rising { held_secs: 0, .. })),
            "the hold starts again"
        );
    }

    #[test]
    fn the_hourly_cap_holds_moves_back() {
        let owners: Vec<ShardId> = (0..30).map(|i| s(i % 3)).collect();
        let weights: Vec<u64> = (0..30).map(|i| if i % 3 == 0 { 10 } else { 1 }).collect();
        let settings = BalancerSettings {
            hold_secs: 0,
            spacing_secs: 0,
            max_slots_per_hour: 2,
            ..quick()
        };
        let load = weighed(&owners, &weights);
        let mut memory = Hysteresis::default();
        let mut history = History::default();
        let t0 = Instant::now();
        let Decision::Move(moves) = history.decide(&mut memory, &settings, &load, t0) else {
            panic!("no first move");
        };
        let slots: usize = moves.iter().map(|m| m.slots.len()).sum();
        assert_eq!(slots, 2, "capped at the hour's two slots");
        let d = history.decide(&mut memory, &settings, &load, t0 + Duration::from_secs(60));
        assert!(matches!(
            d,
            Decision::Hold(Hold::HourlyCap { moved: 2, cap: 2 })
        ));
        // An hour after the move, the cap has room again.
        let d = history.decide(
            &mut memory,
            &settings,
            &load,
            t0 + Duration::from_secs(3600),
        );
        assert!(matches!(d, Decision::Move(_)), "{d:?}");
    }

    #[test]
    fn a_new_runner_keeps_the_spacing_and_the_cap_the_history_records() {
        // A runner that starts with no memory of its own, after another runner's moves.
        let owners: Vec<ShardId> = (0..30).map(|i| s(i % 3)).collect();
        let weights: Vec<u64> = (0..30).map(|i| if i % 3 == 0 { 10 } else { 1 }).collect();
        let settings = BalancerSettings {
            hold_secs: 0,
            ..quick()
        };
        let load = weighed(&owners, &weights);
        let now = Instant::now();
        let spaced = Recent {
            slots_last_hour: 1,
            since_last_move: Some(Duration::from_secs(59)),
        };
        let d = Hysteresis::default().decide(&settings, &load, spaced, now);
        assert!(
            matches!(
                d,
                Decision::Hold(Hold::Spacing {
                    since_secs: 59,
                    spacing_secs: 60
                })
            ),
            "{d:?}"
        );
        let capped = Recent {
            slots_last_hour: 3,
            since_last_move: Some(Duration::from_secs(600)),
        };
        let d = Hysteresis::default().decide(&settings, &load, capped, now);
        assert!(
            matches!(d, Decision::Hold(Hold::HourlyCap { moved: 3, cap: 3 })),
            "{d:?}"
        );
        // Room for one more slot: one moves.
        let room = Recent {
            slots_last_hour: 2,
            ..capped
        };
        let Decision::Move(moves) = Hysteresis::default().decide(&settings, &load, room, now)
        else {
            panic!("no move with room for one slot");
        };
        assert_eq!(moves.iter().map(|m| m.slots.len()).sum::<usize>(), 1);
    }

    #[test]
    fn a_hold_reads_as_its_reason() {
        let rising = Hold::Rising {
            busiest: 3000,
            mean: 1200,
            held_secs: 12,
            hold_secs: 60,
        };
        assert_eq!(rising.kind(), "above the mean");
        assert_eq!(
            rising.to_string(),
            "the busiest shard's 3000 requests a minute are above the mean 1200 for 12s of 60s"
        );
        let capped = Hold::HourlyCap { moved: 64, cap: 64 };
        assert_eq!(
            capped.to_string(),
            "64 slots moved in the last hour, the cap is 64"
        );
    }
}
