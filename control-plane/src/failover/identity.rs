//! The primary's identity behind a service address, recorded in the map the first time
//! it is seen (`map_shards.timeline`, `system_identifier`, `node`): by `shard-admin
//! init` and `migrate` ([`once`]), or by the first gateway whose connection through the
//! address reaches a writable primary while they are NULL ([`record_first`], called by
//! the health monitor). Conditional on the columns still being NULL, so when several
//! gateways see it at once one records it and the others read what it recorded.
//!
//! Recording it routes nothing differently, so it is no new map version and no history
//! line: a gateway whose primary behind an address has no recorded identity asks at
//! each health check until it has one (its own or another gateway's), and any later
//! map version carries it. With it, the primary takes the recorded timeline as its
//! floor (`shard_manager::wire::behind`) and refuses another cluster or shard behind
//! the address from then on.

use std::time::Duration;

use crate::map::{meta, MapError};
use shard_manager::config::{ClusterSettings, ShardFollows};
use shard_manager::routing::ShardId;
use shard_manager::store::identity::{Identity, Seen};
use shard_manager::wire::{connect, upkeep, Target, WireConn};

/// One identity recorded, for the command's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub shard: ShardId,
    pub address: String,
    pub seen: Seen,
}

impl std::fmt::Display for Recorded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", summary(self.shard, &self.address, &self.seen))
    }
}

/// What a command prints of an identity it recorded.
fn summary(shard: ShardId, address: &str, seen: &Seen) -> String {
    let i = &seen.identity;
    format!(
        "{shard}'s primary behind {address} first seen: node {}, timeline {}, system identifier {}",
        i.node.as_deref().unwrap_or("unknown"),
        i.timeline,
        i.system_identifier.as_deref().unwrap_or("unknown"),
    )
}

/// Reads the identity of the server one fresh connection through `address` reaches,
/// bounded by the connect timeout and a second.
pub async fn read(settings: &ClusterSettings, address: &str) -> Result<Seen, String> {
    open(settings, address).await.map(|(_, seen)| seen)
}

/// One fresh connection through `address` (never a pooled one: a connection stays on
/// the node it reached when it opened) and the identity of the server it reached, as
/// [`read`] bounds it: the connection is kept to act on that very server (a fence).
pub async fn open(settings: &ClusterSettings, address: &str) -> Result<(WireConn, Seen), String> {
    let limit = settings.database.connect_timeout() + Duration::from_secs(1);
    let asked = async {
        let mut conn = connect(&Target::new(&settings.database, address))
            .await
            .map_err(|e| e.to_string())?;
        let seen = upkeep::identity(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        Ok((conn, seen))
    };
    tokio::time::timeout(limit, asked)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} ms", limit.as_millis())))
}

/// Records every primary behind an address the map has not seen yet, as found through
/// its address now; a shard whose address leads to no writable server is left for
/// later. What was recorded.
pub async fn once(settings: &ClusterSettings) -> Result<Vec<Recorded>, MapError> {
    let map = crate::map::change::current(settings).await?;
    let mut recorded = Vec::new();
    let unseen = map
        .shards
        .iter()
        .filter(|s| !s.retired && s.follow == ShardFollows::Address && s.identity.is_none());
    for shard in unseen {
        match read(settings, &shard.primary).await {
            Ok(seen) if seen.writable() => {
                if record_first(settings, shard.id, &seen).await?.1 {
                    recorded.push(Recorded {
                        shard: shard.id,
                        address: shard.primary.clone(),
                        seen,
                    });
                }
            }
            Ok(_) => {
                tracing::info!(shard = %shard.id, address = %shard.primary, "the address leads to no writable primary yet: its identity is recorded later")
            }
            Err(e) => {
                tracing::info!(shard = %shard.id, address = %shard.primary, error = %e, "the primary's identity is recorded later")
            }
        }
    }
    Ok(recorded)
}

/// Records `seen` as `shard`'s primary identity unless the map already holds one (or
/// the shard follows its servers). Returns the identity the map holds afterwards
/// (this one, or the one another gateway recorded first) and whether this call
/// recorded it.
pub async fn record_first(
    settings: &ClusterSettings,
    shard: ShardId,
    seen: &Seen,
) -> Result<(Option<Identity>, bool), MapError> {
    let conn = meta::connect(settings).await?;
    let i = &seen.identity;
    let recorded = conn
        .client
        .execute(
            "UPDATE map_shards SET timeline = $2, system_identifier = $3, node = $4
              WHERE id = $1 AND follow = 'address' AND timeline IS NULL",
            &[
                &(shard.0 as i32),
                &(i.timeline as i32),
                &i.system_identifier,
                &i.node,
            ],
        )
        .await?
        == 1;
    let row = conn
        .client
        .query_opt(
            "SELECT timeline, system_identifier, node FROM map_shards WHERE id = $1",
            &[&(shard.0 as i32)],
        )
        .await?;
    let stored = row.and_then(|r| {
        r.get::<_, Option<i32>>(0).map(|timeline| Identity {
            timeline: timeline as u32,
            system_identifier: r.get(1),
            node: r.get(2),
            shard: Some(shard.0),
        })
    });
    if recorded {
        tracing::info!(%shard, node = ?i.node, timeline = i.timeline, system_identifier = ?i.system_identifier, "recorded the identity of the primary behind the address");
    }
    Ok((stored, recorded))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen() -> Seen {
        Seen {
            identity: Identity {
                timeline: 3,
                system_identifier: Some("7712694351163466401".into()),
                node: Some("10.0.0.7:5432".into()),
                shard: None,
            },
            in_recovery: false,
            read_only: false,
            synchronous: true,
        }
    }

    #[test]
    fn the_line_names_the_address_and_the_node() {
        assert_eq!(
            summary(ShardId(0), "pg-rw:5432", &seen()),
            "shard-0's primary behind pg-rw:5432 first seen: node 10.0.0.7:5432, timeline 3, \
             system identifier 7712694351163466401"
        );
    }
}
