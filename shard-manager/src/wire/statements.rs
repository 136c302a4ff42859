//! The statements a wire connection prepares when it opens, each under its own name:
//! for a write `BEGIN`, the upsert (one record or many), the delete, each also with an
//! idempotency key, `COMMIT` and the statement read after the commit; for a read the
//! point read and the replay position; the lists' shapes and an export's page. Their text comes from the store
//! (`store::wire_statements`), rendered once per process; they are prepared with a
//! connection's first exchange (see [`start`]), and again after PostgreSQL said they
//! are stale (see [`run`]). (An `INSERT` is prepared on a replica too: preparing is
//! allowed there, only running it is refused.)

use std::sync::OnceLock;

use postgres_protocol::message::backend::DataRowBody;
use postgres_protocol::message::frontend;

use super::codec::values::{
    BOOL, BYTEA, INT4, INT4_ARRAY, INT8, JSONB, JSONB_ARRAY, TEXT, TEXT_ARRAY, TIMESTAMPTZ,
};
use super::conn::{Refused, WireConn};
use super::error::WireError;
use crate::error::retry::{policy, Cause, Retry, Work};
use crate::store::sql::export::EXPORT_PAGE;
use crate::store::{wire_statements, ListShape, WireStatements};

pub(super) const BEGIN: &str = "sg_begin";
pub(super) const UPSERT: &str = "sg_upsert";
pub(super) const COMMIT: &str = "sg_commit";
pub(super) const COMMIT_POSITION: &str = "sg_after_commit";
pub(super) const FIND: &str = "sg_find";
pub(super) const REPLAY_WAL: &str = "sg_replay_wal";
pub(super) const UPSERT_MANY: &str = "sg_upsert_many";
pub(super) const DELETE: &str = "sg_delete";
pub(super) const UPSERT_IDEMPOTENT: &str = "sg_upsert_remembered";
pub(super) const DELETE_IDEMPOTENT: &str = "sg_delete_remembered";
pub(super) const UPSERT_MANY_IDEMPOTENT: &str = "sg_upsert_many_remembered";
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
/// Around a write sent with a key: the key's lookup (caller, key) before the write's
/// binds, and the entry kept (caller, key, fingerprint, slot, seconds to live) after.
const PRIOR_TYPES: [u32; 2] = [TEXT, TEXT];
const KEPT_TYPES: [u32; 5] = [TEXT, TEXT, BYTEA, INT4, INT8];
/// Around a bulk group sent with a key: the lookup of its records' entries
/// (fingerprint, caller, key, tables, shard keys, ids) before, and the entries kept
/// (caller, key, fingerprint, seconds to live) after.
const BATCH_PRIOR_TYPES: [u32; 6] = [BYTEA, TEXT, TEXT, TEXT_ARRAY, TEXT_ARRAY, TEXT_ARRAY];
const BATCH_KEPT_TYPES: [u32; 4] = [TEXT, TEXT, BYTEA, INT8];

fn texts() -> Result<&'static WireStatements, WireError> {
    static TEXTS: OnceLock<Result<WireStatements, String>> = OnceLock::new();
    TEXTS
        .get_or_init(|| wire_statements().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| WireError::Protocol(format!("the write statements do not render: {e}")))
}

