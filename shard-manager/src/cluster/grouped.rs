//! A shard's single writes and deletes as they join its primary's group commit
//! (`database.batch_writes`, see `servers`' `write_batch`): each encoded here, by its
//! own request, and its rows read back here, into the same answers a write committed
//! alone gives.

use super::shard::Shard;
use crate::servers::WriteFailure;
use crate::store::{AfterCommit, NewRecord, Remember, Remembered, Upserted};
use crate::wire::write::{delete, idempotent, upsert};
use crate::wire::{Framed, WireError};

/// A single upsert's answer: applied now, or the answer kept under its key.
type UpsertAnswer = Remembered<Upserted, (String, Upserted)>;
/// A delete's answer: the deletion's version (None: no record), or whether the earlier
/// request with its key deleted one.
type DeleteAnswer = Remembered<Option<i64>, bool>;

impl Shard {
    /// `row` upserted in the primary's next group; with `remember`, under its key.
    pub(super) async fn write_in_group(
        &self,
        row: &NewRecord<'_>,
        remember: Option<&Remember>,
    ) -> Result<(UpsertAnswer, AfterCommit), WriteFailure> {
        let framed = match remember {
            None => upsert::upsert_framed(row),
            Some(r) => idempotent::upsert_remembered_framed(row, r),
        };
        let framed = self.framed(framed)?;
        self.primary
            .write_in_group(framed, |rows| match remember {
                None => upsert::upsert_in_group(rows).map(Remembered::Applied),
                Some(r) => idempotent::upsert_remembered_in_group(rows, r),
            })
            .await
    }

    /// The record `(table, key, id)` at `slot` deleted in the primary's next group;
    /// with `remember`, under its key.
    pub(super) async fn delete_in_group(
        &self,
        (table, key, id): (&str, &str, &str),
        slot: i32,
        remember: Option<&Remember>,
    ) -> Result<(DeleteAnswer, AfterCommit), WriteFailure> {
        let framed = match remember {
            None => delete::delete_framed(table, (key, slot), id),
            Some(r) => idempotent::delete_remembered_framed(table, (key, slot), id, r),
        };
        let framed = self.framed(framed)?;
        self.primary
            .write_in_group(framed, |rows| match remember {
                None => delete::delete_in_group(rows).map(Remembered::Applied),
                Some(r) => idempotent::delete_remembered_in_group(rows, r),
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
