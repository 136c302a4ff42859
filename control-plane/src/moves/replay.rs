//! A move's change log replayed on the target, as the jobs' replay protocol has it
//! ([`crate::jobs::replay`]): a batch of log entries is read, the current rows of their
//! keys are streamed from the source (binary COPY), and in one target transaction the
//! keys are deleted and those rows inserted. Only then are the entries deleted on the
//! source.

use super::shard_conn::{pipe, ShardConn, COLUMNS};
use super::{capture, MoveError};
use crate::jobs::replay::ChangeLog;

/// Move `id`'s log on its source, replayed on its target. Replays run inside the
/// source's transaction when the caller opened one (the fence).
pub struct SlotLog<'a> {
    pub source: &'a ShardConn,
    pub target: &'a ShardConn,
    pub id: i64,
}

impl ChangeLog for SlotLog<'_> {
    type Error = MoveError;

    async fn replay(&mut self, limit: i64) -> Result<u64, MoveError> {
        batch(self.source, self.target, self.id, limit).await
    }

    async fn behind(&mut self) -> Result<i64, MoveError> {
        capture::behind(self.source, self.id).await
    }
}

async fn batch(
    source: &ShardConn,
    target: &ShardConn,
    id: i64,
    limit: i64,
) -> Result<u64, MoveError> {
    let rows = source
        .client
        .query(
            "SELECT seq, table_name, shard_key, id FROM shardgate_move_log
              WHERE move = $1 ORDER BY seq LIMIT $2",
            &[&id, &limit],
        )
        .await
        .map_err(source.fail("reading the change log"))?;
    if rows.is_empty() {
        return Ok(0);
    }
    let seqs: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    let tables: Vec<String> = rows.iter().map(|r| r.get(1)).collect();
    let keys: Vec<String> = rows.iter().map(|r| r.get(2)).collect();
    let ids: Vec<String> = rows.iter().map(|r| r.get(3)).collect();
    let seq_list: Vec<String> = seqs.iter().map(i64::to_string).collect();
    let seq_list = seq_list.join(",");

    let fail = target.fail("replaying changes");
    target.client.simple_query("BEGIN").await.map_err(&fail)?;
    let applied = async {
        target
            .client
            .execute(
                "DELETE FROM records r
                  USING unnest($1::text[], $2::text[], $3::text[]) AS k(t, s, i)
                  WHERE r.table_name = k.t AND r.shard_key = k.s AND r.id = k.i",
                &[&tables, &keys, &ids],
            )
            .await
            .map_err(&fail)?;
        let select = format!(
            "SELECT {COLUMNS} FROM records
              WHERE (table_name, shard_key, id) IN
                    (SELECT table_name, shard_key, id FROM shardgate_move_log
                      WHERE seq IN ({seq_list}))"
        );
        pipe(source, target, &select).await
    }
    .await;
    match applied {
        Ok(_) => target.client.simple_query("COMMIT").await.map_err(&fail)?,
        Err(e) => {
            let _ = target.client.simple_query("ROLLBACK").await;
            return Err(e);
        }
    };
    super::fault::fault("replay-before-forget");
    source
        .client
        .execute(
            "DELETE FROM shardgate_move_log WHERE seq = ANY($1)",
            &[&seqs],
        )
        .await
        .map_err(source.fail("forgetting replayed changes"))?;
    Ok(seqs.len() as u64)
}
