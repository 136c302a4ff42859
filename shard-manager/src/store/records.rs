//! The SQL for records, on the async request path. Every value is a bind parameter.
//!
//! Kept in its own module: importing `diesel::prelude::*` next to
//! `diesel_async::RunQueryDsl` makes `.load()` ambiguous.

use diesel::dsl::sql;
use diesel::pg::Pg;
use diesel::query_builder::QueryFragment;
use diesel::sql_types::{BigInt, Bool, Text, Timestamptz};
use diesel::{
    ExpressionMethods, PgJsonbExpressionMethods, QueryDsl, QueryResult, SelectableHelper,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::cursor::ListQuery;
use super::fixed_sql::{
    CacheEpoch, CurrentWal, InRecovery, OwnedRow, ReplayWal, Serves, WalPosition,
};
use super::row::Record;
use super::schema::records;

/// The list statement: records of one table, newest first in the cursor order (see
/// [`super::cursor`]): one shard key's (with its slot, which the server must serve) when
/// `key` is given, else every key's on this shard whose slot the shard owns. Rendered
/// for the wire client (`statement_text`), one prepared variant per shape (keyed or
/// not, filtered or not, after a cursor or not). Binds, in order: table; slot and shard
/// key when keyed; the filter (jsonb) when filtered; the cursor's updated_at, shard key
/// and id when after one; the limit (int8).
pub(super) fn list_statement<'a>(
    table: &'a str,
    key: Option<(&'a str, i32)>,
    q: &'a ListQuery,
) -> Box<dyn QueryFragment<Pg> + 'a> {
    let mut query = records::table
        .filter(records::table_name.eq(table))
        .into_boxed();
    match key {
        Some((k, slot)) => {
            query = query.filter(Serves(slot)).filter(records::shard_key.eq(k));
        }
        None => query = query.filter(OwnedRow),
    }
    if let Some(filter) = &q.filter {
        query = query.filter(records::data.contains(filter));
    }
    if let Some(c) = &q.after {
        query = query.filter(
            sql::<Bool>("(updated_at, shard_key, id) < (")
                .bind::<Timestamptz, _>(c.updated_at)
                .sql(", ")
                .bind::<Text, _>(&c.shard_key)
                .sql(", ")
                .bind::<Text, _>(&c.id)
                .sql(")"),
        );
    }
    Box::new(
        query
            .order((
                records::updated_at.desc(),
                records::shard_key.desc(),
                records::id.desc(),
            ))
            .limit(i64::from(q.limit))
            .select(Record::as_select()),
    )
}

/// Where this server's WAL is: the write position on a primary, the replay position
/// on a replica. Also tells which of the two the server is.
pub async fn wal_position(conn: &mut AsyncPgConnection) -> QueryResult<(bool, Option<String>)> {
    diesel::select((InRecovery, WalPosition))
        .get_result(conn)
        .await
}

/// A primary's check: [`wal_position`] and, in the same statement, the shard's cache
/// epoch (None on a shard without the `cache_epoch` migration, which is then checked
/// without it: a missing migration is the schema check's to report, not a failed check).
pub async fn wal_position_and_epoch(
    conn: &mut AsyncPgConnection,
) -> QueryResult<(bool, Option<String>, Option<i64>)> {
    let checked = diesel::select((InRecovery, WalPosition, CacheEpoch))
        .get_result(conn)
        .await;
    match checked {
        Err(e) if lacks_cache_table(&e) => {
            let (in_recovery, wal) = wal_position(conn).await?;
            Ok((in_recovery, wal, None))
        }
        other => other,
    }
}

fn lacks_cache_table(e: &diesel::result::Error) -> bool {
    matches!(e, diesel::result::Error::DatabaseError(_, info)
        if info.message().contains("relation \"shardgate_cache\" does not exist"))
}

/// Moves the shard's cache epoch on. Returns the new epoch and the primary's WAL
/// position read after that commit (pipelined: both statements go out at once, each in its own implicit transaction, and tokio-postgres sends them in the order `try_join!` first polls them): past every write that
/// read an older epoch after its own commit (see `cache::epochs`).
pub async fn bump_cache_epoch(conn: &AsyncPgConnection) -> QueryResult<(i64, String)> {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        epoch: i64,
    }
    let (mut first, mut second) = (conn, conn);
    let bumped = diesel::sql_query("UPDATE shardgate_cache SET epoch = epoch + 1 RETURNING epoch")
        .get_result::<Row>(&mut first);
    let wal = diesel::select(CurrentWal).get_result::<String>(&mut second);
    let (row, wal) = futures_util::try_join!(bumped, wal)?;
    Ok((row.epoch, wal))
}

/// A replica's replay position (NULL on a primary).
pub async fn replay_wal(conn: &mut AsyncPgConnection) -> QueryResult<Option<String>> {
    diesel::select(ReplayWal).get_result(conn).await
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
