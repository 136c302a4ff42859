//! A gateway as the others see it: what the control plane's heartbeats record, listed in
//! `/api/shards` and the dashboard.

use serde::Serialize;

/// A gateway as the others see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct GatewayInfo {
    pub id: String,
    /// Where it listens.
    pub address: String,
    pub host: String,
    pub pid: u32,
    pub binary_version: String,
    /// The map version it routes with.
    pub map_version: u64,
    /// Milliseconds since it was last heard from.
    pub seen_ms_ago: u64,
}
