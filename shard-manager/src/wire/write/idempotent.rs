//! Writes sent with an idempotency key (`store::idempotent_answer` reads their answers): each
//! write's statement between the key's lookup and the entry that keeps its answer, in
//! the frame of a write without a key: a single write joins its primary's group commit
//! (`group`), a bulk write's group runs in its own (`commit`); one Sync, one flush back.
//!
//! When another request with the key committed first (SQLSTATE SG002), the transaction
//! has been rolled back; the statement runs once more, to find that request's answer
//! (a bulk group's here, a single write's by its group: `servers`' `write_batch`).
//! Before any of them, the key is claimed at its home slot ([`claim`]).

use postgres_protocol::message::backend::DataRowBody;

use super::commit::committed;
use super::delete;
use super::encoded::{EncodedWrite, Framed, Rows};
use super::upsert::{many, one, RecordColumns};
use crate::error::retry::{policy, Cause, Retry, Work};
use crate::error::sqlstate::Decision;
use crate::store::{
    self, BulkRow, CommitPosition, DeleteRow, GroupOutcome, IdempotencyKey, IdempotentOutcome,
    NewRecord, UpsertRow, Upserted,
};
use crate::wire::codec::columns::Columns;
use crate::wire::codec::values::Param;
use crate::wire::conn::WireConn;
use crate::wire::error::WireError;
use crate::wire::statements::{
    CLAIM, DELETE_IDEMPOTENT, UPSERT_IDEMPOTENT, UPSERT_MANY_IDEMPOTENT,
};

/// A single upsert's answer with a key: applied now, or the answer kept under the key
/// with the id it wrote (a record sent without an id got a fresh one then).
pub type UpsertAnswer = IdempotentOutcome<Upserted, (String, Upserted)>;
/// A delete's answer with a key: the deletion's version (None: there was no such
/// record), or whether the earlier request with the key deleted one.
pub type DeleteAnswer = IdempotentOutcome<Option<i64>, bool>;

/// [`super::upsert::upsert`] with a key: the record's upsert and its answer, or the
/// earlier answer, encoded to join a group commit (see `group`).
pub fn upsert_idempotent(
    rec: &NewRecord<'_>,
    idempotency: &IdempotencyKey,
) -> Result<EncodedWrite<UpsertAnswer>, WireError> {
    let params = keyed(idempotency, Some(rec.slot), &one(rec));
    let framed = Framed::new(
        UPSERT_IDEMPOTENT,
        &params,
        rec.slot,
        (rec.table_name, rec.shard_key, rec.id),
    )?;
    let idempotency = idempotency.clone();
    Ok(EncodedWrite::new(framed, move |rows: Rows| {
        upsert_answer(&rows.0, &idempotency)
    }))
}

/// The one row of [`upsert_idempotent`].
fn upsert_answer(
    rows: &[DataRowBody],
    idempotency: &IdempotencyKey,
) -> Result<UpsertAnswer, WireError> {
    let mut row = Columns::new(only_row(rows)?);
    let row: UpsertRow = (
        row.nullable_int8()?,
        row.nullable_timestamptz()?,
        row.nullable_timestamptz()?,
        row.nullable_boolean()?,
        row.nullable_bytea()?,
        row.nullable_json()?,
    );
    Ok(store::upsert_outcome(idempotency, row)?)
}

/// [`delete::delete`] with a key: the deletion and the answer kept with it, or whether
/// the earlier request deleted one, encoded to join a group commit (see `group`).
pub fn delete_idempotent(
    table: &str,
    (key, slot): (&str, i32),
    id: &str,
    idempotency: &IdempotencyKey,
) -> Result<EncodedWrite<DeleteAnswer>, WireError> {
    let own = delete::params(table, (key, slot), id);
    let params = keyed(idempotency, Some(slot), &own);
    let framed = Framed::new(DELETE_IDEMPOTENT, &params, slot, (table, key, id))?;
    let idempotency = idempotency.clone();
    Ok(EncodedWrite::new(framed, move |rows: Rows| {
        delete_answer(&rows.0, &idempotency)
    }))
}

/// The one row of [`delete_idempotent`].
fn delete_answer(
    rows: &[DataRowBody],
    idempotency: &IdempotencyKey,
) -> Result<DeleteAnswer, WireError> {
    let mut row = Columns::new(only_row(rows)?);
    let row: DeleteRow = (
        row.nullable_int8()?,
        row.nullable_bytea()?,
        row.nullable_json()?,
    );
    Ok(store::delete_outcome(idempotency, row)?)
}

