//! Writes sent with an idempotency key: the write and the answer it gets are stored by
//! one statement (data-modifying CTEs, so one transaction; migration `idempotency`).
//! The statement first looks for an unexpired answer under the caller's key: when one
//! is there, nothing is written and that answer comes back instead; when another
//! request with the key commits while this one runs, the statement fails (SQLSTATE
//! SG002), everything it did is undone, and it runs once more to find that answer.
//!
//! The statements are in [`super::remembered_sql`]; the wire client runs them
//! (`crate::wire::remembered`) and this module reads what they answer: the rows below,
//! each the write's own columns or, from `prior`, the earlier fingerprint and answer.

use chrono::{DateTime, Utc};
use diesel::{OptionalExtension, QueryResult};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::remember::Remember;
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

/// A row of a bulk group with a key: a written record's (shard key, id, version,
/// created_at, updated_at), or (fingerprint, answer) of the earlier request.
pub type BulkRow = (
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<Vec<u8>>,
    Option<serde_json::Value>,
);

/// What a write sent with a key did.
#[derive(Debug, Clone, PartialEq)]
pub enum Remembered<A, R> {
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

/// How the SG002 function words its refusal (migration `idempotency`).
const TAKEN: &str = "another request with this idempotency key committed first";

/// Whether a statement with a key failed because another request with the key
/// committed first: it is run once more, to find that request's answer.
pub fn taken(e: &diesel::result::Error) -> bool {
    matches!(e, diesel::result::Error::DatabaseError(_, info) if info.message() == TAKEN)
}

/// The earlier answer (fingerprint, answer) when there is one, else `applied`.
fn decide<A, R>(
    remember: &Remember,
    prior: Option<(Vec<u8>, serde_json::Value)>,
    applied: impl FnOnce() -> QueryResult<A>,
    replayed: impl FnOnce(serde_json::Value) -> QueryResult<R>,
) -> QueryResult<Remembered<A, R>> {
    match prior {
        None => applied().map(Remembered::Applied),
        Some((fingerprint, _)) if fingerprint != remember.fingerprint => Ok(Remembered::Reused),
        Some((_, answer)) => replayed(answer).map(Remembered::Replayed),
    }
}

fn answer<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> QueryResult<T> {
    serde_json::from_value(value).map_err(|e| diesel::result::Error::DeserializationError(e.into()))
}

fn no_row() -> diesel::result::Error {
    diesel::result::Error::NotFound
}

/// The fingerprint of the caller's unexpired entry under the key, if the shard has
/// one: a bulk write checks every shard it will touch before writing to any.
pub async fn remembered_fingerprint(
    conn: &mut AsyncPgConnection,
    remember: &Remember,
) -> QueryResult<Option<Vec<u8>>> {
    #[derive(diesel::QueryableByName)]
    struct Entry {
        #[diesel(sql_type = diesel::sql_types::Bytea)]
        fingerprint: Vec<u8>,
    }
    let found: Option<Entry> = diesel::sql_query(
        "SELECT fingerprint FROM shardgate_idempotency \
         WHERE caller = $1 AND key = $2 AND expires_at > now()",
    )
    .bind::<diesel::sql_types::Text, _>(&remember.caller)
    .bind::<diesel::sql_types::Text, _>(&remember.key)
    .get_result(conn)
    .await
    .optional()?;
    Ok(found.map(|e| e.fingerprint))
}

/// Deletes up to `limit` expired entries (rows another sweeper holds are skipped, so
/// many gateways sweep side by side); how many.
pub async fn purge_expired(conn: &mut AsyncPgConnection, limit: i64) -> QueryResult<usize> {
    diesel::sql_query(
        "DELETE FROM shardgate_idempotency WHERE ctid = ANY(ARRAY(\
         SELECT ctid FROM shardgate_idempotency WHERE expires_at <= now() \
         LIMIT $1 FOR UPDATE SKIP LOCKED))",
    )
    .bind::<diesel::sql_types::BigInt, _>(limit)
    .execute(conn)
    .await
}

/// What the single upsert with a key did: written now, or the earlier answer with the
/// id it wrote (a record sent without an id got a fresh one then).
pub fn upsert_outcome(
    remember: &Remember,
    row: UpsertRow,
) -> QueryResult<Remembered<Upserted, (String, Upserted)>> {
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
    decide(remember, fingerprint.zip(stored), applied, replayed)
}

/// What the delete with a key did: the deletion's version now (None: there was no
/// such record), or whether the earlier request deleted one.
pub fn delete_outcome(
    remember: &Remember,
    row: DeleteRow,
) -> QueryResult<Remembered<Option<i64>, bool>> {
    #[derive(serde::Deserialize)]
    struct DeleteAnswer {
        deleted: bool,
    }
    let (version, fingerprint, stored) = row;
    let replayed = |value| answer::<DeleteAnswer>(value).map(|a| a.deleted);
    decide(remember, fingerprint.zip(stored), || Ok(version), replayed)
}

/// What one shard's group of a bulk write with a key did: the rows written now, or
/// the count the earlier request wrote.
pub fn bulk_outcome(
    remember: &Remember,
    rows: Vec<BulkRow>,
) -> QueryResult<Remembered<Vec<WrittenRow>, i64>> {
    #[derive(serde::Deserialize)]
    struct BulkAnswer {
        written: i64,
    }
    let prior = rows.iter().find_map(|r| r.5.clone().zip(r.6.clone()));
    let applied = || {
        rows.into_iter()
            .map(|r| match r {
                (Some(k), Some(id), Some(v), Some(c), Some(u), _, _) => Ok((k, id, v, c, u)),
                _ => Err(no_row()),
            })
            .collect::<QueryResult<Vec<WrittenRow>>>()
    };
    let replayed = |value| answer::<BulkAnswer>(value).map(|a| a.written);
    decide(remember, prior, applied, replayed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Remember {
        Remember::new("caller", "k1", &[b"write", b"users"], 60)
    }

    #[test]
    fn a_write_with_a_fresh_key_is_applied() {
        let now = Utc::now();
        let row: UpsertRow = (Some(7), Some(now), Some(now), Some(true), None, None);
        match upsert_outcome(&key(), row).unwrap() {
            Remembered::Applied(up) => assert_eq!((up.version, up.created), (7, true)),
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
            Remembered::Replayed((id, up)) => {
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
        assert_eq!(delete_outcome(&k, row).unwrap(), Remembered::Replayed(true));
        let rows: Vec<BulkRow> = vec![(
            None,
            None,
            None,
            None,
            None,
            Some(k.fingerprint.to_vec()),
            Some(serde_json::json!({"written": 4})),
        )];
        assert_eq!(bulk_outcome(&k, rows).unwrap(), Remembered::Replayed(4));
    }

    #[test]
    fn the_key_with_another_request_is_refused() {
        let other = Remember::new("caller", "k1", &[b"write", b"orders"], 60);
        let row: DeleteRow = (
            None,
            Some(other.fingerprint.to_vec()),
            Some(serde_json::json!({"deleted": false})),
        );
        assert_eq!(delete_outcome(&key(), row).unwrap(), Remembered::Reused);
    }

    #[test]
    fn a_delete_of_nothing_with_a_fresh_key_is_applied_as_none() {
        assert_eq!(
            delete_outcome(&key(), (None, None, None)).unwrap(),
            Remembered::Applied(None)
        );
        assert_eq!(
            delete_outcome(&key(), (Some(12), None, None)).unwrap(),
            Remembered::Applied(Some(12))
        );
    }
}
