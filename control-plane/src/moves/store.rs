//! Moves in the metadata database: the `moves` table as a kind of job (the
//! bookkeeping itself is [`crate::jobs::Store`]'s), and the queries only moves make.

use tokio_postgres::Row;

use super::state::{MoveDetail, Phase};
use crate::jobs::{JobError, JobKind, Store};
use shard_manager::routing::ShardId;

/// The moves, over one connection to the metadata database.
pub type Moves<'c> = Store<'c, MoveDetail>;

impl JobKind for MoveDetail {
    const TABLE: &'static str = "moves";
    const NOUN: &'static str = "move";
    const LOCK_CLASS: i32 = 0x534d; // "SM"
    const COLUMNS: &'static str =
        "kind, source, target, slots, copied_slots, map_before, map_after";
    type Phase = Phase;

    fn read(row: &Row, at: usize) -> Self {
        Self {
            kind: row.get(at),
            source: ShardId(row.get::<_, i32>(at + 1) as u32),
            target: ShardId(row.get::<_, i32>(at + 2) as u32),
            slots: row.get(at + 3),
            copied_slots: row.get(at + 4),
            map_before: row.get(at + 5),
            map_after: row.get(at + 6),
        }
    }
}

/// What to record for a new move.
pub struct NewMove<'a> {
    pub kind: &'a str,
    pub source: ShardId,
    pub target: ShardId,
    pub slots: &'a [i32],
    pub map_before: i64,
    pub actor: &'a str,
}

impl Moves<'_> {
    /// Records a move (phase `capturing`). The caller holds the admin lock and has
    /// checked that no active move holds any of the slots.
    pub async fn create(&self, m: &NewMove<'_>) -> Result<i64, JobError> {
        let (source, target) = (m.source.0 as i32, m.target.0 as i32);
        self.insert(
            m.actor,
            &[
                ("kind", &m.kind),
                ("source", &source),
                ("target", &target),
                ("slots", &m.slots),
                ("map_before", &m.map_before),
            ],
        )
        .await
    }

    /// The active moves that hold any of `slots`.
    pub async fn holding(&self, slots: &[i32]) -> Result<Vec<super::Move>, JobError> {
        self.active_where("slots && $1::int[]", &[&slots]).await
    }

    /// Slots copied (added to `copied_slots`, the copy's checkpoint), with their rows.
    pub async fn copied_slots(&self, id: i64, slots: &[i32], rows: i64) -> Result<(), JobError> {
        let checkpoint = "copied_slots = copied_slots || $3::int[]";
        self.copied(id, rows, checkpoint, &[&slots]).await
    }

    /// The map version the switch will store (set before the fence).
    pub async fn set_map_after(&self, id: i64, version: i64) -> Result<(), JobError> {
        self.update(id, "map_after = $2", &[&version]).await
    }
}