/// [`super::upsert::upsert_many`] with a key (one shard's group of a bulk write): the
/// records written now, each with its entry, and those an earlier request with the key
/// wrote; None when the key names another request (nothing written).
pub async fn upsert_many_idempotent(
    conn: &mut WireConn,
    recs: &[NewRecord<'_>],
    idempotency: &IdempotencyKey,
) -> Result<(Option<GroupOutcome>, CommitPosition), WireError> {
    let columns = RecordColumns::new(recs);
    let mut params = vec![
        Param::Bytea(&idempotency.fingerprint),
        Param::Text(&idempotency.caller),
        Param::Text(&idempotency.key),
        Param::Texts(&columns.tables),
        Param::Texts(&columns.keys),
        Param::Texts(&columns.ids),
    ];
    params.extend(many(&columns));
    params.extend([
        Param::Text(&idempotency.caller),
        Param::Text(&idempotency.key),
        Param::Bytea(&idempotency.fingerprint),
        Param::Int8(idempotency.ttl_secs),
    ]);
    let (rows, position) = run(conn, UPSERT_MANY_IDEMPOTENT, &params).await?;
    let rows = rows
        .iter()
        .map(|row| {
            let mut row = Columns::new(row);
            Ok((
                row.text()?,
                row.text()?,
                row.nullable_int8()?,
                row.nullable_timestamptz()?,
                row.nullable_timestamptz()?,
                row.nullable_bytea()?,
            ))
        })
        .collect::<Result<Vec<BulkRow>, WireError>>()?;
    Ok((store::bulk_outcome(idempotency, rows)?, position))
}

/// Claims the idempotency key at its home `slot` (`store::statements::CLAIM`): whether the
/// key names this request (claimed now, or by an earlier attempt of it), or another.
pub async fn claim(
    conn: &mut WireConn,
    idempotency: &IdempotencyKey,
    slot: i32,
) -> Result<bool, WireError> {
    let params = [
        Param::Text(&idempotency.caller),
        Param::Text(&idempotency.key),
        Param::Bytea(&idempotency.fingerprint),
        Param::Int4(slot),
        Param::Int8(idempotency.ttl_secs),
        Param::Int4(slot),
    ];
    let (rows, _) = committed(conn, CLAIM, &params).await?;
    let print = Columns::new(only_row(&rows)?).nullable_bytea()?;
    Ok(print.as_deref() == Some(&idempotency.fingerprint[..]))
}

/// A write's own binds between the key's lookup (caller, key) and the entry kept
/// (caller, key, fingerprint, slot, seconds to live), as `store::statements` numbers them.
fn keyed<'a>(k: &'a IdempotencyKey, slot: Option<i32>, own: &[Param<'a>]) -> Vec<Param<'a>> {
    let mut params = Vec::with_capacity(own.len() + 7);
    params.extend([Param::Text(&k.caller), Param::Text(&k.key)]);
    params.extend_from_slice(own);
    params.extend([
        Param::Text(&k.caller),
        Param::Text(&k.key),
        Param::Bytea(&k.fingerprint),
        Param::NullableInt4(slot),
        Param::Int8(k.ttl_secs),
    ]);
    params
}

/// Runs the statement; once more if another request with the key committed first.
async fn run(
    conn: &mut WireConn,
    statement: &'static str,
    params: &[Param<'_>],
) -> Result<(Vec<DataRowBody>, CommitPosition), WireError> {
    match committed(conn, statement, params).await {
        // Rolled back, the connection idle again: run once more on it.
        Err(e)
            if e.decision() == Some(Decision::KeyTaken)
                && policy(Cause::KeyTaken, Work::Write { keyed: true }) == Retry::AgainOnce
                && conn.is_idle() =>
        {
            committed(conn, statement, params).await
        }
        done => done,
    }
}

/// The one row a single write with a key answers.
fn only_row(rows: &[DataRowBody]) -> Result<&DataRowBody, WireError> {
    match rows {
        [row] => Ok(row),
        _ => Err(WireError::Protocol(format!(
            "a write with a key answered {} rows, not 1",
            rows.len()
        ))),
    }
}
