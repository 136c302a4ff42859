//! The protocol (see the module doc of [`super`]): the parts run in parallel, each on
//! its shard's primary, never sent twice (`Server::run_write`).

use std::collections::BTreeMap;
use std::time::Instant;

use futures_util::future::join_all;
use tracing::Instrument;

use super::deadline::{Progress, Stage};
use super::gid::{gid, new_txid};
use super::log::Decision;
use super::{OpResult, TxnError, TxnOp, TxnOutcome};
use crate::cache::CacheUsage;
use crate::cluster::new_primary::Hold;
use crate::cluster::{Cluster, Shard};
use crate::error::retry::Work;
use crate::error::ClusterError;
use crate::routing::ShardId;
use crate::spans;
use crate::store::{IdempotencyKey, NewRecord, RawJson};
use crate::wire::write::txn::{self as wire, OpDone, PartEnd, PartOp, PartOutcome};

/// The empty document a delete's row carries (never written).
fn nothing() -> &'static RawJson {
    static EMPTY: std::sync::OnceLock<RawJson> = std::sync::OnceLock::new();
    EMPTY.get_or_init(|| RawJson::from_value(&serde_json::json!({})))
}

/// One shard's part: its operations in request order.
pub(super) struct Part<'a> {
    pub(super) shard: std::sync::Arc<Shard>,
    pub(super) ops: Vec<&'a TxnOp>,
}

impl Part<'_> {
    fn wire_ops(&self) -> Vec<PartOp<'_>> {
        self.ops
            .iter()
            .map(|op| PartOp {
                rec: NewRecord {
                    table_name: op.table.as_str(),
                    shard_key: op.key.as_str(),
                    id: op.id.as_str(),
                    slot: op.key.slot().0 as i32,
                    data: op.data.as_ref().map_or(nothing(), |d| d.as_raw()),
                },
                delete: op.data.is_none(),
                expected: op.if_version,
                index: op.index as i32,
            })
            .collect()
    }

    pub(super) fn idents(&self) -> Vec<(&str, &str, &str)> {
        self.ops
            .iter()
            .map(|op| (op.table.as_str(), op.key.as_str(), op.id.as_str()))
            .collect()
    }
}

impl Cluster {
    /// One attempt of [`Cluster::transaction`] (`super::rerouted` retries it once when a
    /// shard refused a slot before the decision).
    pub(super) async fn transaction_once(
        &self,
        ops: &[TxnOp],
        idempotency: Option<&IdempotencyKey>,
        progress: &Progress,
    ) -> Result<TxnOutcome, TxnError> {
        let mut by_shard: BTreeMap<ShardId, Vec<&TxnOp>> = BTreeMap::new();
        for op in ops {
            by_shard.entry(op.key.shard()).or_default().push(op);
        }
        let mut parts = Vec::with_capacity(by_shard.len());
        for (id, ops) in by_shard {
            let shard = self.shard(id).map_err(TxnError::Shard)?;
            shard.ready_for_writes().map_err(TxnError::Shard)?;
            parts.push(Part { shard, ops });
        }
        let mut outcome = match parts.len() {
            1 => self.one_shard(&parts[0], idempotency, progress).await?,
            _ => self.two_phase(&parts, idempotency, progress).await?,
        };
        outcome.results.sort_by_key(|r| r.index);
        Ok(outcome)
    }

    /// One round: the part commits at once.
    async fn one_shard(
        &self,
        part: &Part<'_>,
        idempotency: Option<&IdempotencyKey>,
        progress: &Progress,
    ) -> Result<TxnOutcome, TxnError> {
        let shard = &part.shard;
        let wire_ops = part.wire_ops();
        progress
            .enter(Stage::Sent)
            .map_err(|_| abandoned(shard.id))?;
        let sent = Instant::now();
        let ran = shard
            .primary
            .run_write_as("transaction", async |conn| {
                wire::run_part(conn, &wire_ops, PartEnd::Commit, idempotency).await
            })
            .await;
        let mut cache = CacheUsage::default();
        let (done, position) = match ran {
            Ok(PartOutcome::Done {
                ops,
                position: Some(position),
            }) => (ops, position),
            Ok(PartOutcome::Done { position: None, .. }) => unreachable_part(shard.id)?,
            Ok(PartOutcome::ConditionFailed { index, current }) => {
                return Err(condition(part, index, current))
            }
            Ok(PartOutcome::Replayed(entries)) => {
                return self.replayed(&[part], vec![entries]).await
            }
            Err(failure) => {
                let err = self
                    .failed_write(shard, failure, &part.idents(), &mut cache)
                    .await;
                return Err(TxnError::Shard(err));
            }
        };
        crate::fault::GATEWAY.reach("after-commit");
        let token = self.token(shard, &position.wal);
        if let Some(c) = self.cache() {
            let commit = self.committed(shard, &position, token.lsn, sent);
            // A transaction's answer does not keep its records' versions.
            let replayed: Vec<_> = part.idents().into_iter().map(|i| (i, None)).collect();
            self.forget_replayed(c, shard, &replayed, commit, &mut cache)
                .await
                .map_err(TxnError::Shard)?;
        }
        Ok(TxnOutcome {
            txid: None,
            results: results(part, &done),
            tokens: vec![token],
            cache,
            replayed: false,
        })
    }

