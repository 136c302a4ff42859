//! The primary's identity behind a service address (`follow = "address"`), and what a
//! server seen through the address is, compared with the identity the map recorded
//! ([`verdict`], pure).
//!
//! Behind an address the map's servers never change, so the address cannot say which
//! node is the primary. What can: the timeline it writes on (every promotion starts a
//! new, higher one), its cluster's system identifier (a re-created or foreign cluster
//! has another), and the shard the server was told it is (`shardgate_map`). The map
//! records them per shard (`map_shards.timeline`, `system_identifier`, `node`), at
//! `init` or by the first gateway that sees the primary while they are NULL.
//!
//! Here in `store`, beside the statement whose row it is, rather than in `live_map`:
//! the wire pool judges every new connection through an address with it, and `wire`
//! sits below `live_map`.

use serde::Serialize;

/// A primary as the map records it, or a server as one connection found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Identity {
    /// The timeline it writes on (a standby: the one it replays).
    pub timeline: u32,
    /// Its cluster's `pg_control_system().system_identifier`, as text (a u64); None
    /// where the role may not read it (managed services revoke it).
    pub system_identifier: Option<String>,
    /// The node really reached behind the address (`host:port` as the server sees
    /// itself), for people and logs only: a pod restarted on a new IP is the same.
    pub node: Option<String>,
    /// The shard the server was told it is (`shardgate_map`); None before `init`.
    pub shard: Option<u32>,
}

/// What one connection through an address found: the server's identity, and whether
/// it takes writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub identity: Identity,
    /// `pg_is_in_recovery()`: a standby.
    pub in_recovery: bool,
    /// `transaction_read_only`: new transactions are read-only (a drain, or a promoted
    /// node its HA manager still holds read-only).
    pub read_only: bool,
    /// Whether the primary waits for a synchronous standby (`synchronous_standby_names`
    /// set): without one, an acknowledged write can be lost in a failover.
    pub synchronous: bool,
}

impl Seen {
    /// Out of recovery and its transactions not read-only.
    pub fn writable(&self) -> bool {
        !self.in_recovery && !self.read_only
    }
}

/// A server seen through the address, against the primary the map recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The recorded primary (perhaps on another node: a pod restarted with its volume).
    Same,
    /// A writable server on a higher timeline: a promotion happened behind the address.
    Newer,
    /// A writable server on a lower timeline: an old primary still reachable through
    /// the address. Never written to; fenced.
    Stale,
    /// A standby, or a server not taking writes yet (in recovery, or read-only): no
    /// write goes to it; the wait for a primary applies.
    NotWritable,
    /// Another cluster (its system identifier differs) or another shard (it was told
    /// another): never followed until an operator adopts it.
    Elsewhere,
}

/// What `seen` is, against the `recorded` primary (pure). The cluster and shard are
/// compared first (only when both sides know them), then whether it takes writes, then
/// the timelines.
pub fn verdict(recorded: &Identity, seen: &Seen) -> Verdict {
    let s = &seen.identity;
    if differs(&recorded.system_identifier, &s.system_identifier)
        || differs(&recorded.shard, &s.shard)
    {
        return Verdict::Elsewhere;
    }
    if !seen.writable() {
        return Verdict::NotWritable;
    }
    match s.timeline.cmp(&recorded.timeline) {
        std::cmp::Ordering::Equal => Verdict::Same,
        std::cmp::Ordering::Greater => Verdict::Newer,
        std::cmp::Ordering::Less => Verdict::Stale,
    }
}

/// Whether both sides know a value and it differs.
fn differs<T: PartialEq>(a: &Option<T>, b: &Option<T>) -> bool {
    matches!((a, b), (Some(a), Some(b)) if a != b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(timeline: u32, system: &str, node: &str) -> Identity {
        Identity {
            timeline,
            system_identifier: Some(system.into()),
            node: Some(node.into()),
            shard: Some(0),
        }
    }

    fn seen(identity: Identity, in_recovery: bool, read_only: bool) -> Seen {
        Seen {
            identity,
            in_recovery,
            read_only,
            synchronous: true,
        }
    }

    const SYS: &str = "7712694351163466401";

    #[test]
    fn the_recorded_primary_is_the_same_on_another_node() {
        let recorded = identity(2, SYS, "10.0.0.7:5432");
        let moved = seen(identity(2, SYS, "10.0.0.9:5432"), false, false);
        assert_eq!(verdict(&recorded, &moved), Verdict::Same);
    }

    #[test]
    fn a_higher_timeline_is_a_promotion_and_a_lower_one_an_old_primary() {
        let recorded = identity(2, SYS, "a:5432");
        let promoted = seen(identity(3, SYS, "b:5432"), false, false);
        assert_eq!(verdict(&recorded, &promoted), Verdict::Newer);
        let old = seen(identity(1, SYS, "c:5432"), false, false);
        assert_eq!(verdict(&recorded, &old), Verdict::Stale);
    }

    #[test]
    fn a_standby_or_a_read_only_server_is_never_written_to_whatever_its_timeline() {
        let recorded = identity(2, SYS, "a:5432");
        for (timeline, in_recovery, read_only) in [
            (2, true, true),
            (3, true, true),
            (3, false, true),
            (1, true, false),
        ] {
            let s = seen(identity(timeline, SYS, "b:5432"), in_recovery, read_only);
            assert_eq!(verdict(&recorded, &s), Verdict::NotWritable, "{s:?}");
            assert!(!s.writable());
        }
    }

    #[test]
    fn another_cluster_or_shard_is_elsewhere_even_on_a_higher_timeline() {
        let recorded = identity(2, SYS, "a:5432");
        let recreated = seen(identity(5, "7712694351163466999", "a:5432"), false, false);
        assert_eq!(verdict(&recorded, &recreated), Verdict::Elsewhere);
        let mut other = identity(2, SYS, "a:5432");
        other.shard = Some(1);
        let standby = seen(other, true, true);
        assert_eq!(verdict(&recorded, &standby), Verdict::Elsewhere);
    }

    #[test]
    fn what_either_side_cannot_read_is_not_compared() {
        // A role without pg_control_system(), a server never told its shard.
        let recorded = identity(2, SYS, "a:5432");
        let mut blind = identity(2, SYS, "a:5432");
        blind.system_identifier = None;
        blind.shard = None;
        assert_eq!(
            verdict(&recorded, &seen(blind, false, false)),
            Verdict::Same
        );
        let mut unknown = identity(2, SYS, "a:5432");
        unknown.system_identifier = None;
        let other = seen(identity(3, "1", "b:5432"), false, false);
        assert_eq!(verdict(&unknown, &other), Verdict::Newer);
    }
}
