//! The verdict: the ledger set against what a strong read of every record found.
//!
//! Pure. Each record belongs to one user, so every write that could have changed it is
//! in its log, in order; that makes each judgement exact rather than statistical.
//!
//! - **lost** (records): an acknowledged write's effect is gone. The record is
//!   missing; or it holds a write older than the newest acknowledged one; or it holds
//!   that write (or a later unknown one) at a version lower than acknowledged; or an
//!   acknowledged write answered `created: true` after an earlier acknowledged write had
//!   made the record (it had vanished in between); or it holds data no write of this run
//!   made while a write was acknowledged.
//! - **applied twice** (records): the version went up more times than our writes that
//!   could have been applied (acknowledged + unknown). The record holds the newest
//!   acknowledged write at a higher version than acknowledged (something applied after
//!   it, and no later write of ours may have been); or it holds a write answered as
//!   failed (applied though refused); or a write answered `created: false` when no
//!   earlier write of ours could have made the record; or it holds data that is not ours
//!   while no write of ours was acknowledged.
//! - **stale token reads** (reads): a read carrying a write's token came back without
//!   that write: 404, an older version, or an older write's data. A read that failed
//!   (5xx, no answer) is counted apart: it returned nothing, stale or not.
//! - **unreadable** (records): the strong read never answered; the verdict is
//!   incomplete, and so not clean.
//!
//! Writes that failed cleanly must not be there; unknown ones may or may not be: either
//! is fine, and the newest acknowledged write must still show through.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ledger::{Fate, Ledger, RecordLog, Seen};

/// What the final strong read of a record found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "found", rename_all = "snake_case")]
pub enum Final {
    /// Readable: the record at a version holding write `seq`, or 404.
    Read(Seen),
    /// No usable answer within the read-back's bound.
    Unreadable { why: String },
}

/// Which promise a finding breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Lost,
    AppliedTwice,
    StaleTokenRead,
    Unreadable,
}

/// One thing found wrong, with the facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: Kind,
    /// The record's shard key.
    pub key: String,
    pub detail: String,
}

/// Counts of the writes' fates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fates {
    pub acknowledged: u64,
    pub failed: u64,
    pub unknown: u64,
}

/// The whole verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Records checked.
    pub records: u64,
    pub writes: Fates,
    /// Reads sent with a token, and how many of them got no usable answer.
    pub token_reads: u64,
    pub token_reads_failed: u64,
    /// Records whose acknowledged write is gone.
    pub lost: u64,
    /// Records changed more times than our writes could have changed them.
    pub applied_twice: u64,
    /// Token reads that returned data older than their write.
    pub stale_token_reads: u64,
    /// Records the read-back could not read.
    pub unreadable: u64,
    /// Every finding, lost and applied twice first.
    pub findings: Vec<Finding>,
}

impl Verdict {
    /// True when nothing was lost, applied twice or read stale, and every record was read.
    pub fn holds(&self) -> bool {
        self.lost == 0
            && self.applied_twice == 0
            && self.stale_token_reads == 0
            && self.unreadable == 0
    }
}

/// Judges `ledger` against what the read-back found for each record (by shard key).
/// A record the read-back has no entry for counts as unreadable.
pub fn judge(ledger: &Ledger, finals: &BTreeMap<String, Final>) -> Verdict {
    let mut verdict = Verdict::default();
    for (key, log) in &ledger.records {
        verdict.records += 1;
        count_fates(&mut verdict.writes, log);
        let mut findings = created_flags(log);
        match finals.get(key) {
            Some(Final::Read(seen)) => findings.extend(final_state(log, seen)),
            Some(Final::Unreadable { why }) => findings.push((Kind::Unreadable, why.clone())),
            None => findings.push((Kind::Unreadable, "not read back".into())),
        }
        let mut kinds: Vec<Kind> = findings.iter().map(|(kind, _)| *kind).collect();
        kinds.sort();
        kinds.dedup();
        for kind in kinds {
            match kind {
                Kind::Lost => verdict.lost += 1,
                Kind::AppliedTwice => verdict.applied_twice += 1,
                Kind::Unreadable => verdict.unreadable += 1,
                Kind::StaleTokenRead => {}
            }
        }
        for read in &log.token_reads {
            verdict.token_reads += 1;
            if let Seen::Failed { .. } = read.seen {
                verdict.token_reads_failed += 1;
            }
            let stale = read.stale().then(|| match read.seen {
                Seen::Found { version, seq } => format!("v{version} holding {}", write_name(seq)),
                _ => "404".to_owned(),
            });
            if let Some(found) = stale {
                verdict.stale_token_reads += 1;
                findings.push((
                    Kind::StaleTokenRead,
                    format!(
                        "read with the token {} of write {} (v{}) returned {found}",
                        read.token, read.after_seq, read.wrote_version
                    ),
                ));
            }
        }
        verdict
            .findings
            .extend(findings.into_iter().map(|(kind, detail)| Finding {
                kind,
                key: key.clone(),
                detail,
            }));
    }
    verdict.findings.sort_by_key(|f| f.kind);
    verdict
}

