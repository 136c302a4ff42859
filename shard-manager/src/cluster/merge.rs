//! A fan-out's page: every shard's page merged newest first, within the list's limit
//! and byte budget, with a cursor that skips nothing.
//!
//! Each shard answers up to `limit` rows within its share of the byte budget. Merged, the rows are
//! exact up to the first point where some shard stopped early for its budget: past its
//! last row, that shard holds rows it did not send, which may be newer than other
//! shards' rows. So the merged page ends at the earliest such point, then at `limit`
//! rows, then at the budget (its first row always fits); any of these leaves a cursor
//! after the last row kept. (A shard that sent `limit` rows needs no such point: every
//! row of the first `limit` merged is among its first `limit`.)

use crate::routing::ShardId;
use crate::store::{record_bytes, Budget, Cursor, Page, Record};

/// The merged page of a fan-out and where the next one starts (None on the last).
pub(super) fn merge(
    pages: Vec<(ShardId, Page)>,
    limit: usize,
    max_bytes: usize,
) -> (Vec<(ShardId, Record)>, Option<Cursor>) {
    // The earliest end of a page a shard cut for its budget: rows after it may be
    // missing.
    let horizon = pages
        .iter()
        .filter(|(_, p)| p.cut)
        .filter_map(|(_, p)| p.records.last().map(Cursor::sort_key))
        .min();
    let mut more = horizon.is_some();
    let mut rows: Vec<(ShardId, Record)> = pages
        .into_iter()
        .flat_map(|(shard, p)| p.records.into_iter().map(move |r| (shard, r)))
        .collect();
    rows.sort_by_key(|(_, r)| Cursor::sort_key(r));
    // A record whose slot is switching shows on its source and its target for a moment
    // (the target owns it just before the source lets go): the same row, kept once.
    rows.dedup_by(|b, a| Cursor::sort_key(&a.1) == Cursor::sort_key(&b.1));
    if let Some(horizon) = &horizon {
        rows.retain(|(_, r)| Cursor::sort_key(r) <= *horizon);
    }
    if rows.len() >= limit {
        more = true;
        rows.truncate(limit);
    }
    let mut budget = Budget::new(max_bytes);
    let kept = rows
        .iter()
        .take_while(|(_, r)| budget.admit(record_bytes(r)))
        .count();
    more |= kept < rows.len();
    rows.truncate(kept);
    let next = more
        .then(|| rows.last().map(|(_, r)| Cursor::after(r)))
        .flatten();
    (rows, next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RawJson;
    use chrono::{DateTime, Utc};

    fn rec(key: &str, micros: i64, bytes: usize) -> Record {
        let at: DateTime<Utc> = DateTime::from_timestamp_micros(micros).unwrap();
        Record {
            table_name: "t".into(),
            shard_key: key.into(),
            id: format!("{key}{micros}"),
            slot: 0,
            data: RawJson::from_value(&serde_json::json!({"s": "x".repeat(bytes)})),
            version: 1,
            created_at: at,
            updated_at: at,
        }
    }

    fn page(records: Vec<Record>, cut: bool) -> Page {
        Page { records, cut }
    }

    fn times(rows: &[(ShardId, Record)]) -> Vec<i64> {
        rows.iter()
            .map(|(_, r)| r.updated_at.timestamp_micros())
            .collect()
    }

    #[test]
    fn a_shard_cut_for_its_budget_ends_the_merged_page_at_its_last_row() {
        // Shard 0 sent 30 and 20 and stopped (its 10 is unseen); shard 1 sent 25 and 5.
        let pages = vec![
            (
                ShardId(0),
                page(vec![rec("a", 30, 1), rec("a", 20, 1)], true),
            ),
            (
                ShardId(1),
                page(vec![rec("b", 25, 1), rec("b", 5, 1)], false),
            ),
        ];
        let (rows, next) = merge(pages, 10, 1 << 20);
        assert_eq!(times(&rows), [30, 25, 20]);
        assert_eq!(next, Some(Cursor::after(&rows[2].1)));
    }

    #[test]
    fn a_record_both_shards_show_while_its_slot_switches_is_kept_once() {
        let pages = vec![
            (
                ShardId(0),
                page(vec![rec("a", 30, 1), rec("a", 20, 1)], false),
            ),
            (
                ShardId(1),
                page(vec![rec("a", 20, 1), rec("b", 10, 1)], false),
            ),
        ];
        let (rows, next) = merge(pages, 10, 1 << 20);
        assert_eq!(times(&rows), [30, 20, 10]);
        assert_eq!(next, None);
    }

    #[test]
    fn the_limit_and_the_merged_budget_each_leave_a_cursor() {
        let pages = vec![
            (
                ShardId(0),
                page(vec![rec("a", 30, 10), rec("a", 10, 10)], false),
            ),
            (ShardId(1), page(vec![rec("b", 20, 10)], false)),
        ];
        let (rows, next) = merge(pages, 2, 1 << 20);
        assert_eq!(times(&rows), [30, 20]);
        assert!(next.is_some());
        // Every page fits: the last page has no cursor.
        let pages = vec![(ShardId(0), page(vec![rec("a", 30, 10)], false))];
        let (rows, next) = merge(pages, 2, 1 << 20);
        assert_eq!((rows.len(), next), (1, None));
        // A budget of one row's worth: one row, then a cursor; the first always fits.
        let pages = vec![
            (ShardId(0), page(vec![rec("a", 30, 1000)], false)),
            (ShardId(1), page(vec![rec("b", 20, 1000)], false)),
        ];
        let (rows, next) = merge(pages, 10, 10);
        assert_eq!(times(&rows), [30]);
        assert_eq!(next, Some(Cursor::after(&rows[0].1)));
    }
}
