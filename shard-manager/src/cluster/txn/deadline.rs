//! A transaction's deadline, kept apart from the coordinator's own work.
//!
//! The client waits for an answer at most its request's deadline. The coordinator runs
//! in a task of its own: once a part's PREPARE has been sent, no client timeout stops
//! it half way; it finishes (every part committed) or rolls back on its own, each step
//! bounded by the database settings (see [`steps_bound`]). When the client's deadline
//! passes first, the answer says where the transaction stood:
//! - nothing sent yet: the coordinator is told to send nothing, and the client gets a
//!   timeout naming the shard, nothing written;
//! - a one-shard round sent (it commits or not, at once): a timeout naming the shard;
//!   the round may have committed, and a retry with the idempotency key is exact;
//! - parts prepared, no decision yet: `InDoubt`, resolved all or nothing within the
//!   coordinator's bound;
//! - the decision to commit logged: `Committing`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::Instrument;

use super::{TxnError, TxnOp, TxnOutcome};
use crate::cluster::Cluster;
use crate::error::ClusterError;
use crate::routing::{Role, ShardId};
use crate::spans;
use crate::store::IdempotencyKey;

/// Where a transaction stands, as the coordinator moves it on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// Nothing sent to a shard that could write (the key's claim may be under way).
    Open,
    /// A one-shard round (`BEGIN` … `COMMIT`) sent.
    Sent,
    /// PREPARE sent to the parts of transaction `txid`; no decision yet.
    Preparing { txid: String },
    /// The decision to commit is logged; the parts are being committed. `waiting`: a
    /// shard whose part waits for a new primary to commit it on.
    Committing {
        txid: String,
        waiting: Option<ShardId>,
    },
    /// The client stopped waiting before anything was sent: send nothing.
    Abandoned,
}

/// The coordinator's stage, shared with whoever waits for it.
#[derive(Debug)]
pub struct Progress(Mutex<Stage>);

impl Default for Progress {
    fn default() -> Self {
        Self(Mutex::new(Stage::Open))
    }
}

/// The client stopped waiting before anything was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abandoned;

impl Progress {
    fn lock(&self) -> std::sync::MutexGuard<'_, Stage> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Moves on to `stage` before its statements are sent: refused once the client
    /// stopped waiting, so nothing is sent for a client that is gone.
    pub fn enter(&self, stage: Stage) -> Result<(), Abandoned> {
        let mut now = self.lock();
        if *now == Stage::Abandoned {
            return Err(Abandoned);
        }
        *now = stage;
        Ok(())
    }

    /// The client stops waiting: the stage it stopped at (`Open` becomes `Abandoned`,
    /// so nothing is sent after this).
    pub fn abandon(&self) -> Stage {
        let mut now = self.lock();
        let was = now.clone();
        if was == Stage::Open {
            *now = Stage::Abandoned;
        }
        was
    }

    /// While committing: `shard`'s part waits for a new primary (the shard a client
    /// that stops waiting is told of).
    pub fn committing_waits_on(&self, shard: ShardId) {
        if let Stage::Committing { waiting, .. } = &mut *self.lock() {
            waiting.get_or_insert(shard);
        }
    }

    /// The stage now.
    pub fn stage(&self) -> Stage {
        self.lock().clone()
    }
}

/// The longest the coordinator works once PREPARE is sent, from the database settings:
/// the prepare (a free connection, then a lock wait and the statement), the decision in
/// the coordinator log, and the commits (a free connection and the statement). A part
/// still prepared after this is the recovery's (`server.txn_in_doubt_ms`).
pub fn steps_bound(db: &crate::config::DatabaseSettings, log_call: Duration) -> Duration {
    let statement = db.statement_timeout() + db.pool_wait_timeout();
    statement + log_call + statement
}

