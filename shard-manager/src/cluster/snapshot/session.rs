//! One shard's part of a cut: a `REPEATABLE READ READ ONLY` transaction held open on a
//! connection of the shard's primary, by a task of its own that takes commands (open
//! the snapshot, list, a query's page, point reads) until its handle is dropped or its bound passes,
//! then rolls the transaction back and gives the connection back to the pool. The
//! reader waits for every session to hold its connection ([`Session::ready`]) before it
//! takes the fence, so the fence never waits for a pool or a connect.
//!
//! Opening sends, in one round trip, the list of our prepared parts on the server (each
//! with its transaction id) and then `BEGIN ... REPEATABLE READ` with the statement
//! that takes the snapshot and reads it back (`pg_current_snapshot()`): the list is
//! read before the snapshot, so a part absent from it was already committed (or rolled
//! back) when the snapshot was taken, and a part listed is seen by the snapshot iff its
//! transaction id is (see [`super::torn`]). A command that fails leaves the
//! session broken: every later command answers the same failure (the transaction may
//! have been rolled back by then, and nothing is ever read outside it).
//!
//! For the pages after a list's first, a session exports its snapshot
//! (`pg_export_snapshot()`) and is kept (its task holds its own handle and a place
//! among the gateway's held snapshots) until its bound passes; another session, on any
//! gateway, then imports it (`SET TRANSACTION SNAPSHOT`) to read the same cut.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::holds::Hold;

use crate::cluster::query::{ShardAnswer, ShardQuery};
use crate::error::ClusterError;
use crate::routing::{Role, ShardId};
use crate::servers::Server;
use crate::store::statements::{
    set_snapshot, BEGIN_SNAPSHOT, EXPORT_SNAPSHOT, PREPARED_PART_XIDS, ROLLBACK, TAKE_SNAPSHOT,
};
use crate::store::{ListQuery, Page, Record};
use crate::wire::read::PointRead;
use crate::wire::{WireConn, WireError};

use super::torn::PreparedPart;

/// What opening the snapshot found.
#[derive(Debug, Clone)]
pub struct Opened {
    /// Our prepared parts on the server just before the snapshot was taken.
    pub prepared: Vec<PreparedPart>,
    /// `pg_current_snapshot()`: xmin:xmax:xip of the cut on this shard.
    pub snapshot: String,
    /// The primary's WAL position when the snapshot was taken.
    pub lsn: String,
}

type Reply<T> = oneshot::Sender<Result<T, ClusterError>>;

enum Command {
    /// Answers once the session holds its connection (nothing is sent).
    Ready { reply: Reply<()> },
    /// Rolls back the snapshot held (if any), then opens a new one.
    Open { reply: Reply<Opened> },
    /// Opens a transaction on a snapshot another session exported.
    Import {
        exported: String,
        reply: Reply<Opened>,
    },
    /// Exports the snapshot held.
    Export { reply: Reply<String> },
    /// Keeps the transaction open until the bound passes, whoever drops the handle.
    Keep {
        permit: Arc<Hold>,
        itself: mpsc::Sender<Command>,
    },
    List {
        table: String,
        query: ListQuery,
        reply: Reply<Page>,
    },
    /// A query's page (and its count and plan, when asked).
    Query {
        statements: Arc<ShardQuery>,
        reply: Reply<ShardAnswer>,
    },
    Find {
        reads: Vec<PointRead>,
        reply: Reply<Vec<Option<Record>>>,
    },
}

/// A shard's session: dropping it ends the transaction.
pub struct Session {
    pub shard: ShardId,
    /// The primary's address, as errors name it.
    pub server: String,
    commands: mpsc::Sender<Command>,
    task: tokio::task::JoinHandle<Result<(), ClusterError>>,
}

impl Session {
    /// Starts the task; it checks a connection out of `primary`'s pool at once and
    /// holds it for at most `hold` (and within the server's operation bound). The task
    /// is the caller's thread's (this runs inside a `LocalSet`, an actix-web worker):
    /// the connection stays on the thread whose pool it came from.
    pub fn start(primary: Arc<Server>, hold: Duration) -> Self {
        let (commands, receiver) = mpsc::channel(4);
        let shard = primary.shard;
        let server = primary.addr.clone();
        let task = tokio::task::spawn_local(async move {
            let receiver = tokio::sync::Mutex::new(receiver);
            let deadline = tokio::time::Instant::now() + hold;
            let on = primary.clone();
            primary
                .run(async |conn| serve(conn, &receiver, &on, deadline).await)
                .await
        });
        Self {
            shard,
            server,
            commands,
            task,
        }
    }

