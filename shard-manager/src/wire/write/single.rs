//! A single write or delete, with or without an idempotency key, encoded by its own
//! request with what reads its answer ([`EncodedWrite`]): what every `POST /api/write`
//! and `/api/delete` hands its primary's group commit (`Server::write_in_group`).
//! Without a key the answer is always [`IdempotentOutcome::Applied`], so a caller reads
//! both alike.

use super::delete;
use super::encoded::EncodedWrite;
use super::idempotent::{self, DeleteAnswer, UpsertAnswer};
use super::upsert;
use crate::store::{IdempotencyKey, IdempotentOutcome, NewRecord};
use crate::wire::error::WireError;

/// `rec` upserted; with an `idempotency` key, under it.
pub fn upsert(
    rec: &NewRecord<'_>,
    idempotency: Option<&IdempotencyKey>,
) -> Result<EncodedWrite<UpsertAnswer>, WireError> {
    match idempotency {
        None => Ok(upsert::upsert(rec)?.map(IdempotentOutcome::Applied)),
        Some(k) => idempotent::upsert_idempotent(rec, k),
    }
}

/// The record `(table, key, id)` at `slot` deleted; with an `idempotency` key, under it.
pub fn delete(
    (table, key, id): (&str, &str, &str),
    slot: i32,
    idempotency: Option<&IdempotencyKey>,
) -> Result<EncodedWrite<DeleteAnswer>, WireError> {
    match idempotency {
        None => Ok(delete::delete(table, (key, slot), id)?.map(IdempotentOutcome::Applied)),
        Some(k) => idempotent::delete_idempotent(table, (key, slot), id, k),
    }
}
