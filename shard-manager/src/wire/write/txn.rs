//! A transaction's part on one shard, in one send behind one Sync: `BEGIN`, for each
//! operation the record's lock and condition (`shardgate_txn_lock`: the slot claimed,
//! the record locked, `if_version` checked) then its upsert or delete, and then either
//! `COMMIT` and the position read (a transaction on one shard: one round, no 2PC), or
//! `PREPARE TRANSACTION` (a part of a transaction on several shards, which first names
//! its transaction for the change log: `SET LOCAL shardgate.txn`). A part is never
//! left open on its connection: the exchange ends with the transaction committed,
//! prepared (no longer the session's) or rolled back (`WireConn::finish`).
//!
//! With an idempotency key, each operation also checks, once its record is locked,
//! that the key has no entry for the record (`shardgate_txn_seen`; SG006 when it has:
//! the transaction was applied before, and the part answers the entries instead) and
//! only then its condition (which a replay's no longer meets), and
//! writes that entry after the record's write (`shardgate_txn_remember`).
//!
//! Then, on any connection to the same database: `COMMIT PREPARED` with the position
//! read after it, `ROLLBACK PREPARED`, and the list of our prepared transactions.

use postgres_protocol::message::backend::DataRowBody;
use postgres_protocol::message::frontend;

use crate::error::sqlstate::{decide, Decision};
use crate::store::statements as sql;
use crate::store::{CommitPosition, IdempotencyKey, NewRecord};
use crate::wire::codec::columns::Columns;
use crate::wire::codec::values::Param;
use crate::wire::conn::WireConn;
use crate::wire::error::WireError;
use crate::wire::statements::{
    self, BEGIN, COMMIT, COMMIT_POSITION, DELETE, TXN_ENTRY, TXN_LOCK, TXN_SEEN, UPSERT,
};

/// One operation of a part: an upsert (`rec.data` the document) or a delete.
#[derive(Debug, Clone)]
pub struct PartOp<'a> {
    pub rec: NewRecord<'a>,
    pub delete: bool,
    /// The version the record must be at (0: absent), if the operation has a condition.
    pub expected: Option<i64>,
    /// The operation's position in the request (named by a failed condition).
    pub index: i32,
}

/// What one operation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpDone {
    /// The record's new version (an upsert's, or the version its deletion took); None
    /// for a delete of a record that did not exist.
    pub version: Option<i64>,
    /// An upsert that created the record.
    pub created: bool,
}

/// How a part ends.
#[derive(Debug, Clone, Copy)]
pub enum PartEnd<'a> {
    /// Commit now (the whole transaction is on this shard).
    Commit,
    /// `PREPARE TRANSACTION` under the name `gid` (checked by [`valid_gid`]), each lock
    /// waited for at most `lock_timeout_ms` (0: no bound): two transactions across
    /// shards that each wait for what the other prepared elsewhere are a deadlock no
    /// server sees; past it the part fails with 55P03, the coordinator rolls back, and
    /// the other one goes on.
    Prepare { gid: &'a str, lock_timeout_ms: u64 },
}

/// A part's result.
#[derive(Debug)]
pub enum PartOutcome {
    /// Every operation ran; committed (with its commit position) or prepared.
    Done {
        ops: Vec<OpDone>,
        position: Option<CommitPosition>,
    },
    /// A condition failed: nothing of the part was written (rolled back).
    ConditionFailed { index: usize, current: i64 },
    /// The idempotency key's entries for these records exist: the transaction was
    /// applied before; this part was rolled back. Every entry of the key on the shard.
    Replayed(Vec<Replayed>),
}

/// One record's entry under a transaction's idempotency key: what the operation did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Replayed {
    pub table: String,
    pub shard_key: String,
    pub id: String,
    pub answer: ReplayedAnswer,
}

/// The answer an entry keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub struct ReplayedAnswer {
    pub version: Option<i64>,
    #[serde(default)]
    pub created: bool,
    #[serde(default)]
    pub deleted: bool,
}