    /// Waits until the session holds its connection (checked out of the pool, or
    /// connected): taken before the fence, so the fence never waits for a pool.
    pub async fn ready(&mut self) -> Result<(), ClusterError> {
        self.ask(|reply| Command::Ready { reply }).await
    }

    /// Opens the snapshot (rolling back the one held, if any).
    pub async fn open(&mut self) -> Result<Opened, ClusterError> {
        self.ask(|reply| Command::Open { reply }).await
    }

    /// Opens a transaction on `exported` (a snapshot another session exported and
    /// still holds); the caller checked its text ([`valid_export`]).
    pub async fn import(&mut self, exported: &str) -> Result<Opened, ClusterError> {
        let exported = exported.to_owned();
        self.ask(|reply| Command::Import { exported, reply }).await
    }

    /// Exports the snapshot held: its name for [`Session::import`].
    pub async fn export(&mut self) -> Result<String, ClusterError> {
        self.ask(|reply| Command::Export { reply }).await
    }

    /// Keeps the transaction (and its exported snapshot) until the session's bound,
    /// holding `permit` as long.
    pub async fn keep(self, permit: Arc<Hold>) {
        let itself = self.commands.clone();
        let _ = self.commands.send(Command::Keep { permit, itself }).await;
    }

    /// One page of a list, every key's records whose slot the shard owns.
    pub async fn list(&mut self, table: &str, query: &ListQuery) -> Result<Page, ClusterError> {
        let (table, query) = (table.to_owned(), query.clone());
        self.ask(|reply| Command::List {
            table,
            query,
            reply,
        })
        .await
    }

    /// One page of a query (the statements every shard runs for it).
    pub async fn query(
        &mut self,
        statements: Arc<ShardQuery>,
    ) -> Result<ShardAnswer, ClusterError> {
        self.ask(|reply| Command::Query { statements, reply }).await
    }

    /// Point reads, in order.
    pub async fn find(
        &mut self,
        reads: Vec<PointRead>,
    ) -> Result<Vec<Option<Record>>, ClusterError> {
        self.ask(|reply| Command::Find { reads, reply }).await
    }

    async fn ask<T>(
        &mut self,
        command: impl FnOnce(Reply<T>) -> Command,
    ) -> Result<T, ClusterError> {
        let (reply, answer) = oneshot::channel();
        if self.commands.send(command(reply)).await.is_ok() {
            if let Ok(answer) = answer.await {
                return answer;
            }
        }
        // The task ended (its connection could not be had, or its bound passed): its
        // own error says why.
        Err(match (&mut self.task).await {
            Ok(Err(e)) => e,
            _ => ClusterError::Unavailable {
                shard: self.shard,
                role: Role::Primary,
                server: self.server.clone(),
                reason: "the snapshot's transaction ended (held past its bound)".into(),
                maybe_committed: false,
            },
        })
    }
}

/// Answers commands on `conn` until the handle is dropped or `deadline` passes; the
/// transaction is rolled back before the connection goes back to the pool.
async fn serve(
    conn: &mut WireConn,
    commands: &tokio::sync::Mutex<mpsc::Receiver<Command>>,
    server: &Server,
    deadline: tokio::time::Instant,
) -> Result<(), WireError> {
    let mut commands = commands.lock().await;
    let mut open = false;
    // What a kept session holds until its bound.
    let mut kept = None;
    // The first failure: every later command answers it.
    let mut broken: Option<String> = None;
    loop {
        let command = match tokio::time::timeout_at(deadline, commands.recv()).await {
            Ok(Some(command)) => command,
            _ => break,
        };
        if let Some(reason) = &broken {
            refuse(command, server, reason);
            continue;
        }
        let failed = match command {
            Command::Ready { reply } => {
                let _ = reply.send(Ok(()));
                None
            }
            Command::Open { reply } => {
                let answer = take(conn, open, None).await;
                open = true;
                answer_with(reply, answer, server)
            }
            Command::Import { exported, reply } => {
                let answer = take(conn, open, Some(&exported)).await;
                open = true;
                answer_with(reply, answer, server)
            }
            Command::Export { reply } => {
                let answer = export(conn).await;
                answer_with(reply, answer, server)
            }
            Command::Keep { permit, itself } => {
                kept = Some((permit, itself));
                None
            }
            Command::List {
                table,
                query,
                reply,
            } => {
                let answer = crate::wire::list(conn, &table, None, &query).await;
                answer_with(reply, answer, server)
            }
            Command::Query { statements, reply } => {
                let answer = statements.run(conn).await;
                answer_with(reply, answer, server)
            }
            Command::Find { reads, reply } => {
                let answer = find(conn, &reads).await;
                answer_with(reply, answer, server)
            }
        };
        broken = failed;
    }
    drop(kept);
    if open {
        conn.simple(ROLLBACK).await?;
    }
    Ok(())
}

