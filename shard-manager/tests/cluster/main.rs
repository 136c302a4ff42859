//! The request path's own integration tests: `Cluster` and the wire client against the
//! topology `./setup.sh up` starts, with no gateway. Each test works in scratch databases
//! of its own (test-support's `scratch`: made, migrated and told their slots as the
//! admin CLI does), so the shared data, map and servers are never touched. Run with the environment of `eval "$(./setup.sh env)"`, under the
//! cluster's shared lock:
//!
//! ```text
//! flock -s /tmp/sg-cluster.lock cargo test -p shard-manager --test cluster
//! ```
//!
//! - `fixtures`: keys, tables and documents as the edge makes them; rows read back in SQL.
//! - `monitor`: the replicas' lag measured once, as the health monitor would tell it.
//! - `records`: write, read back (primary; replica with read-your-writes), delete.
//! - `list`: a key's records a page at a time, each after the last one's cursor.
//! - `bulk`: a batch across every shard, one group and token per shard.
//! - `group_commit`: single writes that arrive together commit together, each with its
//!   own answer; one refused write fails no other.
//! - `idempotency`: a write and a bulk write replayed with their key, applied once.
//! - `not_owner`: a shard that owns nothing refuses the slot (SG001), by name and version.
//! - `down`: a primary on a wrong port, or silent, is unavailable by name, within bounds.
//! - `wire`: the wire client alone: sign-in, find and list, and the statement timeout.
//! - `behind_address`: a primary behind a service address: connections judged and
//!   tagged with their timeline, none below the floor carrying a write, no commit from
//!   a superseded timeline acknowledged.
//! - `cache_floors`: the cache's version floors in the real Redis, in racing orders.

mod behind_address;
mod bulk;
mod cache_floors;
mod down;
mod fixtures;
mod group_commit;
mod idempotency;
mod list;
mod monitor;
mod not_owner;
mod records;
mod wire;