    /// Prepare every part, log the decision, commit every part.
    async fn two_phase(
        &self,
        parts: &[Part<'_>],
        idempotency: Option<&IdempotencyKey>,
        progress: &Progress,
    ) -> Result<TxnOutcome, TxnError> {
        let first = parts[0].shard.id;
        let Some((log, bound)) = self.decision_log() else {
            return Err(TxnError::LogUnavailable {
                reason: "this gateway has no metadata database".into(),
                shard: first,
            });
        };
        let bound_secs = (bound.as_millis() as u64).div_ceil(1000);
        let txid = new_txid();
        spans::transaction_id(&txid);
        let shards: Vec<ShardId> = parts.iter().map(|p| p.shard.id).collect();
        let sent = Instant::now();
        let lock_timeout_ms = self.settings().database.txn_lock_timeout_ms;
        // From here on the coordinator finishes or rolls back by itself, whoever waits.
        progress
            .enter(Stage::Preparing { txid: txid.clone() })
            .map_err(|_| abandoned(first))?;
        let prepared = join_all(parts.iter().map(|part| {
            let name = gid(&txid, part.shard.id);
            async move {
                let wire_ops = part.wire_ops();
                let end = PartEnd::Prepare {
                    gid: &name,
                    lock_timeout_ms,
                };
                part.shard
                    .primary
                    .run_write_as("PREPARE TRANSACTION", async |conn| {
                        wire::run_part(conn, &wire_ops, end, idempotency).await
                    })
                    .await
            }
        }))
        .await;
        crate::fault::GATEWAY.reach("after-prepare");
        crate::fault::pause("after-prepare").await;
        let mut done = Vec::with_capacity(parts.len());
        let mut refusal: Option<TxnError> = None;
        let mut replays = Vec::new();
        for (part, ran) in parts.iter().zip(prepared) {
            match ran {
                Ok(PartOutcome::Done { ops, .. }) => done.push(ops),
                Ok(PartOutcome::Replayed(entries)) => {
                    done.push(Vec::new());
                    replays.push(entries);
                }
                Ok(PartOutcome::ConditionFailed { index, current }) => {
                    done.push(Vec::new());
                    refusal.get_or_insert(condition(part, index, current));
                }
                Err(failure) => {
                    done.push(Vec::new());
                    refusal.get_or_insert(TxnError::Shard(failure.into_error()));
                }
            }
        }
        if refusal.is_none() && replays.len() == parts.len() {
            // Applied before under the key: nothing was prepared this time.
            let all: Vec<&Part<'_>> = parts.iter().collect();
            return self.replayed(&all, replays).await;
        }
        if refusal.is_none() && !replays.is_empty() {
            refusal = Some(TxnError::PartlyReplayed { shard: first });
        }
        if let Some(refusal) = refusal {
            self.abort(&txid, parts, &shards).await;
            return Err(refusal);
        }
        let settled = log
            .settle(&txid, Decision::Commit, &shards)
            .instrument(spans::decision(&txid, "commit"))
            .await;
        let decision = match settled {
            Ok(d) => d,
            Err(reason) => {
                tracing::warn!(%txid, %reason, "transaction decision not confirmed; recovery resolves it");
                return Err(TxnError::InDoubt {
                    txid,
                    reason,
                    bound_secs,
                    shard: first,
                });
            }
        };
        if decision == Decision::Abort {
            // A recovery found the parts too old and decided first.
            self.abort(&txid, parts, &shards).await;
            return Err(TxnError::InDoubt {
                txid,
                reason: "a recovery rolled it back before its decision was logged".into(),
                bound_secs,
                shard: first,
            });
        }
        let _ = progress.enter(Stage::Committing {
            txid: txid.clone(),
            waiting: None,
        });
        crate::fault::GATEWAY.reach("after-decision");
        crate::fault::pause("after-decision").await;
        // A decided commit is safe to send again: a part already committed is no longer
        // prepared. A part another session committed first (the recovery, or a cut that
        // finished it by the log: a snapshot read, a change stream) is committed: its
        // prepared entry is removed only once its commit is durable, so the primary's
        // position read then is a token at least as new as that commit. So for a transaction sent with a key, one whose primary
        // was lost waits for the shard's new primary (its standby holds the prepared part:
        // synchronous replication) as a keyed single write does, and commits there.
        // Without a key the client is answered at once (`Committing`) and the recovery
        // finishes the part, as before.
        let keyed = idempotency.is_some();
        let commit = |part: &Part<'_>| {
            let name = gid(&txid, part.shard.id);
            let id = part.shard.id;
            async move {
                let once =
                    async || {
                        self.shard(id)?
                            .primary
                            .run_write_as("COMMIT PREPARED", async |conn| {
                                match wire::commit_prepared(conn, &name).await? {
                                    Some(position) => Ok(position),
                                    None => wire::position(conn).await,
                                }
                            })
                            .await
                            .map_err(|failure| failure.into_error())
                    };
                match once().await {
                    Err(e) if keyed => {
                        progress.committing_waits_on(id);
                        let work = Work::Write { keyed: true };
                        self.until_a_primary_takes(e, work, Hold::Single, once)
                            .await
                    }
                    done => done,
                }
            }
        };
        let committed = match crate::fault::GATEWAY.armed("between-commits") {
            // A test's kill point: the first part committed, the others not yet sent.
            true => {
                let mut all = vec![commit(&parts[0]).await];
                crate::fault::GATEWAY.reach("between-commits");
                all.extend(join_all(parts[1..].iter().map(commit)).await);
                all
            }
            false => join_all(parts.iter().map(commit)).await,
        };
        let mut outcome = TxnOutcome {
            txid: Some(txid.clone()),
            ..TxnOutcome::default()
        };
        let mut unconfirmed = None;
        for ((part, ran), ops) in parts.iter().zip(committed).zip(&done) {
            let shard = &part.shard;
            match ran {
                Ok(position) => {
                    let token = self.token(shard, &position.wal);
                    if let Some(c) = self.cache() {
                        let commit = self.committed(shard, &position, token.lsn, sent);
                        // Each record with the version its operation gave it.
                        let records: Vec<_> = part
                            .idents()
                            .into_iter()
                            .zip(ops.iter().map(|d| d.version))
                            .collect();
                        let _ = c
                            .forget_committed(commit, &records, &mut outcome.cache)
                            .await;
                    }
                    outcome.tokens.push(token);
                }
                Err(failure) => {
                    if let Some(c) = self.cache() {
                        let _ = c.forget(shard.id, &part.idents(), &mut outcome.cache).await;
                    }
                    unconfirmed.get_or_insert((shard.id, failure.to_string()));
                }
            }
            outcome.results.extend(results(part, ops));
        }
        if let Some((shard, reason)) = unconfirmed {
            return Err(TxnError::Committing {
                txid,
                shard,
                reason,
                bound_secs,
            });
        }
        if let Err(e) = log.finished(&txid).await {
            tracing::debug!(%txid, error = %e, "transaction not marked finished in the log");
        }
        Ok(outcome)
    }

