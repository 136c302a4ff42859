//! A conditional write or delete (HTTP's `If-Match`): the record replaced or deleted
//! only when its version meets a [`Precondition`], checked and changed in one statement
//! with the record locked between (see `store::statements::REPLACE_IF`). Encoded to join
//! its primary's group commit (see `group`) like any single write: a condition that
//! fails is an answer (the record's current version), not an error, so it never rolls
//! back the group's other writes.

use postgres_protocol::message::backend::DataRowBody;

use super::delete;
use super::encoded::{EncodedWrite, Framed, Rows};
use super::upsert::one;
use crate::store::{Conditional, NewRecord, Precondition, Upserted};
use crate::wire::codec::columns::Columns;
use crate::wire::codec::values::Param;
use crate::wire::error::WireError;
use crate::wire::statements::{DELETE_IF, REPLACE_IF};

/// The record replaced by `rec` (a new version) when its version meets `condition`;
/// never created.
pub fn replace_if(
    rec: &NewRecord<'_>,
    condition: &Precondition,
) -> Result<EncodedWrite<Conditional<Upserted>>, WireError> {
    let (any, versions) = condition.binds();
    let mut params = one(rec).to_vec();
    params.extend([Param::Bool(any), Param::Int8s(versions)]);
    let framed = Framed::new(
        REPLACE_IF,
        &params,
        rec.slot,
        (rec.table_name, rec.shard_key, rec.id),
    )?;
    Ok(EncodedWrite::new(framed, |rows: Rows| replaced(&rows.0)))
}

/// [`replace_if`]'s one row.
fn replaced(rows: &[DataRowBody]) -> Result<Conditional<Upserted>, WireError> {
    let mut row = Columns::new(only_row(rows)?);
    let answer = (
        row.nullable_int8()?,
        row.nullable_timestamptz()?,
        row.nullable_timestamptz()?,
        row.nullable_int8()?,
    );
    match answer {
        (Some(version), Some(created_at), Some(updated_at), None) => {
            Ok(Conditional::Applied(Upserted {
                version,
                created: false,
                created_at,
                updated_at,
            }))
        }
        (None, None, None, Some(current)) => Ok(Conditional::Refused { current }),
        _ => Err(WireError::Protocol(
            "a conditional write answered a row that is neither written nor refused".into(),
        )),
    }
}

/// The record `(table, key, id)` at `slot` deleted when its version meets `condition`;
/// answers the version the deletion took (see `delete::delete`).
pub fn delete_if(
    (table, key, id): (&str, &str, &str),
    slot: i32,
    condition: &Precondition,
) -> Result<EncodedWrite<Conditional<i64>>, WireError> {
    let (any, versions) = condition.binds();
    let mut params = delete::params(table, (key, slot), id).to_vec();
    params.extend([Param::Bool(any), Param::Int8s(versions)]);
    let framed = Framed::new(DELETE_IF, &params, slot, (table, key, id))?;
    Ok(EncodedWrite::new(framed, |rows: Rows| deleted(&rows.0)))
}

/// [`delete_if`]'s one row.
fn deleted(rows: &[DataRowBody]) -> Result<Conditional<i64>, WireError> {
    let mut row = Columns::new(only_row(rows)?);
    match (row.nullable_int8()?, row.nullable_int8()?) {
        (Some(version), None) => Ok(Conditional::Applied(version)),
        (None, Some(current)) => Ok(Conditional::Refused { current }),
        _ => Err(WireError::Protocol(
            "a conditional delete answered a row that is neither deleted nor refused".into(),
        )),
    }
}

fn only_row(rows: &[DataRowBody]) -> Result<&DataRowBody, WireError> {
    match rows {
        [row] => Ok(row),
        _ => Err(WireError::Protocol(format!(
            "a conditional write answered {} rows, not 1",
            rows.len()
        ))),
    }
}
