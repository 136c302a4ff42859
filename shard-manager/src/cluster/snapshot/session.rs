//! One shard's part of a cut: a `REPEATABLE READ READ ONLY` transaction held open on a
//! connection of the shard's primary, by a task of its own that takes commands (open
//! the snapshot, list, point reads) until its handle is dropped or its bound passes,
//! then rolls the transaction back and gives the connection back to the pool. The
//! connection is checked out before the fence is taken, so the fence never waits for a
//! connect.
//!
//! Opening sends, in one round trip, the list of our prepared parts on the server and
//! then `BEGIN ... REPEATABLE READ` with the statement that takes the snapshot: the
//! list is read before the snapshot, so a part absent from it was already committed
//! (or rolled back) when the snapshot was taken. A command that fails leaves the
//! session broken: every later command answers the same failure (the transaction may
//! have been rolled back by then, and nothing is ever read outside it).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::error::ClusterError;
use crate::routing::{Role, ShardId};
use crate::servers::Server;
use crate::store::{ListQuery, Page, Record};
use crate::wire::read::PointRead;
use crate::wire::{WireConn, WireError};

/// Our prepared parts on this server (read before the snapshot is taken).
const PREPARED: &str = "SELECT gid FROM pg_prepared_xacts \
                        WHERE database = current_database() AND gid LIKE 'sg\\_%'";
const BEGIN: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
/// Takes the snapshot (the transaction's first statement), and names it.
const TAKE: &str = "SELECT pg_current_snapshot()::text, pg_current_wal_lsn()::text";
/// As [`TAKE`], and exports the snapshot so other sessions can read the same cut.
const TAKE_AND_EXPORT: &str =
    "SELECT pg_current_snapshot()::text, pg_current_wal_lsn()::text, pg_export_snapshot()";

/// What opening the snapshot found.
#[derive(Debug, Clone)]
pub struct Opened {
    /// Our prepared parts on the server just before the snapshot was taken.
    pub prepared: Vec<String>,
    /// `pg_current_snapshot()`: xmin:xmax:xip of the cut on this shard.
    pub snapshot: String,
    /// The primary's WAL position when the snapshot was taken.
    pub lsn: String,
    /// `pg_export_snapshot()`, when asked.
    pub exported: Option<String>,
}

type Reply<T> = oneshot::Sender<Result<T, ClusterError>>;

enum Command {
    /// Rolls back the snapshot held (if any), then opens a new one.
    Open { export: bool, reply: Reply<Opened> },
    List {
        table: String,
        query: ListQuery,
        reply: Reply<Page>,
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

    /// Opens the snapshot (rolling back the one held, if any).
    pub async fn open(&mut self, export: bool) -> Result<Opened, ClusterError> {
        self.ask(|reply| Command::Open { export, reply }).await
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
            Command::Open { export, reply } => {
                let answer = take(conn, open, export).await;
                open = true;
                answer_with(reply, answer, server)
            }
            Command::List {
                table,
                query,
                reply,
            } => {
                let answer = crate::wire::list(conn, &table, None, &query).await;
                answer_with(reply, answer, server)
            }
            Command::Find { reads, reply } => {
                let answer = find(conn, &reads).await;
                answer_with(reply, answer, server)
            }
        };
        broken = failed;
    }
    if open {
        conn.simple("ROLLBACK").await?;
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
        Command::Open { reply, .. } => drop(reply.send(Err(error()))),
        Command::List { reply, .. } => drop(reply.send(Err(error()))),
        Command::Find { reply, .. } => drop(reply.send(Err(error()))),
    }
}

/// The prepared list, then a new snapshot (see the module doc).
async fn take(conn: &mut WireConn, open: bool, export: bool) -> Result<Opened, WireError> {
    let mut statements = Vec::with_capacity(4);
    if open {
        statements.push("ROLLBACK");
    }
    statements.extend([PREPARED, BEGIN]);
    statements.push(if export { TAKE_AND_EXPORT } else { TAKE });
    let mut answers = conn.query_text("snapshot", &statements).await?;
    let taken = answers.pop().unwrap_or_default();
    let row = taken.into_iter().next().unwrap_or_default();
    let text = |i: usize| row.get(i).cloned().flatten();
    let (Some(snapshot), Some(lsn)) = (text(0), text(1)) else {
        return Err(WireError::Protocol(
            "the snapshot statement answered no row".into(),
        ));
    };
    let prepared_at = answers.len().saturating_sub(2);
    let prepared = answers
        .swap_remove(prepared_at)
        .into_iter()
        .filter_map(|row| row.into_iter().next().flatten())
        .collect();
    Ok(Opened {
        prepared,
        snapshot,
        lsn,
        exported: export.then(|| text(2)).flatten(),
    })
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
