//! What the gateway knows of its servers' health, and how it keeps that fresh.
//!
//! ## Layout
//! - [`monitor`]: [`Monitor`], the background checks: up/down, WAL positions, lag.
//! - [`probe`]: [`ClusterHealth`], every server probed now (for `/api/health`).
//! - [`stats`]: rows per table and bytes on disk, per shard.
//! - [`sweeper`]: [`Sweeper`], expired idempotency entries deleted in the background.

pub mod monitor;
pub mod probe;
pub mod stats;
pub mod sweeper;

pub use monitor::Monitor;
pub use probe::{cluster_health, ClusterHealth, ServerHealth, ShardHealth, ShardState};
pub use stats::data_stats;
pub use sweeper::Sweeper;