fn count_fates(fates: &mut Fates, log: &RecordLog) {
    for write in &log.writes {
        match write.fate {
            Fate::Acknowledged { .. } => fates.acknowledged += 1,
            Fate::Failed { .. } => fates.failed += 1,
            Fate::Unknown { .. } => fates.unknown += 1,
        }
    }
}

/// What each acknowledged write's `created` says about the writes before it.
fn created_flags(log: &RecordLog) -> Vec<(Kind, String)> {
    let mut findings = Vec::new();
    let mut earlier_possible = false;
    let mut earlier_acknowledged: Option<u64> = None;
    for write in &log.writes {
        if let Fate::Acknowledged { version, created } = write.fate {
            if !created && !earlier_possible {
                findings.push((
                    Kind::AppliedTwice,
                    format!(
                        "write {} (v{version}) replaced a record no earlier write of ours \
                         could have made",
                        write.seq
                    ),
                ));
            }
            if let (true, Some(before)) = (created, earlier_acknowledged) {
                findings.push((
                    Kind::Lost,
                    format!(
                        "write {} (v{version}) created the record again: acknowledged write \
                         {before} had gone",
                        write.seq
                    ),
                ));
            }
            earlier_acknowledged = Some(write.seq);
        }
        earlier_possible |= write.fate.may_be_applied();
    }
    findings
}

/// The final state against the log.
fn final_state(log: &RecordLog, seen: &Seen) -> Option<(Kind, String)> {
    let acked = log.last_acknowledged();
    let newest = |(seq, version): (u64, i64)| format!("acknowledged write {seq} (v{version})");
    let (version, seq) = match seen {
        Seen::Missing => {
            return acked.map(|a| (Kind::Lost, format!("missing; {} is gone", newest(a))))
        }
        // The read-back turns failures into Unreadable; kept total all the same.
        Seen::Failed { why } => return Some((Kind::Unreadable, why.clone())),
        Seen::Found { version, seq } => (*version, *seq),
    };
    let holds = format!("holds {} at v{version}", write_name(seq));
    let Some(write) = seq.and_then(|s| log.write(s)) else {
        // Data no write of this run made.
        return Some(match acked {
            Some(a) => (Kind::Lost, format!("{holds}; {} is gone", newest(a))),
            None => (
                Kind::AppliedTwice,
                format!("{holds}; no write of ours made it"),
            ),
        });
    };
    if let Fate::Failed { status, problem } = &write.fate {
        return Some((
            Kind::AppliedTwice,
            format!("{holds}, a write answered {status} {problem} (not applied)"),
        ));
    }
    let (a_seq, a_version) = acked?;
    if write.seq < a_seq || version < a_version {
        return Some((
            Kind::Lost,
            format!("{holds}; {} is gone", newest((a_seq, a_version))),
        ));
    }
    if write.seq == a_seq && version > a_version {
        return Some((
            Kind::AppliedTwice,
            format!(
                "{holds}: changed again after {}, with no later write of ours",
                newest((a_seq, a_version))
            ),
        ));
    }
    None
}

fn write_name(seq: Option<u64>) -> String {
    match seq {
        Some(seq) => format!("write {seq}"),
        None => "data not written by this run".into(),
    }
}

