//! A list's page within a byte budget: rows join the page in list order until the next
//! one would take it past `max_bytes`; that row and every later one are left for the
//! next page (the cursor continues after the last row kept, so nothing is skipped).
//! The first row always joins, whatever its size: a record larger than the budget is
//! still readable, alone on its page. So a page holds at most
//! `max(max_bytes, one record)` of rows.
//!
//! Why a budget and not a stream: a page is merged across shards (a fan-out), answered
//! as one JSON document with its `next` cursor and, when a shard fails, as a problem;
//! a stream would have to commit to a status before the shards answered. A budget keeps
//! every answer whole and bounds what one request holds.

use super::row::Record;

/// What a row adds to a page besides its document and identity (version, slot, two
/// timestamps and their framing), in bytes; an estimate, for [`record_bytes`].
const ROW_OVERHEAD: usize = 48;

/// About the bytes a record takes on the wire and in the answer.
pub fn record_bytes(r: &Record) -> usize {
    r.data.get().len() + r.table_name.len() + r.shard_key.len() + r.id.len() + ROW_OVERHEAD
}

/// The running total of one page.
#[derive(Debug, Clone)]
pub struct Budget {
    max: usize,
    used: usize,
    rows: usize,
    /// A row was left out: the page ends here and more follow.
    full: bool,
}

impl Budget {
    pub fn new(max_bytes: usize) -> Self {
        Self {
            max: max_bytes,
            used: 0,
            rows: 0,
            full: false,
        }
    }

    /// Whether the next row, of `bytes`, joins the page. Once one did not, none does.
    pub fn admit(&mut self, bytes: usize) -> bool {
        if self.full || (self.rows > 0 && self.used.saturating_add(bytes) > self.max) {
            self.full = true;
            return false;
        }
        self.used = self.used.saturating_add(bytes);
        self.rows += 1;
        true
    }

    /// Whether rows were left out for the budget.
    pub fn is_full(&self) -> bool {
        self.full
    }

    /// How many rows to ask a server for next, so that it sends about what still fits
    /// (and not a whole `limit` of rows to be dropped): [`FIRST_ROWS`] before any row,
    /// then the room left at the average row size so far, plus one (the row that ends
    /// the page). Never 0, which would mean "all".
    pub fn rows_to_ask(&self) -> i32 {
        if self.rows == 0 {
            return FIRST_ROWS;
        }
        let average = (self.used / self.rows).max(1);
        let room = self.max.saturating_sub(self.used) / average;
        i32::try_from(room.saturating_add(1)).unwrap_or(i32::MAX)
    }
}

/// Rows asked for before any row's size is known: a page of large rows drops at most
/// this many rows' worth past its budget, and a page of small ones costs a second
/// round trip only past this many rows.
pub const FIRST_ROWS: i32 = 16;

/// One server's page of a list.
#[derive(Debug, Default)]
pub struct Page {
    /// Newest first, in list order.
    pub records: Vec<Record>,
    /// Rows after the last record were left out for the byte budget (the page may hold
    /// fewer than the limit and still not be the last).
    pub cut: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_join_until_the_budget_and_none_after_the_first_left_out() {
        let mut b = Budget::new(100);
        assert!(b.admit(60));
        assert!(b.admit(40));
        assert!(!b.is_full());
        assert!(!b.admit(1));
        assert!(b.is_full());
        // A smaller later row would leave a gap: it is left out too.
        assert!(!b.admit(0));
    }

    #[test]
    fn a_server_is_asked_for_about_what_still_fits() {
        let mut b = Budget::new(1000);
        assert_eq!(b.rows_to_ask(), FIRST_ROWS);
        assert!(b.admit(100));
        assert!(b.admit(100));
        // 800 bytes left at 100 a row: 8 rows, and the one that ends the page.
        assert_eq!(b.rows_to_ask(), 9);
        let mut big = Budget::new(100);
        assert!(big.admit(5000));
        assert_eq!(big.rows_to_ask(), 1);
        let mut empty_rows = Budget::new(usize::MAX);
        assert!(empty_rows.admit(0));
        assert_eq!(empty_rows.rows_to_ask(), i32::MAX);
    }

    #[test]
    fn the_first_row_always_fits_however_large() {
        let mut b = Budget::new(100);
        assert!(b.admit(10_000));
        assert!(!b.admit(1));
        let mut zero = Budget::new(0);
        assert!(zero.admit(5));
        assert!(!zero.admit(5));
    }
}
