//! Writes sent with an idempotency key: the write and the answer it gets are stored by
//! one statement (data-modifying CTEs, so one transaction; migration `idempotency`).
//! The statement first looks for an unexpired answer under the caller's key: when one
//! is there, nothing is written and that answer comes back instead; when another
//! request with the key commits while this one runs, the statement fails (SQLSTATE
//! SG002), everything it did is undone, and it runs once more to find that answer.
//!
//! The statements are in [`super::statements`] (`UPSERT_IDEMPOTENT`, `DELETE_IDEMPOTENT`,
//! `UPSERT_MANY_IDEMPOTENT`); the wire client runs them (`crate::wire::write::idempotent`)
//! and this module reads what they answer: the rows below, each the write's own columns
//! or, from `prior`, the earlier fingerprint and answer.

use chrono::{DateTime, Utc};

use super::idempotency_key::IdempotencyKey;
use super::row::{Upserted, WrittenRow};

/// A row of the single upsert with a key: (version, created_at, updated_at, created)
/// when written now, or (fingerprint, answer) of the earlier request.
pub type UpsertRow = (
    Option<i64>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<bool>,
    Option<Vec<u8>>,
    Option<serde_json::Value>,
);

/// A row of the delete with a key: the deletion's version (None: no record), or
/// (fingerprint, answer) of the earlier request.
pub type DeleteRow = (Option<i64>, Option<Vec<u8>>, Option<serde_json::Value>);

/// A row of a bulk group with a key: a record's (shard key, id), then its (version,
/// created_at, updated_at) when written now, or the fingerprint of the earlier request
/// that wrote it.
pub type BulkRow = (
    String,
    String,
    Option<i64>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<Vec<u8>>,
);

/// What one shard's group of a bulk write with a key did, record by record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupOutcome {
    /// Records written now, each with its entry kept.
    pub written: Vec<WrittenRow>,
    /// Records (shard key, id, the version its entry kept: none in entries older than
    /// that column) an earlier request with the key wrote: not written now.
    pub replayed: Vec<(String, String, Option<i64>)>,
}

/// What a write sent with an idempotency key did: applied now, answered by the earlier
/// request with the key, or refused because the key was used for another request.
#[derive(Debug, Clone, PartialEq)]
pub enum IdempotentOutcome<A, R> {
    /// Written now; the answer is stored with it.
    Applied(A),
    /// An earlier request with the key was written: its answer, nothing written now.
    Replayed(R),
    /// The key was used for another request: nothing written.
    Reused,
}

