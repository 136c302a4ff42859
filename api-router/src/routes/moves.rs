//! Slot moves as the gateway shows them: the `moves` of `GET /api/shards`, the stuck
//! moves of `GET /api/health` and the move gauges of `GET /metrics`, all from the list
//! the background watch last read (no metadata query per request).

use analytics::exposition::MoveProgress;
use serde::Serialize;
use std::time::Duration;

use control_plane::moves::state::ranges;
use control_plane::moves::stuck::{self, StuckMove};
use control_plane::moves::watch::Seen;
use utoipa::ToSchema;

/// One move of slots between shards, active or among the newest finished.
#[derive(Debug, Serialize, ToSchema)]
pub struct MoveView {
    pub id: i64,
    /// What asked for it: `move-slots`, `add-shard`, `remove-shard`, `rebalance`, `reverse`.
    pub kind: String,
    pub source: u32,
    pub target: u32,
    /// The moving slots as compact ranges, e.g. `"0-15,40"`.
    pub slots: String,
    pub slot_count: usize,
    /// `capturing`, `copying`, `catching_up`, `switching`, `cleaning`, `done` or `aborted`.
    pub phase: String,
    /// Whether the move still holds its slots (not done, not aborted).
    pub active: bool,
    /// Rows of the slots to copy (counted when the copy starts).
    pub rows_total: i64,
    pub rows_copied: i64,
    /// Logged changes replayed on the target so far.
    pub rows_replayed: i64,
    /// Logged changes not yet replayed.
    pub rows_behind: i64,
    /// Seconds until the copy ends at the rate so far (null: no rate yet, or finished).
    pub eta_secs: Option<f64>,
    /// How long writes to the slots waited at the switch (null: not switched).
    pub fence_ms: Option<i64>,
    /// A mover process works on it now.
    pub running: bool,
    /// The last thing that happened (a step, a throttle, an error).
    pub note: String,
    /// What an operator can do about it now.
    pub advice: String,
    /// Seconds since it started (a finished move: how long it took).
    pub age_secs: f64,
    /// Stopped past `moves.stuck_after_secs` (at the switch: at once), neither resumed
    /// nor aborted: why, and what to do (null: not stuck).
    pub stuck: Option<StuckMove>,
}

/// How fresh `moves` is: the gateway reads them from the metadata database every
/// `metadata.poll_ms`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MovesRead {
    /// Milliseconds since the moves were last read (null: not yet).
    pub read_ms_ago: Option<u64>,
    /// Why the last read failed, while reads fail (the list shown is the last one read).
    pub error: Option<String>,
}

/// The moves last read, and how fresh they are; a move stopped `stuck_after` or longer
/// ago is marked stuck.
pub fn views(seen: &Seen, stuck_after: Duration) -> (Vec<MoveView>, MovesRead) {
    let since = seen.read_at.map(|t| t.elapsed());
    let views = seen
        .moves
        .iter()
        .map(|m| {
            // An active move's age grew since the read; a finished one's is fixed.
            let later = match m.phase.active() {
                true => since.map_or(0.0, |d| d.as_secs_f64()),
                false => 0.0,
            };
            MoveView {
                id: m.id,
                kind: m.detail.kind.clone(),
                source: m.detail.source.0,
                target: m.detail.target.0,
                slots: ranges(&m.detail.slots),
                slot_count: m.detail.slots.len(),
                phase: m.phase.as_str().to_owned(),
                active: m.phase.active(),
                rows_total: m.rows_total,
                rows_copied: m.rows_copied,
                rows_replayed: m.rows_replayed,
                rows_behind: m.rows_behind,
                eta_secs: m.eta_secs(),
                fence_ms: m.fence_ms,
                running: m.running,
                note: m.note.clone(),
                advice: m.advice(),
                age_secs: m.age_secs + later,
                stuck: stuck::judge(m, since.map_or(0.0, |d| d.as_secs_f64()), stuck_after),
            }
        })
        .collect();
    let read = MovesRead {
        read_ms_ago: since.map(|d| d.as_millis() as u64),
        error: seen.error.clone(),
    };
    (views, read)
}

/// What `/api/health` warns of: each stuck move (see [`stuck`]), and moves that could
/// not be read lately (a stuck one would go unseen).
pub fn warnings(seen: &Seen, stuck_after: Duration) -> (Vec<StuckMove>, Vec<String>) {
    let later = seen.read_at.map_or(0.0, |t| t.elapsed().as_secs_f64());
    let stuck = stuck::all(&seen.moves, later, stuck_after);
    let mut warnings: Vec<String> = stuck.iter().map(|s| s.warning.clone()).collect();
    if let Some(error) = &seen.error {
        warnings.push(format!(
            "slot moves not read lately (a stuck move would not show): {error}"
        ));
    }
    (stuck, warnings)
}

/// The active moves' progress, for the Prometheus gauges.
pub fn progress(seen: &Seen) -> Vec<MoveProgress> {
    seen.moves
        .iter()
        .filter(|m| m.phase.active())
        .map(|m| MoveProgress {
            id: m.id,
            source: m.detail.source.0,
            target: m.detail.target.0,
            phase: m.phase.as_str().to_owned(),
            slots: m.detail.slots.len(),
            rows_total: m.rows_total,
            rows_copied: m.rows_copied,
            rows_behind: m.rows_behind,
            eta_secs: m.eta_secs(),
        })
        .collect()
}
