//! Whether a shard's primary has every migration, as the monitor last found it. A shard
//! that lacks some is refused at once (503 naming the shard, the migrations and the
//! command), instead of every query failing on a missing table.

use std::sync::Mutex;

use crate::error::ClusterError;
use crate::routing::ShardId;

/// What the last check found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SchemaState {
    /// Not checked yet (the server may be down): requests go ahead.
    #[default]
    Unknown,
    Complete,
    /// These migrations (folder names) are not applied.
    Missing(Vec<String>),
}

/// A shard's schema state, shared by its requests and the monitor.
#[derive(Debug, Default)]
pub struct Schema(Mutex<SchemaState>);

impl Schema {
    pub fn state(&self) -> SchemaState {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Records a check; returns the previous state, so the caller logs a change once.
    pub fn set(&self, state: SchemaState) -> SchemaState {
        let mut current = self.0.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::replace(&mut current, state)
    }

    /// Fails fast while migrations are known to be missing.
    pub fn require(&self, shard: ShardId, server: &str) -> Result<(), ClusterError> {
        match self.state() {
            SchemaState::Missing(missing) => Err(ClusterError::SchemaMissing {
                shard,
                server: server.to_owned(),
                missing,
            }),
            SchemaState::Unknown | SchemaState::Complete => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_missing_migrations_is_refused_naming_them_and_the_fix() {
        let schema = Schema::default();
        assert!(
            schema.require(ShardId(1), "h:1").is_ok(),
            "unknown: go ahead"
        );
        let missing = vec!["2026-11-22-000002_list_order".to_string()];
        assert_eq!(
            schema.set(SchemaState::Missing(missing.clone())),
            SchemaState::Unknown
        );
        let err = schema.require(ShardId(1), "h:1").unwrap_err();
        assert_eq!(
            err.to_string(),
            "shard-1 (h:1) lacks its schema: migration(s) 2026-11-22-000002_list_order not \
             applied; run `shard-admin migrate` (or ./setup.sh run), which applies every \
             migration on every primary"
        );
        assert_eq!(
            schema.set(SchemaState::Complete),
            SchemaState::Missing(missing)
        );
        assert!(schema.require(ShardId(1), "h:1").is_ok());
    }
}
