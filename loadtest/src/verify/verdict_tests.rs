//! Unit tests of `verdict.rs`: what the verify mode concludes from a ledger and its reads.

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
        ledger.answered(KEY, seq, fate.clone());
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
