//! The SQL of [`crate::store::idempotent_answer`]: each write's statement with the idempotency
//! entry it keeps (data-modifying CTEs, one statement so one transaction). `prior` finds
//! the caller's unexpired entry; the write runs only without one; `kept` stores the
//! answer, and raises SG002 when another request's entry committed meanwhile.
//!
//! Each statement has fixed text, rendered once per process (`statement_text`) and
//! prepared once per wire connection.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sql_types::{Array, BigInt, Bytea, Integer, Nullable, Text};
use diesel::QueryResult;

use super::expressions::{UpsertMany, UpsertOne};
use crate::store::idempotency_key::IdempotencyKey;
use crate::store::row::NewRecord;

/// `WITH prior AS (...)`: the caller's unexpired answer under the key, if any.
fn push_prior<'b>(out: &mut AstPass<'_, 'b, Pg>, k: &'b IdempotencyKey) -> QueryResult<()> {
    out.push_sql(
        "WITH prior AS (SELECT fingerprint, answer FROM shardgate_idempotency \
         WHERE caller = ",
    );
    out.push_bind_param::<Text, _>(&k.caller)?;
    out.push_sql(" AND key = ");
    out.push_bind_param::<Text, _>(&k.key)?;
    out.push_sql(" AND expires_at > now()), ");
    Ok(())
}

/// `kept AS (INSERT ...)`: stores `answer` (SQL over the earlier CTEs) under the key,
/// replacing an expired entry; an unexpired one that committed meanwhile raises SG002.
/// `rest` completes the SELECT (a FROM or a WHERE).
fn push_kept<'b>(
    out: &mut AstPass<'_, 'b, Pg>,
    k: &'b IdempotencyKey,
    slot: &'b Option<i32>,
    answer: &str,
    rest: &str,
) -> QueryResult<()> {
    out.push_sql(
        "kept AS (INSERT INTO shardgate_idempotency AS i \
         (caller, key, fingerprint, slot, answer, expires_at) SELECT ",
    );
    out.push_bind_param::<Text, _>(&k.caller)?;
    out.push_sql(", ");
    out.push_bind_param::<Text, _>(&k.key)?;
    out.push_sql(", ");
    out.push_bind_param::<Bytea, _>(&k.fingerprint[..])?;
    out.push_sql(", ");
    out.push_bind_param::<Nullable<Integer>, _>(slot)?;
    out.push_sql(", ");
    out.push_sql(answer);
    out.push_sql(", now() + ");
    out.push_bind_param::<BigInt, _>(&k.ttl_secs)?;
    out.push_sql(" * interval '1 second' ");
    out.push_sql(rest);
    out.push_sql(
        " ON CONFLICT (caller, key) DO UPDATE SET fingerprint = excluded.fingerprint, \
         slot = excluded.slot, answer = excluded.answer, created_at = now(), \
         expires_at = excluded.expires_at \
         WHERE CASE WHEN i.expires_at <= now() THEN true \
         ELSE shardgate_idempotency_taken() END) ",
    );
    Ok(())
}

/// The upsert of [`super::expressions::UpsertOne`] with its answer kept.
#[derive(Debug, Clone, Copy)]
pub(in crate::store) struct UpsertOneIdempotent<'a> {
    pub(in crate::store) rec: &'a NewRecord<'a>,
    pub(in crate::store) idempotency: &'a IdempotencyKey,
    /// The record's slot, kept with the answer.
    pub(in crate::store) slot: Option<i32>,
}

impl QueryFragment<Pg> for UpsertOneIdempotent<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        push_prior(&mut out, self.idempotency)?;
        out.push_sql("up AS (");
        UpsertOne(self.rec).push_upsert(
            &mut out,
            " AND NOT EXISTS (SELECT 1 FROM prior)",
            "id, version, created_at, updated_at, (xmax = 0) AS created",
        )?;
        out.push_sql("), ");
        push_kept(
            &mut out,
            self.idempotency,
            &self.slot,
            "jsonb_build_object('id', id, 'version', version, 'created', created, \
             'created_at', created_at, 'updated_at', updated_at)",
            "FROM up",
        )?;
        out.push_sql(
            "SELECT version, created_at, updated_at, created, NULL::bytea, NULL::jsonb FROM up \
             UNION ALL SELECT NULL, NULL, NULL, NULL, fingerprint, answer FROM prior",
        );
        Ok(())
    }
}

/// The delete (`crate::wire::delete`, whose text `statement_text` renders) with its answer kept.
#[derive(Debug, Clone, Copy)]
pub(in crate::store) struct DeleteIdempotent<'a> {
    pub(in crate::store) table: &'a str,
    pub(in crate::store) key: &'a str,
    pub(in crate::store) slot: i32,
    pub(in crate::store) id: &'a str,
    pub(in crate::store) idempotency: &'a IdempotencyKey,
    /// `slot` again, as kept with the answer.
    pub(in crate::store) kept_slot: Option<i32>,
}

