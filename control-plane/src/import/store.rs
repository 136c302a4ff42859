//! Imports in the metadata database: the `imports` table (a metadata migration) as
//! a kind of job (the bookkeeping itself is [`crate::jobs::Store`]'s), and the queries
//! only imports make.

use tokio_postgres::Row;

use super::state::{Import, ImportDetail, Phase};
use crate::jobs::{JobError, JobKind, Store};

/// The imports, over one connection to the metadata database.
pub type Imports<'c> = Store<'c, ImportDetail>;

impl JobKind for ImportDetail {
    const TABLE: &'static str = "imports";
    const NOUN: &'static str = "import";
    const LOCK_CLASS: i32 = 0x5349; // "SI"
    const COLUMNS: &'static str =
        "source, source_table, key_column, id_column, into_table, checkpoint_id, checkpoint_key";
    type Phase = Phase;

    fn read(row: &Row, at: usize) -> Self {
        let checkpoint = match (row.get(at + 5), row.get(at + 6)) {
            (Some(id), Some(key)) => Some((id, key)),
            _ => None,
        };
        Self {
            source: row.get(at),
            source_table: row.get(at + 1),
            key_column: row.get(at + 2),
            id_column: row.get(at + 3),
            into: row.get(at + 4),
            checkpoint,
        }
    }
}

/// What to record for a new import.
pub struct NewImport<'a> {
    pub source: &'a str,
    pub source_table: &'a str,
    pub key_column: &'a str,
    pub id_column: &'a str,
    pub into: &'a str,
    pub rows_total: i64,
    pub actor: &'a str,
}

impl Imports<'_> {
    /// Records an import (phase `copying`); the unique index refuses a second active
    /// import into the same table (SQLSTATE 23505).
    pub async fn create(&self, n: &NewImport<'_>) -> Result<i64, JobError> {
        self.insert(
            n.actor,
            &[
                ("source", &n.source),
                ("source_table", &n.source_table),
                ("key_column", &n.key_column),
                ("id_column", &n.id_column),
                ("into_table", &n.into),
                ("rows_total", &n.rows_total),
            ],
        )
        .await
    }

    /// The active import into `into`, if any.
    pub async fn active_into(&self, into: &str) -> Result<Option<Import>, JobError> {
        let found = self.active_where("into_table = $1", &[&into]).await?;
        Ok(found.into_iter().next())
    }

    /// A page copied: the row to resume after (the checkpoint), and how many rows it held.
    pub async fn copied_page(
        &self,
        id: i64,
        after: &(String, String),
        rows: i64,
    ) -> Result<(), JobError> {
        let checkpoint = "checkpoint_id = $3, checkpoint_key = $4";
        self.copied(id, rows, checkpoint, &[&after.0, &after.1])
            .await
    }

    /// The copy starts over (its capture had been removed by someone).
    pub async fn restart_copy(&self, id: i64) -> Result<(), JobError> {
        let set = "checkpoint_id = NULL, checkpoint_key = NULL, rows_copied = 0";
        self.update(id, set, &[]).await
    }
}
