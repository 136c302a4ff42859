//! A move that stopped and was neither resumed nor aborted: its source logs every
//! change of the slots (the capture trigger) for as long as it waits, and nothing
//! finishes it but `moves resume` or `moves abort`. One stopped at the switch (a mover
//! killed under the fence, or a source COMMIT that failed) may leave two owners: the
//! target already told it owns the slots while the source still does, until `moves
//! resume` settles it. The rule is the jobs' ([`crate::jobs::stuck`]), with the switch
//! as the phase that must not wait; the words are a move's. Pure.

use std::time::Duration;

use serde::Serialize;

use super::state::{ranges, Move, Phase};
use crate::jobs::stuck::{ago, stopped};

/// A stopped move an operator should look at, and why.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StuckMove {
    pub id: i64,
    /// The phase it stopped in.
    pub phase: String,
    pub source: u32,
    pub target: u32,
    /// Its slots as compact ranges, e.g. `"0-15,40"`.
    pub slots: String,
    /// Seconds since it stopped (since its record last changed).
    pub stopped_secs: f64,
    /// Stopped at the switch: the target may own the slots while the source still
    /// does. Shown at once, whatever the threshold.
    pub two_owners: bool,
    /// What is wrong and what to do, in one sentence.
    pub warning: String,
}

/// `mv` as stuck, if it is: active, no mover holds it, and stopped for `after` or more
/// (at the switch: at once). `later_secs`: time passed since `mv` was read.
pub fn judge(mv: &Move, later_secs: f64, after: Duration) -> Option<StuckMove> {
    let two_owners = mv.phase == Phase::Switching;
    let stopped_secs = stopped(mv, later_secs, after, two_owners)?;
    let id = mv.id;
    let what = format!(
        "move {id} ({} slot(s) {}, {} to {}) stopped {} ago in phase {}",
        mv.detail.slots.len(),
        ranges(&mv.detail.slots),
        mv.detail.source,
        mv.detail.target,
        ago(stopped_secs),
        mv.phase.as_str()
    );
    let warning = match mv.phase {
        Phase::Switching => format!(
            "{what}, at the switch: {} may own the slots while {} still does (two owners) \
             until `shard-admin moves resume {id}` settles it",
            mv.detail.target, mv.detail.source
        ),
        Phase::Cleaning => format!(
            "{what}: switched, but {} keeps the slots' old rows and logs their changes; \
             `shard-admin moves resume {id}` finishes it",
            mv.detail.source
        ),
        _ => format!(
            "{what}, neither resumed nor aborted: {} logs every change of the slots until \
             `shard-admin moves resume {id}` continues it or `shard-admin moves abort \
             {id}` rolls it back",
            mv.detail.source
        ),
    };
    Some(StuckMove {
        id,
        phase: mv.phase.as_str().to_owned(),
        source: mv.detail.source.0,
        target: mv.detail.target.0,
        slots: ranges(&mv.detail.slots),
        stopped_secs,
        two_owners,
        warning,
    })
}

/// The stuck ones among `moves`, in their order.
pub fn all(moves: &[Move], later_secs: f64, after: Duration) -> Vec<StuckMove> {
    moves
        .iter()
        .filter_map(|m| judge(m, later_secs, after))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::moves::state::tests::move_in;

    fn stopped(phase: Phase, idle_secs: f64, running: bool) -> Move {
        let mut mv = move_in(phase);
        mv.id = 7;
        mv.detail.slots = vec![334, 335, 336];
        (mv.idle_secs, mv.age_secs, mv.running) = (idle_secs, idle_secs + 1.0, running);
        mv
    }

    const FIVE_MIN: Duration = Duration::from_secs(300);

    #[test]
    fn a_move_stopped_past_the_threshold_is_stuck_and_says_what_to_do() {
        assert_eq!(
            judge(&stopped(Phase::Copying, 299.0, false), 0.0, FIVE_MIN),
            None
        );
        let stuck = judge(&stopped(Phase::Copying, 299.0, false), 2.0, FIVE_MIN)
            .expect("past 5 minutes once the time since the read is added");
        assert_eq!(stuck.stopped_secs, 301.0);
        assert!(!stuck.two_owners);
        assert_eq!(
            stuck.warning,
            "move 7 (3 slot(s) 334-336, shard-0 to shard-1) stopped 5 min ago in phase \
             copying, neither resumed nor aborted: shard-0 logs every change of the slots \
             until `shard-admin moves resume 7` continues it or `shard-admin moves \
             abort 7` rolls it back"
        );
        let cleaning = judge(&stopped(Phase::Cleaning, 4000.0, false), 0.0, FIVE_MIN).unwrap();
        assert!(
            cleaning.warning.contains("stopped 66 min ago"),
            "{}",
            cleaning.warning
        );
        assert!(cleaning.warning.contains("moves resume 7` finishes it"));
    }

    #[test]
    fn running_and_finished_moves_are_never_stuck() {
        assert_eq!(
            judge(&stopped(Phase::Copying, 9e6, true), 0.0, FIVE_MIN),
            None
        );
        assert_eq!(
            judge(&stopped(Phase::Switching, 9e6, true), 0.0, FIVE_MIN),
            None
        );
        for phase in [Phase::Done, Phase::Aborted] {
            assert_eq!(judge(&stopped(phase, 9e6, false), 0.0, FIVE_MIN), None);
        }
    }

    #[test]
    fn a_move_stopped_at_the_switch_is_shown_at_once_as_two_owners() {
        let stuck = judge(&stopped(Phase::Switching, 1.0, false), 0.0, FIVE_MIN).expect("at once");
        assert!(stuck.two_owners);
        assert!(
            stuck.warning.ends_with(
                "at the switch: shard-1 may own the slots while shard-0 still does (two \
                 owners) until `shard-admin moves resume 7` settles it"
            ),
            "{}",
            stuck.warning
        );
        let moves = [
            stopped(Phase::Copying, 10.0, false),
            stopped(Phase::Switching, 1.0, false),
        ];
        assert_eq!(all(&moves, 0.0, FIVE_MIN).len(), 1);
        assert_eq!(all(&moves, 0.0, Duration::ZERO).len(), 2);
    }
}
