//! Long-running, resumable work recorded in the metadata database: slot moves, imports,
//! and whatever comes next (backups). One module keeps the bookkeeping every such job
//! needs; each kind keeps only what it does.
//!
//! ## A job's life
//! 1. **Recorded** ([`Store::insert`]) in its kind's first phase, after the kind's
//!    checks (a refusal records nothing). The row: `id`, `phase`, the progress counters
//!    (`rows_total`, `rows_copied`, `rows_replayed`, `rows_behind`), `fence_ms`, `note`
//!    (the last thing that happened: a step, a wait, an error), `actor` (who started
//!    it), `started_at`, `updated_at`, `finished_at`, and the kind's own columns.
//! 2. **Claimed** ([`Store::claim`]): the process working on a job holds the job's
//!    advisory lock (session level, class [`JobKind::LOCK_CLASS`], object the id). A
//!    second process is refused; `status` shows the job as `running` while anyone holds
//!    it. A process that dies loses the lock with its session: nothing else needs
//!    undoing before the next run claims the job.
//! 3. **Advanced** phase by phase ([`Store::set_phase`], along the transitions its kind
//!    declares with `phases!`), recording progress as it goes ([`Store::copied`] with
//!    the kind's checkpoint, [`Store::replayed`], [`Store::set_note`]). Every write
//!    touches `updated_at`: the heartbeat. Each step is recorded after it is done and
//!    is safe to do again, so a resumed job (the same command, run again) continues
//!    from the phase and checkpoint its row records.
//! 4. **Finished**: `done`, or `aborted` (from any active phase, by the lock's holder,
//!    once the kind has undone what it did); `finished_at` is set and the row never
//!    changes again.
//!
//! A job that stopped (active, nobody holds its lock) and is neither resumed nor
//! aborted for a while is **stuck** ([`stuck`]): operators are told, since it may hold
//! resources (a move's source logs every change of its slots until it ends).
//!
//! Jobs that copy live data capture the changes made meanwhile and replay them
//! ([`replay`]): the same protocol for every kind, over a log of its own.
//!
//! ## Layout
//! - [`phase`]: a kind's phases and their transitions ([`JobPhase`], `phases!`; pure).
//! - [`job`]: the row ([`Job`]) and what a kind adds ([`JobKind`]; pure).
//! - [`stuck`]: the stuck rule (pure).
//! - [`store`]: jobs of one kind in the metadata database ([`Store`]).
//! - [`replay`]: captured changes replayed: catching up, draining under a fence.

pub mod job;
pub mod phase;
pub mod replay;
pub mod store;
pub mod stuck;
#[cfg(test)]
pub(crate) mod test_kind;

pub use job::{Job, JobKind};
pub(crate) use phase::phases;
pub use phase::JobPhase;
pub use store::Store;

/// Why the bookkeeping of a job failed. Each kind turns these into its own error.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("there is no {noun} {id}")]
    Unknown { noun: &'static str, id: i64 },
    #[error("no {noun} was ever recorded (the metadata database has no {table} table yet)")]
    NoTable {
        noun: &'static str,
        table: &'static str,
    },
    #[error("the metadata database's {table} are unreadable: {why}")]
    Corrupt { table: &'static str, why: String },
    #[error("{noun} {id} is being worked on by another process (it holds the {noun}'s lock)")]
    Busy { noun: &'static str, id: i64 },
    /// A transition the kind does not declare: a bug of the caller.
    #[error("{noun} {id} cannot go from {from} to {to}")]
    Transition {
        noun: &'static str,
        id: i64,
        from: &'static str,
        to: &'static str,
    },
    #[error("{noun} {id} is no longer {from}: another process changed it meanwhile")]
    Changed {
        noun: &'static str,
        id: i64,
        from: &'static str,
    },
    #[error("the metadata database failed: {0}")]
    Query(#[from] tokio_postgres::Error),
}
