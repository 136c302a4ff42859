//! Databases of a test's own, so that `init` and `migrate` change nothing of the dev
//! cluster's map or data: `sgtest_<uuid>` on the metadata server and on every primary
//! (test-support's scratch databases).

use std::process::Output;

use shard_manager::{config, ClusterSettings};
use test_support::scratch::{create_databases, drop_databases};

use super::{cli_with, text};

/// A metadata database and a shard database on every primary, of this test's own;
/// dropped at the end.
pub struct Scratch {
    pub settings: ClusterSettings,
}

impl Scratch {
    pub fn new() -> Self {
        let mut settings: ClusterSettings = config::load(None).expect("configuration");
        let name = format!("sgtest_{}", uuid::Uuid::new_v4().simple());
        settings.metadata.dbname = name.clone();
        settings.database.dbname = name.clone();
        create_databases(&settings, &name);
        Self { settings }
    }

    pub fn name(&self) -> &str {
        &self.settings.metadata.dbname
    }

    /// Runs a command on the scratch databases: (exit code, standard error).
    pub fn run(&self, args: &[&str]) -> (Option<i32>, String) {
        let out = self.output(args);
        (out.status.code(), text(&out.stderr))
    }

    /// Runs a command on the scratch databases: all it printed.
    pub fn output(&self, args: &[&str]) -> Output {
        cli_with(
            args,
            &[
                ("SHARDGATE__METADATA__DBNAME", self.name()),
                ("SHARDGATE__DATABASE__DBNAME", self.name()),
                ("RUST_LOG", "info"),
            ],
        )
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        drop_databases(&self.settings, self.name());
    }
}
