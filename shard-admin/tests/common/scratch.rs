//! Databases of a test's own, so that `init` and `migrate` change nothing of the dev
//! cluster's map or data: `sgtest_<uuid>` on the metadata server and on every primary.

use std::process::Output;

use diesel::pg::PgConnection;
use diesel::{Connection, RunQueryDsl};
use shard_manager::servers::connection_url;
use shard_manager::{config, ClusterSettings};

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
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut Self::maintenance(
                &settings,
                &settings.metadata.address,
            ))
            .expect("create the scratch metadata database");
        shard_admin::create_database(&settings, &name).expect("create the scratch shard databases");
        Self { settings }
    }

    pub fn maintenance(settings: &ClusterSettings, server: &str) -> PgConnection {
        let mut db = settings.database.clone();
        db.dbname = "postgres".into();
        PgConnection::establish(&connection_url(&db, server)).expect("connect to a server")
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
        let servers = std::iter::once(&self.settings.metadata.address)
            .chain(self.settings.shards.iter().map(|s| &s.primary));
        for server in servers {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name()
            ))
            .execute(&mut Self::maintenance(&self.settings, server));
        }
    }
}
