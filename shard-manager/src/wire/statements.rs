//! The statements a wire connection prepares when it opens, each under its own name:
//! for a write `BEGIN`, the upsert (one record or many), the delete, each also with an
//! idempotency key, the conditional replace and delete, `COMMIT` and the statement read after the commit; for a read the
//! point read and the replay position; the lists' shapes and an export's page. Their
//! text, with what each binds, is in `store::statements`; here are their names and
//! parameter types. They are prepared with a connection's first exchange (see
//! [`start`]), and again after PostgreSQL said they are stale (see [`run`]). (An
//! `INSERT` is prepared on a replica too: preparing is allowed there, only running it
//! is refused.)

use std::sync::OnceLock;

use postgres_protocol::message::backend::DataRowBody;
use postgres_protocol::message::frontend;

use super::codec::values::{
    BOOL, BYTEA, INT4, INT4_ARRAY, INT8, INT8_ARRAY, JSONB, JSONB_ARRAY, TEXT, TEXT_ARRAY,
    TIMESTAMPTZ,
};
use super::conn::{Refused, WireConn};
use super::error::WireError;
use crate::error::retry::{policy, Cause, Retry, Work};
use crate::store::statements as sql;
use crate::store::ListShape;

pub(super) const BEGIN: &str = "sg_begin";
pub(super) const UPSERT: &str = "sg_upsert";
pub(super) const COMMIT: &str = "sg_commit";
pub(super) const COMMIT_POSITION: &str = "sg_after_commit";
pub(super) const FIND: &str = "sg_find";
pub(super) const REPLAY_WAL: &str = "sg_replay_wal";
pub(super) const UPSERT_MANY: &str = "sg_upsert_many";
pub(super) const DELETE: &str = "sg_delete";
pub(super) const REPLACE_IF: &str = "sg_replace_if";
pub(super) const DELETE_IF: &str = "sg_delete_if";
pub(super) const UPSERT_IDEMPOTENT: &str = "sg_upsert_idempotent";
pub(super) const DELETE_IDEMPOTENT: &str = "sg_delete_idempotent";
pub(super) const UPSERT_MANY_IDEMPOTENT: &str = "sg_upsert_many_idempotent";
pub(super) const CLAIM: &str = "sg_claim";
pub(super) const TXN_LOCK: &str = "sg_txn_lock";
/// A group commit's bound on lock waits, for its transaction only (see `write::group`).
pub(super) const LOCK_BOUND: &str = "sg_lock_bound";
pub(super) const EXPORT: &str = "sg_export";
pub(super) const TXN_SEEN: &str = "sg_txn_seen";
pub(super) const TXN_ENTRY: &str = "sg_txn_remember";
/// The list statement's shapes, indexed by `store::ListShape::index`.
pub(super) const LISTS: [&str; ListShape::COUNT] = [
    "sg_list_0",
    "sg_list_1",
    "sg_list_2",
    "sg_list_3",
    "sg_list_4",
    "sg_list_5",
    "sg_list_6",
    "sg_list_7",
];

/// The parameter types of each write's own binds.
const UPSERT_TYPES: [u32; 6] = [TEXT, TEXT, TEXT, INT4, JSONB, INT4];
const UPSERT_MANY_TYPES: [u32; 6] = [
    TEXT_ARRAY,
    TEXT_ARRAY,
    TEXT_ARRAY,
    INT4_ARRAY,
    JSONB_ARRAY,
    INT4_ARRAY,
];
const DELETE_TYPES: [u32; 4] = [INT4, TEXT, TEXT, TEXT];
/// After a conditional write's own binds: any version will do, else which (see
/// `store::Precondition`).
const CONDITION_TYPES: [u32; 2] = [BOOL, INT8_ARRAY];
/// Around a write sent with a key: the key's lookup (caller, key) before the write's
/// binds, and the entry kept (caller, key, fingerprint, slot, seconds to live) after.
const PRIOR_TYPES: [u32; 2] = [TEXT, TEXT];
const KEPT_TYPES: [u32; 5] = [TEXT, TEXT, BYTEA, INT4, INT8];
/// Around a bulk group sent with a key: the lookup of its records' entries
/// (fingerprint, caller, key, tables, shard keys, ids) before, and the entries kept
/// (caller, key, fingerprint, seconds to live) after.
const BATCH_PRIOR_TYPES: [u32; 6] = [BYTEA, TEXT, TEXT, TEXT_ARRAY, TEXT_ARRAY, TEXT_ARRAY];
const BATCH_KEPT_TYPES: [u32; 4] = [TEXT, TEXT, BYTEA, INT8];

