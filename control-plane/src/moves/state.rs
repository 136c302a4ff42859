//! A move's state as the metadata database records it: its phase, its progress, and
//! what an operator is told about it. Pure.

use serde::Serialize;

use shard_manager::routing::ShardId;

/// Where a move is. A move goes forward through these in order; `Aborted` and `Done`
/// are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Recorded; the source does not log changes yet.
    Capturing,
    /// The source logs every change of the slots; their rows are being copied.
    Copying,
    /// Copied; the logged changes are replayed on the target.
    CatchingUp,
    /// Under the fence: last changes, verification, ownership changes hands.
    Switching,
    /// The target owns the slots; the source's rows go once every gateway follows.
    Cleaning,
    Done,
    Aborted,
}

impl Phase {
    pub const ALL: [Phase; 7] = [
        Phase::Capturing,
        Phase::Copying,
        Phase::CatchingUp,
        Phase::Switching,
        Phase::Cleaning,
        Phase::Done,
        Phase::Aborted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Capturing => "capturing",
            Phase::Copying => "copying",
            Phase::CatchingUp => "catching_up",
            Phase::Switching => "switching",
            Phase::Cleaning => "cleaning",
            Phase::Done => "done",
            Phase::Aborted => "aborted",
        }
    }

    pub fn parse(text: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.as_str() == text)
    }

    /// Not finished: it holds its slots (no other move may take them).
    pub fn active(self) -> bool {
        !matches!(self, Phase::Done | Phase::Aborted)
    }

    /// The target owns the slots: only a reverse move can undo it.
    pub fn switched(self) -> bool {
        matches!(self, Phase::Cleaning | Phase::Done)
    }
}

/// One move of slots from a source shard to a target shard.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Move {
    pub id: i64,
    /// What asked for it: `move-slots`, `add-shard`, `remove-shard`, `rebalance`, `reverse`.
    pub kind: String,
    pub source: ShardId,
    pub target: ShardId,
    pub slots: Vec<i32>,
    pub phase: Phase,
    pub copied_slots: Vec<i32>,
    pub rows_total: i64,
    pub rows_copied: i64,
    pub rows_replayed: i64,
    pub rows_behind: i64,
    pub map_before: i64,
    pub map_after: Option<i64>,
    /// How long writes to the slots waited at the switch.
    pub fence_ms: Option<i64>,
    /// The last thing that happened (an error, a throttle, a step).
    pub note: String,
    pub actor: String,
    /// Seconds since the move started, and since its row last changed.
    pub age_secs: f64,
    pub idle_secs: f64,
    /// A mover process holds the move's lock now.
    pub running: bool,
}

impl Move {
    /// Rows per second copied so far (0 before the first row).
    pub fn copy_rate(&self) -> f64 {
        match self.age_secs > 0.0 {
            true => self.rows_copied as f64 / self.age_secs,
            false => 0.0,
        }
    }

    /// Seconds until the copy ends at the rate so far (None: no rate yet, or copied).
    pub fn eta_secs(&self) -> Option<f64> {
        let left = (self.rows_total - self.rows_copied).max(0) + self.rows_behind;
        let rate = self.copy_rate();
        (self.phase.active() && rate > 0.0).then(|| left as f64 / rate)
    }

    /// What an operator can do about it now.
    pub fn advice(&self) -> String {
        let id = self.id;
        // A finished move's advice stands even while the process that finished it
        // still holds its lock (its session ends a moment after the last update).
        match (self.phase, self.running) {
            (Phase::Done, _) => format!("done: `shard-manager moves reverse {id}` moves the slots back"),
            (Phase::Aborted, _) => "aborted: nothing moved".into(),
            (_, true) => "running".into(),
            (Phase::Cleaning, _) => format!(
                "switched, source rows not yet deleted: `shard-manager moves resume {id}` finishes it"
            ),
            _ => format!(
                "stopped: `shard-manager moves resume {id}` continues it, `shard-manager moves abort {id}` rolls it back"
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
mod tests {
    use super::*;

    #[test]
    fn phases_round_trip_and_only_final_ones_are_inactive() {
        for p in Phase::ALL {
            assert_eq!(Phase::parse(p.as_str()), Some(p));
        }
        assert_eq!(Phase::parse("copied"), None);
        let active: Vec<_> = Phase::ALL.into_iter().filter(|p| p.active()).collect();
        assert_eq!(active.len(), 5);
        assert!(Phase::Cleaning.switched() && !Phase::Switching.switched());
    }

    #[test]
    fn a_finished_move_is_advised_as_finished_even_while_still_locked() {
        let mut mv = Move {
            id: 3,
            kind: "move-slots".into(),
            source: ShardId(0),
            target: ShardId(1),
            slots: vec![1, 2],
            phase: Phase::Copying,
            copied_slots: vec![],
            rows_total: 0,
            rows_copied: 0,
            rows_replayed: 0,
            rows_behind: 0,
            map_before: 1,
            map_after: None,
            fence_ms: None,
            note: String::new(),
            actor: "test".into(),
            age_secs: 1.0,
            idle_secs: 0.0,
            running: true,
        };
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
