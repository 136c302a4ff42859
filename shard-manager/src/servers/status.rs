//! A serialisable snapshot of one server as the gateway sees it, for health and shard
//! listings.

use std::time::Instant;

use super::banlist::Unqualified;
use super::server::Server;
use crate::config::ReplicationSettings;
use crate::routing::Role;

/// One server's state from traffic and the background checks.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ServerStatus {
    pub server: String,
    #[schema(value_type = String, example = "replica")]
    pub role: Role,
    /// False after a failed query or check, until one succeeds.
    pub up: bool,
    /// The last check found its new transactions read-only by default
    /// (`default_transaction_read_only = on`): on a primary, every write waits, then
    /// answers 503 (a switchover's drain left behind, or the HA manager's own while it
    /// promotes).
    pub read_only_by_setting: bool,
    pub down_reason: Option<String>,
    /// A banned replica takes no reads until the ban ends or a check passes.
    pub banned: bool,
    pub ban_reason: Option<String>,
    /// Milliseconds until the ban ends.
    pub banned_for_ms: Option<u64>,
    /// Replicas: WAL bytes not yet replayed, as last measured (null = unknown).
    pub lag_bytes: Option<u64>,
    /// Replicas: how long ago the primary passed the replay position (null = unknown).
    pub lag_ms: Option<u64>,
    /// Whether eventual reads may use this server now.
    pub takes_reads: bool,
    /// Why not, when it does not.
    pub not_taking_reads_because: Option<String>,
    pub in_flight: u64,
    /// Requests this server answered successfully.
    pub served: u64,
    /// Point reads that left for this server together, one send each batch.
    pub read_batches: BatchCounts,
    /// Single writes committed together in one transaction (`database.batch_writes`).
    pub write_batches: BatchCounts,
}

/// How much requests shared their trips to one server since the gateway started:
/// `requests ÷ batches` is the mean batch (1.0: nothing was shared).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct BatchCounts {
    pub batches: u64,
    pub requests: u64,
}

impl BatchCounts {
    fn of(sizes: &super::batch_sizes::BatchSizes) -> Self {
        let seen = sizes.snapshot();
        Self {
            batches: seen.batches,
            requests: seen.requests,
        }
    }
}

impl ServerStatus {
    /// `server` as the gateway sees it now; `read_primary` is the shard's setting.
    pub fn of(server: &Server, limits: &ReplicationSettings, read_primary: bool) -> Self {
        let stats = server.stats();
        let c = stats.condition;
        let now = Instant::now();
        let until = c.banned_until.filter(|u| *u > now);
        let (takes_reads, why) = match server.role {
            Role::Primary if read_primary => (true, None),
            Role::Primary => (
                false,
                Some("primaries take eventual reads only when no replica qualifies".into()),
            ),
            Role::Replica => match c.qualification(now, limits) {
                Ok(()) => (true, None),
                Err(why @ Unqualified::Banned { .. }) => (false, Some(format!("banned: {why}"))),
                Err(why @ Unqualified::LagUnknown) => (false, Some(why.to_string())),
                Err(why @ Unqualified::Lagging(_)) => (
                    false,
                    Some(format!(
                        "{why} (limits {} bytes / {} ms)",
                        limits.max_lag_bytes, limits.max_lag_ms
                    )),
                ),
            },
        };
        ServerStatus {
            server: server.addr.clone(),
            role: server.role,
            up: c.down_reason.is_none(),
            read_only_by_setting: server.read_only_by_setting(),
            down_reason: c.down_reason,
            banned: until.is_some(),
            ban_reason: until.and(c.ban_reason),
            banned_for_ms: until.map(|u| u.duration_since(now).as_millis() as u64),
            lag_bytes: c.lag.map(|l| l.bytes),
            lag_ms: c.lag.map(|l| l.ms),
            takes_reads,
            not_taking_reads_because: why,
            in_flight: stats.in_flight,
            served: stats.served,
            read_batches: BatchCounts::of(server.read_batch_sizes()),
            write_batches: BatchCounts::of(server.write_batch_sizes()),
        }
    }
}
