//! The verify mode: users check the gateway's promises themselves.
//!
//! The `verify` scenario's users each own a few records and write them one request at
//! a time, entering every write and its fate (acknowledged, failed cleanly, unknown)
//! and every read made with a write's token in a shared ledger. After the run every
//! record is read back from its primary and the ledger judged: how many acknowledged
//! writes were **lost**, how many records were **applied twice**, how many token reads
//! came back **stale**. Any of them (or a record that could not be read back) makes the
//! process exit with status 3.
//!
//! Unless `--follow-changes false`, a consumer follows the table's change stream beside
//! the writes, and the stream is judged against the same ledger: every acknowledged
//! write arrived exactly once, each record's versions in order, no transaction cut by
//! a `resolved` mark, nothing that no write of ours explains; with its rate and its lag
//! (from the change's time, and from the write's answer). A broken promise there exits
//! with status 3 too.
//!
//! # Layout
//!
//! - [`ledger`]: the writes, their fates and the token reads (pure).
//! - [`fate`]: a write's fate from its answer (pure).
//! - [`verdict`]: the ledger against the read-back: lost, applied twice, stale (pure).
//! - [`follow`]: the change stream's consumer beside the load.
//! - [`stream_verdict`]: the ledger against what the stream delivered, and its lag (pure).
//! - [`recorder`]: what verify users share: run tag, owned keys, the ledger.
//! - [`reply`]: reading the gateway's answers to verify requests.
//! - [`readback`]: the strong read of every record after the run.
//! - [`report`]: the text section, the `verify: {...}` line, the saved file.
//! - [`finish`]: read back, judge, report.
//!
//! The scenario itself is [`crate::scenarios::verify`].

pub mod fate;
pub mod finish;
pub mod follow;
pub mod ledger;
pub mod readback;
pub mod recorder;
pub mod reply;
pub mod report;
pub mod stream_verdict;
pub mod verdict;

pub use finish::finish;
pub use follow::Follower;
pub use recorder::Recorder;
pub use verdict::Verdict;

/// The exit status of a run whose verdict does not hold.
pub const BROKEN_EXIT: u8 = 3;

/// A fresh run tag: 8 hex digits.
pub fn new_run_tag() -> String {
    format!("{:08x}", rand::random::<u32>())
}