impl Cluster {
    /// [`Cluster::transaction`] in a task of its own; the caller waits at most `wait`
    /// and is then told where the transaction stood (see the module doc), while the
    /// coordinator goes on to commit or roll back by itself. The coordinator is a task
    /// of the caller's thread, so this runs inside a `LocalSet` (an actix-web worker):
    /// the wire client's futures stay on the thread whose pool they use.
    pub async fn transaction_within(
        self: &Arc<Self>,
        ops: Vec<TxnOp>,
        idempotency: Option<IdempotencyKey>,
        wait: Duration,
    ) -> Result<TxnOutcome, TxnError> {
        let first = ops.first().map(|op| op.key.shard()).unwrap_or(ShardId(0));
        let progress = Arc::new(Progress::default());
        let cluster = Arc::clone(self);
        let shared = Arc::clone(&progress);
        // The transaction's span is made here, on the request's task: the exporter puts
        // a new span under the request's span only where that span was entered, which
        // the task is not. The task carries it beneath the current span (the request's
        // span for its log lines, which the exporter never sees), so that its spans are
        // the request's, even those it finishes after the request was answered, and its
        // log lines carry the request's fields; an unsampled request's mark goes with it
        // (`spans::carry`), so the task makes no span either.
        let span = spans::transaction(super::shards_of(&ops));
        let mut task = tokio::task::spawn_local(spans::carry(
            async move {
                cluster
                    .transaction_tracked(&ops, idempotency.as_ref(), &shared)
                    .await
            }
            .instrument(span)
            .in_current_span(),
        ));
        match tokio::time::timeout(wait, &mut task).await {
            Ok(Ok(result)) => result,
            Ok(Err(joined)) => Err(TxnError::Shard(ClusterError::Unavailable {
                shard: first,
                role: Role::Primary,
                server: String::new(),
                reason: format!("the transaction's coordinator stopped: {joined}"),
                maybe_committed: true,
            })),
            Err(_) => Err(self.stopped_waiting(progress.abandon(), first, wait)),
        }
    }

    /// What a client that stopped waiting at `stage` is told.
    fn stopped_waiting(&self, stage: Stage, first: ShardId, wait: Duration) -> TxnError {
        let after_ms = wait.as_millis() as u64;
        let bound_secs = self.coordinator_bound().as_millis().div_ceil(1000) as u64;
        match stage {
            Stage::Open | Stage::Abandoned | Stage::Sent => {
                TxnError::Shard(ClusterError::Timeout {
                    shard: first,
                    role: Role::Primary,
                    server: String::new(),
                    after_ms,
                })
            }
            Stage::Preparing { txid } => TxnError::InDoubt {
                txid,
                reason: format!(
                    "its parts were not all prepared within the request's {after_ms} ms"
                ),
                bound_secs,
                shard: first,
            },
            Stage::Committing { txid, waiting } => TxnError::Committing {
                txid,
                shard: waiting.unwrap_or(first),
                reason: format!(
                    "the commits did not all return within the request's {after_ms} ms"
                ),
                bound_secs,
            },
        }
    }

    /// How long after PREPARE the coordinator itself settles a transaction.
    pub fn coordinator_bound(&self) -> Duration {
        steps_bound(&self.settings().database, super::log::CALL_BOUND)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_that_stops_waiting_before_anything_is_sent_stops_the_sending() {
        let p = Progress::default();
        assert_eq!(p.abandon(), Stage::Open);
        assert_eq!(p.stage(), Stage::Abandoned);
        assert_eq!(p.enter(Stage::Sent), Err(Abandoned));
        assert_eq!(
            p.enter(Stage::Preparing { txid: "t".into() }),
            Err(Abandoned)
        );
    }

    #[test]
    fn once_prepare_is_sent_the_coordinator_goes_on() {
        let p = Progress::default();
        p.enter(Stage::Preparing { txid: "t".into() }).unwrap();
        assert_eq!(p.abandon(), Stage::Preparing { txid: "t".into() });
        // Abandoning changed nothing: the coordinator moves on to its decision.
        let committing = Stage::Committing {
            txid: "t".into(),
            waiting: None,
        };
        p.enter(committing.clone()).unwrap();
        p.committing_waits_on(ShardId(2));
        let waiting = Stage::Committing {
            txid: "t".into(),
            waiting: Some(ShardId(2)),
        };
        assert_eq!(p.abandon(), waiting);
    }
}
