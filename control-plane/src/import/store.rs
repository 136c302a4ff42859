//! Imports in the metadata database: recorded, read, advanced. An import process holds
//! its import's advisory lock (session level) while it runs, so two never work on one
//! import and `imports status` can say whether anyone is working on it.

use tokio_postgres::{Client, Row};

use super::state::{Import, Phase};
use super::ImportError;

/// Advisory lock class (metadata database) of a running import; the object is its id.
const IMPORT_LOCK: i32 = 0x5349; // "SI"

const COLUMNS: &str = "id, source, source_table, key_column, id_column, into_table, phase,
    checkpoint_id, checkpoint_key, rows_total, rows_copied, rows_replayed, rows_behind,
    fence_ms, note, actor,
    extract(epoch FROM coalesce(finished_at, now()) - started_at)::float8,
    extract(epoch FROM now() - updated_at)::float8,
    EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted
             AND l.classid::int = 21321 AND l.objid::bigint = imports.id)";

fn from_row(r: &Row) -> Result<Import, ImportError> {
    let phase: String = r.get(6);
    let checkpoint = match (r.get::<_, Option<String>>(7), r.get::<_, Option<String>>(8)) {
        (Some(id), Some(key)) => Some((id, key)),
        _ => None,
    };
    Ok(Import {
        id: r.get(0),
        source: r.get(1),
        source_table: r.get(2),
        key_column: r.get(3),
        id_column: r.get(4),
        into: r.get(5),
        phase: Phase::parse(&phase)
            .ok_or_else(|| ImportError::Corrupt(format!("unknown phase {phase:?}")))?,
        checkpoint,
        rows_total: r.get(9),
        rows_copied: r.get(10),
        rows_replayed: r.get(11),
        rows_behind: r.get(12),
        fence_ms: r.get(13),
        note: r.get(14),
        actor: r.get(15),
        age_secs: r.get(16),
        idle_secs: r.get(17),
        running: r.get(18),
    })
}

/// What to record for a new import.
pub struct NewImport<'a> {
    pub source: &'a str,
    pub source_table: &'a str,
    pub key_column: &'a str,
    pub id_column: &'a str,
    pub into: &'a str,
    pub rows_total: i64,
    pub actor: &'a str,
}

/// Records an import (phase `copying`); the unique index refuses a second active
/// import into the same table.
pub async fn create(client: &Client, n: &NewImport<'_>) -> Result<i64, ImportError> {
    let row = client
        .query_one(
            "INSERT INTO imports (source, source_table, key_column, id_column, into_table,
                                  phase, rows_total, actor)
             VALUES ($1, $2, $3, $4, $5, 'copying', $6, $7) RETURNING id",
            &[
                &n.source,
                &n.source_table,
                &n.key_column,
                &n.id_column,
                &n.into,
                &n.rows_total,
                &n.actor,
            ],
        )
        .await?;
    Ok(row.get(0))
}

pub async fn get(client: &Client, id: i64) -> Result<Import, ImportError> {
    let row = client
        .query_opt(
            &format!("SELECT {COLUMNS} FROM imports WHERE id = $1"),
            &[&id],
        )
        .await?
        .ok_or(ImportError::Unknown(id))?;
    from_row(&row)
}

/// The active import into `into`, if any.
pub async fn active_into(client: &Client, into: &str) -> Result<Option<Import>, ImportError> {
    let row = client
        .query_opt(
            &format!(
                "SELECT {COLUMNS} FROM imports
                  WHERE into_table = $1 AND phase NOT IN ('done', 'aborted')"
            ),
            &[&into],
        )
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The active imports, and the newest finished ones (up to `finished`), newest first.
pub async fn list(client: &Client, finished: i64) -> Result<Vec<Import>, ImportError> {
    let rows = client
        .query(
            &format!(
                "(SELECT {COLUMNS} FROM imports WHERE phase NOT IN ('done', 'aborted'))
                 UNION ALL
                 (SELECT {COLUMNS} FROM imports WHERE phase IN ('done', 'aborted')
                   ORDER BY id DESC LIMIT $1)
                 ORDER BY 1 DESC"
            ),
            &[&finished],
        )
        .await?;
    rows.iter().map(from_row).collect()
}

/// Takes the import's lock for this session; false: another process holds it.
pub async fn lock(client: &Client, id: i64) -> Result<bool, ImportError> {
    let row = client
        .query_one(
            "SELECT pg_try_advisory_lock($1, $2::int)",
            &[&IMPORT_LOCK, &(id as i32)],
        )
        .await?;
    Ok(row.get(0))
}

pub async fn set_phase(
    client: &Client,
    id: i64,
    phase: Phase,
    note: &str,
) -> Result<(), ImportError> {
    client
        .execute(
            "UPDATE imports SET phase = $2, note = $3, updated_at = now(),
                    finished_at = CASE WHEN $2 IN ('done', 'aborted') THEN now() END
              WHERE id = $1",
            &[&id, &phase.as_str(), &note],
        )
        .await?;
    Ok(())
}

/// A page copied: the row to resume after, and how many rows it held.
pub async fn copied(
    client: &Client,
    id: i64,
    after: &(String, String),
    rows: i64,
) -> Result<(), ImportError> {
    client
        .execute(
            "UPDATE imports SET checkpoint_id = $2, checkpoint_key = $3,
                    rows_copied = rows_copied + $4, updated_at = now()
              WHERE id = $1",
            &[&id, &after.0, &after.1, &rows],
        )
        .await?;
    Ok(())
}

/// The copy starts over (its capture had been removed by someone).
pub async fn restart_copy(client: &Client, id: i64) -> Result<(), ImportError> {
    client
        .execute(
            "UPDATE imports SET checkpoint_id = NULL, checkpoint_key = NULL, rows_copied = 0,
                    phase = 'copying', updated_at = now()
              WHERE id = $1",
            &[&id],
        )
        .await?;
    Ok(())
}

/// Changes replayed, and how many are still logged.
pub async fn replayed(client: &Client, id: i64, rows: i64, behind: i64) -> Result<(), ImportError> {
    client
        .execute(
            "UPDATE imports SET rows_replayed = rows_replayed + $2, rows_behind = $3,
                    updated_at = now()
              WHERE id = $1",
            &[&id, &rows, &behind],
        )
        .await?;
    Ok(())
}

/// The cut-over is done: how long the source's writers waited.
pub async fn cut_over(
    client: &Client,
    id: i64,
    fence_ms: Option<i64>,
    note: &str,
) -> Result<(), ImportError> {
    client
        .execute(
            "UPDATE imports SET phase = 'done', fence_ms = coalesce($2, fence_ms),
                    rows_behind = 0, note = $3, updated_at = now(), finished_at = now()
              WHERE id = $1",
            &[&id, &fence_ms, &note],
        )
        .await?;
    Ok(())
}
