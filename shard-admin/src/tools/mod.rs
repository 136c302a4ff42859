//! The learning tools: what a reshape would move, fake data, and a benchmark.
//!
//! - [`plan`]: what each strategy would move if a shard were added, from the data.
//! - [`generate`]: realistic fake records, a pure function of (table, seed, n).
//! - [`seed`]: generated records, routed and bulk-loaded into the shards.
//! - [`bench`](mod@bench): one workload against a single database and against the shards.
//! - [`progress`]: the progress bars `seed` and `bench` draw.

pub mod bench;
pub mod generate;
pub mod plan;
pub mod progress;
pub mod seed;