/// Whether `gid` is safe to write into a statement: ours are `sg_` and then lowercase
/// hex digits, digits and underscores only (see `cluster::txn::gid`).
pub fn valid_gid(gid: &str) -> bool {
    gid.starts_with("sg_")
        && gid.len() <= 200
        && gid
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn checked(gid: &str) -> Result<&str, WireError> {
    match valid_gid(gid) {
        true => Ok(gid),
        false => Err(WireError::Protocol(format!(
            "refusing a prepared transaction name {gid:?}"
        ))),
    }
}

/// Sends `sql` as the unnamed statement, counted with the statements a connection's
/// first exchange prepares.
fn unnamed(conn: &mut WireConn, sql: &str) -> Result<(), WireError> {
    frontend::parse("", sql, [], &mut conn.out)?;
    if !conn.prepared {
        conn.preparing += 1;
    }
    conn.bind_execute("", &[])
}

/// Runs one part (see the module doc). A failed condition is an outcome, not an error:
/// the transaction was rolled back and the connection is reusable.
pub async fn run_part(
    conn: &mut WireConn,
    ops: &[PartOp<'_>],
    end: PartEnd<'_>,
    idempotency: Option<&IdempotencyKey>,
) -> Result<PartOutcome, WireError> {
    let (prepare, lock_timeout, named) = match end {
        PartEnd::Commit => (None, None, None),
        PartEnd::Prepare {
            gid,
            lock_timeout_ms,
        } => (
            Some(sql::prepare_transaction(checked(gid)?)),
            (lock_timeout_ms > 0).then(|| sql::part_lock_timeout(lock_timeout_ms)),
            // The change log's rows of this part carry the transaction's id.
            gid.strip_prefix("sg_")
                .and_then(|rest| rest.rsplit_once('_'))
                .map(|(txid, _)| sql::name_transaction(txid)),
        ),
    };
    let sent = statements::run(conn, TXN_LOCK, |conn| {
        conn.bind_execute(BEGIN, &[])?;
        // Unnamed, as PREPARE TRANSACTION below; neither returns a row.
        for sql in [&lock_timeout, &named].into_iter().flatten() {
            unnamed(conn, sql)?;
        }
        for op in ops {
            let r = &op.rec;
            conn.bind_execute(
                TXN_LOCK,
                &[
                    Param::Int4(r.slot),
                    Param::Text(r.table_name),
                    Param::Text(r.shard_key),
                    Param::Text(r.id),
                    // With a key, the condition is checked after the key's entry.
                    Param::NullableInt8(op.expected.filter(|_| idempotency.is_none())),
                    Param::Int4(op.index),
                ],
            )?;
            if let Some(k) = idempotency {
                conn.bind_execute(
                    TXN_SEEN,
                    &[
                        Param::Text(&k.caller),
                        Param::Text(&k.key),
                        Param::Text(r.table_name),
                        Param::Text(r.shard_key),
                        Param::Text(r.id),
                        Param::NullableInt8(op.expected),
                        Param::Int4(op.index),
                    ],
                )?;
            }
            match op.delete {
                true => conn.bind_execute(
                    DELETE,
                    &super::delete::params(r.table_name, (r.shard_key, r.slot), r.id),
                )?,
                false => conn.bind_execute(UPSERT, &super::upsert::one(r))?,
            }
            if let Some(k) = idempotency {
                conn.bind_execute(
                    TXN_ENTRY,
                    &[
                        Param::Text(&k.caller),
                        Param::Text(&k.key),
                        Param::Bytea(&k.fingerprint),
                        Param::Int4(r.slot),
                        Param::Text(r.table_name),
                        Param::Text(r.shard_key),
                        Param::Text(r.id),
                        Param::Int8(k.ttl_secs),
                        Param::Bool(op.delete),
                    ],
                )?;
            }
        }
        match &prepare {
            None => {
                conn.bind_execute(COMMIT, &[])?;
                conn.bind_execute(COMMIT_POSITION, &[])
            }
            // Not a prepared statement: its name is in its text.
            Some(sql) => unnamed(conn, sql),
        }
    })
    .await;
    let rows = match sent {
        Ok(rows) => rows,
        Err(WireError::Server(e)) if decide(&e.code) == Decision::ConditionFailed => {
            let (index, current) = condition_detail(e.detail.as_deref())?;
            return Ok(PartOutcome::ConditionFailed { index, current });
        }
        Err(WireError::Server(e)) if decide(&e.code) == Decision::Replayed => {
            return Ok(PartOutcome::Replayed(replayed_detail(e.detail.as_deref())?));
        }
        Err(e) => return Err(e),
    };
    read_part(ops, rows, prepare.is_none(), idempotency.is_some())
}

/// SG006's DETAIL: the key's entries on the shard, as JSON.
fn replayed_detail(detail: Option<&str>) -> Result<Vec<Replayed>, WireError> {
    serde_json::from_str(detail.unwrap_or_default()).map_err(|e| {
        WireError::Protocol(format!(
            "a replayed transaction came with DETAIL {detail:?}, not its entries ({e})"
        ))
    })
}

/// The rows of a part, statement by statement: each lock answers one row (the current
/// version), each upsert one row, each delete one row when the record existed (the
/// lock said so), then the position read when the part committed.
fn read_part(
    ops: &[PartOp<'_>],
    rows: Vec<DataRowBody>,
    committed: bool,
    keyed: bool,
) -> Result<PartOutcome, WireError> {
    let mut rows = rows.into_iter();
    let mut next = |what: &str| {
        rows.next()
            .ok_or_else(|| WireError::Protocol(format!("a transaction part lacks {what}")))
    };
    let mut done = Vec::with_capacity(ops.len());
    for op in ops {
        let current = Columns::new(&next("a lock's row")?).int8()?;
        if keyed {
            next("its key's check")?;
        }
        if op.delete {
            let version = match current {
                0 => None,
                _ => Some(Columns::new(&next("a delete's row")?).int8()?),
            };
            done.push(OpDone {
                version,
                created: false,
            });
        } else {
            let row = next("an upsert's row")?;
            let mut row = Columns::new(&row);
            let version = row.int8()?;
            let _created_at = row.timestamptz()?;
            let _updated_at = row.timestamptz()?;
            done.push(OpDone {
                version: Some(version),
                created: row.boolean()?,
            });
        }
        if keyed {
            next("its key's entry")?;
        }
    }
    let position = match committed {
        false => None,
        true => {
            let row = next("the position after its commit")?;
            let mut row = Columns::new(&row);
            Some(CommitPosition {
                wal: row.text()?,
                cache_epoch: row.nullable_int8()?,
            })
        }
    };
    Ok(PartOutcome::Done {
        ops: done,
        position,
    })
}

/// SG005's DETAIL: the operation's position and the record's current version.
fn condition_detail(detail: Option<&str>) -> Result<(usize, i64), WireError> {
    let parsed = detail.and_then(|d| {
        let (op, current) = d.trim().split_once(' ')?;
        Some((op.parse().ok()?, current.parse().ok()?))
    });
    parsed.ok_or_else(|| {
        WireError::Protocol(format!(
            "a failed condition came with DETAIL {detail:?}, not '<operation> <version>'"
        ))
    })
}

/// `COMMIT PREPARED`, then the position read after it (two simple queries in one send:
/// `COMMIT PREPARED` may not run inside a transaction block). Ok(None) when no such
/// prepared transaction exists (already resolved, by us or by a recovery).
pub async fn commit_prepared(
    conn: &mut WireConn,
    gid: &str,
) -> Result<Option<CommitPosition>, WireError> {
    let commit = sql::commit_prepared(checked(gid)?);
    match conn
        .query_text("commit_prepared", &[&commit, sql::COMMIT_POSITION])
        .await
    {
        Ok(mut answers) => {
            let row = answers
                .pop()
                .and_then(|rows| rows.into_iter().next())
                .unwrap_or_default();
            let wal =
                row.first().cloned().flatten().ok_or_else(|| {
                    WireError::Protocol("no position after COMMIT PREPARED".into())
                })?;
            let cache_epoch = row.get(1).cloned().flatten().and_then(|e| e.parse().ok());
            Ok(Some(CommitPosition { wal, cache_epoch }))
        }
        Err(e) if e.decision() == Some(Decision::NoSuchPrepared) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The primary's position now (the position read alone): a replayed transaction's
/// token, which is at least as new as its commit.
pub async fn position(conn: &mut WireConn) -> Result<CommitPosition, WireError> {
    let mut answers = conn.query_text("position", &[sql::COMMIT_POSITION]).await?;
    let row = answers
        .pop()
        .and_then(|rows| rows.into_iter().next())
        .unwrap_or_default();
    let wal = row
        .first()
        .cloned()
        .flatten()
        .ok_or_else(|| WireError::Protocol("no position read".into()))?;
    let cache_epoch = row.get(1).cloned().flatten().and_then(|e| e.parse().ok());
    Ok(CommitPosition { wal, cache_epoch })
}

/// `ROLLBACK PREPARED`; false when no such prepared transaction exists.
pub async fn rollback_prepared(conn: &mut WireConn, gid: &str) -> Result<bool, WireError> {
    let rollback = sql::rollback_prepared(checked(gid)?);
    match conn.simple(&rollback).await {
        Ok(()) => Ok(true),
        Err(e) if e.decision() == Some(Decision::NoSuchPrepared) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Our prepared transactions in this database: (name, age in seconds), oldest first.
pub async fn prepared(conn: &mut WireConn) -> Result<Vec<(String, f64)>, WireError> {
    let mut answers = conn
        .query_text("prepared_transactions", &[sql::PREPARED_PARTS])
        .await?;
    Ok(answers
        .pop()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|row| {
            let gid = row.first().cloned().flatten()?;
            let age = row.get(1).cloned().flatten()?.parse().ok()?;
            Some((gid, age))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    //! The names written into statements, a replay's entries, a failed condition's detail.

    use super::*;

    #[test]
    fn only_our_names_are_written_into_statements() {
        assert!(valid_gid("sg_0f3a_2"));
        assert!(!valid_gid("sg_x'; DROP TABLE records; --"));
        assert!(!valid_gid("other_1"));
        assert!(!valid_gid("sg_ABC"));
    }

    #[test]
    fn a_replay_reads_the_entries_the_shard_kept() {
        let detail = r#"[{"table": "accounts", "shard_key": "a", "id": "1", "answer": {"version": 7, "created": true, "deleted": false}},
                    {"table": "accounts", "shard_key": "b", "id": "2", "answer": {"version": null, "created": false, "deleted": false}}]"#;
        let entries = replayed_detail(Some(detail)).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].id, "1");
        assert_eq!(entries[0].answer.version, Some(7));
        assert!(entries[0].answer.created);
        assert_eq!(entries[1].answer.version, None);
        assert!(replayed_detail(Some("17")).is_err());
        assert!(replayed_detail(None).is_err());
    }

    #[test]
    fn a_failed_condition_names_the_operation_and_the_version() {
        assert_eq!(condition_detail(Some("3 17")).unwrap(), (3, 17));
        assert_eq!(condition_detail(Some("0 0")).unwrap(), (0, 0));
        assert!(condition_detail(Some("17")).is_err());
        assert!(condition_detail(None).is_err());
    }
}
