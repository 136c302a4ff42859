//! The cluster fence for snapshot reads (the request path's `CutFence`): the metadata
//! database's [`DECISION_FENCE_LOCK`] taken *exclusive* inside a transaction, on one
//! connection of its own per gateway (the log's shared connection must never wait
//! behind it: its decision writes would queue behind a lock this gateway holds).
//!
//! A gateway's snapshot readers take it in rounds: the readers that ask while the fence
//! is held (or being taken) for a round gather into the next one, and that round takes
//! the fence once for all of them; each opens its own snapshots under it, and the fence
//! is lifted when the last of them lets it go. No timer: a reader that finds no round
//! under way starts one at once. A round is taken by a task of its own, so a reader that
//! goes away never leaves the others waiting. The lock's wait is bounded
//! (`lock_timeout`), and a round whose readers all dropped their handles without
//! releasing them, or whose release failed, closes the connection, which lifts the
//! fence on the server at once. A gateway killed while it holds the fence lifts it the
//! same way, when its socket closes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Mutex, OwnedMutexGuard, RwLock};
use tokio_postgres::Client;

use shard_manager::cluster::snapshot::fence::{CutFence, HeldFence};
use shard_manager::cluster::txn::log::{LogFuture, CALL_BOUND};
use shard_manager::config::ClusterSettings;
use shard_manager::routing::ShardId;

use super::log::DECISION_FENCE_LOCK;
use crate::map::{meta, schema};

/// How long taking the fence may wait for the decisions being written (and for other
/// gateways' snapshot readers) before the read fails.
pub const LOCK_WAIT: Duration = Duration::from_secs(2);

/// The longest a reader waits for its round's fence: the round before it (bounded by
/// the snapshot's own wait and the calls' bounds), then the lock's wait.
const ROUND_WAIT: Duration = Duration::from_secs(10);

/// The fence, as one gateway takes it.
pub struct MetaFence {
    inner: Arc<Inner>,
}

struct Inner {
    settings: ClusterSettings,
    /// The fence's connection: the round holding the fence holds it.
    conn: Arc<Mutex<Option<Client>>>,
    /// The round readers join while the fence is held for another (None: no round is
    /// gathering).
    gathering: StdMutex<Option<Arc<Round>>>,
}

impl MetaFence {
    pub fn new(settings: ClusterSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                settings,
                conn: Arc::default(),
                gathering: StdMutex::new(None),
            }),
        }
    }
}

/// Readers that hold the fence together.
struct Round {
    state: StdMutex<RoundState>,
    /// The fence once taken for the round, or why it was not.
    taken: watch::Sender<Option<Result<Arc<Taken>, String>>>,
}

struct RoundState {
    /// Readers that joined and have not let the fence go.
    readers: usize,
    /// The fence, while the round holds it.
    taken: Option<Arc<Taken>>,
}

/// The fence, taken: the transaction holding the lock on the gateway's connection.
struct Taken {
    /// The connection (None once the fence is lifted and the connection handed on).
    conn: RwLock<Option<OwnedMutexGuard<Option<Client>>>>,
    since: Instant,
    /// How long the fence was held, once lifted.
    lifted: watch::Sender<Option<Duration>>,
}

/// A reader's place in a round; dropped without a release, it leaves the round.
struct Ticket {
    round: Arc<Round>,
    released: bool,
}

/// One reader's hold on its round's fence.
struct Member {
    ticket: Ticket,
    taken: Arc<Taken>,
}

