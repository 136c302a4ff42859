//! The change stream's verdict: what a consumer of the verify table's stream received,
//! set against the ledger of the writes.
//!
//! Pure. The follower hands over every event in the order it arrived (changes with
//! their cursor and the moment they arrived, `resolved` marks); the ledger says which
//! writes were acknowledged (at which version, answered when), which failed cleanly
//! and which are unknown. Changes are first deduplicated by cursor (a consumer that
//! reconnects with `Last-Event-ID` may be sent an event again: that is allowed). Then,
//! for the records of this run (no one else writes them):
//!
//! - **lost** (writes): an acknowledged write that no change shows;
//! - **twice** (writes): a write that two changes with different cursors show;
//! - **out of order** (records): a record whose versions do not rise, change after change;
//! - **phantom** (changes): a change that no write of ours can explain: a write answered
//!   as failed, data no write of this run made, a delete, or an acknowledged write at
//!   another version than the one acknowledged. A write of unknown fate may show or not.
//!
//! And for every change of the table, ours or not: **torn** (transactions): the parts
//! of one transaction with a `resolved` mark between them, so that a consumer acting on
//! the mark saw half of it.
//!
//! Lag, per change of ours: from its `time` (the write on its primary; the commit
//! follows) to its arrival, and, for an acknowledged write, from the moment its answer
//! arrived to the change's arrival (negative when the stream was faster than the answer).
//! Both on the clocks of the machines involved: meaningful when they are one machine or
//! kept in step.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ledger::{Fate, Ledger};

/// One change as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The event's `id` (its resume cursor), as a fingerprint; `None` for a change read
    /// in a JSON page, which carries none of its own.
    pub cursor: Option<u64>,
    pub shard_key: String,
    pub id: String,
    pub version: i64,
    /// `upsert`, `delete` or `snapshot`.
    pub operation: String,
    /// The write of this run the data names (`verify.seq` under this run's tag).
    pub seq: Option<u64>,
    /// The change's `time`: when the write ran on its shard's primary.
    pub time: Option<DateTime<Utc>>,
    /// The transaction it was part of.
    pub transaction: Option<String>,
    /// When it arrived here.
    pub received: DateTime<Utc>,
}

/// One event of the stream, in the order it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Change(Delivered),
    /// Every change committed before this time has been sent.
    Resolved(DateTime<Utc>),
}

/// Which promise of the stream a finding breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamKind {
    Lost,
    Twice,
    OutOfOrder,
    Phantom,
    Torn,
    Incomplete,
}

/// One thing found wrong with the stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamFinding {
    pub kind: StreamKind,
    /// The record's shard key, or the transaction's id for a torn one.
    pub key: String,
    pub detail: String,
}

/// p50 and p99 of a lag, in milliseconds, and how many values they come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Lag {
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Lag {
    /// Nearest-rank percentiles of `micros` (any order).
    pub fn of(mut micros: Vec<i64>) -> Self {
        if micros.is_empty() {
            return Self::default();
        }
        micros.sort_unstable();
        let rank = |p: f64| {
            let i = ((p * micros.len() as f64).ceil() as usize).clamp(1, micros.len()) - 1;
            micros[i] as f64 / 1000.0
        };
        Self {
            count: micros.len() as u64,
            p50_ms: rank(0.50),
            p99_ms: rank(0.99),
        }
    }
}

/// The stream's whole verdict.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamVerdict {
    /// Changes of the table received, after dropping those sent again (same cursor).
    pub delivered: u64,
    /// Changes sent again under a cursor already seen (dropped).
    pub redelivered: u64,
    /// `resolved` marks received.
    pub resolved: u64,
    /// Changes of this run's records.
    pub ours: u64,
    /// From the first change received to the last, in seconds; `delivered` over it is
    /// the stream's rate.
    pub span_secs: f64,
    /// Acknowledged writes no change showed.
    pub lost: u64,
    /// Writes shown by more than one change.
    pub twice: u64,
    /// Records whose versions did not rise.
    pub out_of_order: u64,
    /// Changes no write of ours explains.
    pub phantom: u64,
    /// Transactions with a `resolved` mark between their parts.
    pub torn: u64,
    /// Why the stream could not be followed to the end of the writes, when it could not.
    pub incomplete: Option<String>,
    /// From a change's `time` to its arrival.
    pub commit_lag: Lag,
    /// From an acknowledged write's answer to its change's arrival.
    pub ack_lag: Lag,
    pub findings: Vec<StreamFinding>,
}