impl QueryFragment<Pg> for DeleteIdempotent<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        push_prior(&mut out, self.idempotency)?;
        // One claim for both the delete and the kept answer: a delete of nothing must
        // not keep an answer for a slot the shard does not own.
        out.push_sql("claimed AS (SELECT shardgate_claim(");
        out.push_bind_param::<Integer, _>(&self.slot)?;
        out.push_sql(
            ") AS ok), gone AS (DELETE FROM records WHERE (SELECT ok FROM claimed) \
             AND NOT EXISTS (SELECT 1 FROM prior) AND table_name = ",
        );
        out.push_bind_param::<Text, _>(&self.table)?;
        out.push_sql(" AND shard_key = ");
        out.push_bind_param::<Text, _>(&self.key)?;
        out.push_sql(" AND id = ");
        out.push_bind_param::<Text, _>(&self.id)?;
        out.push_sql(" RETURNING nextval('record_version_seq') AS version), ");
        push_kept(
            &mut out,
            self.idempotency,
            &self.kept_slot,
            "jsonb_build_object('deleted', EXISTS (SELECT 1 FROM gone))",
            "WHERE NOT EXISTS (SELECT 1 FROM prior) AND (SELECT ok FROM claimed)",
        )?;
        out.push_sql(
            "SELECT (SELECT version FROM gone), NULL::bytea, NULL::jsonb \
             WHERE NOT EXISTS (SELECT 1 FROM prior) \
             UNION ALL SELECT NULL, fingerprint, answer FROM prior",
        );
        Ok(())
    }
}

/// One shard's group of a bulk write ([`UpsertMany`]) with an entry kept per record
/// (`shardgate_idempotency_records`, each with the record's slot): the records that
/// already have one under the caller's key are not written again and come back with
/// their entry's fingerprint and the version it kept; an entry with another request's fingerprint writes
/// nothing (the key was reused). Binds: `$1` fingerprint, `$2` caller, `$3` key, `$4`
/// to `$6` the batch's tables, shard keys and ids; the upsert's own from `$7`; then
/// caller, key, fingerprint and seconds to live of the entries kept.
#[derive(Debug, Clone)]
pub(in crate::store) struct UpsertManyIdempotent<'a> {
    pub(in crate::store) rows: UpsertMany<'a>,
    pub(in crate::store) idempotency: &'a IdempotencyKey,
}

impl QueryFragment<Pg> for UpsertManyIdempotent<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let k = self.idempotency;
        out.push_sql(
            "WITH prior AS (SELECT e.table_name, e.shard_key, e.id, e.fingerprint, \
             (e.answer->>'version')::bigint AS version, e.fingerprint <> ",
        );
        out.push_bind_param::<Bytea, _>(&k.fingerprint[..])?;
        out.push_sql(" AS other FROM shardgate_idempotency_records e WHERE e.caller = ");
        out.push_bind_param::<Text, _>(&k.caller)?;
        out.push_sql(" AND e.key = ");
        out.push_bind_param::<Text, _>(&k.key)?;
        out.push_sql(
            " AND e.expires_at > now() AND (e.table_name, e.shard_key, e.id) IN \
             (SELECT * FROM unnest(",
        );
        out.push_bind_param::<Array<Text>, _>(&self.rows.tables)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.rows.keys)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.rows.ids)?;
        out.push_sql("))), up AS (");
        self.rows.push_upsert(
            &mut out,
            " AND NOT EXISTS (SELECT 1 FROM prior p WHERE p.table_name = n.table_name \
             AND p.shard_key = n.shard_key AND p.id = n.id) \
             AND NOT EXISTS (SELECT 1 FROM prior WHERE other)",
            "table_name, shard_key, id, slot, version, created_at, updated_at",
        )?;
        out.push_sql(
            "), kept AS (INSERT INTO shardgate_idempotency_records AS i \
             (caller, key, table_name, shard_key, id, slot, fingerprint, answer, expires_at) \
             SELECT ",
        );
        out.push_bind_param::<Text, _>(&k.caller)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&k.key)?;
        out.push_sql(", table_name, shard_key, id, slot, ");
        out.push_bind_param::<Bytea, _>(&k.fingerprint[..])?;
        out.push_sql(", jsonb_build_object('version', version), now() + ");
        out.push_bind_param::<BigInt, _>(&k.ttl_secs)?;
        out.push_sql(
            " * interval '1 second' FROM up \
             ON CONFLICT (caller, key, table_name, shard_key, id) DO UPDATE SET \
             slot = excluded.slot, fingerprint = excluded.fingerprint, \
             answer = excluded.answer, created_at = now(), expires_at = excluded.expires_at \
             WHERE CASE WHEN i.expires_at <= now() THEN true \
             ELSE shardgate_idempotency_taken() END) \
             SELECT shard_key, id, version, created_at, updated_at, NULL::bytea FROM up \
             UNION ALL SELECT shard_key, id, version, NULL, NULL, fingerprint FROM prior",
        );
        Ok(())
    }
}
