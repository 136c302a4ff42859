//! Group commit: single writes for one primary that arrive together run in one
//! transaction, `BEGIN`, each write's own statement, `COMMIT` and the position read,
//! behind one Sync: one send, one commit, one fsync and one synchronous-replication
//! wait for all of them, and one flush back.
//!
//! Each write is encoded by its own request before it joins, and reads its own rows
//! afterwards (`encoded`): the group knows nothing of what its writes are. Every
//! write keeps its own statement, so its own slot check (SG001), its own idempotency
//! lookup and entry, and its own rows; what they share is the transaction, so the
//! commit and the position read after it (which covers every write of the group).
//!
//! When PostgreSQL refuses one write, the server skips the rest and the transaction is
//! rolled back: nothing of the group committed. [`commit_group`] says which write was
//! refused ([`GroupEnd::Refused`]), and the caller answers that one and sends the others
//! again, so one bad write never fails the others and nothing is written twice.
//!
//! A group may bound its lock waits (`lock_timeout`, for its transaction only): a write
//! that waits on a lock (a row a transaction in doubt holds, a slot under a move's
//! fence) is then refused within the bound (SQLSTATE 55P03) instead of holding the
//! whole group back, and the caller sends it alone, where it waits as it always did.

use super::commit::commit_position;
use super::encoded::{Framed, Rows};
use crate::store::CommitPosition;
use crate::wire::codec::values::Param;
use crate::wire::conn::WireConn;
use crate::wire::error::WireError;
use crate::wire::statements::{self, BEGIN, COMMIT, COMMIT_POSITION, LOCK_BOUND};

/// How a group ended.
#[derive(Debug)]
pub enum GroupEnd {
    /// Every write committed, in one commit: each write's rows, in the group's order, and
    /// the position read after the commit.
    Committed(Vec<Rows>, CommitPosition),
    /// PostgreSQL refused write `index`; the transaction was rolled back, so nothing of
    /// the group committed, and the connection is usable.
    Refused { index: usize, error: WireError },
    /// Refused outside any one write (at `BEGIN` or the bound, or the statements were
    /// stale); nothing committed, the connection is usable.
    RefusedAll(WireError),
    /// Refused at or after `COMMIT`: the group may have committed.
    Uncertain(WireError),
}

/// Runs `writes` in one transaction (see the module doc); with `lock_bound` (a
/// `lock_timeout` value, such as `"100ms"`), lock waits within it are bounded.
pub async fn commit_group(
    conn: &mut WireConn,
    writes: &[&Framed],
    lock_bound: Option<&str>,
) -> Result<GroupEnd, WireError> {
    let n = writes.len();
    statements::start(conn)?;
    conn.bind_execute(BEGIN, &[])?;
    // The statements before the first write: `BEGIN`, and the bound if any.
    let ahead = match lock_bound {
        Some(bound) => {
            conn.bind_execute(LOCK_BOUND, &[Param::Text(bound)])?;
            2
        }
        None => 1,
    };
    for write in writes {
        conn.out.extend_from_slice(&write.message);
    }
    conn.bind_execute(COMMIT, &[])?;
    conn.bind_execute(COMMIT_POSITION, &[])?;
    // Statement k's rows come after k statements ran to their end: the `ahead` ones
    // first, then the writes, `COMMIT` and the position read.
    let mut rows: Vec<Rows> = (0..n).map(|_| Rows::default()).collect();
    let mut position = None;
    let ended = conn
        .exchange_rows(&mut |done, row| match done {
            k if (ahead..ahead + n).contains(&k) => rows[k - ahead].0.push(row),
            k if k == ahead + n + 1 => position = Some(row),
            _ => {}
        })
        .await?;
    match ended {
        Ok(()) => {
            let position = position.ok_or_else(|| {
                WireError::Protocol(
                    "a group came back without the position after its commit".into(),
                )
            })?;
            Ok(GroupEnd::Committed(rows, commit_position(&position)?))
        }
        Err(refused) => {
            let at = refused.completed;
            let error = WireError::from(refused.error);
            Ok(match refused.committed_nothing {
                true if (ahead..ahead + n).contains(&at) => GroupEnd::Refused {
                    index: at - ahead,
                    error: error.in_statement(writes[at - ahead].statement()),
                },
                true => GroupEnd::RefusedAll(error),
                false => GroupEnd::Uncertain(error),
            })
        }
    }
}