fn lock<T>(mutex: &StdMutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Inner {
    /// A place in the round gathering, or in a new one (whose taking starts at once).
    fn join(self: &Arc<Self>) -> Ticket {
        let mut gathering = lock(&self.gathering);
        if let Some(round) = gathering.as_ref() {
            lock(&round.state).readers += 1;
            return Ticket {
                round: round.clone(),
                released: false,
            };
        }
        let round = Arc::new(Round {
            state: StdMutex::new(RoundState {
                readers: 1,
                taken: None,
            }),
            taken: watch::channel(None).0,
        });
        *gathering = Some(round.clone());
        drop(gathering);
        tokio::spawn(self.clone().lead(round.clone()));
        Ticket {
            round,
            released: false,
        }
    }

    /// Takes the fence for `round` once the round before it has let the connection go;
    /// from then on later readers gather for the next round.
    async fn lead(self: Arc<Self>, round: Arc<Round>) {
        let guard = self.conn.clone().lock_owned().await;
        {
            let mut gathering = lock(&self.gathering);
            if gathering.as_ref().is_some_and(|r| Arc::ptr_eq(r, &round)) {
                *gathering = None;
            }
        }
        if lock(&round.state).readers == 0 {
            round
                .taken
                .send_replace(Some(Err("every reader of the round left".to_owned())));
            return;
        }
        let result = self.take(guard).await.map(Arc::new);
        let nobody = match &result {
            Ok(taken) => {
                let mut state = lock(&round.state);
                match state.readers {
                    0 => Some(taken.clone()),
                    _ => {
                        state.taken = Some(taken.clone());
                        None
                    }
                }
            }
            Err(_) => None,
        };
        if let Some(taken) = nobody {
            // Every reader left while it was being taken.
            let _ = taken.lift().await;
        }
        round.taken.send_replace(Some(result));
    }

    /// `BEGIN` and the lock, on the gateway's connection (opened first if need be).
    async fn take(&self, mut guard: OwnedMutexGuard<Option<Client>>) -> Result<Taken, String> {
        if guard.as_ref().is_none_or(|c| c.is_closed()) {
            let mut opened = tokio::time::timeout(CALL_BOUND, meta::connect(&self.settings))
                .await
                .map_err(|_| "the metadata database did not answer in time".to_owned())?
                .map_err(|e| e.to_string())?;
            // txn_log must exist for the decisions to be read.
            schema::apply(&mut opened.client)
                .await
                .map_err(|e| e.to_string())?;
            *guard = Some(opened.client);
        }
        let Some(client) = guard.as_ref() else {
            return Err("no connection to the metadata database".to_owned());
        };
        let take = format!(
            "BEGIN; SET LOCAL lock_timeout = '{}ms'; SELECT pg_advisory_xact_lock({DECISION_FENCE_LOCK})",
            LOCK_WAIT.as_millis()
        );
        let taken = tokio::time::timeout(LOCK_WAIT + CALL_BOUND, client.batch_execute(&take)).await;
        match taken {
            Ok(Ok(())) => Ok(Taken {
                conn: RwLock::new(Some(guard)),
                since: Instant::now(),
                lifted: watch::channel(None).0,
            }),
            Ok(Err(e)) => {
                *guard = None;
                Err(format!("the fence was not taken: {e}"))
            }
            Err(_) => {
                *guard = None;
                Err(format!(
                    "the fence was not taken within {} ms",
                    (LOCK_WAIT + CALL_BOUND).as_millis()
                ))
            }
        }
    }
}

impl Round {
    /// One reader lets the fence go; the fence when it was the last (to lift).
    fn leave(&self) -> Option<Arc<Taken>> {
        let mut state = lock(&self.state);
        state.readers = state.readers.saturating_sub(1);
        match state.readers {
            0 => state.taken.take(),
            _ => None,
        }
    }
}

impl Taken {
    /// `COMMIT` (the fence lifted), then the connection is handed to the next round;
    /// a connection that failed is closed, which lifts the fence as well.
    async fn lift(&self) -> Result<Duration, String> {
        let mut conn = self.conn.write().await;
        let Some(mut guard) = conn.take() else {
            return Err("the fence's connection is gone".to_owned());
        };
        let Some(client) = guard.as_ref() else {
            return Err("the fence's connection is gone".to_owned());
        };
        let done = tokio::time::timeout(CALL_BOUND, client.batch_execute("COMMIT")).await;
        let held = self.since.elapsed();
        let result = match done {
            Ok(Ok(())) => Ok(held),
            Ok(Err(e)) => {
                *guard = None;
                Err(format!("the fence was not released cleanly: {e}"))
            }
            Err(_) => {
                *guard = None;
                Err("the fence's release got no answer in time".to_owned())
            }
        };
        drop(guard);
        self.lifted.send_replace(Some(held));
        result
    }

    /// Lifts the fence by closing its connection (no reader is left to release it).
    fn close(&self) {
        if let Ok(mut conn) = self.conn.try_write() {
            if let Some(mut guard) = conn.take() {
                *guard = None;
            }
        }
        self.lifted.send_replace(Some(self.since.elapsed()));
    }
}

impl Drop for Taken {
    /// Never lifted (every handle went away): the connection is closed, which lifts it.
    fn drop(&mut self) {
        if let Some(mut guard) = self.conn.get_mut().take() {
            *guard = None;
        }
    }
}

impl Drop for Ticket {
    /// Dropped without a release (a failure, or the request went away): the reader
    /// leaves its round; the last to leave closes the connection, which lifts the fence.
    fn drop(&mut self) {
        if !self.released {
            if let Some(taken) = self.round.leave() {
                taken.close();
            }
        }
    }
}

impl CutFence for MetaFence {
    fn hold(&self) -> LogFuture<'_, Box<dyn HeldFence>> {
        Box::pin(async move {
            let ticket = self.inner.join();
            let mut taken = ticket.round.taken.subscribe();
            let waited = tokio::time::timeout(ROUND_WAIT, taken.wait_for(Option::is_some)).await;
            let taken = match waited {
                Ok(Ok(taken)) => taken.clone(),
                Ok(Err(_)) => None,
                Err(_) => Some(Err(format!(
                    "the fence was not taken within {} ms",
                    ROUND_WAIT.as_millis()
                ))),
            };
            let taken = taken.unwrap_or_else(|| Err("the fence's round ended".to_owned()))?;
            Ok(Box::new(Member { ticket, taken }) as Box<dyn HeldFence>)
        })
    }
}

