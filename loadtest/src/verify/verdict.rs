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
#[path = "verdict_tests.rs"]
mod tests;
