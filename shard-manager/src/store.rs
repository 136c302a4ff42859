//! The SQL for records, on the async request path. Every value is a bind parameter.
//!
//! Kept in its own module: importing `diesel::prelude::*` next to
//! `diesel_async::RunQueryDsl` makes `.load()` ambiguous.

use chrono::{DateTime, Utc};
use diesel::dsl::sql;
use diesel::sql_types::{BigInt, Bool, Text, Timestamptz};
use diesel::upsert::excluded;
use diesel::{
    ExpressionMethods, OptionalExtension, PgJsonbExpressionMethods, QueryDsl, QueryResult,
    SelectableHelper,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::Value;

use crate::cursor::ListQuery;
use crate::schema::records;

/// A stored record as clients see it.
#[derive(
    Debug,
    Clone,
    PartialEq,
    diesel::Queryable,
    diesel::Selectable,
    serde::Serialize,
    serde::Deserialize,
)]
#[diesel(table_name = records)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct Record {
    #[serde(rename = "table")]
    pub table_name: String,
    pub shard_key: String,
    pub id: String,
    #[serde(skip, default)]
    pub slot: i32,
    pub data: Value,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A row to insert or update.
#[derive(Debug, Clone, diesel::Insertable)]
#[diesel(table_name = records)]
pub struct NewRecord<'a> {
    pub table_name: &'a str,
    pub shard_key: &'a str,
    pub id: &'a str,
    pub slot: i32,
    pub data: &'a Value,
}

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upserted {
    pub version: i64,
    pub created: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const NEXT_VERSION: &str = "nextval('record_version_seq')";

/// Inserts the record, or replaces its data and bumps its version.
pub async fn upsert(conn: &mut AsyncPgConnection, rec: &NewRecord<'_>) -> QueryResult<Upserted> {
    let (version, created_at, updated_at, created) = diesel::insert_into(records::table)
        .values(rec)
        .on_conflict((records::table_name, records::shard_key, records::id))
        .do_update()
        .set((
            records::data.eq(excluded(records::data)),
            records::slot.eq(excluded(records::slot)),
            records::version.eq(sql::<BigInt>(NEXT_VERSION)),
            records::updated_at.eq(diesel::dsl::now),
        ))
        .returning((
            records::version,
            records::created_at,
            records::updated_at,
            // xmax is 0 on a freshly inserted row version, non-zero after an update.
            sql::<Bool>("(xmax = 0)"),
        ))
        .get_result::<(i64, DateTime<Utc>, DateTime<Utc>, bool)>(conn)
        .await?;
    Ok(Upserted {
        version,
        created,
        created_at,
        updated_at,
    })
}

/// Most rows one multi-row statement carries (5 parameters each, PostgreSQL allows 65535).
pub const ROWS_PER_STATEMENT: usize = 2000;

/// Upserts a group of records (ids unique within the group) in one transaction, with
/// multi-row statements. Returns each written row's (shard key, id, version, created,
/// updated), for the cache.
pub async fn upsert_many(
    conn: &mut AsyncPgConnection,
    rows: &[NewRecord<'_>],
) -> QueryResult<Vec<WrittenRow>> {
    conn.transaction(async |conn| {
        let mut written = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let part: Vec<WrittenRow> = diesel::insert_into(records::table)
                .values(chunk)
                .on_conflict((records::table_name, records::shard_key, records::id))
                .do_update()
                .set((
                    records::data.eq(excluded(records::data)),
                    records::slot.eq(excluded(records::slot)),
                    records::version.eq(sql::<BigInt>(NEXT_VERSION)),
                    records::updated_at.eq(diesel::dsl::now),
                ))
                .returning((
                    records::shard_key,
                    records::id,
                    records::version,
                    records::created_at,
                    records::updated_at,
                ))
                .get_results(conn)
                .await?;
            written.extend(part);
        }
        Ok(written)
    })
    .await
}

/// (shard key, id, version, created_at, updated_at) of a row a bulk write stored.
pub type WrittenRow = (String, String, i64, DateTime<Utc>, DateTime<Utc>);

/// One record by its full identity.
pub async fn find(
    conn: &mut AsyncPgConnection,
    table: &str,
    key: &str,
    id: &str,
) -> QueryResult<Option<Record>> {
    records::table
        .filter(records::table_name.eq(table))
        .filter(records::shard_key.eq(key))
        .filter(records::id.eq(id))
        .select(Record::as_select())
        .first(conn)
        .await
        .optional()
}

/// Records of one table, newest first in the cursor order (see [`crate::cursor`]):
/// one shard key's when `key` is given, else every key's on this shard.
pub async fn list(
    conn: &mut AsyncPgConnection,
    table: &str,
    key: Option<&str>,
    q: &ListQuery,
) -> QueryResult<Vec<Record>> {
    let mut query = records::table
        .filter(records::table_name.eq(table.to_owned()))
        .into_boxed();
    if let Some(k) = key {
        query = query.filter(records::shard_key.eq(k.to_owned()));
    }
    if let Some(filter) = &q.filter {
        query = query.filter(records::data.contains(filter.clone()));
    }
    if let Some(c) = &q.after {
        query = query.filter(
            sql::<Bool>("(updated_at, shard_key, id) < (")
                .bind::<Timestamptz, _>(c.updated_at)
                .sql(", ")
                .bind::<Text, _>(c.shard_key.clone())
                .sql(", ")
                .bind::<Text, _>(c.id.clone())
                .sql(")"),
        );
    }
    query
        .order((
            records::updated_at.desc(),
            records::shard_key.desc(),
            records::id.desc(),
        ))
        .limit(i64::from(q.limit))
        .select(Record::as_select())
        .load(conn)
        .await
}

/// Deletes one record. Returns a fresh version for the deletion (taken under the row
/// lock, so newer than every version the record had), or None when it did not exist.
pub async fn delete(
    conn: &mut AsyncPgConnection,
    table: &str,
    key: &str,
    id: &str,
) -> QueryResult<Option<i64>> {
    diesel::delete(
        records::table
            .filter(records::table_name.eq(table))
            .filter(records::shard_key.eq(key))
            .filter(records::id.eq(id)),
    )
    .returning(sql::<BigInt>(NEXT_VERSION))
    .get_result(conn)
    .await
    .optional()
}

/// Where this server's WAL is: the write position on a primary, the replay position
/// on a replica. Also tells which of the two the server is.
pub async fn wal_position(conn: &mut AsyncPgConnection) -> QueryResult<(bool, Option<String>)> {
    diesel::select((
        sql::<Bool>("pg_is_in_recovery()"),
        sql::<diesel::sql_types::Nullable<Text>>(
            "(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() \
             ELSE pg_current_wal_lsn() END)::text",
        ),
    ))
    .get_result(conn)
    .await
}

/// The primary's WAL write position: after a commit, at or past its commit record, so a
/// replica that has replayed this far shows the write.
pub async fn current_wal(conn: &mut AsyncPgConnection) -> QueryResult<String> {
    diesel::select(sql::<Text>("pg_current_wal_lsn()::text"))
        .get_result(conn)
        .await
}

/// A replica's replay position (NULL on a primary).
pub async fn replay_wal(conn: &mut AsyncPgConnection) -> QueryResult<Option<String>> {
    diesel::select(sql::<diesel::sql_types::Nullable<Text>>(
        "pg_last_wal_replay_lsn()::text",
    ))
    .get_result(conn)
    .await
}

/// Rows per logical table on this server.
pub async fn table_counts(conn: &mut AsyncPgConnection) -> QueryResult<Vec<(String, i64)>> {
    records::table
        .group_by(records::table_name)
        .select((records::table_name, diesel::dsl::count_star()))
        .order(records::table_name)
        .load(conn)
        .await
}

/// Bytes on disk of the records table (heap, indexes, TOAST) and of the whole database.
pub async fn disk_bytes(conn: &mut AsyncPgConnection) -> QueryResult<(i64, i64)> {
    diesel::select((
        sql::<BigInt>("pg_total_relation_size('records')"),
        sql::<BigInt>("pg_database_size(current_database())"),
    ))
    .get_result(conn)
    .await
}
