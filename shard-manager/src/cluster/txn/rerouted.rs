//! A transaction's retry, as the one retry policy (`crate::error::retry`) says: when a
//! shard refused a part's slot (SG001) before the decision, nothing of the transaction
//! stands (no part was prepared, or every prepared part was rolled back and `abort`
//! logged), so the map is reloaded, every operation routed again, and the whole
//! transaction tried once more under a new id. A second refusal is answered as it is.

use tracing::Instrument;

use super::deadline::{Progress, Stage};
use super::tally::{Ended, Protocol};
use super::{TxnError, TxnOp, TxnOutcome};
use crate::cluster::Cluster;
use crate::error::retry::{policy, Retry, Work};
use crate::spans;
use crate::store::IdempotencyKey;

impl Cluster {
    /// Applies every operation or none (see [`super`]). Each (table, key, id) at most
    /// once: the edge refuses repeats. With an idempotency key, the key is claimed first
    /// (the same key with another request: refused, nothing written), and a transaction
    /// applied before under it is answered as it was, not applied again.
    pub async fn transaction(
        &self,
        ops: &[TxnOp],
        idempotency: Option<&IdempotencyKey>,
    ) -> Result<TxnOutcome, TxnError> {
        self.transaction_tracked(ops, idempotency, &Progress::default())
            .instrument(spans::transaction(super::shards_of(ops)))
            .await
    }

    /// [`Cluster::transaction`], its stage kept in `progress` for a caller that may stop
    /// waiting ([`super::deadline`]).
    pub(super) async fn transaction_tracked(
        &self,
        ops: &[TxnOp],
        idempotency: Option<&IdempotencyKey>,
        progress: &Progress,
    ) -> Result<TxnOutcome, TxnError> {
        let shards = super::shards_of(ops);
        let result = self.transaction_retried(ops, idempotency, progress).await;
        self.txn_tally()
            .count(Protocol::for_shards(shards), Ended::of(&result));
        result
    }

    async fn transaction_retried(
        &self,
        ops: &[TxnOp],
        idempotency: Option<&IdempotencyKey>,
        progress: &Progress,
    ) -> Result<TxnOutcome, TxnError> {
        if let Some(idempotency) = idempotency {
            self.claim_key(idempotency).await.map_err(TxnError::Shard)?;
        }
        let work = Work::Write {
            keyed: idempotency.is_some(),
        };
        let first = self.transaction_once(ops, idempotency, progress).await;
        let Err(failed) = &first else {
            return first;
        };
        let Some(cause) = failed.cause() else {
            return first;
        };
        match policy(cause, work) {
            Retry::RerouteOnce => {}
            Retry::UntilAPrimaryTakes => {
                return self
                    .transaction_on_new_primary(first, ops, idempotency, progress, work)
                    .await
            }
            _ => return first,
        }
        let TxnError::Shard(refused) = failed else {
            return first;
        };
        let Some(told) = refused.refused_at() else {
            return first;
        };
        // Routed again only under a newer map than the one the operations were routed
        // with (the gateway's own map may have moved on while the first attempt ran).
        let routed_with = ops.iter().map(|op| op.key.map_version()).min();
        if Some(self.map().refresh(told).await) <= routed_with {
            return first;
        }
        let Some(again) = self.routed_again(ops) else {
            return first;
        };
        // Nothing of the first attempt stands: a client gone by now is told so.
        if progress.enter(Stage::Open).is_err() {
            return first;
        }
        tracing::debug!(shard = %refused.shard(), version = %self.map().version(), "transaction rerouted after a shard refused a slot");
        self.transaction_once(&again, idempotency, progress).await
    }

    /// Every operation routed with the map as it is now (None if one does not route).
    pub(super) fn routed_again(&self, ops: &[TxnOp]) -> Option<Vec<TxnOp>> {
        let router = self.router();
        ops.iter()
            .map(|op| {
                let key = router.route(op.key.key().clone()).ok()?;
                Some(TxnOp { key, ..op.clone() })
            })
            .collect()
    }
}
