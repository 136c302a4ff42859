//! A job as its row records it: the columns every kind has ([`Job`]), and what a kind
//! adds ([`JobKind`]: its table, its lock, its phases, its own columns). Pure.

use std::fmt::Debug;

use tokio_postgres::Row;

use super::JobPhase;

/// One kind of long-running job (moves, imports, ...): where its rows live and what
/// they carry beyond the common columns. The implementing type is those columns' value.
pub trait JobKind: Sized + Clone + Debug + PartialEq + Send + Sync {
    /// Its table in the metadata database. Besides its own columns it has the common
    /// ones: `id BIGSERIAL`, `phase`, `rows_total`, `rows_copied`, `rows_replayed`,
    /// `rows_behind`, `fence_ms`, `note`, `actor`, `started_at`, `updated_at`,
    /// `finished_at` (see `metadata-migrations/`, `moves` and `imports`).
    const TABLE: &'static str;
    /// What one is called in messages: `move`, `import`.
    const NOUN: &'static str;
    /// The advisory lock class (metadata database) the process working on a job holds,
    /// with the job's id as object.
    const LOCK_CLASS: i32;
    /// Its own columns, a SELECT list read after the common ones.
    const COLUMNS: &'static str;
    type Phase: JobPhase;

    /// Its own columns of `row`, the first at index `at`.
    fn read(row: &Row, at: usize) -> Self;
}

/// One job: the row's common columns, and the kind's own in `detail`.
#[derive(Debug, Clone, PartialEq)]
pub struct Job<K: JobKind> {
    pub id: i64,
    pub phase: K::Phase,
    /// Rows to copy (counted before the copy, or estimated).
    pub rows_total: i64,
    pub rows_copied: i64,
    /// Captured changes replayed so far, and how many were still logged.
    pub rows_replayed: i64,
    pub rows_behind: i64,
    /// How long writers waited at the job's fence, once it passed it.
    pub fence_ms: Option<i64>,
    /// The last thing that happened: a step, a throttle, an error.
    pub note: String,
    /// Who started it (`user@host`).
    pub actor: String,
    /// Seconds since it started (a finished job: how long it took), and since its row
    /// last changed (every step and every progress update touches it: the heartbeat).
    pub age_secs: f64,
    pub idle_secs: f64,
    /// A process holds the job's lock now: it is being worked on.
    pub running: bool,
    pub detail: K,
}

impl<K: JobKind> Job<K> {
    /// Rows per second copied so far (0 before the first row).
    pub fn copy_rate(&self) -> f64 {
        match self.age_secs > 0.0 {
            true => self.rows_copied as f64 / self.age_secs,
            false => 0.0,
        }
    }

    /// Seconds until the copy and the replay end at the copy's rate so far (None: no
    /// rate yet, or finished).
    pub fn eta_secs(&self) -> Option<f64> {
        let left = (self.rows_total - self.rows_copied).max(0) + self.rows_behind;
        let rate = self.copy_rate();
        (self.phase.active() && rate > 0.0).then(|| left as f64 / rate)
    }
}

#[cfg(test)]
mod tests {
    use crate::jobs::test_kind::{chore, Step};

    #[test]
    fn eta_counts_rows_left_and_changes_behind_at_the_rate_so_far() {
        let mut job = chore(Step::Working);
        (
            job.rows_total,
            job.rows_copied,
            job.rows_behind,
            job.age_secs,
        ) = (1000, 250, 50, 10.0);
        // 25 rows/s; 750 left + 50 behind.
        assert_eq!(job.copy_rate(), 25.0);
        assert_eq!(job.eta_secs(), Some(32.0));
        job.phase = Step::Done;
        assert_eq!(job.eta_secs(), None, "finished");
        let fresh = chore(Step::Queued);
        assert_eq!((fresh.copy_rate(), fresh.eta_secs()), (0.0, None));
    }
}
