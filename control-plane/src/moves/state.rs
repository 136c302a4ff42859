//! A move's state as the metadata database records it: its phase, its progress, and
//! what an operator is told about it. Pure.

use crate::jobs::{phases, Job};
use shard_manager::routing::ShardId;

phases! {
    /// Where a move is. A move goes forward through these in order (verification
    /// refusing the switch sends it back to catching up); `Aborted` and `Done` are final.
    pub enum Phase {
        /// Recorded; the source does not log changes yet.
        Capturing = "capturing" => [Copying],
        /// The source logs every change of the slots; their rows are being copied.
        Copying = "copying" => [CatchingUp],
        /// Copied; the logged changes are replayed on the target.
        CatchingUp = "catching_up" => [Switching],
        /// Under the fence: last changes, verification, ownership changes hands.
        Switching = "switching" => [Cleaning, CatchingUp],
        /// The target owns the slots; the source's rows go once every gateway follows.
        Cleaning = "cleaning" => [Done],
        Done = "done" => [],
        Aborted = "aborted" => [],
    }
    first: Capturing, done: Done, aborted: Aborted
}

impl Phase {
    /// The target owns the slots: only a reverse move can undo it.
    pub fn switched(self) -> bool {
        matches!(self, Phase::Cleaning | Phase::Done)
    }
}

/// One move of slots from a source shard to a target shard: a [`Job`] whose own
/// columns are these.
#[derive(Debug, Clone, PartialEq)]
pub struct MoveDetail {
    /// What asked for it: `move-slots`, `add-shard`, `remove-shard`, `rebalance`, `reverse`.
    pub kind: String,
    pub source: ShardId,
    pub target: ShardId,
    pub slots: Vec<i32>,
    /// The copy's checkpoint: slots copied so far.
    pub copied_slots: Vec<i32>,
    pub map_before: i64,
    /// The map version the switch stores (set before the fence).
    pub map_after: Option<i64>,
}

pub type Move = Job<MoveDetail>;

impl Job<MoveDetail> {
    /// What an operator can do about it now.
    pub fn advice(&self) -> String {
        let id = self.id;
        // A finished move's advice stands even while the process that finished it
        // still holds its lock (its session ends a moment after the last update).
        match (self.phase, self.running) {
            (Phase::Done, _) => format!("done: `shard-admin moves reverse {id}` moves the slots back"),
            (Phase::Aborted, _) => "aborted: nothing moved".into(),
            (_, true) => "running".into(),
            (Phase::Cleaning, _) => format!(
                "switched, source rows not yet deleted: `shard-admin moves resume {id}` finishes it"
            ),
            _ => format!(
                "stopped: `shard-admin moves resume {id}` continues it, `shard-admin moves abort {id}` rolls it back"
            ),
        }
    }
}

/// Slots as compact ranges: `0-9,12,20-21`.
pub fn ranges(slots: &[i32]) -> String {
    let mut sorted = slots.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        parts.push(match start == end {
            true => start.to_string(),
            false => format!("{start}-{end}"),
        });
        i += 1;
    }
    parts.join(",")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::jobs::JobPhase;

    /// Move 3 of slots 1 and 2, in `phase`.
    pub(crate) fn move_in(phase: Phase) -> Move {
        let detail = MoveDetail {
            kind: "move-slots".into(),
            source: ShardId(0),
            target: ShardId(1),
            slots: vec![1, 2],
            copied_slots: vec![],
            map_before: 1,
            map_after: None,
        };
        crate::jobs::test_kind::job(3, phase, detail)
    }

    #[test]
    fn phases_go_forward_fall_back_only_from_the_switch_and_end_once() {
        use Phase::*;
        let path = [Capturing, Copying, CatchingUp, Switching, Cleaning, Done];
        for pair in path.windows(2) {
            assert!(pair[0].may_become(pair[1]), "{pair:?}");
        }
        assert!(
            Switching.may_become(CatchingUp),
            "verification refused the switch"
        );
        assert!(
            !Cleaning.may_become(CatchingUp),
            "switched: only a reverse move undoes it"
        );
        assert!(!Capturing.may_become(Switching));
        assert!(Switching.may_become(Aborted) && !Done.may_become(Aborted));
        let active: Vec<_> = Phase::ALL.iter().filter(|p| p.active()).collect();
        assert_eq!(active.len(), 5);
        assert!(Cleaning.switched() && !Switching.switched());
        assert_eq!((Done.as_str(), Aborted.as_str()), ("done", "aborted"));
    }

    #[test]
    fn a_finished_move_is_advised_as_finished_even_while_still_locked() {
        let mut mv = move_in(Phase::Copying);
        mv.running = true;
        assert_eq!(mv.advice(), "running");
        mv.phase = Phase::Aborted;
        assert_eq!(mv.advice(), "aborted: nothing moved");
        mv.phase = Phase::Done;
        assert!(mv.advice().contains("moves reverse 3"), "{}", mv.advice());
    }

    #[test]
    fn ranges_merge_neighbours() {
        assert_eq!(ranges(&[3, 1, 2, 7, 9, 10]), "1-3,7,9-10");
        assert_eq!(ranges(&[]), "");
    }
}
