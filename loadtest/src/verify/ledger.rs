//! The ledger: every write a verify user sent and how it ended, and every read it made
//! with a write's token and what came back.
//!
//! Pure bookkeeping, no I/O. A write is entered as [`Fate::Unknown`] *before* it is
//! sent and its fate replaced when the answer arrives, so a write whose answer never
//! came (the run stopped, the client gave up) stays "may have been applied". Each
//! record belongs to one user, who writes it one request at a time, so a record's
//! writes are in the order they were applied, if they were.
//!
//! The ledger serialises to JSON (the `--verify-out` file) so that a later
//! `--verify-check` can read everything back again, after a failover has settled.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How one write ended, as far as the client can know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fate", rename_all = "snake_case")]
pub enum Fate {
    /// 200/201 with the record's version: the gateway promises it is durable.
    Acknowledged {
        version: i64,
        /// The answer's `created`: this write made the record.
        created: bool,
    },
    /// Refused before anything could commit (a 4xx, or a 503 whose problem type says
    /// nothing was sent): it must not have been applied.
    Failed { status: u16, problem: String },
    /// No answer, or one that leaves it open (timeout, connection lost after sending, a
    /// 503 that may follow a send): it may or may not have been applied.
    Unknown { why: String },
}

impl Fate {
    /// Whether the write may be in the database: acknowledged or unknown.
    pub fn may_be_applied(&self) -> bool {
        !matches!(self, Fate::Failed { .. })
    }
}

/// One write to a record: its number and its fate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Write {
    /// Unique within the user (it grows with each write the user sends), and stored in
    /// the record's data as `verify.seq`: what a read finds names the write it came from.
    pub seq: u64,
    #[serde(flatten)]
    pub fate: Fate,
    /// When the answer arrived (the client's clock): where a change stream's
    /// acknowledgement-to-delivery lag starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<DateTime<Utc>>,
}

/// What a read returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "seen", rename_all = "snake_case")]
pub enum Seen {
    /// The record, at `version`, holding our write `seq` (None: data that no write of
    /// this run made).
    Found { version: i64, seq: Option<u64> },
    /// 404.
    Missing,
    /// No usable answer (5xx, no response): says nothing about staleness.
    Failed { why: String },
}

/// A read sent with the read-your-writes token of an acknowledged write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRead {
    /// The write whose token the read carried.
    pub after_seq: u64,
    /// The version that write was acknowledged at.
    pub wrote_version: i64,
    /// The token (`x-shard-lsn` of the write, sent as `x-min-lsn`).
    pub token: String,
    #[serde(flatten)]
    pub seen: Seen,
}

impl TokenRead {
    /// The read came back without its write: 404, an older version, or an older
    /// write's data (or data not ours). A failed read returned nothing: not stale.
    pub fn stale(&self) -> bool {
        match self.seen {
            Seen::Found { version, seq } => {
                version < self.wrote_version || seq.is_none_or(|s| s < self.after_seq)
            }
            Seen::Missing => true,
            Seen::Failed { .. } => false,
        }
    }
}

/// Everything one record went through.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordLog {
    /// The logical table.
    pub table: String,
    /// The record's id (the shard key is the ledger's map key).
    pub id: String,
    /// The writes, in the order they were sent.
    pub writes: Vec<Write>,
    /// The token reads, in the order they were made.
    pub token_reads: Vec<TokenRead>,
}

impl RecordLog {
    /// The acknowledged write with the highest number: what the record must show at least.
    pub fn last_acknowledged(&self) -> Option<(u64, i64)> {
        self.writes
            .iter()
            .filter_map(|w| match w.fate {
                Fate::Acknowledged { version, .. } => Some((w.seq, version)),
                _ => None,
            })
            .max_by_key(|(seq, _)| *seq)
    }

    /// The write numbered `seq`, if this record had one.
    pub fn write(&self, seq: u64) -> Option<&Write> {
        self.writes.iter().find(|w| w.seq == seq)
    }
}

/// The whole run's ledger: records by shard key (one record per key).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// Tags every write's data (`verify.run`), so data from another run is not ours.
    pub run: String,
    pub records: BTreeMap<String, RecordLog>,
}

impl Ledger {
    pub fn new(run: impl Into<String>) -> Self {
        Self {
            run: run.into(),
            records: BTreeMap::new(),
        }
    }

    /// Enters write `seq` to `key`'s record before it is sent: unknown until answered.
    pub fn sent(&mut self, table: &str, key: &str, id: &str, seq: u64) {
        let log = self.records.entry(key.to_owned()).or_default();
        if log.id.is_empty() {
            log.table = table.to_owned();
            log.id = id.to_owned();
        }
        log.writes.push(Write {
            seq,
            fate: Fate::Unknown {
                why: "sent; no answer recorded".into(),
            },
            answered_at: None,
        });
    }

    /// Records how write `seq` to `key` ended, and when the answer came.
    pub fn answered(&mut self, key: &str, seq: u64, fate: Fate, at: DateTime<Utc>) {
        if let Some(write) = self
            .records
            .get_mut(key)
            .and_then(|log| log.writes.iter_mut().rev().find(|w| w.seq == seq))
        {
            write.fate = fate;
            write.answered_at = Some(at);
        }
    }

    /// Records a token read of `key`'s record.
    pub fn token_read(&mut self, key: &str, read: TokenRead) {
        self.records
            .entry(key.to_owned())
            .or_default()
            .token_reads
            .push(read);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acked(version: i64) -> Fate {
        Fate::Acknowledged {
            version,
            created: false,
        }
    }

    #[test]
    fn a_write_is_unknown_until_answered() {
        let mut ledger = Ledger::new("r1");
        ledger.sent("users", "k", "k", 1);
        let log = &ledger.records["k"];
        assert!(matches!(log.writes[0].fate, Fate::Unknown { .. }));
        assert!(log.writes[0].fate.may_be_applied());
        ledger.answered("k", 1, acked(40), Utc::now());
        assert_eq!(ledger.records["k"].writes[0].fate, acked(40));
    }

    #[test]
    fn the_newest_acknowledged_write_is_found_past_failed_and_unknown_ones() {
        let mut ledger = Ledger::new("r1");
        for seq in 1..=4 {
            ledger.sent("users", "k", "k", seq);
        }
        ledger.answered("k", 1, acked(10), Utc::now());
        ledger.answered("k", 2, acked(12), Utc::now());
        ledger.answered(
            "k",
            3,
            Fate::Failed {
                status: 429,
                problem: "rate-limited".into(),
            },
            Utc::now(),
        );
        let log = &ledger.records["k"];
        assert_eq!(log.last_acknowledged(), Some((2, 12)));
        assert!(!log.write(3).unwrap().fate.may_be_applied());
        assert!(log.write(4).unwrap().fate.may_be_applied());
        assert_eq!((log.table.as_str(), log.id.as_str()), ("users", "k"));
    }

    #[test]
    fn the_ledger_survives_a_round_trip_through_json() {
        let mut ledger = Ledger::new("r1");
        ledger.sent("users", "k", "k", 7);
        ledger.answered("k", 7, acked(99), Utc::now());
        ledger.token_read(
            "k",
            TokenRead {
                after_seq: 7,
                wrote_version: 99,
                token: "1:0/16B3A28".into(),
                seen: Seen::Found {
                    version: 99,
                    seq: Some(7),
                },
            },
        );
        let text = serde_json::to_string(&ledger).unwrap();
        assert!(
            text.contains(r#""fate":"acknowledged","version":99"#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<Ledger>(&text).unwrap(), ledger);
    }
}
