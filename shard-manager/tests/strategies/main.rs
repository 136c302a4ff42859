//! Property tests of the placement strategies: determinism, balance and movement when a
//! shard is added, over 100,000+ seeded random keys. Each bound asserted here is the
//! one stated in the strategy's module doc (`shard_manager::routing::strategy::*`).
//!
//! Run `cargo test -p shard-manager --test strategies -- --nocapture` to see the
//! measured values next to their bounds.

mod common;
mod modulo;
mod range;
mod ring;
mod slots;
