//! Databases of a test's own, so that `init` and `migrate` change nothing of the dev
//! cluster's map or data: `sgtest_<uuid>` on the metadata server and on every primary
//! (test-support's scratch databases).

use std::collections::HashMap;
use std::process::{Command, Output};

use diesel::pg::PgConnection;
use diesel::{Connection, RunQueryDsl};
use serde_json::{json, Value};
use shard_manager::servers::connection_url;
use shard_manager::{config, ClusterSettings, ShardKey};
use test_support::scratch::{create_databases, drop_databases};

use super::{command, text};

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

    /// Migrated, initialised scratch databases holding `records` of `users`, each on its
    /// shard with its slot (written as a gateway would), and 5 of `orders`.
    pub fn holding(records: &[(String, String, Value)]) -> Self {
        let scratch = Self::new();
        for step in [["migrate"], ["init"]] {
            let (code, stderr) = scratch.run(&step);
            assert_eq!(code, Some(0), "{step:?}: {stderr}");
        }
        let router = scratch
            .settings
            .validate()
            .expect("the configuration routes");
        let orders: Vec<_> = (0..5)
            .map(|i| {
                (
                    "orders".to_owned(),
                    (format!("o{i}"), format!("{i}"), json!({"o": i})),
                )
            })
            .collect();
        let users = records.iter().map(|r| ("users".to_owned(), r.clone()));
        let mut conns: HashMap<u32, PgConnection> = HashMap::new();
        for (table, (key, id, data)) in users.chain(orders) {
            let placed = router.route(ShardKey::parse(&key).unwrap()).unwrap();
            let shard = placed.shard().0;
            let conn = conns.entry(shard).or_insert_with(|| {
                let server = &scratch.settings.shards[shard as usize].primary;
                PgConnection::establish(&connection_url(&scratch.settings.database, server))
                    .unwrap()
            });
            diesel::sql_query(
                "INSERT INTO records (table_name, shard_key, id, slot, data) VALUES ($1, $2, $3, $4, $5::jsonb)",
            )
            .bind::<diesel::sql_types::Text, _>(&table)
            .bind::<diesel::sql_types::Text, _>(&key)
            .bind::<diesel::sql_types::Text, _>(&id)
            .bind::<diesel::sql_types::Integer, _>(placed.slot().0 as i32)
            .bind::<diesel::sql_types::Text, _>(data.to_string())
            .execute(conn)
            .expect("insert a record");
        }
        assert!(conns.len() > 1, "the records span shards");
        scratch
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
        self.command(args, &[]).output().expect("run shard-admin")
    }

    /// A command on the scratch databases, with `env` on top, to run.
    pub fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = command(
            args,
            &[
                ("SHARDGATE__METADATA__DBNAME", self.name()),
                ("SHARDGATE__DATABASE__DBNAME", self.name()),
                ("RUST_LOG", "info"),
            ],
        );
        cmd.envs(env.iter().copied());
        cmd
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        drop_databases(&self.settings, self.name());
    }
}