/// The stored answer of a single write.
#[derive(Debug, Clone, serde::Deserialize)]
struct WriteAnswer {
    id: String,
    version: i64,
    created: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// An answer row that does not read as one: a column missing, a stored answer that
/// does not decode. The data is at fault, not the server.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AnswerError(String);

/// What reading an answer row gives.
pub type Answered<T> = Result<T, AnswerError>;

/// The earlier answer (fingerprint, answer) when there is one, else `applied`.
fn decide<A, R>(
    idempotency: &IdempotencyKey,
    prior: Option<(Vec<u8>, serde_json::Value)>,
    applied: impl FnOnce() -> Answered<A>,
    replayed: impl FnOnce(serde_json::Value) -> Answered<R>,
) -> Answered<IdempotentOutcome<A, R>> {
    match prior {
        None => applied().map(IdempotentOutcome::Applied),
        Some((fingerprint, _)) if fingerprint != idempotency.fingerprint => {
            Ok(IdempotentOutcome::Reused)
        }
        Some((_, answer)) => replayed(answer).map(IdempotentOutcome::Replayed),
    }
}

fn answer<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Answered<T> {
    serde_json::from_value(value).map_err(|e| AnswerError(format!("a stored answer: {e}")))
}

fn no_row() -> AnswerError {
    AnswerError("a written row lacks one of its columns".into())
}

/// Every table of idempotency entries (each with a slot, `caller`, `key`,
/// `created_at` and `expires_at`), with its primary key: the sweeper purges them, moves
/// carry them with their slots.
pub const ENTRY_TABLES: [&str; 3] = [
    "shardgate_idempotency",
    "shardgate_idempotency_records",
    "shardgate_idempotency_claims",
];

/// What the single upsert with a key did: written now, or the earlier answer with the
/// id it wrote (a record sent without an id got a fresh one then).
pub fn upsert_outcome(
    idempotency: &IdempotencyKey,
    row: UpsertRow,
) -> Answered<IdempotentOutcome<Upserted, (String, Upserted)>> {
    let (version, created_at, updated_at, created, fingerprint, stored) = row;
    let applied = || match (version, created_at, updated_at, created) {
        (Some(version), Some(created_at), Some(updated_at), Some(created)) => Ok(Upserted {
            version,
            created,
            created_at,
            updated_at,
        }),
        _ => Err(no_row()),
    };
    let replayed = |value| {
        let a: WriteAnswer = answer(value)?;
        let up = Upserted {
            version: a.version,
            created: a.created,
            created_at: a.created_at,
            updated_at: a.updated_at,
        };
        Ok((a.id, up))
    };
    decide(idempotency, fingerprint.zip(stored), applied, replayed)
}

/// What the delete with a key did: the deletion's version now (None: there was no
/// such record), or whether the earlier request deleted one.
pub fn delete_outcome(
    idempotency: &IdempotencyKey,
    row: DeleteRow,
) -> Answered<IdempotentOutcome<Option<i64>, bool>> {
    #[derive(serde::Deserialize)]
    struct DeleteAnswer {
        deleted: bool,
    }
    let (version, fingerprint, stored) = row;
    let replayed = |value| answer::<DeleteAnswer>(value).map(|a| a.deleted);
    decide(
        idempotency,
        fingerprint.zip(stored),
        || Ok(version),
        replayed,
    )
}

/// What one shard's group of a bulk write with a key did: each record written now or
/// by an earlier request with the key; None when a record's entry is another
/// request's (the key was reused: nothing was written).
pub fn bulk_outcome(
    idempotency: &IdempotencyKey,
    rows: Vec<BulkRow>,
) -> Answered<Option<GroupOutcome>> {
    let mut out = GroupOutcome::default();
    for row in rows {
        match row {
            (_, _, _, _, _, Some(print)) if print != idempotency.fingerprint => return Ok(None),
            (key, id, version, _, _, Some(_)) => out.replayed.push((key, id, version)),
            (key, id, Some(v), Some(c), Some(u), None) => out.written.push((key, id, v, c, u)),
            _ => return Err(no_row()),
        }
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> IdempotencyKey {
        IdempotencyKey::new("caller", "k1", &[b"write", b"users"], 60)
    }

    #[test]
    fn a_write_with_a_fresh_key_is_applied() {
        let now = Utc::now();
        let row: UpsertRow = (Some(7), Some(now), Some(now), Some(true), None, None);
        match upsert_outcome(&key(), row).unwrap() {
            IdempotentOutcome::Applied(up) => assert_eq!((up.version, up.created), (7, true)),
            other => panic!("{other:?}"),
        }
        // A written row must carry every column.
        let row: UpsertRow = (Some(7), None, Some(now), Some(true), None, None);
        assert!(upsert_outcome(&key(), row).is_err());
    }

    #[test]
    fn the_same_request_again_gets_the_earlier_answer() {
        let k = key();
        let answer = serde_json::json!({"id": "r9", "version": 3, "created": false,
            "created_at": "2026-11-24T01:02:03Z", "updated_at": "2026-11-24T01:02:04Z"});
        let row: UpsertRow = (
            None,
            None,
            None,
            None,
            Some(k.fingerprint.to_vec()),
            Some(answer),
        );
        match upsert_outcome(&k, row).unwrap() {
            IdempotentOutcome::Replayed((id, up)) => {
                assert_eq!((id.as_str(), up.version, up.created), ("r9", 3, false));
                assert_eq!(up.updated_at.to_rfc3339(), "2026-11-24T01:02:04+00:00");
            }
            other => panic!("{other:?}"),
        }
        let row: DeleteRow = (
            None,
            Some(k.fingerprint.to_vec()),
            Some(serde_json::json!({"deleted": true})),
        );
        assert_eq!(
            delete_outcome(&k, row).unwrap(),
            IdempotentOutcome::Replayed(true)
        );
    }

    #[test]
    fn a_bulk_group_writes_the_records_without_an_entry_and_replays_the_others() {
        let k = key();
        let now = Utc::now();
        let rows: Vec<BulkRow> = vec![
            ("a".into(), "1".into(), Some(5), Some(now), Some(now), None),
            (
                "b".into(),
                "2".into(),
                Some(3),
                None,
                None,
                Some(k.fingerprint.to_vec()),
            ),
        ];
        let done = bulk_outcome(&k, rows).unwrap().unwrap();
        assert_eq!(done.written, vec![("a".into(), "1".into(), 5, now, now)]);
        // A replayed record carries the version its entry kept (for the cache's floor).
        assert_eq!(done.replayed, vec![("b".into(), "2".into(), Some(3))]);
        // An entry of another request: the key was reused.
        let other = IdempotencyKey::new("caller", "k1", &[b"bulk"], 60);
        let rows: Vec<BulkRow> = vec![(
            "b".into(),
            "2".into(),
            None,
            None,
            None,
            Some(other.fingerprint.to_vec()),
        )];
        assert_eq!(bulk_outcome(&k, rows).unwrap(), None);
        // A written row must carry every column.
        let rows: Vec<BulkRow> = vec![("a".into(), "1".into(), Some(5), None, Some(now), None)];
        assert!(bulk_outcome(&k, rows).is_err());
    }

    #[test]
    fn the_key_with_another_request_is_refused() {
        let other = IdempotencyKey::new("caller", "k1", &[b"write", b"orders"], 60);
        let row: DeleteRow = (
            None,
            Some(other.fingerprint.to_vec()),
            Some(serde_json::json!({"deleted": false})),
        );
        assert_eq!(
            delete_outcome(&key(), row).unwrap(),
            IdempotentOutcome::Reused
        );
    }

    #[test]
    fn a_delete_of_nothing_with_a_fresh_key_is_applied_as_none() {
        assert_eq!(
            delete_outcome(&key(), (None, None, None)).unwrap(),
            IdempotentOutcome::Applied(None)
        );
        assert_eq!(
            delete_outcome(&key(), (Some(12), None, None)).unwrap(),
            IdempotentOutcome::Applied(Some(12))
        );
    }
}