#[cfg(test)]
mod tests {
    //! What the verify mode concludes from a ledger and its reads.

    use super::*;
    use crate::verify::ledger::TokenRead;

    const KEY: &str = "verify-r1-0-0";

    fn acked(version: i64, created: bool) -> Fate {
        Fate::Acknowledged { version, created }
    }

    fn failed() -> Fate {
        Fate::Failed {
            status: 503,
            problem: "shard-saturated".into(),
        }
    }

    fn unknown() -> Fate {
        Fate::Unknown {
            why: "no answer: timed out".into(),
        }
    }

    /// A ledger of one record whose writes 1, 2, ... ended as `fates`.
    fn ledger(fates: &[Fate]) -> Ledger {
        let mut ledger = Ledger::new("r1");
        for (i, fate) in fates.iter().enumerate() {
            let seq = i as u64 + 1;
            ledger.sent("users", KEY, KEY, seq);
            ledger.answered(KEY, seq, fate.clone(), chrono::Utc::now());
        }
        ledger
    }

    fn found(version: i64, seq: u64) -> Final {
        Final::Read(Seen::Found {
            version,
            seq: Some(seq),
        })
    }

    fn judged(ledger: &Ledger, last: Final) -> Verdict {
        judge(ledger, &BTreeMap::from([(KEY.to_owned(), last)]))
    }

    /// (lost, applied twice) of one record.
    fn verdict(fates: &[Fate], last: Final) -> (u64, u64) {
        let v = judged(&ledger(fates), last);
        (v.lost, v.applied_twice)
    }

    #[test]
    fn the_newest_acknowledged_write_at_its_version_is_clean() {
        let v = judged(&ledger(&[acked(10, true), acked(14, false)]), found(14, 2));
        assert!(v.holds(), "{v:?}");
        assert_eq!((v.records, v.writes.acknowledged), (1, 2));
        assert!(v.findings.is_empty());
    }

    #[test]
    fn a_missing_record_lost_its_acknowledged_write() {
        let v = judged(&ledger(&[acked(10, true)]), Final::Read(Seen::Missing));
        assert_eq!((v.lost, v.applied_twice), (1, 0));
        assert!(!v.holds());
        assert_eq!(v.findings[0].kind, Kind::Lost);
        assert!(v.findings[0].detail.contains("missing"), "{:?}", v.findings);
    }

    #[test]
    fn an_older_write_or_a_lower_version_is_lost() {
        let fates = [acked(10, true), acked(14, false)];
        assert_eq!(verdict(&fates, found(10, 1)), (1, 0));
        assert_eq!(verdict(&fates, found(12, 2)), (1, 0));
    }

    #[test]
    fn a_version_bumped_after_the_newest_acknowledged_write_is_applied_twice() {
        let fates = [acked(10, true), acked(14, false)];
        let v = judged(&ledger(&fates), found(15, 2));
        assert_eq!((v.lost, v.applied_twice), (0, 1));
        assert!(v.findings[0].detail.contains("changed again"), "{v:?}");
    }

    #[test]
    fn a_write_answered_as_failed_must_not_be_there() {
        assert_eq!(verdict(&[acked(10, true), failed()], found(12, 2)), (0, 1));
        // Not there: fine, and a failed write alone leaves no record to find.
        assert_eq!(verdict(&[acked(10, true), failed()], found(10, 1)), (0, 0));
        assert_eq!(verdict(&[failed()], Final::Read(Seen::Missing)), (0, 0));
    }

