//! A server that a restore stops and never starts with its old data: a replica of a
//! restored primary, or under an HA manager another node of its formation. Its own
//! file because both the plan ([`super::plan`]) and the HA manager's part
//! ([`super::ha`]) make them.

/// A replica of a restored primary: it holds data from after the point and cannot
/// follow the primary's new timeline, so it is stopped.
#[derive(Debug, Clone)]
pub struct ReplicaPlan {
    /// `shard-N`.
    pub shard: String,
    pub address: String,
    /// Its data directory when it runs (`SHOW data_directory`); None: not running.
    pub data_dir: Option<String>,
}
