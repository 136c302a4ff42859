//! A transaction a shard's primary could not take (down, read-only while it is handed
//! over, or lost with a PREPARE on the wire), with nothing of it standing (the part failed before the decision, so
//! every prepared part was rolled back): run again, whole and under a new id, once the
//! shard's primary takes writes, as a single write waits (`cluster::new_primary`): every
//! 100 ms, at once when the map names another primary, within `failover.write_wait_ms`
//! or the shard's handover (`failover.hold_ms`). A client gone meanwhile stops it.

use super::deadline::{Progress, Stage};
use super::{TxnError, TxnOp, TxnOutcome};
use crate::cluster::new_primary::Hold;
use crate::cluster::Cluster;
use crate::error::retry::Work;
use crate::error::ClusterError;
use crate::store::IdempotencyKey;

impl Cluster {
    /// `first` again on the shard's new primary, when it failed for want of one; any
    /// other answer as it is.
    pub(super) async fn transaction_on_new_primary(
        &self,
        first: Result<TxnOutcome, TxnError>,
        ops: &[TxnOp],
        idempotency: Option<&IdempotencyKey>,
        progress: &Progress,
        work: Work,
    ) -> Result<TxnOutcome, TxnError> {
        let lost = match first {
            Err(TxnError::Shard(lost)) if lost_primary(&lost) => lost,
            other => return other,
        };
        let again = self
            .until_a_primary_takes(lost.clone(), work, Hold::Batch, async || {
                // Nothing of the last attempt stands: a client gone by now is told so.
                if progress.enter(Stage::Open).is_err() {
                    return Ok(Err(TxnError::Shard(lost.clone())));
                }
                let routed = self.routed_again(ops);
                let ops = routed.as_deref().unwrap_or(ops);
                match self.transaction_once(ops, idempotency, progress).await {
                    Err(TxnError::Shard(e)) if lost_primary(&e) => Err(e),
                    other => Ok(other),
                }
            })
            .await;
        again.unwrap_or_else(|e| Err(TxnError::Shard(e)))
    }
}

/// Whether a part failed for want of its primary (before the decision: nothing of the
/// transaction stands), with nothing sent or after its PREPARE was sent.
fn lost_primary(error: &ClusterError) -> bool {
    error.primary_lost().is_some() || error.primary_lost_after_send().is_some()
}
