//! The shard map as the request path sees it: one version of it ([`ShardMap`], pure),
//! the one a gateway routes with now ([`MapState`]), and the live gateways it lists.
//! Loading, storing and following the map in the metadata database is the control
//! plane's work (`map`); it hands new versions to [`MapState::adopt`].
//!
//! ## Layout
//! - [`shard_map`]: one version of the map, pure.
//! - [`state`]: [`MapState`], the map routed with now, and its [`MapStatus`].
//! - [`gateway_info`]: [`GatewayInfo`], a live gateway as listed.
//! - [`promotions`]: [`Promotion`], a failover or switchover of the history, and the
//!   [`PromotionLog`] a gateway shows.

pub mod gateway_info;
pub mod promotions;
pub mod shard_map;
pub mod state;

pub use gateway_info::GatewayInfo;
pub use promotions::{Promotion, PromotionKind, PromotionLog, ShardPromotions};
pub use shard_map::{ShardEntry, ShardMap};
pub use state::{FollowShards, MapState, MapStatus};