/// Sends `answer` (an error as the server's failure); the error's text when it failed.
fn answer_with<T>(
    reply: Reply<T>,
    answer: Result<T, WireError>,
    server: &Server,
) -> Option<String> {
    match answer {
        Ok(value) => {
            let _ = reply.send(Ok(value));
            None
        }
        Err(e) => {
            let error = server.failure(e);
            let reason = error.to_string();
            let _ = reply.send(Err(error));
            Some(reason)
        }
    }
}

fn refuse(command: Command, server: &Server, reason: &str) {
    let error = || ClusterError::Unavailable {
        shard: server.shard,
        role: Role::Primary,
        server: server.addr.clone(),
        reason: format!("the snapshot failed earlier: {reason}"),
        maybe_committed: false,
    };
    match command {
        Command::Ready { reply } => drop(reply.send(Err(error()))),
        Command::Open { reply } | Command::Import { reply, .. } => drop(reply.send(Err(error()))),
        Command::Export { reply } => drop(reply.send(Err(error()))),
        Command::Keep { .. } => {}
        Command::List { reply, .. } => drop(reply.send(Err(error()))),
        Command::Query { reply, .. } => drop(reply.send(Err(error()))),
        Command::Find { reply, .. } => drop(reply.send(Err(error()))),
    }
}

/// The prepared list, then a new snapshot (see the module doc); or, with `import`, a
/// transaction on that exported snapshot (no list needed: the cut was checked when it
/// was exported).
async fn take(conn: &mut WireConn, open: bool, import: Option<&str>) -> Result<Opened, WireError> {
    let set;
    let mut statements = Vec::with_capacity(4);
    if open {
        statements.push(ROLLBACK);
    }
    match import {
        None => statements.extend([PREPARED_PART_XIDS, BEGIN_SNAPSHOT]),
        Some(exported) => {
            if !valid_export(exported) {
                return Err(WireError::Protocol(format!(
                    "{exported:?} is not a snapshot name"
                )));
            }
            set = set_snapshot(exported);
            statements.extend([BEGIN_SNAPSHOT, set.as_str()]);
        }
    }
    statements.push(TAKE_SNAPSHOT);
    let mut answers = conn.query_text("snapshot", &statements).await?;
    let taken = answers.pop().unwrap_or_default();
    let row = taken.into_iter().next().unwrap_or_default();
    let text = |i: usize| row.get(i).cloned().flatten();
    let (Some(snapshot), Some(lsn)) = (text(0), text(1)) else {
        return Err(WireError::Protocol(
            "the snapshot statement answered no row".into(),
        ));
    };
    let prepared = match import {
        Some(_) => Vec::new(),
        None => {
            let prepared_at = answers.len().saturating_sub(2);
            let mut parts = Vec::new();
            for row in answers.swap_remove(prepared_at) {
                let mut fields = row.into_iter();
                let (Some(Some(gid)), Some(Some(xid))) = (fields.next(), fields.next()) else {
                    continue;
                };
                let xid = xid.parse().map_err(|_| {
                    WireError::Protocol(format!("prepared part {gid} has transaction id {xid:?}"))
                })?;
                parts.push(PreparedPart { gid, xid });
            }
            parts
        }
    };
    Ok(Opened {
        prepared,
        snapshot,
        lsn,
    })
}

/// `pg_export_snapshot()` of the transaction held.
async fn export(conn: &mut WireConn) -> Result<String, WireError> {
    let mut answers = conn
        .query_text("snapshot_export", &[EXPORT_SNAPSHOT])
        .await?;
    answers
        .pop()
        .and_then(|rows| rows.into_iter().next())
        .and_then(|row| row.into_iter().next().flatten())
        .ok_or_else(|| WireError::Protocol("pg_export_snapshot answered no row".into()))
}

/// Whether `name` looks like what `pg_export_snapshot()` answers (hex digits and
/// dashes, e.g. `00000003-0000001B-1`): it comes back in a client's cursor, and goes
/// into SQL text.
pub fn valid_export(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

/// Point reads inside the transaction; any refusal fails them all (it ended the
/// transaction).
async fn find(conn: &mut WireConn, reads: &[PointRead]) -> Result<Vec<Option<Record>>, WireError> {
    let refs: Vec<&PointRead> = reads.iter().collect();
    crate::wire::read::find_many(conn, &refs)
        .await?
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::valid_export;

    #[test]
    fn only_exported_snapshot_names_reach_sql() {
        assert!(valid_export("00000003-0000001B-1"));
        assert!(!valid_export(""));
        assert!(!valid_export("1'; DROP TABLE records; --"));
        assert!(!valid_export(&"A".repeat(65)));
    }
}
