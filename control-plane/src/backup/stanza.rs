//! Which servers a cluster backup covers, and the pgBackRest stanza of each: every
//! active shard's primary (`shardN`), and the metadata server (`meta`) unless it is one
//! of those servers already (a test's one-server cluster), in which case that server's
//! stanza covers it. Pure: tested beside it.

use shard_manager::live_map::ShardMap;

/// One server to back up and name a point on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// pgBackRest's stanza for this server.
    pub stanza: String,
    /// host:port.
    pub address: String,
    /// Whether the metadata database lives on this server (its point is named last).
    pub holds_meta: bool,
}

/// The stanza name of the metadata server.
pub const META_STANZA: &str = "meta";

/// The servers in point order: shards by id, the metadata server last.
pub fn targets(map: &ShardMap, meta_address: &str) -> Vec<Target> {
    let mut out: Vec<Target> = map
        .shards
        .iter()
        .filter(|s| !s.retired)
        .map(|s| Target {
            stanza: format!("shard{}", s.id.0),
            address: s.primary.clone(),
            holds_meta: s.primary == meta_address,
        })
        .collect();
    match out.iter().position(|t| t.holds_meta) {
        // Its point must be named last (after every other shard's).
        Some(i) => {
            let t = out.remove(i);
            out.push(t);
        }
        None => out.push(Target {
            stanza: META_STANZA.into(),
            address: meta_address.into(),
            holds_meta: true,
        }),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use shard_manager::live_map::shard_map::three_shards;

    #[test]
    fn every_active_primary_then_the_metadata_server() {
        let mut map = three_shards();
        map.shards[1].retired = true;
        let t = targets(&map, "127.0.0.1:25430");
        let names: Vec<&str> = t.iter().map(|t| t.stanza.as_str()).collect();
        assert_eq!(names, ["shard0", "shard2", "meta"]);
        assert_eq!(t[0].address, map.shards[0].primary);
        assert!(t[2].holds_meta && !t[0].holds_meta);
    }

    #[test]
    fn a_metadata_database_on_a_shard_server_shares_its_stanza_and_goes_last() {
        let map = three_shards();
        let meta = map.shards[0].primary.clone();
        let t = targets(&map, &meta);
        let names: Vec<&str> = t.iter().map(|t| t.stanza.as_str()).collect();
        assert_eq!(names, ["shard1", "shard2", "shard0"]);
        assert!(t[2].holds_meta);
    }
}
