//! An import's state as the metadata database records it: its phase, its progress and
//! what an operator is told about it. Pure.

use crate::jobs::{phases, Job};

phases! {
    /// Where an import is. `Done` and `Aborted` are final.
    pub enum Phase {
        /// The source logs every change of the table; its rows are copied page by page.
        Copying = "copying" => [Syncing],
        /// Copied; logged changes are replayed. The source still takes writes: the same
        /// command catches up again, and with `--cutover` switches.
        Syncing = "syncing" => [CuttingOver],
        /// Under the fence: the source's writers wait, the last changes are replayed,
        /// source and shards are compared, then the source table is frozen. A fence
        /// that could not start, or a difference found, goes back to syncing.
        CuttingOver = "cutting_over" => [Done, Syncing],
        /// The shards hold the table; the source refuses writes to it.
        Done = "done" => [],
        /// Rolled back: the records were deleted, the source is as before.
        Aborted = "aborted" => [],
    }
    first: Copying, done: Done, aborted: Aborted
}

/// One import of a source table into a Shardgate table: a [`Job`] whose own columns
/// are these.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportDetail {
    /// The source database, without its password.
    pub source: String,
    /// `schema.table` on the source.
    pub source_table: String,
    pub key_column: String,
    pub id_column: String,
    /// The Shardgate table the rows become records of.
    pub into: String,
    /// The copy's checkpoint: the (id, key) of the last row copied, as text; the copy
    /// resumes after it.
    pub checkpoint: Option<(String, String)>,
}

pub type Import = Job<ImportDetail>;

impl Job<ImportDetail> {
    /// What an operator can do about it now.
    pub fn advice(&self) -> String {
        let (id, d) = (self.id, &self.detail);
        let again = format!(
            "shard-admin import --source URL --table {} --key-column {} --id-column {} --into {}",
            d.source_table, d.key_column, d.id_column, d.into
        );
        match (self.phase, self.running) {
            (Phase::Done, _) => format!(
                "done: the records are in {}; the source table refuses writes",
                d.into
            ),
            (Phase::Aborted, _) => "aborted: nothing imported".into(),
            (_, true) => "running".into(),
            (Phase::Syncing, _) => format!(
                "in sync up to the last run ({} changes behind then): `{again}` catches up again, with `--cutover` it switches; `shard-admin imports abort {id} --source URL` rolls it back",
                self.rows_behind
            ),
            _ => format!(
                "stopped: `{again}` continues it, `shard-admin imports abort {id} --source URL` rolls it back"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::JobPhase;

    fn import(phase: Phase) -> Import {
        let detail = ImportDetail {
            source: "postgres://app@db:5432/shop".into(),
            source_table: "public.orders".into(),
            key_column: "customer".into(),
            id_column: "order_id".into(),
            into: "orders".into(),
            checkpoint: None,
        };
        let mut im = crate::jobs::test_kind::job(4, phase, detail);
        im.rows_behind = 50;
        im
    }

    #[test]
    fn phases_go_forward_fall_back_only_from_the_cut_over_and_end_once() {
        use Phase::*;
        assert!(Copying.may_become(Syncing) && Syncing.may_become(CuttingOver));
        assert!(CuttingOver.may_become(Done) && CuttingOver.may_become(Syncing));
        assert!(!Copying.may_become(CuttingOver) && !Syncing.may_become(Done));
        assert!(Syncing.may_become(Aborted) && !Done.may_become(Aborted));
        assert!(!Done.active() && Syncing.active());
        assert_eq!((Done.as_str(), Aborted.as_str()), ("done", "aborted"));
        assert_eq!(Phase::parse("cutting_over"), Some(CuttingOver));
    }

    #[test]
    fn advice_says_how_to_go_on() {
        let a = import(Phase::Copying).advice();
        assert!(
            a.contains(
                "--table public.orders --key-column customer --id-column order_id --into orders"
            ),
            "{a}"
        );
        assert!(a.contains("imports abort 4"), "{a}");
        assert!(import(Phase::Syncing).advice().contains("--cutover"));
        let mut running = import(Phase::Copying);
        running.running = true;
        assert_eq!(running.advice(), "running");
    }
}
