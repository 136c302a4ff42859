//! Health of every server: up or down, WAL position and replica lag in bytes.

use futures_util::future::join_all;

use crate::cluster::{Cluster, Shard};
use crate::key::{Role, ShardId};
use crate::server::Server;
use crate::store;

/// One server's state, as probed just now plus what traffic has seen.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ServerHealth {
    pub server: String,
    #[schema(value_type = String, example = "replica")]
    pub role: Role,
    pub up: bool,
    /// Why the server is considered down, when it is.
    pub error: Option<String>,
    /// WAL write position (primary) or replay position (replica).
    pub lsn: Option<String>,
    /// Bytes of WAL the replica has not replayed yet; unknown when either side is down.
    pub lag_bytes: Option<u64>,
    /// Reads skip this replica while it is banned.
    pub banned: bool,
    pub in_flight: u64,
    pub served: u64,
}

/// One shard's servers.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ShardHealth {
    #[schema(value_type = u32)]
    pub shard: ShardId,
    pub primary: ServerHealth,
    pub replicas: Vec<ServerHealth>,
}

/// The whole cluster.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ClusterHealth {
    /// True when every primary answered: writes can go everywhere.
    pub healthy: bool,
    pub shards: Vec<ShardHealth>,
}

/// Parses PostgreSQL's `X/Y` LSN text into a byte position.
pub fn parse_lsn(text: &str) -> Option<u64> {
    let (hi, lo) = text.split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

impl Cluster {
    /// Probes every server at once, each bounded by the connect timeout.
    pub async fn health(&self) -> ClusterHealth {
        let shards = join_all(self.shards().iter().map(shard_health)).await;
        ClusterHealth {
            healthy: shards.iter().all(|s| s.primary.up),
            shards,
        }
    }
}

async fn shard_health(shard: &Shard) -> ShardHealth {
    let (primary, replicas) = futures_util::join!(
        probe(&shard.primary),
        join_all(shard.replicas.iter().map(|r| probe(r)))
    );
    let primary_pos = primary.lsn.as_deref().and_then(parse_lsn);
    let replicas = replicas
        .into_iter()
        .map(|mut r| {
            r.lag_bytes = match (primary_pos, r.lsn.as_deref().and_then(parse_lsn)) {
                (Some(p), Some(q)) if r.up => Some(p.saturating_sub(q)),
                _ => None,
            };
            r
        })
        .collect();
    ShardHealth {
        shard: shard.id,
        primary,
        replicas,
    }
}

async fn probe(server: &Server) -> ServerHealth {
    let result = server.probe(async |conn| store::wal_position(conn).await).await;
    let stats = server.stats();
    let (up, error, lsn) = match result {
        Ok((in_recovery, lsn)) => {
            let expected = server.role == Role::Replica;
            if in_recovery == expected {
                (true, None, lsn)
            } else {
                let what = if in_recovery { "in recovery" } else { "not in recovery" };
                (false, Some(format!("configured as {} but {what}", server.role)), lsn)
            }
        }
        Err(e) => (false, Some(e.to_string()), None),
    };
    ServerHealth {
        server: server.addr.clone(),
        role: server.role,
        up,
        error,
        lsn,
        lag_bytes: None,
        banned: !server.is_eligible(),
        in_flight: stats.in_flight,
        served: stats.served,
    }
}

#[cfg(test)]
mod tests {
    use super::parse_lsn;

    #[test]
    fn lsn_text_parses_to_bytes() {
        assert_eq!(parse_lsn("0/3000060"), Some(0x3000060));
        assert_eq!(parse_lsn("1/0"), Some(1 << 32));
        assert_eq!(parse_lsn("16/B374D848"), Some((0x16 << 32) | 0xB374D848));
        assert_eq!(parse_lsn("garbage"), None);
    }
}
