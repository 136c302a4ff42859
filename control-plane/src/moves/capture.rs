//! The source's side of a move: logging the slots' changes (`shardgate_moving` and the
//! `records_capture` trigger of the `slot_moves` migration), counting what is logged,
//! and clearing it all away.

use super::shard_conn::ShardConn;
use super::MoveError;

/// Starts logging every change of `slots` for move `id`. Takes the slots' ownership
/// locks exclusively first, so every write in flight on them has committed (and is in
/// the copy that follows) and every later one is logged.
pub async fn start(source: &ShardConn, id: i64, slots: &[i32]) -> Result<(), MoveError> {
    let fail = source.fail("starting the change log");
    let mut client_tx = source.client.simple_query("BEGIN").await.map_err(&fail)?;
    client_tx.clear();
    let result = async {
        source
            .client
            .execute(
                "SELECT pg_advisory_xact_lock(21319, s) FROM (SELECT unnest($1::int[]) AS s ORDER BY 1) AS ordered",
                &[&slots],
            )
            .await?;
        let taken: i64 = source
            .client
            .query_one(
                "SELECT count(*) FROM shardgate_moving WHERE slot = ANY($1) AND move <> $2",
                &[&slots, &id],
            )
            .await?
            .get(0);
        if taken > 0 {
            return Ok(Some(taken));
        }
        source
            .client
            .execute(
                "INSERT INTO shardgate_moving (slot, move) SELECT unnest($1::int[]), $2
                 ON CONFLICT (slot) DO NOTHING",
                &[&slots, &id],
            )
            .await?;
        Ok(None)
    }
    .await;
    match result {
        Ok(None) => {
            source.client.simple_query("COMMIT").await.map_err(&fail)?;
            Ok(())
        }
        Ok(Some(taken)) => {
            let _ = source.client.simple_query("ROLLBACK").await;
            Err(MoveError::Refused(format!(
                "{} ({}) is already moving {taken} of these slots for another move",
                source.shard, source.server
            )))
        }
        Err(e) => {
            let _ = source.client.simple_query("ROLLBACK").await;
            Err(fail(e))
        }
    }
}

/// How many changes of move `id` wait to be replayed.
pub async fn behind(source: &ShardConn, id: i64) -> Result<i64, MoveError> {
    let row = source
        .client
        .query_one(
            "SELECT count(*) FROM shardgate_move_log WHERE move = $1",
            &[&id],
        )
        .await
        .map_err(source.fail("counting logged changes"))?;
    Ok(row.get(0))
}

/// Stops logging for move `id` and forgets what it logged.
pub async fn stop(source: &ShardConn, id: i64) -> Result<(), MoveError> {
    source
        .client
        .batch_execute(&format!(
            "DELETE FROM shardgate_moving WHERE move = {id};
             DELETE FROM shardgate_move_log WHERE move = {id};"
        ))
        .await
        .map_err(source.fail("stopping the change log"))
}

/// Rows of `slots` on this primary.
pub async fn count(conn: &ShardConn, slots: &[i32]) -> Result<i64, MoveError> {
    let row = conn
        .client
        .query_one(
            "SELECT count(*) FROM records WHERE slot = ANY($1)",
            &[&slots],
        )
        .await
        .map_err(conn.fail("counting rows"))?;
    Ok(row.get(0))
}

/// Deletes the rows of `slots` on this primary, a slot at a time (short transactions),
/// and their idempotency entries.
pub async fn delete_rows(conn: &ShardConn, slots: &[i32]) -> Result<u64, MoveError> {
    super::idempotency_entries::delete(conn, slots).await?;
    let mut deleted = 0;
    for slot in slots {
        deleted += conn
            .client
            .execute("DELETE FROM records WHERE slot = $1", &[slot])
            .await
            .map_err(conn.fail("deleting moved rows"))?;
    }
    Ok(deleted)
}
