//! Where a key lives: a pure function of the key and the shard map. No I/O.
//!
//! ## Layout
//! - [`key`]: domain names: [`ShardKey`], [`ShardId`], [`Slot`], [`Role`].
//! - [`router`]: [`Router`], the one way to place a key ([`Router::route`]) and to say
//!   why ([`Router::explain`]).
//! - [`routed`]: [`RoutedKey`] (a key with its [`Placement`] and [`MapVersion`]),
//!   made once at the edge.
//! - [`strategy`]: the four pure placement functions (`slots`, `modulo`, `hash_ring`,
//!   `range`), their guarantees, and where keys go when a shard is added.
//! - [`settings`]: the `[routing]` configuration section.

pub mod key;
pub mod routed;
pub mod router;
pub mod settings;
pub mod strategy;

pub use key::{KeyError, Role, ShardId, ShardKey, Slot, MAX_KEY_BYTES};
pub use routed::{MapVersion, Placement, RoutedKey};
pub use router::{Explained, LayoutError, RouteError, Router};
pub use settings::{RangeSettings, RoutingSettings, Strategy};
