//! A planned switchover (`shard-admin switchover --shard N [--to SERVER]`): the
//! shard's primary handed to one of its replicas for maintenance, with no client
//! request failing. The HA manager promotes; we only prepare and follow:
//!
//! 1. Every refusal first, nothing changed: a shard not in the map, retired or behind
//!    an address (`follow = "address"`: its HA manager switches it over), no HA
//!    manager, no replica, a server outside the shard, a target the HA manager does not
//!    count as a healthy secondary, down, or lagging past `switchover_max_lag_bytes`,
//!    a switchover of the shard already under way ([`plan`], [`monitor`]).
//! 2. The drain ([`servers`]): the old primary answers new transactions read-only,
//!    so new writes fail with 25006 before writing anything and wait for the new
//!    primary in the gateways (`failover.write_wait_ms`); writes in flight get
//!    `drain_ms` to commit (every transaction begun before the drain must end), and
//!    the target replays up to the primary's last WAL.
//! 3. The HA manager's promotion (pg_auto_failover's `perform_promotion`): it stops the
//!    old primary and promotes the target; the promotion is recorded in the map as a
//!    `switchover` ([`super::planned`]) and every gateway follows it; the waiting
//!    writes go to the new primary.
//! 4. The old primary, back as a standby, has its read-only setting removed; the
//!    command ends once the HA manager counts it a `secondary` again (replication
//!    synchronous again, and the shard ready for the next switchover).
//!
//! Whatever ends it (done, refused, failed, a bound passed, or the command told to stop:
//! [`switchover_until`]), the drain does not outlive the switchover ([`drain`]): before
//! the promotion was asked it is lifted at once, after it once the old primary is a
//! standby; an undo that fails says so, naming the server and the command that lifts
//! it (`shard-admin switchover --shard N --lift-drain`, [`drain::lift_drain`]). A
//! drain a killed command left is lifted by the next switchover before it starts.
//!
//! ## Layout
//! - [`run`]: the switchover from its refusals to its end ([`switchover`],
//!   [`switchover_until`], [`Done`]), and the undo of its drain on any other end.
//! - [`plan`]: which server it may promote, every refusal before anything changes (pure).
//! - [`monitor`]: the HA manager (pg_auto_failover's monitor): its nodes, the promotion.
//! - [`servers`]: a connection to one of the shard's servers, and what is asked of it.
//! - [`drain`]: the old primary's drain, its undo, and lifting one a killed command left.
//! - [`wait`]: the waits: writes in flight gone and the target caught up, a condition
//!   polled until it holds or its bound passes.
//! - [`error`]: why a switchover stopped or was refused ([`SwitchoverError`]).

pub mod drain;
pub mod error;
pub mod monitor;
pub mod plan;
pub mod run;
pub mod servers;
mod wait;

pub use drain::{lift_drain, Lifted, Undo};
pub use error::SwitchoverError;
pub use run::{switchover, switchover_until, Done};
