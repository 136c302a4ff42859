//! The cluster an admin command reads through, as the stored map has it (its shards and
//! servers), or as configured when the metadata database does not answer.

use shard_manager::config::ClusterSettings;
use shard_manager::{Cluster, ConfigError};

/// A cluster on the stored map; on the configuration's, with a note on standard error,
/// when the map cannot be read.
pub async fn cluster(settings: &ClusterSettings) -> Result<Cluster, ConfigError> {
    match control_plane::map::change::current(settings).await {
        Ok(map) => Cluster::with_map(settings, &map),
        Err(e) => {
            eprintln!("note: reading with the configuration's map: {e}");
            Cluster::new(settings.clone())
        }
    }
}
