//! A shard that fails over, on private servers ([`crate::private`]), as control-plane's
//! failover tests and its `outage` and `replication` benchmarks set it up.
//!
//! - [`harness`]: settings for one private shard, scratch databases, the seeded map, a
//!   `Cluster` following it as a gateway does, the pair's failover under load, and the
//!   lock that keeps these tests from running at once.
//! - [`ha_shard`]: a shard on a private pg_auto_failover formation, and the checks
//!   after its failover.
//! - [`workload`]: writers and a reader that record what was acknowledged, and the
//!   lost / applied-twice count.

pub mod ha_shard;
pub mod harness;
pub mod workload;