impl StreamVerdict {
    /// True when every acknowledged write arrived once, in order, whole, with nothing
    /// else, and the stream was followed to the end.
    pub fn holds(&self) -> bool {
        self.lost == 0
            && self.twice == 0
            && self.out_of_order == 0
            && self.phantom == 0
            && self.torn == 0
            && self.incomplete.is_none()
    }

    /// Changes delivered per second over the span.
    pub fn rate(&self) -> f64 {
        match self.span_secs > 0.0 {
            true => self.delivered as f64 / self.span_secs,
            false => 0.0,
        }
    }
}

/// Judges the `events` a consumer received against `ledger`; `incomplete` says why the
/// stream could not be followed to the end, when it could not.
pub fn judge_stream(
    ledger: &Ledger,
    events: &[Event],
    incomplete: Option<String>,
) -> StreamVerdict {
    let mut v = StreamVerdict {
        incomplete: incomplete.clone(),
        ..StreamVerdict::default()
    };
    if let Some(why) = incomplete {
        v.findings.push(StreamFinding {
            kind: StreamKind::Incomplete,
            key: String::new(),
            detail: why,
        });
    }
    let mut cursors: HashSet<u64> = HashSet::new();
    // Per record: the versions in arrival order; per (record, write): how many changes.
    let mut versions: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    let mut shown: HashMap<(&str, u64), u64> = HashMap::new();
    // Per transaction: the number of `resolved` marks before its first part.
    let mut transactions: HashMap<&str, u64> = HashMap::new();
    let mut torn: BTreeMap<&str, String> = BTreeMap::new();
    let (mut first, mut last): (Option<DateTime<Utc>>, Option<DateTime<Utc>>) = (None, None);
    let (mut commit_lag, mut ack_lag) = (Vec::new(), Vec::new());
    for event in events {
        let change = match event {
            Event::Resolved(_) => {
                v.resolved += 1;
                continue;
            }
            Event::Change(change) => change,
        };
        if let Some(cursor) = change.cursor {
            if !cursors.insert(cursor) {
                v.redelivered += 1;
                continue;
            }
        }
        v.delivered += 1;
        first.get_or_insert(change.received);
        last = Some(change.received);
        if let Some(txid) = &change.transaction {
            let marks = *transactions.entry(txid).or_insert(v.resolved);
            if marks != v.resolved {
                torn.entry(txid).or_insert_with(|| {
                    format!(
                        "a part arrived after {} resolved mark(s) more than the first",
                        v.resolved - marks
                    )
                });
            }
        }
        let Some(log) = ledger.records.get(&change.shard_key) else {
            continue;
        };
        v.ours += 1;
        versions
            .entry(&change.shard_key)
            .or_default()
            .push(change.version);
        if let Some(time) = change.time {
            commit_lag.push(micros(change.received - time));
        }
        let write = change.seq.and_then(|seq| log.write(seq));
        let phantom = match (change.operation.as_str(), write) {
            ("upsert", Some(write)) => {
                *shown.entry((&change.shard_key, write.seq)).or_default() += 1;
                match &write.fate {
                    Fate::Acknowledged { version, .. } => {
                        if let Some(at) = write.answered_at {
                            ack_lag.push(micros(change.received - at));
                        }
                        (*version != change.version).then(|| {
                            format!(
                                "write {} at v{}, acknowledged at v{version}",
                                write.seq, change.version
                            )
                        })
                    }
                    Fate::Failed { status, problem } => Some(format!(
                        "write {} at v{}, answered {status} {problem} (not applied)",
                        write.seq, change.version
                    )),
                    Fate::Unknown { .. } => None,
                }
            }
            ("upsert", None) => Some(format!(
                "v{} holding data no write of this run made",
                change.version
            )),
            (operation, _) => Some(format!(
                "{operation} at v{}: this run never sent one",
                change.version
            )),
        };
        if let Some(detail) = phantom {
            v.phantom += 1;
            v.findings
                .push(finding(StreamKind::Phantom, &change.shard_key, detail));
        }
    }
    for (key, seen) in &versions {
        if !seen.windows(2).all(|w| w[0] < w[1]) {
            v.out_of_order += 1;
            let detail = format!("versions in arrival order: {seen:?}");
            v.findings
                .push(finding(StreamKind::OutOfOrder, key, detail));
        }
    }
    for (key, log) in &ledger.records {
        for write in &log.writes {
            let times = shown.get(&(key.as_str(), write.seq)).copied().unwrap_or(0);
            let acknowledged = match write.fate {
                Fate::Acknowledged { version, .. } => Some(version),
                _ => None,
            };
            if let (0, Some(version)) = (times, acknowledged) {
                v.lost += 1;
                let detail = format!(
                    "acknowledged write {} (v{version}) never arrived",
                    write.seq
                );
                v.findings.push(finding(StreamKind::Lost, key, detail));
            }
            if times > 1 {
                v.twice += 1;
                let detail = format!("write {} arrived {times} times", write.seq);
                v.findings.push(finding(StreamKind::Twice, key, detail));
            }
        }
    }
    v.torn = torn.len() as u64;
    for (txid, detail) in torn {
        v.findings.push(finding(StreamKind::Torn, txid, detail));
    }
    if let (Some(first), Some(last)) = (first, last) {
        v.span_secs = micros(last - first) as f64 / 1e6;
    }
    v.commit_lag = Lag::of(commit_lag);
    v.ack_lag = Lag::of(ack_lag);
    v.findings.sort_by_key(|f| f.kind);
    v
}

