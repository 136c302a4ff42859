//! A gateway's view of the moves ([`MoveWatch`]) and the task that keeps it current
//! ([`Watcher`]), so `/api/shards`, the dashboard and `/metrics` can show moves in
//! progress without a metadata query per request.
//!
//! Every `metadata.poll_ms` the watcher reads the active moves and the newest finished
//! ones over a connection of its own. When the metadata database does not answer, the
//! last list read is kept and the error says why it is not fresh; the watcher
//! reconnects until it answers again.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::state::Move;
use super::Moves;
use crate::jobs::JobError;
use crate::map::meta;
use shard_manager::config::ClusterSettings;

/// How many finished (done or aborted) moves are shown after the active ones.
pub const FINISHED_SHOWN: i64 = 5;
/// Longest a read may take before the metadata database counts as unreachable.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// What the watcher last read.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// Active moves, then up to [`FINISHED_SHOWN`] finished ones, newest first.
    pub moves: Vec<Move>,
    /// When the list was last read (None: never).
    pub read_at: Option<Instant>,
    /// Why the last read failed, while reads fail.
    pub error: Option<String>,
}

/// The moves as a gateway last saw them in the metadata database.
pub struct MoveWatch {
    settings: ClusterSettings,
    seen: Mutex<Seen>,
}

impl MoveWatch {
    pub fn new(settings: ClusterSettings) -> Self {
        Self {
            settings,
            seen: Mutex::new(Seen::default()),
        }
    }

    /// The last list read, when, and the last error.
    pub fn seen(&self) -> Seen {
        self.lock().clone()
    }

    /// How long a stopped move waits before it is shown as stuck (`[moves]`).
    pub fn stuck_after(&self) -> Duration {
        self.settings.moves.stuck_after()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self, moves: Vec<Move>) {
        let mut seen = self.lock();
        seen.moves = moves;
        seen.read_at = Some(Instant::now());
        seen.error = None;
    }

    fn failed(&self, why: String) {
        let mut seen = self.lock();
        if seen.error.is_none() {
            tracing::warn!(error = %why, "moves unreadable: showing the last list read");
        }
        seen.error = Some(why);
    }
}

/// The running watch task; stops when dropped.
pub struct Watcher(tokio::task::JoinHandle<()>);

impl Drop for Watcher {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Watcher {
    /// Keeps `watch` current until dropped.
    pub fn spawn(watch: Arc<MoveWatch>) -> Self {
        Self(tokio::spawn(follow(watch)))
    }
}

async fn follow(watch: Arc<MoveWatch>) {
    let every = Duration::from_millis(watch.settings.metadata.poll_ms.clamp(10, 60_000));
    loop {
        match meta::connect(&watch.settings).await {
            Ok(conn) => read_until_lost(&watch, &conn.client, every).await,
            Err(e) => watch.failed(e.to_string()),
        }
        tokio::time::sleep(every).await;
    }
}

/// Reads every `every` until the connection is lost or stops answering.
async fn read_until_lost(watch: &MoveWatch, client: &tokio_postgres::Client, every: Duration) {
    loop {
        let moves = Moves::new(client);
        match tokio::time::timeout(READ_TIMEOUT, moves.list(FINISHED_SHOWN)).await {
            Ok(Ok(moves)) => watch.read(moves),
            // No moves table yet: no move was ever recorded.
            Ok(Err(JobError::NoTable { .. })) => watch.read(Vec::new()),
            Ok(Err(e)) => watch.failed(e.to_string()),
            Err(_) => {
                let ms = READ_TIMEOUT.as_millis();
                watch.failed(format!(
                    "the metadata database did not answer within {ms} ms"
                ));
                return;
            }
        }
        if client.is_closed() {
            return;
        }
        tokio::time::sleep(every).await;
    }
}