/// Starts an exchange that runs prepared statements. On a connection's first exchange
/// every statement is prepared in the same send (Parse messages ahead of the
/// statements that use them: no extra round trip), so a failure to prepare (a shard
/// without its schema) is the first request's error, classified like any other, and
/// the connection is not reused; once every statement is prepared, a refusal later in
/// the same exchange leaves the connection as usable as any other (see
/// `WireConn::exchange`).
pub(super) fn start(conn: &mut WireConn) -> Result<(), WireError> {
    conn.start();
    if conn.prepared {
        return Ok(());
    }
    let statements = prepared();
    conn.preparing = statements.len();
    // Statements PostgreSQL called stale may still exist under their names: closing
    // one that does not is no error, so each is closed first.
    let stale = std::mem::take(&mut conn.stale);
    for (name, text, types) in statements {
        if stale {
            frontend::close(b'S', name, &mut conn.out)?;
        }
        frontend::parse(name, text, types, &mut conn.out)?;
    }
    Ok(())
}

/// Every statement a connection prepares: its name, its text and its parameters' types.
fn prepared() -> Vec<(&'static str, &'static str, Vec<u32>)> {
    let idempotent = |own: &[u32]| [&PRIOR_TYPES[..], own, &KEPT_TYPES].concat();
    let mut statements = vec![
        (BEGIN, sql::BEGIN, vec![]),
        (COMMIT, sql::COMMIT, vec![]),
        (COMMIT_POSITION, sql::COMMIT_POSITION, vec![]),
        (UPSERT, sql::UPSERT, UPSERT_TYPES.to_vec()),
        (UPSERT_MANY, sql::UPSERT_MANY, UPSERT_MANY_TYPES.to_vec()),
        (DELETE, sql::DELETE, DELETE_TYPES.to_vec()),
        (
            REPLACE_IF,
            sql::REPLACE_IF,
            [&UPSERT_TYPES[..], &CONDITION_TYPES].concat(),
        ),
        (
            DELETE_IF,
            sql::DELETE_IF,
            [&DELETE_TYPES[..], &CONDITION_TYPES].concat(),
        ),
        (
            UPSERT_IDEMPOTENT,
            sql::UPSERT_IDEMPOTENT,
            idempotent(&UPSERT_TYPES),
        ),
        (
            UPSERT_MANY_IDEMPOTENT,
            sql::UPSERT_MANY_IDEMPOTENT,
            [
                &BATCH_PRIOR_TYPES[..],
                &UPSERT_MANY_TYPES,
                &BATCH_KEPT_TYPES,
            ]
            .concat(),
        ),
        (
            DELETE_IDEMPOTENT,
            sql::DELETE_IDEMPOTENT,
            idempotent(&DELETE_TYPES),
        ),
        (CLAIM, sql::CLAIM, vec![TEXT, TEXT, BYTEA, INT4, INT8, INT4]),
        (FIND, sql::FIND, vec![INT4, TEXT, TEXT, TEXT]),
        (
            TXN_LOCK,
            sql::TXN_LOCK,
            vec![INT4, TEXT, TEXT, TEXT, INT8, INT4],
        ),
        (
            TXN_SEEN,
            sql::TXN_SEEN,
            vec![TEXT, TEXT, TEXT, TEXT, TEXT, INT8, INT4],
        ),
        (
            TXN_ENTRY,
            sql::TXN_ENTRY,
            vec![TEXT, TEXT, BYTEA, INT4, TEXT, TEXT, TEXT, INT8, BOOL],
        ),
        (LOCK_BOUND, sql::LOCK_BOUND, vec![TEXT]),
        (REPLAY_WAL, sql::REPLAY_WAL, vec![]),
        (EXPORT, sql::EXPORT_PAGE, vec![TEXT, TEXT, TEXT, TEXT, INT8]),
    ];
    for shape in ListShape::all() {
        statements.push((LISTS[shape.index()], list_text(shape), list_types(shape)));
    }
    statements
}