fn finding(kind: StreamKind, key: &str, detail: String) -> StreamFinding {
    StreamFinding {
        kind,
        key: key.to_owned(),
        detail,
    }
}

fn micros(d: chrono::TimeDelta) -> i64 {
    d.num_microseconds().unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    //! Crafted streams: each broken promise must be found, and only it.

    use super::*;

    const A: &str = "verify-r1-0-0";
    const B: &str = "verify-r1-0-1";

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_800_000_000_000 + ms).unwrap()
    }

    fn acked(version: i64) -> Fate {
        Fate::Acknowledged {
            version,
            created: false,
        }
    }

    /// Record A: write 1 acknowledged at v10 (answered at 20 ms), write 2 at v14
    /// (answered at 120 ms); record B: write 3 failed, write 4 unknown.
    fn ledger() -> Ledger {
        let mut ledger = Ledger::new("r1");
        for (key, seq, fate, answered) in [
            (A, 1, acked(10), 20),
            (A, 2, acked(14), 120),
            (
                B,
                3,
                Fate::Failed {
                    status: 503,
                    problem: "shard-saturated".into(),
                },
                200,
            ),
            (
                B,
                4,
                Fate::Unknown {
                    why: "timeout".into(),
                },
                300,
            ),
        ] {
            ledger.sent("users", key, key, seq);
            ledger.answered(key, seq, fate, at(answered));
        }
        ledger
    }

    /// A change of `key` holding write `seq` at `version`, written at `ms`, arriving
    /// 30 ms later, its cursor `<version>`.
    fn change(key: &str, seq: u64, version: i64, ms: i64) -> Event {
        Event::Change(Delivered {
            cursor: Some(version as u64),
            shard_key: key.into(),
            id: key.into(),
            version,
            operation: "upsert".into(),
            seq: Some(seq),
            time: Some(at(ms)),
            transaction: None,
            received: at(ms + 30),
        })
    }

    fn with(event: Event, f: impl FnOnce(&mut Delivered)) -> Event {
        match event {
            Event::Change(mut c) => {
                f(&mut c);
                Event::Change(c)
            }
            resolved => resolved,
        }
    }

    /// The clean stream: both acknowledged writes, once, in order.
    fn clean() -> Vec<Event> {
        vec![
            change(A, 1, 10, 0),
            Event::Resolved(at(50)),
            change(A, 2, 14, 100),
        ]
    }

    /// (lost, twice, out of order, phantom, torn) of `events`.
    fn counts(events: &[Event]) -> (u64, u64, u64, u64, u64) {
        let v = judge_stream(&ledger(), events, None);
        (v.lost, v.twice, v.out_of_order, v.phantom, v.torn)
    }

    #[test]
    fn every_acknowledged_write_once_in_order_holds_with_its_lag() {
        let v = judge_stream(&ledger(), &clean(), None);
        assert!(v.holds(), "{v:?}");
        assert_eq!((v.delivered, v.ours, v.resolved), (2, 2, 1));
        assert_eq!(
            v.commit_lag,
            Lag {
                count: 2,
                p50_ms: 30.0,
                p99_ms: 30.0
            }
        );
        // Write 1 answered at 20 ms, arrived at 30; write 2 answered at 120, arrived at 130.
        assert_eq!(
            v.ack_lag,
            Lag {
                count: 2,
                p50_ms: 10.0,
                p99_ms: 10.0
            }
        );
        assert_eq!(v.span_secs, 0.1);
        assert_eq!(v.rate(), 20.0);
    }

    #[test]
    fn an_acknowledged_write_that_never_arrives_is_lost() {
        let events = [change(A, 2, 14, 100)];
        assert_eq!(counts(&events), (1, 0, 0, 0, 0));
        let v = judge_stream(&ledger(), &events, None);
        assert!(!v.holds());
        assert_eq!(v.findings[0].key, A);
        assert!(v.findings[0].detail.contains("write 1 (v10)"), "{v:?}");
    }

    #[test]
    fn the_same_cursor_twice_is_dropped_but_the_same_write_under_two_is_twice() {
        let mut again = clean();
        again.push(change(A, 2, 14, 100));
        let v = judge_stream(&ledger(), &again, None);
        assert!(v.holds(), "{v:?}");
        assert_eq!(v.redelivered, 1);
        let mut twice = clean();
        twice.push(with(change(A, 2, 14, 100), |c| c.cursor = Some(99)));
        assert_eq!(counts(&twice), (0, 1, 1, 0, 0));
        // Read from a JSON page (no cursor of its own): never dropped as sent again.
        let mut paged = clean();
        paged.push(with(change(A, 1, 10, 0), |c| c.cursor = None));
        assert_eq!(counts(&paged).1, 1);
    }

    #[test]
    fn versions_that_go_down_are_out_of_order() {
        let events = [change(A, 2, 14, 100), change(A, 1, 10, 0)];
        assert_eq!(counts(&events), (0, 0, 1, 0, 0));
    }

    #[test]
    fn a_transaction_cut_by_a_resolved_mark_is_torn() {
        let part = |key: &str, seq, version, tx: &str| {
            with(change(key, seq, version, 0), |c| {
                c.transaction = Some(tx.into());
                c.shard_key = format!("other-{key}");
            })
        };
        let mut whole = clean();
        whole.extend([part("x", 1, 20, "t1"), part("y", 1, 21, "t1")]);
        assert_eq!(counts(&whole), (0, 0, 0, 0, 0));
        let mut torn = clean();
        torn.extend([
            part("x", 1, 20, "t1"),
            Event::Resolved(at(500)),
            part("y", 1, 21, "t1"),
        ]);
        assert_eq!(counts(&torn), (0, 0, 0, 0, 1));
        let v = judge_stream(&ledger(), &torn, None);
        assert_eq!(
            (v.findings[0].kind, v.findings[0].key.as_str()),
            (StreamKind::Torn, "t1")
        );
    }

    #[test]
    fn a_change_no_write_of_ours_explains_is_a_phantom() {
        // A write answered as failed.
        let mut failed = clean();
        failed.push(change(B, 3, 30, 200));
        assert_eq!(counts(&failed), (0, 0, 0, 1, 0));
        // An acknowledged write at another version than acknowledged.
        let wrong = [change(A, 1, 11, 0), change(A, 2, 14, 100)];
        assert_eq!(counts(&wrong), (0, 0, 0, 1, 0));
        // Data not of this run, a write number never sent, a delete.
        for odd in [
            with(change(A, 1, 15, 300), |c| c.seq = None),
            change(A, 9, 15, 300),
            with(change(A, 2, 15, 300), |c| c.operation = "delete".into()),
        ] {
            let mut events = clean();
            events.push(odd);
            assert_eq!(counts(&events), (0, 0, 0, 1, 0), "{events:?}");
        }
    }

    #[test]
    fn a_write_of_unknown_fate_may_arrive_or_not() {
        let mut shown = clean();
        shown.push(change(B, 4, 40, 300));
        assert!(judge_stream(&ledger(), &shown, None).holds());
        assert!(judge_stream(&ledger(), &clean(), None).holds());
    }

    #[test]
    fn changes_of_other_records_count_but_are_not_judged() {
        let mut events = clean();
        events.push(with(change(A, 7, 1, 0), |c| c.shard_key = "user_1".into()));
        let v = judge_stream(&ledger(), &events, None);
        assert!(v.holds(), "{v:?}");
        assert_eq!((v.delivered, v.ours), (3, 2));
    }

    #[test]
    fn a_stream_not_followed_to_the_end_does_not_hold() {
        let v = judge_stream(&ledger(), &clean(), Some("no resolved past the end".into()));
        assert!(!v.holds());
        assert_eq!(v.findings[0].kind, StreamKind::Incomplete);
    }

    #[test]
    fn lag_percentiles_are_nearest_rank_and_may_be_negative() {
        let lag = Lag::of((1..=100).rev().map(|ms| ms * 1000).collect());
        assert_eq!((lag.count, lag.p50_ms, lag.p99_ms), (100, 50.0, 99.0));
        assert_eq!(Lag::of(vec![-2000, 4000]).p50_ms, -2.0);
        assert_eq!(Lag::of(Vec::new()), Lag::default());
    }
}
