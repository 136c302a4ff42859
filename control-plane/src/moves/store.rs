//! Moves in the metadata database: recorded, read, advanced. A mover holds its move's
//! advisory lock (session level) for as long as it runs, so `moves status` can say
//! whether anyone is working on a stopped-looking move, and two movers never run the
//! same move.

use tokio_postgres::{Client, Row};

use super::state::{Move, Phase};
use super::MoveError;
use shard_manager::routing::ShardId;

/// Advisory lock class (metadata database) of a running move; the object is its id.
const MOVE_LOCK: i32 = 0x534d; // "SM"

const COLUMNS: &str = "id, kind, source, target, slots, phase, copied_slots, rows_total,
    rows_copied, rows_replayed, rows_behind, map_before, map_after, fence_ms, note, actor,
    extract(epoch FROM coalesce(finished_at, now()) - started_at)::float8,
    extract(epoch FROM now() - updated_at)::float8,
    EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted
             AND l.classid::int = 21325 AND l.objid::bigint = moves.id)";

fn from_row(r: &Row) -> Result<Move, MoveError> {
    let phase: String = r.get(5);
    Ok(Move {
        id: r.get(0),
        kind: r.get(1),
        source: ShardId(r.get::<_, i32>(2) as u32),
        target: ShardId(r.get::<_, i32>(3) as u32),
        slots: r.get(4),
        phase: Phase::parse(&phase)
            .ok_or_else(|| MoveError::Corrupt(format!("unknown phase {phase:?}")))?,
        copied_slots: r.get(6),
        rows_total: r.get(7),
        rows_copied: r.get(8),
        rows_replayed: r.get(9),
        rows_behind: r.get(10),
        map_before: r.get(11),
        map_after: r.get(12),
        fence_ms: r.get(13),
        note: r.get(14),
        actor: r.get(15),
        age_secs: r.get(16),
        idle_secs: r.get(17),
        running: r.get(18),
    })
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

/// Records a move (phase `capturing`). The caller holds the admin lock and has checked
/// that no active move holds any of the slots.
pub async fn create(client: &Client, m: &NewMove<'_>) -> Result<i64, MoveError> {
    let row = client
        .query_one(
            "INSERT INTO moves (kind, source, target, slots, phase, map_before, actor)
             VALUES ($1, $2, $3, $4, 'capturing', $5, $6) RETURNING id",
            &[
                &m.kind,
                &(m.source.0 as i32),
                &(m.target.0 as i32),
                &m.slots,
                &m.map_before,
                &m.actor,
            ],
        )
        .await?;
    Ok(row.get(0))
}

pub async fn get(client: &Client, id: i64) -> Result<Move, MoveError> {
    let row = client
        .query_opt(
            &format!("SELECT {COLUMNS} FROM moves WHERE id = $1"),
            &[&id],
        )
        .await?
        .ok_or(MoveError::UnknownMove(id))?;
    from_row(&row)
}

/// The active moves, and the newest finished ones (up to `finished`), newest first.
pub async fn list(client: &Client, finished: i64) -> Result<Vec<Move>, MoveError> {
    let rows = client
        .query(
            &format!(
                "(SELECT {COLUMNS} FROM moves WHERE phase NOT IN ('done', 'aborted'))
                 UNION ALL
                 (SELECT {COLUMNS} FROM moves WHERE phase IN ('done', 'aborted')
                   ORDER BY id DESC LIMIT $1)
                 ORDER BY 1 DESC"
            ),
            &[&finished],
        )
        .await
        .map_err(|e| match e.as_db_error().map(|d| d.code().clone()) {
            Some(tokio_postgres::error::SqlState::UNDEFINED_TABLE) => MoveError::NoMoves,
            _ => MoveError::Query(e),
        })?;
    rows.iter().map(from_row).collect()
}

/// The active moves that hold any of `slots`.
pub async fn holding(client: &Client, slots: &[i32]) -> Result<Vec<Move>, MoveError> {
    let rows = client
        .query(
            &format!(
                "SELECT {COLUMNS} FROM moves
                  WHERE phase NOT IN ('done', 'aborted') AND slots && $1::int[] ORDER BY id"
            ),
            &[&slots],
        )
        .await?;
    rows.iter().map(from_row).collect()
}

/// Takes the move's lock for this session; false: another mover holds it.
pub async fn lock(client: &Client, id: i64) -> Result<bool, MoveError> {
    let row = client
        .query_one(
            "SELECT pg_try_advisory_lock($1, $2::int)",
            &[&MOVE_LOCK, &(id as i32)],
        )
        .await?;
    Ok(row.get(0))
}

pub async fn set_phase(
    client: &Client,
    id: i64,
    phase: Phase,
    note: &str,
) -> Result<(), MoveError> {
    client
        .execute(
            "UPDATE moves SET phase = $2, note = $3, updated_at = now(),
                    finished_at = CASE WHEN $2 IN ('done', 'aborted') THEN now() END
              WHERE id = $1",
            &[&id, &phase.as_str(), &note],
        )
        .await?;
    Ok(())
}

pub async fn set_note(client: &Client, id: i64, note: &str) -> Result<(), MoveError> {
    client
        .execute(
            "UPDATE moves SET note = $2, updated_at = now() WHERE id = $1",
            &[&id, &note],
        )
        .await?;
    Ok(())
}

pub async fn set_total(client: &Client, id: i64, rows: i64) -> Result<(), MoveError> {
    client
        .execute(
            "UPDATE moves SET rows_total = $2, updated_at = now() WHERE id = $1",
            &[&id, &rows],
        )
        .await?;
    Ok(())
}

/// Slots copied (added to `copied_slots`), with their rows.
pub async fn copied(client: &Client, id: i64, slots: &[i32], rows: i64) -> Result<(), MoveError> {
    client
        .execute(
            "UPDATE moves SET copied_slots = copied_slots || $2::int[],
                    rows_copied = rows_copied + $3, updated_at = now()
              WHERE id = $1",
            &[&id, &slots, &rows],
        )
        .await?;
    Ok(())
}

/// Changes replayed, and how many are still logged.
pub async fn replayed(client: &Client, id: i64, rows: i64, behind: i64) -> Result<(), MoveError> {
    client
        .execute(
            "UPDATE moves SET rows_replayed = rows_replayed + $2, rows_behind = $3,
                    updated_at = now()
              WHERE id = $1",
            &[&id, &rows, &behind],
        )
        .await?;
    Ok(())
}

/// The map version the switch will store (set before the fence).
pub async fn set_map_after(client: &Client, id: i64, version: i64) -> Result<(), MoveError> {
    client
        .execute(
            "UPDATE moves SET map_after = $2, updated_at = now() WHERE id = $1",
            &[&id, &version],
        )
        .await?;
    Ok(())
}

/// The switch is done: how long writes waited, and the next phase.
pub async fn switched(client: &Client, id: i64, fence_ms: Option<i64>) -> Result<(), MoveError> {
    client
        .execute(
            "UPDATE moves SET phase = 'cleaning', fence_ms = coalesce($2, fence_ms),
                    rows_behind = 0, note = 'switched', updated_at = now()
              WHERE id = $1",
            &[&id, &fence_ms],
        )
        .await?;
    Ok(())
}
