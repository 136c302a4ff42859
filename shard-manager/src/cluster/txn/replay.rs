//! A transaction sent again with its idempotency key after it was applied: every part
//! found the key's entries for its records (SG006) and was rolled back. The answer is
//! the first one's, rebuilt from the entries (each record's version, created, deleted),
//! with a token per shard read from its primary now (at least as new as the commit).

use futures_util::future::join_all;

use super::coordinator::Part;
use super::{OpResult, TxnError, TxnOutcome};
use crate::cluster::Cluster;
use crate::wire::write::txn::{self as wire, Replayed};

impl Cluster {
    /// The earlier answer from each part's entries (`entries[i]` is `parts[i]`'s).
    pub(super) async fn replayed(
        &self,
        parts: &[&Part<'_>],
        entries: Vec<Vec<Replayed>>,
    ) -> Result<TxnOutcome, TxnError> {
        let mut outcome = TxnOutcome {
            replayed: true,
            ..TxnOutcome::default()
        };
        for (part, kept) in parts.iter().zip(&entries) {
            let results = answers(part, kept).ok_or(TxnError::PartlyReplayed {
                shard: part.shard.id,
            })?;
            outcome.results.extend(results);
        }
        let positions = join_all(parts.iter().map(|part| async move {
            part.shard
                .primary
                .run_as("position", async |conn| wire::position(conn).await)
                .await
        }))
        .await;
        for (part, read) in parts.iter().zip(positions) {
            let position = read.map_err(TxnError::Shard)?;
            outcome.tokens.push(self.token(&part.shard, &position.wal));
            if let Some(c) = self.cache() {
                let _ = c
                    .forget(part.shard.id, &part.idents(), &mut outcome.cache)
                    .await;
            }
        }
        Ok(outcome)
    }
}

/// Each operation's result from its record's entry; None when one has no entry (the
/// entries expired, or the key was used for another transaction on this shard).
fn answers(part: &Part<'_>, kept: &[Replayed]) -> Option<Vec<OpResult>> {
    part.ops
        .iter()
        .map(|op| {
            let entry = kept.iter().find(|e| {
                e.table == op.table.as_str()
                    && e.shard_key == op.key.as_str()
                    && e.id == op.id.as_str()
            })?;
            Some(OpResult {
                index: op.index,
                shard: part.shard.id,
                version: entry.answer.version,
                created: entry.answer.created,
            })
        })
        .collect()
}
