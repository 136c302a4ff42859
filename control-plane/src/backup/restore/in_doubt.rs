//! The prepared parts a restore brings back, resolved before anything is served.
//!
//! A restore point is named while decision writes are fenced (see
//! [`crate::txn::log::DECISION_FENCE_LOCK`]), so every transaction on several shards is,
//! at the point, in one of two states: decided (its decision is in the restored
//! `txn_log`; its parts are committed or still prepared) or undecided (no part is
//! committed anywhere). The restored shards may therefore hold prepared parts: the
//! restore finishes them at once from the restored coordinator log, as a gateway's
//! recovery would (`txn::recovery`), rather than leave them holding their locks until a
//! gateway starts: `COMMIT PREPARED` where `commit` is logged; where nothing is logged it
//! logs `abort` first (so a later reader of the log agrees) and rolls back.

use std::collections::{BTreeMap, BTreeSet};

use tokio_postgres::Client;

use shard_manager::cluster::txn::gid;
use shard_manager::cluster::txn::log::{Decision, DecisionLog};
use shard_manager::config::ClusterSettings;
use shard_manager::live_map::ShardMap;
use shard_manager::routing::ShardId;

use crate::backup::error::BackupError;
use crate::backup::point::{self, describe};
use crate::backup::stanza::Target;
use crate::txn::MetaLog;

/// What the restore found prepared at the point, and did with it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct InDoubt {
    /// Parts committed: their transaction's `commit` was logged before the point.
    pub committed: usize,
    /// Parts rolled back: no decision at the point (or `abort`).
    pub rolled_back: usize,
    /// Transactions those parts belong to.
    pub transactions: usize,
}

/// One of our prepared parts on a restored primary.
struct Part {
    target: Target,
    gid: String,
    txid: String,
    shard: ShardId,
}

/// Finds every prepared part of ours on the map's active shards and resolves it.
pub async fn resolve(settings: &ClusterSettings, map: &ShardMap) -> Result<InDoubt, BackupError> {
    let mut parts = Vec::new();
    let mut clients: BTreeMap<u32, Client> = BTreeMap::new();
    for shard in map.shards.iter().filter(|s| !s.retired) {
        let target = Target {
            stanza: format!("shard{}", shard.id.0),
            address: shard.primary.clone(),
            holds_meta: false,
        };
        let client = point::connect_one(settings, &target).await?;
        let rows = client
            .query(
                "SELECT gid FROM pg_prepared_xacts \
                 WHERE database = current_database() AND gid LIKE 'sg\\_%'",
                &[],
            )
            .await
            .map_err(|e| {
                BackupError::query(describe(&target), "listing prepared transactions", e)
            })?;
        for row in rows {
            let name: String = row.get(0);
            // Only names of ours (`sg_<32 hex>_<shard>`): nothing else is quoted below.
            if let Some((txid, _)) = gid::parse(&name) {
                parts.push(Part {
                    target: target.clone(),
                    gid: name,
                    txid,
                    shard: shard.id,
                });
            }
        }
        clients.insert(shard.id.0, client);
    }
    if parts.is_empty() {
        return Ok(InDoubt::default());
    }
    let log = MetaLog::new(settings.clone());
    let decided = decisions(&log, &parts).await?;
    let mut done = InDoubt {
        transactions: decided.len(),
        ..InDoubt::default()
    };
    for part in &parts {
        let client = &clients[&part.shard.0];
        let (sql, doing) = match decided[&part.txid] {
            Decision::Commit => ("COMMIT PREPARED", "committing a prepared part"),
            Decision::Abort => ("ROLLBACK PREPARED", "rolling back a prepared part"),
        };
        client
            .batch_execute(&format!("{sql} '{}'", part.gid))
            .await
            .map_err(|e| BackupError::query(describe(&part.target), doing, e))?;
        match decided[&part.txid] {
            Decision::Commit => done.committed += 1,
            Decision::Abort => done.rolled_back += 1,
        }
    }
    Ok(done)
}

/// Each transaction's decision in the restored log; `abort` written for those without.
async fn decisions(
    log: &MetaLog,
    parts: &[Part],
) -> Result<BTreeMap<String, Decision>, BackupError> {
    let fail = |e: String| BackupError::server("the metadata database (txn_log)", e);
    let txids: Vec<String> = parts
        .iter()
        .map(|p| p.txid.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let logged = log.decisions(&txids).await.map_err(fail)?;
    let mut out = BTreeMap::new();
    for txid in txids {
        let decision = match logged.get(&txid) {
            Some(d) => *d,
            None => {
                let shards = shards_of(parts, &txid);
                log.settle(&txid, Decision::Abort, &shards)
                    .await
                    .map_err(fail)?
            }
        };
        out.insert(txid, decision);
    }
    Ok(out)
}

/// The shards holding a part of `txid`, in order.
fn shards_of(parts: &[Part], txid: &str) -> Vec<ShardId> {
    parts
        .iter()
        .filter(|p| p.txid == txid)
        .map(|p| p.shard)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(txid: &str, shard: u32) -> Part {
        Part {
            target: Target {
                stanza: format!("shard{shard}"),
                address: "127.0.0.1:1".into(),
                holds_meta: false,
            },
            gid: gid::gid(txid, ShardId(shard)),
            txid: txid.into(),
            shard: ShardId(shard),
        }
    }

    #[test]
    fn an_undecided_transaction_is_aborted_on_exactly_the_shards_holding_it() {
        let (a, b) = (gid::new_txid(), gid::new_txid());
        let parts = [part(&a, 2), part(&b, 0), part(&a, 0), part(&a, 2)];
        assert_eq!(shards_of(&parts, &a), vec![ShardId(0), ShardId(2)]);
        assert_eq!(shards_of(&parts, &b), vec![ShardId(0)]);
        assert!(shards_of(&parts, "other").is_empty());
    }
}
