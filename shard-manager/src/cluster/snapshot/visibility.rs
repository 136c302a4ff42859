//! Whether a transaction's commit is visible in a PostgreSQL snapshot, from the text of
//! `pg_current_snapshot()` (`xmin:xmax:xip,...`, 64-bit transaction ids) and the 32-bit
//! id `pg_prepared_xacts.transaction` lists. Pure; no I/O.
//!
//! A transaction id is visible (its commit is seen) iff it is below `xmin`, or below
//! `xmax` and not among the ids in progress (`xip`): PostgreSQL's own rule for a
//! snapshot's top-level ids. The 32-bit id is widened with the epoch of `xmax`: an id
//! listed before the snapshot was taken was assigned before it, so it is below `xmax`,
//! and within 2^31 of it (PostgreSQL never lets ids wrap closer than that).

/// A snapshot as `pg_current_snapshot()` writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgSnapshot {
    xmin: u64,
    xmax: u64,
    /// In progress when the snapshot was taken (sorted).
    xip: Vec<u64>,
}

impl PgSnapshot {
    /// Reads `xmin:xmax:xip1,xip2,...` (the list may be empty); None for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let mut fields = text.trim().split(':');
        let xmin: u64 = fields.next()?.parse().ok()?;
        let xmax: u64 = fields.next()?.parse().ok()?;
        let list = fields.next()?;
        if fields.next().is_some() || xmin > xmax {
            return None;
        }
        let mut xip = Vec::new();
        for id in list.split(',').filter(|s| !s.is_empty()) {
            let id: u64 = id.parse().ok()?;
            if id < xmin || id >= xmax {
                return None;
            }
            xip.push(id);
        }
        xip.sort_unstable();
        Some(Self { xmin, xmax, xip })
    }

    /// The 64-bit id of `xid`, an id assigned before this snapshot was taken; None when
    /// it cannot be one (it would come after `xmax` in epoch 0).
    pub fn widen(&self, xid: u32) -> Option<u64> {
        let same_epoch = (self.xmax & !0xFFFF_FFFF) | u64::from(xid);
        match same_epoch < self.xmax {
            true => Some(same_epoch),
            false => same_epoch.checked_sub(1 << 32),
        }
    }

    /// Whether the commit of `xid` (32 bits, assigned before the snapshot) is seen by
    /// this snapshot; None when `xid` cannot be one assigned before it.
    pub fn sees(&self, xid: u32) -> Option<bool> {
        let full = self.widen(xid)?;
        Some(full < self.xmin || (full < self.xmax && self.xip.binary_search(&full).is_err()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPOCH: u64 = 1 << 32;

    #[test]
    fn reads_what_pg_current_snapshot_writes() {
        let s = PgSnapshot::parse("748:754:748,751").unwrap();
        assert_eq!(s.xmin, 748);
        assert_eq!(s.xmax, 754);
        assert_eq!(s.xip, vec![748, 751]);
        assert_eq!(
            PgSnapshot::parse("754:754:").unwrap().xip,
            Vec::<u64>::new()
        );
        for bad in [
            "",
            "748",
            "748:754",
            "754:748:",
            "748:754:747",
            "748:754:754",
            "748:754:a",
            "748:754:750:1",
        ] {
            assert_eq!(PgSnapshot::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn below_xmin_is_seen_in_progress_and_from_xmax_are_not() {
        let s = PgSnapshot::parse("748:754:748,751").unwrap();
        assert_eq!(s.sees(747), Some(true), "finished before xmin");
        assert_eq!(s.sees(748), Some(false), "xmin itself, in progress");
        assert_eq!(s.sees(749), Some(true), "finished between xmin and xmax");
        assert_eq!(s.sees(751), Some(false), "in xip");
        assert_eq!(s.sees(753), Some(true), "just below xmax, not in xip");
    }

    #[test]
    fn an_id_at_or_past_xmax_is_from_the_epoch_before() {
        // In epoch 0 an id at or past xmax cannot have been assigned before it.
        let s = PgSnapshot::parse("748:754:").unwrap();
        assert_eq!(s.widen(754), None);
        assert_eq!(s.sees(4_000_000_000), None);
        // In epoch 1, it is the previous epoch's, long finished.
        let s = PgSnapshot::parse(&format!("{}:{}:", EPOCH + 748, EPOCH + 754)).unwrap();
        assert_eq!(s.widen(754), Some(754));
        assert_eq!(s.sees(754), Some(true));
        assert_eq!(s.widen(753), Some(EPOCH + 753));
    }

    #[test]
    fn ids_across_the_wraparound_take_the_right_epoch() {
        // xmin before the 32-bit wrap, xmax after it: ids on both sides are in progress.
        let xmin = EPOCH - 10;
        let xmax = EPOCH + 5;
        let text = format!("{xmin}:{xmax}:{},{}", EPOCH - 3, EPOCH + 2);
        let s = PgSnapshot::parse(&text).unwrap();
        assert_eq!(s.widen(u32::MAX - 2), Some(EPOCH - 3));
        assert_eq!(s.sees(u32::MAX - 2), Some(false), "in xip, last epoch");
        assert_eq!(s.sees(2), Some(false), "in xip, this epoch");
        assert_eq!(s.sees(u32::MAX - 4), Some(true), "finished, last epoch");
        assert_eq!(s.sees(4), Some(true), "finished, this epoch");
        assert_eq!(s.sees(u32::MAX - 20), Some(true), "below xmin, last epoch");
        // An id that would be at or past xmax this epoch is the last epoch's.
        assert_eq!(s.widen(5), Some(5));
        assert_eq!(s.sees(5), Some(true));
    }
}