/// The position-read statement's text (run as a simple query after `COMMIT PREPARED`).
pub(super) fn commit_position_text() -> Result<&'static str, WireError> {
    Ok(&texts()?.commit_position)
}

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
    let texts = texts()?;
    let idempotent = |own: &[u32]| [&PRIOR_TYPES[..], own, &KEPT_TYPES].concat();
    let mut statements: Vec<(&str, &str, Vec<u32>)> = vec![
        (BEGIN, "BEGIN", vec![]),
        (COMMIT, "COMMIT", vec![]),
        (COMMIT_POSITION, &texts.commit_position, vec![]),
        (UPSERT, &texts.upsert, UPSERT_TYPES.to_vec()),
        (UPSERT_MANY, &texts.upsert_many, UPSERT_MANY_TYPES.to_vec()),
        (DELETE, &texts.delete, DELETE_TYPES.to_vec()),
        (
            UPSERT_IDEMPOTENT,
            &texts.upsert_idempotent,
            idempotent(&UPSERT_TYPES),
        ),
        (
            UPSERT_MANY_IDEMPOTENT,
            &texts.upsert_many_idempotent,
            [
                &BATCH_PRIOR_TYPES[..],
                &UPSERT_MANY_TYPES,
                &BATCH_KEPT_TYPES,
            ]
            .concat(),
        ),
        (
            DELETE_IDEMPOTENT,
            &texts.delete_idempotent,
            idempotent(&DELETE_TYPES),
        ),
        (
            CLAIM,
            &texts.claim,
            vec![TEXT, TEXT, BYTEA, INT4, INT8, INT4],
        ),
        (FIND, &texts.find, vec![INT4, TEXT, TEXT, TEXT]),
        (
            TXN_LOCK,
            &texts.txn_lock,
            vec![INT4, TEXT, TEXT, TEXT, INT8, INT4],
        ),
        (
            TXN_SEEN,
            &texts.txn_seen,
            vec![TEXT, TEXT, TEXT, TEXT, TEXT, INT8, INT4],
        ),
        (
            TXN_ENTRY,
            &texts.txn_entry,
            vec![TEXT, TEXT, BYTEA, INT4, TEXT, TEXT, TEXT, INT8, BOOL],
        ),
        (
            LOCK_BOUND,
            "SELECT set_config('lock_timeout', $1, true)",
            vec![TEXT],
        ),
        (REPLAY_WAL, &texts.replay_wal, vec![]),
        (EXPORT, EXPORT_PAGE, vec![TEXT, TEXT, TEXT, TEXT, INT8]),
    ];
    for shape in ListShape::all() {
        let i = shape.index();
        statements.push((LISTS[i], &texts.lists[i], list_types(shape)));
    }
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
        UPSERT | UPSERT_MANY | DELETE | TXN_LOCK => Work::Write { keyed: false },
        TXN_SEEN | TXN_ENTRY => Work::Write { keyed: true },
        UPSERT_IDEMPOTENT | DELETE_IDEMPOTENT | UPSERT_MANY_IDEMPOTENT | CLAIM => {
            Work::Write { keyed: true }
        }
        _ => Work::Read,
    }
}

/// The parameter types of a list shape (see `store::list_statement` for the binds).
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

    #[test]
    fn every_list_shape_declares_as_many_types_as_its_text_binds() {
        let texts = texts().expect("renders");
        for shape in ListShape::all() {
            let text = &texts.lists[shape.index()];
            let n = list_types(shape).len();
            assert!(text.contains(&format!("${n}")), "${n} not in {text}");
            assert!(!text.contains(&format!("${}", n + 1)), "{text}");
            assert_eq!(text.contains("shardgate_serves($2)"), shape.keyed, "{text}");
            assert_eq!(text.contains("@>"), shape.filtered, "{text}");
            assert_eq!(
                text.contains("(updated_at, shard_key, id) <"),
                shape.after,
                "{text}"
            );
        }
        let full = ListShape {
            keyed: true,
            filtered: true,
            after: true,
        };
        assert_eq!(
            texts.lists[full.index()],
            "SELECT \"records\".\"table_name\", \"records\".\"shard_key\", \"records\".\"id\", \
             \"records\".\"slot\", \"records\".\"data\", \"records\".\"version\", \
             \"records\".\"created_at\", \"records\".\"updated_at\" FROM \"records\" \
             WHERE (((((\"records\".\"table_name\" = $1) AND (SELECT shardgate_serves($2))) \
             AND (\"records\".\"shard_key\" = $3)) AND (\"records\".\"data\" @> $4)) \
             AND (updated_at, shard_key, id) < ($5, $6, $7)) \
             ORDER BY \"records\".\"updated_at\" DESC, \"records\".\"shard_key\" DESC, \
             \"records\".\"id\" DESC LIMIT $8"
        );
    }
}
