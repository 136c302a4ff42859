//! What the gateway knows of one server's state: up or down, bans, WAL position and
//! replica lag, as traffic and health checks found them.

use std::time::Instant;

use crate::lsn::Lsn;

/// What traffic and checks have learnt about a server.
#[derive(Debug, Clone, Default)]
pub struct Condition {
    /// Why the last attempt failed, while it is still failing.
    pub down_reason: Option<String>,
    /// Reads skip a replica until then.
    pub banned_until: Option<Instant>,
    /// Why the replica is banned.
    pub ban_reason: Option<String>,
    /// Last seen WAL position: written (primary) or replayed (replica).
    pub wal: Option<Lsn>,
    /// When the last health check passed.
    pub checked_at: Option<Instant>,
    /// Replicas: how far behind the primary, as last measured.
    pub lag: Option<Lag>,
}

/// How far a replica is behind its primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lag {
    /// WAL bytes the replica has not replayed.
    pub bytes: u64,
    /// How long ago the primary passed the replica's replay position (0 when caught up;
    /// does not grow on an idle system).
    pub ms: u64,
}

/// Why a replica does not take eventual reads right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unqualified {
    Banned(String),
    LagUnknown,
    Lagging(Lag),
}

/// A point-in-time view of a server's counters, for health and shard listings.
#[derive(Debug, Clone)]
pub struct ServerStats {
    pub condition: Condition,
    pub in_flight: u64,
    pub served: u64,
}
