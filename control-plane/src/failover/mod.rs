//! A shard that loses its primary: the HA manager (pg_auto_failover, Patroni, or an
//! operator's `pg_ctl promote`) promotes a replica; this module makes the cluster
//! follow. We never elect a primary ourselves: we only read what the servers say
//! they are.
//!
//! Every gateway runs a [`Watcher`]: every `failover.check_ms` it looks at what the
//! health monitor last saw of each server's role and, for a shard where something is
//! off, asks its servers whether they are in recovery, and [`decide`]s:
//! - a listed replica takes writes on a newer timeline than the map's primary (which is
//!   down, in recovery, or writable on its old timeline: a keeper restarting it in
//!   place for a moment): the promotion is [`record`]ed in the map (new primary, the
//!   old one listed as a replica to come back as one, term + 1, a `failover` history
//!   line). The first gateway to see it stores it; the store is conditional, so the
//!   others find it done and follow the map like every other change.
//! - the map's primary takes writes on the newest timeline and so does a listed
//!   replica (an old primary back as a primary, or a replica promoted by hand: split
//!   brain): the extra one is [`fence`]d: told it owns no slot, at the current map
//!   version, so every write or read a stale gateway sends it is refused (SG001) and
//!   rerouted after a map reload.
//!
//! The timeline decides, never the map alone: every promotion starts a higher one.
//!
//! ## Layout
//! - [`decide`]: what the servers' roles call for (pure).
//! - [`record`]: the promotion stored in the metadata database.
//! - [`fence`]: a server that must not take writes told so.
//! - [`watcher`]: the task that reads roles and acts.
//! - [`reconcile`]: the same decision once, by an admin command with no gateway running.
//! - [`identity`]: behind a service address, the primary's identity recorded in the
//!   map the first time it is seen (by `init`, `migrate`, or the first gateway).
//! - [`behind`]: the watcher's round for a shard behind a service address: the address
//!   probed, a promotion behind it recorded, an old primary it still leads to fenced.
//! - [`switchover`]: a planned promotion for maintenance, asked of the HA manager after
//!   draining the primary's writes; [`planned`] tells it apart from a failover.

pub mod behind;
pub mod decide;
pub mod fence;
pub mod identity;
pub mod planned;
pub mod reconcile;
pub mod record;
pub mod switchover;
pub mod watcher;

pub use decide::{decide, Decision, Seen};
pub use watcher::Watcher;
