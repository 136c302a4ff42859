//! Load on the key space: requests, bytes and shard time per slot over 10 s, 1 min and
//! 10 min, and the hottest keys, recorded apart from [`crate::Analytics`] in memory
//! fixed by the slot count. What `GET /api/shards/load` and the balancer read of every
//! gateway's is [`LoadFigures`]; the answer's shape is `cluster::LoadReport`.
//!
//! ## Layout
//! - `slot_load`: [`SlotLoad`], load per slot, and the [`LoadFigures`] it publishes.
//! - `heavy_hitters`: the hottest keys in bounded memory (Space-Saving).

pub(crate) mod heavy_hitters;
pub(crate) mod slot_load;

pub use heavy_hitters::KeyCount;
pub use slot_load::{LoadFigures, SlotCounts, SlotHit, SlotLoad, WindowLoad};
