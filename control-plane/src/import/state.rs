//! An import's state as the metadata database records it: its phase, its progress and
//! what an operator is told about it. Pure.

use serde::Serialize;

/// Where an import is. `Done` and `Aborted` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The source logs every change of the table; its rows are copied page by page.
    Copying,
    /// Copied; logged changes are replayed. The source still takes writes: the same
    /// command catches up again, and with `--cutover` switches.
    Syncing,
    /// Under the fence: the source's writers wait, the last changes are replayed,
    /// source and shards are compared, then the source table is frozen.
    CuttingOver,
    /// The shards hold the table; the source refuses writes to it.
    Done,
    /// Rolled back: the records were deleted, the source is as before.
    Aborted,
}

impl Phase {
    pub const ALL: [Phase; 5] = [
        Phase::Copying,
        Phase::Syncing,
        Phase::CuttingOver,
        Phase::Done,
        Phase::Aborted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Copying => "copying",
            Phase::Syncing => "syncing",
            Phase::CuttingOver => "cutting_over",
            Phase::Done => "done",
            Phase::Aborted => "aborted",
        }
    }

    pub fn parse(text: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.as_str() == text)
    }

    pub fn active(self) -> bool {
        !matches!(self, Phase::Done | Phase::Aborted)
    }
}

/// One import of a source table into a Shardgate table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Import {
    pub id: i64,
    /// The source database, without its password.
    pub source: String,
    /// `schema.table` on the source.
    pub source_table: String,
    pub key_column: String,
    pub id_column: String,
    /// The Shardgate table the rows become records of.
    pub into: String,
    pub phase: Phase,
    /// The (id, key) of the last row copied, as text: the copy resumes after it.
    pub checkpoint: Option<(String, String)>,
    pub rows_total: i64,
    pub rows_copied: i64,
    pub rows_replayed: i64,
    pub rows_behind: i64,
    /// How long the source's writers waited at the cut-over.
    pub fence_ms: Option<i64>,
    pub note: String,
    pub actor: String,
    pub age_secs: f64,
    pub idle_secs: f64,
    /// An import process holds the import's lock now.
    pub running: bool,
}

impl Import {
    /// Seconds until the copy ends at the rate so far (None: no rate yet, or copied).
    pub fn eta_secs(&self) -> Option<f64> {
        let rate = match self.age_secs > 0.0 {
            true => self.rows_copied as f64 / self.age_secs,
            false => 0.0,
        };
        let left = (self.rows_total - self.rows_copied).max(0) + self.rows_behind;
        (self.phase.active() && rate > 0.0).then(|| left as f64 / rate)
    }

    /// What an operator can do about it now.
    pub fn advice(&self) -> String {
        let id = self.id;
        let again = format!(
            "shard-manager import --source URL --table {} --key-column {} --id-column {} --into {}",
            self.source_table, self.key_column, self.id_column, self.into
        );
        match (self.phase, self.running) {
            (Phase::Done, _) => format!(
                "done: the records are in {}; the source table refuses writes",
                self.into
            ),
            (Phase::Aborted, _) => "aborted: nothing imported".into(),
            (_, true) => "running".into(),
            (Phase::Syncing, _) => format!(
                "in sync up to the last run ({} changes behind then): `{again}` catches up again, with `--cutover` it switches; `shard-manager imports abort {id} --source URL` rolls it back",
                self.rows_behind
            ),
            _ => format!(
                "stopped: `{again}` continues it, `shard-manager imports abort {id} --source URL` rolls it back"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn import(phase: Phase) -> Import {
        Import {
            id: 4,
            source: "postgres://app@db:5432/shop".into(),
            source_table: "public.orders".into(),
            key_column: "customer".into(),
            id_column: "order_id".into(),
            into: "orders".into(),
            phase,
            checkpoint: None,
            rows_total: 1000,
            rows_copied: 250,
            rows_replayed: 0,
            rows_behind: 50,
            fence_ms: None,
            note: String::new(),
            actor: "test".into(),
            age_secs: 10.0,
            idle_secs: 0.0,
            running: false,
        }
    }

    #[test]
    fn phases_round_trip() {
        for p in Phase::ALL {
            assert_eq!(Phase::parse(p.as_str()), Some(p));
        }
        assert_eq!(Phase::parse("copied"), None);
        assert!(!Phase::Done.active() && Phase::Syncing.active());
    }

    #[test]
    fn eta_counts_rows_left_and_changes_behind_at_the_rate_so_far() {
        // 25 rows/s; 750 left + 50 behind.
        assert_eq!(import(Phase::Copying).eta_secs(), Some(32.0));
        assert_eq!(import(Phase::Done).eta_secs(), None);
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