    /// Rolls back every part that may be prepared; logs `abort` first, so a late
    /// reader of the log never commits what is rolled back here.
    async fn abort(&self, txid: &str, parts: &[Part<'_>], shards: &[ShardId]) {
        if let Some((log, _)) = self.decision_log() {
            let settled = log
                .settle(txid, Decision::Abort, shards)
                .instrument(spans::decision(txid, "abort"))
                .await;
            if let Err(e) = settled {
                tracing::warn!(%txid, error = %e, "abort not logged; recovery rolls the parts back");
            }
        }
        join_all(parts.iter().map(|part| {
            let name = gid(txid, part.shard.id);
            async move {
                let rolled = part
                    .shard
                    .primary
                    .run_write_as("ROLLBACK PREPARED", async |conn| {
                        wire::rollback_prepared(conn, &name).await
                    })
                    .await;
                if let Err(e) = rolled {
                    tracing::warn!(shard = %part.shard.id, gid = %name, error = %e.error, "prepared part not rolled back; recovery will");
                }
            }
        }))
        .await;
        if let Some((log, _)) = self.decision_log() {
            let _ = log.finished(txid).await;
        }
    }
}

fn results(part: &Part<'_>, done: &[OpDone]) -> Vec<OpResult> {
    part.ops
        .iter()
        .zip(done)
        .map(|(op, d)| OpResult {
            index: op.index,
            shard: part.shard.id,
            version: d.version,
            created: d.created,
        })
        .collect()
}

/// The failed condition's operation, named as the request sent it.
fn condition(part: &Part<'_>, index: usize, current: i64) -> TxnError {
    let op = part.ops.iter().find(|op| op.index == index);
    TxnError::ConditionFailed {
        index,
        table: op.map(|o| o.table.as_str().to_owned()).unwrap_or_default(),
        shard_key: op.map(|o| o.key.as_str().to_owned()).unwrap_or_default(),
        id: op.map(|o| o.id.as_str().to_owned()).unwrap_or_default(),
        current,
        expected: op.and_then(|o| o.if_version).unwrap_or_default(),
        shard: part.shard.id,
    }
}

/// The client stopped waiting before anything was sent: nothing is (the client is told
/// by [`super::deadline`], not by this error).
fn abandoned(shard: ShardId) -> TxnError {
    TxnError::Shard(ClusterError::Timeout {
        shard,
        role: crate::routing::Role::Primary,
        server: String::new(),
        after_ms: 0,
    })
}

/// A committed part always reads its position; never otherwise.
fn unreachable_part<T>(shard: ShardId) -> Result<T, TxnError> {
    Err(TxnError::Shard(ClusterError::Unavailable {
        shard,
        role: crate::routing::Role::Primary,
        server: String::new(),
        reason: "a committed part came back without its position".into(),
        maybe_committed: true,
    }))
}
