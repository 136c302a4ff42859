//! Writes sent with an idempotency key: the write and the answer it gets are stored by
//! one statement (data-modifying CTEs, so one transaction; migration `idempotency`).
//! The statement first looks for an unexpired answer under the caller's key: when one
//! is there, nothing is written and that answer comes back instead; when another
//! request with the key commits while this one runs, the statement fails (SQLSTATE
//! SG002), everything it did is undone, and it runs once more to find that answer.
//!
//! The statements are in [`super::remembered_sql`].

use chrono::{DateTime, Utc};
use diesel::{OptionalExtension, QueryResult};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::fixed_sql::UpsertMany;
use super::records::after_commit;
use super::remember::Remember;
use super::remembered_sql::{DeleteRemembered, UpsertManyRemembered, UpsertOneRemembered};
use super::row::{AfterCommit, NewRecord, Upserted, WrittenRow};

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

fn taken(e: &diesel::result::Error) -> bool {
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

/// [`super::upsert`] with a key: the record's upsert and its answer, or the earlier
/// answer with the id it wrote (a record sent without an id got a fresh one then). Pipelined with [`AfterCommit`] like the plain upsert.
pub async fn upsert_remembered(
    conn: &AsyncPgConnection,
    rec: &NewRecord<'_>,
    remember: &Remember,
) -> QueryResult<(Remembered<Upserted, (String, Upserted)>, AfterCommit)> {
    type Row = (
        Option<i64>,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
        Option<bool>,
        Option<Vec<u8>>,
        Option<serde_json::Value>,
    );
    let run = async || {
        let (mut first, mut second) = (conn, conn);
        let row = UpsertOneRemembered {
            rec,
            remember,
            slot: Some(rec.slot),
        }
        .get_result::<Row>(&mut first);
        let wal = after_commit(&mut second);
        futures_util::try_join!(row, wal)
    };
    let (row, wal) = match run().await {
        Err(e) if taken(&e) => run().await?,
        other => other?,
    };
    let (version, created_at, updated_at, created, fingerprint, stored) = row;
    let prior = fingerprint.zip(stored);
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
    Ok((decide(remember, prior, applied, replayed)?, wal))
}

/// [`super::delete`] with a key: the deletion's new version (None: there was no such
/// record) and the answer stored with it, or whether the earlier request deleted one.
pub async fn delete_remembered(
    conn: &AsyncPgConnection,
    table: &str,
    (key, slot): (&str, i32),
    id: &str,
    remember: &Remember,
) -> QueryResult<(Remembered<Option<i64>, bool>, AfterCommit)> {
    type Row = (Option<i64>, Option<Vec<u8>>, Option<serde_json::Value>);
    #[derive(serde::Deserialize)]
    struct DeleteAnswer {
        deleted: bool,
    }
    let gone = DeleteRemembered {
        table,
        key,
        slot,
        id,
        remember,
        kept_slot: Some(slot),
    };
    let run = async || {
        let (mut first, mut second) = (conn, conn);
        let row = gone.get_result::<Row>(&mut first);
        let wal = after_commit(&mut second);
        futures_util::try_join!(row, wal)
    };
    let ((version, fingerprint, stored), wal) = match run().await {
        Err(e) if taken(&e) => run().await?,
        other => other?,
    };
    let replayed = |value| answer::<DeleteAnswer>(value).map(|a| a.deleted);
    let outcome = decide(remember, fingerprint.zip(stored), || Ok(version), replayed)?;
    Ok((outcome, wal))
}

/// The bulk upsert (`crate::wire::upsert_many`) with a key (one shard's group of a bulk write): the rows
/// written and the count stored with them, or the count the earlier request wrote.
pub async fn upsert_many_remembered(
    conn: &AsyncPgConnection,
    rows: &[NewRecord<'_>],
    remember: &Remember,
) -> QueryResult<(Remembered<Vec<WrittenRow>, i64>, AfterCommit)> {
    type Row = (
        Option<String>,
        Option<String>,
        Option<i64>,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
        Option<Vec<u8>>,
        Option<serde_json::Value>,
    );
    #[derive(serde::Deserialize)]
    struct BulkAnswer {
        written: i64,
    }
    let query = UpsertManyRemembered {
        rows: UpsertMany::new(rows),
        remember,
        slot: None,
    };
    let run = async || {
        let (mut first, mut second) = (conn, conn);
        let got = query.clone().get_results::<Row>(&mut first);
        let wal = after_commit(&mut second);
        futures_util::try_join!(got, wal)
    };
    let (got, wal) = match run().await {
        Err(e) if taken(&e) => run().await?,
        other => other?,
    };
    let prior = got.iter().find_map(|r| r.5.clone().zip(r.6.clone()));
    let applied = || {
        got.into_iter()
            .map(|r| match r {
                (Some(k), Some(id), Some(v), Some(c), Some(u), _, _) => Ok((k, id, v, c, u)),
                _ => Err(no_row()),
            })
            .collect::<QueryResult<Vec<WrittenRow>>>()
    };
    let replayed = |value| answer::<BulkAnswer>(value).map(|a| a.written);
    Ok((decide(remember, prior, applied, replayed)?, wal))
}