    #[test]
    fn an_unknown_write_may_or_may_not_be_applied() {
        let fates = [acked(10, true), unknown()];
        // Applied, at a version above the acknowledged one, or not applied: both fine.
        assert_eq!(verdict(&fates, found(13, 2)), (0, 0));
        assert_eq!(verdict(&fates, found(10, 1)), (0, 0));
        // Unknown writes only: a missing record is fine too.
        assert_eq!(verdict(&[unknown()], Final::Read(Seen::Missing)), (0, 0));
        assert_eq!(verdict(&[unknown()], found(3, 1)), (0, 0));
        // But the acknowledged write must still show: a lower version is lost.
        assert_eq!(verdict(&fates, found(9, 2)), (1, 0));
        // An acknowledged write after an unknown one is the one to see.
        assert_eq!(
            verdict(&[unknown(), acked(20, false)], found(20, 2)),
            (0, 0)
        );
        assert_eq!(verdict(&[unknown(), acked(20, false)], found(8, 1)), (1, 0));
        let v = judged(&ledger(&[unknown(), failed(), acked(5, true)]), found(5, 3));
        assert_eq!(
            v.writes,
            Fates {
                acknowledged: 1,
                failed: 1,
                unknown: 1
            }
        );
    }

    #[test]
    fn the_created_flag_tells_a_double_and_a_disappearance() {
        // The first write found the record there: it had been applied before.
        assert_eq!(verdict(&[acked(10, false)], found(10, 1)), (0, 1));
        // Not after an unknown write, which may have made it.
        assert_eq!(
            verdict(&[unknown(), acked(10, false)], found(10, 2)),
            (0, 0)
        );
        // A second acknowledged write made the record anew: the first had gone.
        assert_eq!(
            verdict(&[acked(10, true), acked(12, true)], found(12, 2)),
            (1, 0)
        );
    }

    #[test]
    fn data_that_is_not_ours_is_a_loss_or_a_change_we_did_not_make() {
        let foreign = Final::Read(Seen::Found {
            version: 30,
            seq: None,
        });
        assert_eq!(verdict(&[acked(10, true)], foreign.clone()), (1, 0));
        assert_eq!(verdict(&[unknown()], foreign), (0, 1));
        // A write number this record never sent is not ours either.
        assert_eq!(verdict(&[acked(10, true)], found(30, 9)), (1, 0));
    }

    #[test]
    fn a_token_read_older_than_its_write_is_stale() {
        let mut ledger = ledger(&[acked(10, true), acked(14, false)]);
        let read = |after_seq, wrote_version, seen| TokenRead {
            after_seq,
            wrote_version,
            token: "1:0/16B3A28".into(),
            seen,
        };
        let reads = [
            // Fresh: the write itself, or (after write 1) a newer one.
            read(
                2,
                14,
                Seen::Found {
                    version: 14,
                    seq: Some(2),
                },
            ),
            read(
                1,
                10,
                Seen::Found {
                    version: 14,
                    seq: Some(2),
                },
            ),
            // Stale: an older version, an older write, nothing at all.
            read(
                2,
                14,
                Seen::Found {
                    version: 10,
                    seq: Some(1),
                },
            ),
            read(
                2,
                14,
                Seen::Found {
                    version: 14,
                    seq: Some(1),
                },
            ),
            read(1, 10, Seen::Missing),
            // Failed: no data, so not stale.
            read(2, 14, Seen::Failed { why: "503".into() }),
        ];
        for r in reads {
            ledger.token_read(KEY, r);
        }
        let v = judged(&ledger, found(14, 2));
        assert_eq!(
            (v.token_reads, v.stale_token_reads, v.token_reads_failed),
            (6, 3, 1)
        );
        assert_eq!((v.lost, v.applied_twice), (0, 0));
        assert!(!v.holds());
        assert!(v.findings.iter().all(|f| f.kind == Kind::StaleTokenRead));
    }

    #[test]
    fn a_record_not_read_back_leaves_the_verdict_incomplete() {
        let ledger = ledger(&[acked(10, true)]);
        let v = judge(&ledger, &BTreeMap::new());
        assert_eq!((v.unreadable, v.lost), (1, 0));
        assert!(!v.holds());
        let v = judged(
            &ledger,
            Final::Unreadable {
                why: "503 shard-unavailable".into(),
            },
        );
        assert_eq!(v.unreadable, 1);
    }

    #[test]
    fn records_are_counted_once_per_kind() {
        // Lost twice over (created again, then missing): one lost record.
        let v = judged(
            &ledger(&[acked(10, true), acked(12, true)]),
            Final::Read(Seen::Missing),
        );
        assert_eq!(v.lost, 1);
        assert_eq!(v.findings.len(), 2);
    }
}