/// The list statement's text in `shape`, built once per process.
fn list_text(shape: ListShape) -> &'static str {
    static TEXTS: OnceLock<Vec<String>> = OnceLock::new();
    &TEXTS.get_or_init(|| ListShape::all().map(sql::list).collect())[shape.index()]
}

/// Runs one exchange of prepared statements: [`start`], then `bind` buffers their
/// Binds and Executes, then the exchange; `statement` is the one the exchange is for
/// (a write's is framed by `BEGIN`, `COMMIT` and the position read), which a refusal
/// names. When PostgreSQL refused because the statements are stale (see
/// `ServerError::invalidates_statements`) and nothing the exchange sent took effect,
/// the retry policy has them prepared again and the exchange sent once more on the
/// same connection; a refusal that came after a commit is returned as it is, never
/// sent twice.
pub(super) async fn run(
    conn: &mut WireConn,
    statement: &'static str,
    bind: impl Fn(&mut WireConn) -> Result<(), WireError>,
) -> Result<Vec<DataRowBody>, WireError> {
    let named = |e: WireError| e.in_statement(kind(statement));
    start(conn)?;
    bind(conn)?;
    match conn.exchange().await.map_err(named)? {
        Ok(rows) => return Ok(rows),
        Err(Refused {
            error,
            committed_nothing: true,
            ..
        }) if error.invalidates_statements()
            && policy(Cause::StaleStatements, work(statement)) == Retry::PrepareAgainOnce =>
        {
            tracing::info!(sqlstate = %error.code, statement = kind(statement), error = %error.message, "prepared statements are stale; preparing them again");
        }
        Err(refused) => return Err(named(refused.error.into())),
    }
    start(conn)?;
    bind(conn)?;
    conn.exchange()
        .await
        .map_err(named)?
        .map_err(|refused| named(refused.error.into()))
}

/// A statement's kind as errors name it: its prepared name without our prefix.
fn kind(statement: &'static str) -> &'static str {
    statement.strip_prefix("sg_").unwrap_or(statement)
}

/// What kind of work a statement does, for the retry policy.
fn work(statement: &str) -> Work {
    match statement {
        UPSERT | UPSERT_MANY | DELETE | REPLACE_IF | DELETE_IF | TXN_LOCK => {
            Work::Write { keyed: false }
        }
        TXN_SEEN | TXN_ENTRY => Work::Write { keyed: true },
        UPSERT_IDEMPOTENT | DELETE_IDEMPOTENT | UPSERT_MANY_IDEMPOTENT | CLAIM => {
            Work::Write { keyed: true }
        }
        _ => Work::Read,
    }
}

/// The parameter types of a list shape (see `store::statements::list` for the binds).
fn list_types(shape: ListShape) -> Vec<u32> {
    let mut types = vec![TEXT];
    if shape.keyed {
        types.extend([INT4, TEXT]);
    }
    if shape.filtered {
        types.push(JSONB);
    }
    if shape.after {
        types.extend([TIMESTAMPTZ, TEXT, TEXT]);
    }
    types.push(INT8);
    types
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The highest `$n` a statement's text binds.
    fn binds(text: &str) -> usize {
        text.split('$')
            .skip(1)
            .filter_map(|s| {
                let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().ok()
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn every_statement_declares_as_many_types_as_its_text_binds() {
        let all = prepared();
        assert_eq!(all.len(), 19 + ListShape::COUNT);
        for (name, text, types) in all {
            assert_eq!(binds(text), types.len(), "{name}: {text}");
        }
    }

    #[test]
    fn every_statement_has_a_name_of_its_own() {
        let mut names: Vec<&str> = prepared().into_iter().map(|(name, ..)| name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 19 + ListShape::COUNT);
    }

    #[test]
    fn each_list_shape_is_prepared_under_its_own_name_with_its_text() {
        for shape in ListShape::all() {
            assert_eq!(list_text(shape), sql::list(shape));
            assert_eq!(LISTS[shape.index()], format!("sg_list_{}", shape.index()));
        }
    }
}