impl HeldFence for Member {
    fn committed<'a>(
        &'a mut self,
        txids: &'a [String],
    ) -> LogFuture<'a, HashMap<String, Vec<ShardId>>> {
        Box::pin(async move {
            let conn = self.taken.conn.read().await;
            let Some(client) = conn.as_ref().and_then(|g| g.as_ref()) else {
                return Err("the fence's connection is gone".to_owned());
            };
            let rows = tokio::time::timeout(
                CALL_BOUND,
                client.query(
                    "SELECT txid, shards FROM txn_log WHERE txid = ANY($1) AND decision = 'commit'",
                    &[&txids],
                ),
            )
            .await
            .map_err(|_| "the metadata database did not answer in time".to_owned())?
            .map_err(|e| e.to_string())?;
            Ok(rows
                .iter()
                .map(|r| {
                    let shards: Vec<i32> = r.get(1);
                    let shards = shards.into_iter().map(|s| ShardId(s as u32)).collect();
                    (r.get::<_, String>(0), shards)
                })
                .collect())
        })
    }

    fn release(mut self: Box<Self>) -> LogFuture<'static, Duration> {
        Box::pin(async move {
            self.ticket.released = true;
            let mut lifted = self.taken.lifted.subscribe();
            if let Some(taken) = self.ticket.round.leave() {
                return taken.lift().await;
            }
            // Others of the round still hold it: the fence is lifted by the last.
            let held = match lifted.wait_for(Option::is_some).await {
                Ok(held) => *held,
                Err(_) => None,
            };
            Ok(held.unwrap_or_else(|| self.taken.since.elapsed()))
        })
    }
}
