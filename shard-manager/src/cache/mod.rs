//! The optional Redis read-through cache for point reads, which never serves a version
//! older than the newest acknowledged write of a record, whichever gateway took the write
//! and whichever serves the read.
//!
//! How it stays fresh:
//! - Every gateway shares one key space, `{prefix}:{shard}.{epoch}:{table}:{hash}`: a
//!   write through one gateway fixes the entry every other gateway reads.
//! - Writers, after their commit and before acknowledging, install the new version (or,
//!   for a delete, a tombstone carrying the deletion's version) and raise the record's
//!   *version floor* to it. A tombstone answers reads with "not found".
//! - Readers that missed install what they read only if it is at least the floor and
//!   newer than what is cached (`install.lua`, atomic in Redis). A slow reader, or one
//!   that read a lagging replica, therefore cannot put an older version back.
//! - A write whose outcome is unknown (its connection was lost after sending), or one a
//!   replay answers (its first attempt may not have told the cache), makes the cache
//!   forget the record (`forget.lua`): the value goes and the floor turns unknown while
//!   keeping the newest version known, the replay's own among them. Readers then install
//!   nothing, and writers only a version past it: a late install of an older commit,
//!   delayed behind the replay, cannot come back.
//! - Versions come from a per-shard sequence, taken under the row lock, so they grow in
//!   commit order for each record.
//! - Every entry also carries a WAL position it is known to reflect (a writer's: read
//!   after its commit; a token reader's: the token). A read with a read-your-writes
//!   token further on treats the entry as a miss.
//! - The `{epoch}` is the shard's cache epoch, stored on the shard (`epochs`). A writer
//!   that cannot reach Redis (error, timeout, breaker open) raises it on the primary
//!   before acknowledging: every entry of the shard becomes unreachable, at once for its
//!   gateway and within one health check (`replication.check_interval_ms`) for the
//!   others, which read the epoch with the primary's WAL position in each check and
//!   adopt it behind a fence (`fence`). Readers capture the epoch before reading and
//!   check it after the lookup; a gateway that does not know a shard's current epoch
//!   bypasses the cache for it.
//! - If the raise fails too (the primary stopped answering right after the commit), the
//!   write is committed but other gateways may serve the previous version. The gateway
//!   then does not acknowledge: it answers 503 `cache-not-told`, naming the shard and the
//!   commit's WAL position, and owes the raise: its own reads of the shard bypass the
//!   cache and its monitor retries the raise with every check until it lands. Why not
//!   acknowledge: an acknowledgement promises that no cache serves anything older, and
//!   here that promise could not be kept; the error is rare (Redis and the primary
//!   failing within milliseconds), and it tells the truth, which the client can act on
//!   (the write is there: a strong read shows it).
//!
//! The memory tier (`cache.memory_entries`, 0 = off): hot entries are also held in the
//! gateway's own memory under the same key, read through one RESP3 connection with
//! `CLIENT TRACKING` on, so Redis pushes an invalidation when a key this gateway holds
//! changes. What it promises:
//! - A gateway's own acknowledged writes are never stale in its tier: a writer evicts
//!   the record's key after telling Redis and before acknowledging (and a forget does).
//! - Token and strong reads are never served stale: an entry behind the token is a miss
//!   here as in Redis, and strong reads never consult the cache.
//! - Another gateway's write evicts the entry when its invalidation arrives, in order
//!   with every reply on the connection (`tier` guards a reply overtaken by one).
//! - When tracking stops (the connection drops, a call fails, no reply for a lease) the
//!   tier empties and stays off until a new connection tracks again (`tracking`).
//! - Memory is bounded by the setting, with CLOCK eviction.
//!
//! Redis failing only costs speed: every call is bounded by `timeout_ms`, a breaker stops
//! calling for a while after repeated failures, and failures are counted, never returned.
//!
//! Layout: `client` the client (lookups, readers' installs, its connections); `epochs` the shared
//! per-shard epochs; `write` the writers' side; `fence` what readers must have seen
//! after an epoch moved; `floors` the floors kept in this gateway's memory; `entry` the
//! value format; `usage` what one request's cache work did; `breaker` the circuit
//! breaker; `retired` the epochs a mover retired in Redis itself; `tier` the memory
//! tier; `tracking` its tracking connection and lease; `install.lua` the
//! atomic install; `forget.lua` the atomic forget.

mod breaker;
mod client;
mod entry;
mod epochs;
mod fence;
mod floors;
mod retired;
mod tier;
mod tracking;
mod usage;
mod write;

pub use breaker::Breaker;
use client::{record_hash, FORGET_LUA, INSTALL_LUA};
pub use client::{Cache, Epoch, Lookup};
pub use entry::CachedRecord;
pub use epochs::EpochStore;
pub use fence::Fence;
use floors::Floor;
pub use retired::retire;
pub use tier::TierStats;
pub use usage::{CacheEvent, CacheUsage};
pub use write::{Committed, NotTold, Replayed};
