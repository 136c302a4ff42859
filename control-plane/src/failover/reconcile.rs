//! A promotion nobody recorded yet, followed once by an admin command. Gateways record
//! a failover as they see it ([`super::watcher`]); with none running (a cluster brought
//! back by `./setup.sh up` after its primary died and pg_auto_failover promoted a
//! standby), the map still names the old primary, and `migrate` or `init` would write
//! to a server that is now a standby. So those commands first ask every listed server
//! its role (one bounded connection each), [`decide`] as the watcher does, and record a
//! promotion the same way (a conditional store: a gateway that records it first wins).
//! A shard whose servers do not all answer is left as it is: its watcher, or the next
//! command, decides once they do. A shard behind an address (`follow = "address"`) is
//! never reconciled: its map never changes servers.

use std::time::Duration;

use shard_manager::config::{ClusterSettings, ShardFollows};
use shard_manager::routing::ShardId;
use shard_manager::servers::connection_url;
use shard_manager::store::statements::ROLE;

use super::decide::{decide, Decision, Seen};
use super::record;
use crate::map::{change, MapError};

/// A promotion this call recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Followed {
    pub shard: ShardId,
    pub from: String,
    pub to: String,
    /// The shard's term after it.
    pub term: u64,
}

impl std::fmt::Display for Followed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "shard-{} failed over from {} to {} (found by this command), term {}",
            self.shard.0, self.from, self.to, self.term
        )
    }
}

/// Records every promotion the stored map has not followed yet.
pub async fn once(settings: &ClusterSettings) -> Result<Vec<Followed>, MapError> {
    let map = change::current(settings).await?;
    let mut followed = Vec::new();
    for shard in map
        .shards
        .iter()
        // Behind an address the map's servers never change (see `watcher`).
        .filter(|s| !s.retired && !s.replicas.is_empty() && s.follow == ShardFollows::Servers)
    {
        let primary = role(settings, &shard.primary).await;
        let mut replicas = Vec::with_capacity(shard.replicas.len());
        for r in &shard.replicas {
            replicas.push((r.clone(), role(settings, r).await));
        }
        let Decision::Promote { to } = decide(primary, &replicas) else {
            continue;
        };
        if let Some(next) = record::promote(settings, shard.id, &shard.primary, &to, 0).await? {
            followed.push(Followed {
                shard: shard.id,
                from: shard.primary.clone(),
                to,
                term: next.shards[shard.id.index()].term,
            });
        }
    }
    Ok(followed)
}

/// What `server` says it is; Down when it does not answer within the connect timeout
/// and a second.
async fn role(settings: &ClusterSettings, server: &str) -> Seen {
    let url = connection_url(&settings.database, server);
    let limit = settings.database.connect_timeout() + Duration::from_secs(1);
    let asked = async {
        let (client, conn) = crate::postgres::connect(&url, &settings.database)
            .await
            .ok()?;
        tokio::spawn(conn);
        let row = client.query_one(ROLE, &[]).await.ok()?;
        let in_recovery: bool = row.get(0);
        let timeline: Option<String> = row.get(1);
        Some(seen(in_recovery, timeline.as_deref()))
    };
    tokio::time::timeout(limit, asked)
        .await
        .ok()
        .flatten()
        .unwrap_or(Seen::Down)
}

/// The role check's answer as the decision reads it (the timeline in hex, as the WAL
/// file's name gives it).
fn seen(in_recovery: bool, timeline: Option<&str>) -> Seen {
    match (
        in_recovery,
        timeline.and_then(|t| u32::from_str_radix(t, 16).ok()),
    ) {
        (false, Some(timeline)) => Seen::Writable { timeline },
        (false, None) => Seen::Down,
        (true, _) => Seen::InRecovery,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_role_check_reads_as_the_watcher_reads_it() {
        assert_eq!(
            seen(false, Some("0000000A")),
            Seen::Writable { timeline: 10 }
        );
        assert_eq!(seen(true, None), Seen::InRecovery);
        // Writable without a readable timeline cannot be ranked: not a primary to follow.
        assert_eq!(seen(false, Some("zz")), Seen::Down);
        assert_eq!(seen(false, None), Seen::Down);
    }

    #[test]
    fn a_line_names_the_shard_both_servers_and_the_term() {
        let f = Followed {
            shard: ShardId(1),
            from: "127.0.0.1:25433".into(),
            to: "127.0.0.1:25533".into(),
            term: 2,
        };
        assert_eq!(
            f.to_string(),
            "shard-1 failed over from 127.0.0.1:25433 to 127.0.0.1:25533 (found by this command), term 2"
        );
    }
}
