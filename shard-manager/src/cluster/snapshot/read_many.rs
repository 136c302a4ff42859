//! Point reads on their shards, all at one cut ([`Cluster::read_many_at_cut`]), a wave
//! of records at a time, counted into the answer's read budget as they come.

use std::collections::BTreeMap;
use std::time::Instant;

use futures_util::future::join_all;

use super::cut::Cut;
use super::error::SnapshotError;
use crate::cluster::Cluster;
use crate::routing::{RoutedKey, ShardId};
use crate::store::answer_budget::WAVE;
use crate::store::{record_bytes, AnswerBudget, Record, RecordId, TableName};
use crate::wire::read::PointRead;

/// One read of [`Cluster::read_many_at_cut`].
#[derive(Debug, Clone)]
pub struct CutRead {
    pub table: TableName,
    pub key: RoutedKey,
    pub id: RecordId,
}

impl Cluster {
    /// Point reads on their shards, all at one cut; answers in request order, each
    /// with its shard (None: no such record at the cut). Each shard reads [`WAVE`]
    /// records at a time, counted into `budget` as they come: past it the read stops
    /// ([`SnapshotError::OverBudget`]) holding no more than the budget and a wave.
    pub async fn read_many_at_cut(
        &self,
        reads: &[CutRead],
        budget: &mut AnswerBudget,
    ) -> Result<(Vec<(ShardId, Option<Record>)>, Cut), SnapshotError> {
        let mut by_shard: BTreeMap<ShardId, Vec<usize>> = BTreeMap::new();
        for (i, read) in reads.iter().enumerate() {
            by_shard.entry(read.key.shard()).or_default().push(i);
        }
        let ids: Vec<ShardId> = by_shard.keys().copied().collect();
        let mut open = self.open_cut(&ids).await?;
        let reading = Instant::now();
        let mut out: Vec<(ShardId, Option<Record>)> =
            reads.iter().map(|r| (r.key.shard(), None)).collect();
        let rounds = by_shard.values().map(|v| v.len().div_ceil(WAVE)).max();
        for round in 0..rounds.unwrap_or(0) {
            let answers = join_all(open.sessions.iter_mut().map(|(id, session)| {
                let indexes: Vec<usize> = by_shard
                    .get(id)
                    .map(|all| all.iter().skip(round * WAVE).take(WAVE).copied().collect())
                    .unwrap_or_default();
                let asks: Vec<PointRead> = indexes
                    .iter()
                    .map(|i| {
                        let r = &reads[*i];
                        PointRead {
                            table: r.table.as_str().to_owned(),
                            key: r.key.as_str().to_owned(),
                            slot: r.key.slot().0 as i32,
                            id: r.id.as_str().to_owned(),
                        }
                    })
                    .collect();
                async move {
                    match asks.is_empty() {
                        true => (indexes, Ok(Vec::new())),
                        false => (indexes, session.find(asks).await),
                    }
                }
            }))
            .await;
            for (indexes, found) in answers {
                let found = found.map_err(SnapshotError::Shard)?;
                for (i, record) in indexes.into_iter().zip(found) {
                    if let Some(record) = &record {
                        budget.admit(i, record_bytes(record))?;
                    }
                    out[i].1 = record;
                }
            }
        }
        open.read_done(reading.elapsed());
        Ok((out, open.cut))
    }
}
