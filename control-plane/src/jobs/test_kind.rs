//! A small kind of job for the jobs module's own unit tests (the real kinds test their
//! phases and wording beside them), and a job of any kind to start a test from.

use tokio_postgres::Row;

use super::{phases, Job, JobKind};

phases! {
    /// Queued, worked on, fenced; fenced may fall back to working.
    pub enum Step {
        Queued = "queued" => [Working],
        Working = "working" => [Fenced],
        Fenced = "fenced" => [Done, Working],
        Done = "done" => [],
        Aborted = "aborted" => [],
    }
    first: Queued, done: Done, aborted: Aborted
}

/// A chore: its own column is a label.
#[derive(Debug, Clone, PartialEq)]
pub struct Chore {
    pub label: String,
}

impl JobKind for Chore {
    const TABLE: &'static str = "chores";
    const NOUN: &'static str = "chore";
    const LOCK_CLASS: i32 = 1;
    const COLUMNS: &'static str = "label";
    type Phase = Step;

    fn read(row: &Row, at: usize) -> Self {
        Self { label: row.get(at) }
    }
}

/// Job `id` of any kind in `phase`, started a second ago, just updated, not running,
/// nothing counted yet.
pub fn job<K: JobKind>(id: i64, phase: K::Phase, detail: K) -> Job<K> {
    Job {
        id,
        phase,
        rows_total: 0,
        rows_copied: 0,
        rows_replayed: 0,
        rows_behind: 0,
        fence_ms: None,
        note: String::new(),
        actor: "test".into(),
        age_secs: 1.0,
        idle_secs: 0.0,
        running: false,
        detail,
    }
}

/// Chore 7 in `phase`.
pub fn chore(phase: Step) -> Job<Chore> {
    let label = "sweep".into();
    job(7, phase, Chore { label })
}
