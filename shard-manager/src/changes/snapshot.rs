//! A stream that starts from a consistent snapshot (`from=snapshot`): the table as it
//! was at one cut, page by page, then the changes after that same cut.
//!
//! The snapshot is a list of the table at a cut ([`Cluster::fan_out_at_cut`]), and the
//! stream's cursor starts at that cut's snapshots: the change log's next delta is read
//! from exactly the snapshots the list was read at, so a write is either in the list
//! (committed before the cut) or in the changes after it (committed after), never both
//! and never neither. While pages of the list remain, the cursor carries the next one;
//! the list's cut is held as any snapshot list's (`cluster::snapshot::HOLD` from its
//! first page: a table that takes longer to page through answers `410
//! snapshot-expired`, and the stream starts again).

use std::collections::BTreeMap;

use chrono::{SecondsFormat, Utc};

use super::cursor::ChangeCursor;
use super::error::ChangesError;
use super::page::{Change, ChangePage, Operation};
use crate::cluster::Cluster;
use crate::store::{ListQuery, TableName};

/// The most bytes of documents a snapshot page holds (as a list's page budget).
const PAGE_BYTES: usize = 4 << 20;

impl Cluster {
    /// The next page of a stream's starting snapshot: the first (a new cut) when
    /// `from` is `None`, else the page `from` names with the cursor it came in. The
    /// cursor after the last page is the cut's: the changes after the snapshot.
    pub async fn snapshot_page(
        &self,
        table: &TableName,
        from: Option<(&String, &ChangeCursor)>,
        limit: usize,
        holder: Option<&str>,
    ) -> Result<ChangePage, ChangesError> {
        let begun = Utc::now();
        let query = ListQuery {
            limit: limit.clamp(1, u32::MAX as usize) as u32,
            filter: None,
            after: None,
            max_bytes: PAGE_BYTES,
        };
        let page = self
            .fan_out_at_cut(table, &query, from.map(|(page, _)| page.as_str()), holder)
            .await?;
        let sent: BTreeMap<u32, String> = match from {
            Some((_, cursor)) => cursor.sent.clone(),
            None => page
                .cut
                .shards
                .iter()
                .map(|s| (s.shard, s.snapshot.clone()))
                .collect(),
        };
        let next = ChangeCursor {
            sent,
            within: None,
            snapshot: page.next.clone(),
        };
        let mut changes: Vec<Change> = page
            .records
            .into_iter()
            .map(|(shard, record)| Change {
                table: record.table_name,
                shard_key: record.shard_key,
                id: record.id,
                version: record.version,
                operation: Operation::Snapshot,
                data: Some(record.data.into_raw()),
                time: record
                    .updated_at
                    .to_rfc3339_opts(SecondsFormat::Micros, false),
                transaction: None,
                shard: shard.0,
                // Within a page of the snapshot no change resumes on its own: a
                // stream resumed there sends the page again (see `Change::cursor`).
                cursor: String::new(),
            })
            .collect();
        if let Some(last) = changes.last_mut() {
            last.cursor = next.encode();
        }
        // The whole snapshot in one page: every change committed before the cut was
        // begun is in it.
        let resolved = (from.is_none() && next.snapshot.is_none()).then_some(begun);
        Ok(ChangePage {
            changes,
            next,
            resolved,
        })
    }
}
