//! Why an export stopped.

use crate::error::ClusterError;
use crate::routing::{MapVersion, ShardId};
use crate::wire::Owned;

/// An export that could not start, or stopped part-way.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A shard could not be read (down, timed out, refused).
    #[error(transparent)]
    Shard(#[from] ClusterError),
    /// A shard's slots changed between two pages (a slot moved in or out): going on
    /// could repeat or skip the moving slot's records.
    #[error(
        "{shard}'s slots changed during the export (told map version {}, {} slots; then {}, {} slots): \
         the export stopped rather than repeat or skip the records of a moving slot; run it again",
        told(.before.told), .before.slots, told(.after.told), .after.slots
    )]
    OwnershipChanged {
        shard: ShardId,
        before: Owned,
        after: Owned,
    },
    /// The gateway's shard map moved on during the export.
    #[error(
        "the shard map moved from version {from} to {to} during the export: the export stopped \
         rather than repeat or skip the records of a moving slot; run it again"
    )]
    MapChanged { from: MapVersion, to: MapVersion },
}

fn told(version: Option<i64>) -> String {
    version.map_or("(never told)".into(), |v| v.to_string())
}

impl ExportError {
    /// The shard involved, if one is.
    pub fn shard(&self) -> Option<ShardId> {
        match self {
            Self::Shard(e) => Some(e.shard()),
            Self::OwnershipChanged { shard, .. } => Some(*shard),
            Self::MapChanged { .. } => None,
        }
    }
}
