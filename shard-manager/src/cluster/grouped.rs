//! A shard's single writes and deletes as they join its primary's group commit
//! (`database.batch_writes`, see `servers`' `write_batch`): each encoded here, by its
//! own request, and its rows read back here, into the same answers a write committed
//! alone gives.

use super::shard::Shard;
use crate::servers::WriteFailure;
use crate::store::{CommitPosition, IdempotencyKey, IdempotentOutcome, NewRecord, Upserted};
use crate::wire::write::{delete, idempotent, upsert};
use crate::wire::{Framed, WireError};

/// A single upsert's answer: applied now, or the answer kept under its key.
type UpsertAnswer = IdempotentOutcome<Upserted, (String, Upserted)>;
/// A delete's answer: the deletion's version (None: no record), or whether the earlier
/// request with its key deleted one.
type DeleteAnswer = IdempotentOutcome<Option<i64>, bool>;

impl Shard {
    /// `row` upserted in the primary's next group; with an `idempotency` key, under it.
    pub(super) async fn write_in_group(
        &self,
        row: &NewRecord<'_>,
        idempotency: Option<&IdempotencyKey>,
    ) -> Result<(UpsertAnswer, CommitPosition), WriteFailure> {
        let framed = match idempotency {
            None => upsert::upsert_framed(row),
            Some(k) => idempotent::upsert_idempotent_framed(row, k),
        };
        let framed = self.framed(framed)?;
        self.primary
            .write_in_group(framed, |rows| match idempotency {
                None => upsert::upsert_in_group(rows).map(IdempotentOutcome::Applied),
                Some(k) => idempotent::upsert_idempotent_in_group(rows, k),
            })
            .await
    }

    /// The record `(table, key, id)` at `slot` deleted in the primary's next group;
    /// with an `idempotency` key, under it.
    pub(super) async fn delete_in_group(
        &self,
        (table, key, id): (&str, &str, &str),
        slot: i32,
        idempotency: Option<&IdempotencyKey>,
    ) -> Result<(DeleteAnswer, CommitPosition), WriteFailure> {
        let framed = match idempotency {
            None => delete::delete_framed(table, (key, slot), id),
            Some(k) => idempotent::delete_idempotent_framed(table, (key, slot), id, k),
        };
        let framed = self.framed(framed)?;
        self.primary
            .write_in_group(framed, |rows| match idempotency {
                None => delete::delete_in_group(rows).map(IdempotentOutcome::Applied),
                Some(k) => idempotent::delete_idempotent_in_group(rows, k),
            })
            .await
    }

    /// A write that could not be encoded was never sent.
    fn framed(&self, framed: Result<Framed, WireError>) -> Result<Framed, WriteFailure> {
        framed.map_err(|e| WriteFailure {
            error: self.primary.failure(e),
            maybe_committed: false,
        })
    }
}
