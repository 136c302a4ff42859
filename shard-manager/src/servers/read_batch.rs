//! Point reads that arrive together leave together: a server's concurrent point reads
//! share one connection, one send and one receive ([`wire::find_many`]).
//!
//! Opportunistic, with no timer: the first read to find no batch under way starts one
//! at once, alone; reads that come while it is in flight queue, and leave together in
//! the next send as soon as it returns. A lone read at low load goes at once, as
//! before. The batch is driven by a task of its own, so a request whose client went
//! away never leaves a shared connection half read: its answer is read and dropped.
//!
//! Each read keeps its own Sync, so its own answer and its own refusal; a failure of
//! the connection fails every read of the batch alike, each then handled by the read
//! path as a lone read's would be (the next server, a ban).

use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use tracing::Instrument;

use super::batch_queue::{next_batch, Handover, Queue};
use super::pending::{PendingRead, ReadAnswer as Answer};
use super::server::{InFlight, Server};
use crate::error::ClusterError;
use crate::spans;
use crate::wire::read::{find_many, PointRead};

impl Server {
    /// One point read, sent with the other point reads to this server that arrive
    /// while a batch is in flight (see the module doc).
    pub async fn find(self: &Arc<Self>, read: PointRead) -> Answer {
        let (reply, answer) = oneshot::channel();
        let waiting = PendingRead {
            read,
            reply,
            requester: spans::requester(),
        };
        if let Some(queue) = self.reads.join(waiting) {
            tokio::spawn(drive(Arc::clone(self), queue));
        }
        answer.await.unwrap_or_else(|_| {
            Err(self.mark_down("the point read's batch stopped before it answered".into()))
        })
    }
}

/// Sends what waits in `queue`, in batches, until nothing does.
async fn drive(server: Arc<Server>, queue: Arc<Mutex<Queue<PendingRead>>>) {
    let _handover = Handover(&queue);
    while let Some(batch) = next_batch(&queue, &server.reads.sizes) {
        let reads: Vec<&PointRead> = batch.iter().map(|w| &w.read).collect();
        let span = spans::batch(&server.peer, "find", batch.iter().map(|w| &w.requester));
        let answers = server
            .run_reads(&reads, &span)
            .instrument(span.clone())
            .await;
        if let Err(error) = &answers {
            spans::failed(&span, error);
        }
        match answers {
            Ok(answers) => {
                for (waiting, answer) in batch.into_iter().zip(answers) {
                    let _ = waiting.reply.send(answer);
                }
            }
            Err(error) => {
                for waiting in batch {
                    let _ = waiting.reply.send(Err(error.clone()));
                }
            }
        }
    }
}

impl Server {
    /// A batch of point reads on one pooled connection, as [`Server::run`] runs a read:
    /// bounded in time, tried once more on another connection when a reused one
    /// turns out dead. Each read's own refusal is its answer.
    async fn run_reads(
        &self,
        reads: &[&PointRead],
        span: &tracing::Span,
    ) -> Result<Vec<Answer>, ClusterError> {
        self.in_flight
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let _guard = InFlight(&self.in_flight);
        let _permit = self.permit().await?;
        let deadline = tokio::time::Instant::now() + self.op_timeout;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut conn = self.check_out().await?;
            spans::served_by(span, conn.backend_pid());
            match tokio::time::timeout_at(deadline, find_many(&mut conn, reads)).await {
                Err(_) => return Err(self.timeout()),
                Ok(Ok(answers)) => {
                    self.served
                        .fetch_add(reads.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    self.mark_up();
                    return Ok(answers
                        .into_iter()
                        .map(|a| a.map_err(|e| self.failure(e)))
                        .collect());
                }
                Ok(Err(err)) => {
                    if self.lost_once(conn, &err, attempt) {
                        continue;
                    }
                    return Err(self.failure(err));
                }
            }
        }
    }
}
