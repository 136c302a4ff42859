//! A key's claim (migration `idempotency_per_record`): before a write with an
//! `Idempotency-Key`, the key is claimed on the shard that owns its *home slot* (a hash
//! of caller and key: [`crate::store::IdempotencyKey::home_key`]), in its own one-statement
//! transaction. The claim holds the request's fingerprint; the statement answers the
//! fingerprint the key is claimed with, this request's or an earlier one's, so the same
//! key sent with another request is refused whichever shards the two requests write to.
//!
//! Taken in its own transaction, not the write's: a write's shards are not the home's,
//! and a claim whose write failed is what a retry needs anyway (the same request finds
//! its own claim and writes). An expired claim is taken over; an unexpired one is
//! returned as it is (the conflict's `DO UPDATE` locks it and returns its row even
//! when a concurrent request committed it after this statement's snapshot). The home
//! slot is claimed like a record's (`shardgate_claim`: SG001 on a shard that does not
//! own it), and the claim carries it, so it moves with the slot.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sql_types::{BigInt, Bytea, Integer, Text};
use diesel::QueryResult;

use crate::store::idempotency_key::IdempotencyKey;

/// The claim of the idempotency key at its home slot. Binds: `$1` caller, `$2` key (text),
/// `$3` fingerprint (bytea), `$4` home slot (int4), `$5` seconds to live (int8), `$6`
/// the slot again (int4, for the ownership check). Returns the claim's fingerprint.
#[derive(Debug, Clone, Copy)]
pub(in crate::store) struct ClaimKey<'a> {
    pub(in crate::store) idempotency: &'a IdempotencyKey,
    pub(in crate::store) slot: i32,
}

impl QueryFragment<Pg> for ClaimKey<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let k = self.idempotency;
        out.push_sql(
            "INSERT INTO shardgate_idempotency_claims AS c \
             (caller, key, fingerprint, slot, expires_at) SELECT ",
        );
        out.push_bind_param::<Text, _>(&k.caller)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&k.key)?;
        out.push_sql(", ");
        out.push_bind_param::<Bytea, _>(&k.fingerprint[..])?;
        out.push_sql(", ");
        out.push_bind_param::<Integer, _>(&self.slot)?;
        out.push_sql(", now() + ");
        out.push_bind_param::<BigInt, _>(&k.ttl_secs)?;
        out.push_sql(" * interval '1 second' WHERE (SELECT shardgate_claim(");
        out.push_bind_param::<Integer, _>(&self.slot)?;
        out.push_sql(
            ")) ON CONFLICT (caller, key) DO UPDATE SET \
             fingerprint = CASE WHEN c.expires_at <= now() THEN excluded.fingerprint \
             ELSE c.fingerprint END, \
             created_at = CASE WHEN c.expires_at <= now() THEN now() ELSE c.created_at END, \
             expires_at = CASE WHEN c.expires_at <= now() THEN excluded.expires_at \
             ELSE c.expires_at END, slot = excluded.slot \
             RETURNING fingerprint",
        );
        Ok(())
    }
}
