//! The admin CLI run as a user runs it against private servers with pgBackRest
//! ([`super::server`]): its settings overlay and environment naming those servers and
//! never the shared topology's, and the servers prepared for it (the application role,
//! the databases, the shards migrated by the one runner, the map seeded, the stanzas).

use std::path::PathBuf;
use std::process::{Command, Output};

use shard_manager::{config, ClusterSettings};

use super::server::{self, Private};
use crate::repo::repo_root;
use crate::scratch::migrate;

/// The setting naming the HA manager's monitor, in the environment.
pub const HA_MONITOR: &str = "SHARDGATE__FAILOVER__HA_MONITOR";

/// The CLI run against the private server: its overlay, its metadata address and
/// pgBackRest configuration.
pub struct Cli {
    /// The `shard-admin` binary (a test's or benchmark's `CARGO_BIN_EXE_shard-admin`).
    program: PathBuf,
    pub overlay: PathBuf,
    env: Vec<(String, String)>,
    meta: String,
    config: String,
    /// The private Redis (url, prefix), when the test has one.
    cache: Option<(String, String)>,
}

impl Cli {
    /// One server: the only shard's primary, and the metadata database beside it.
    pub fn for_server(program: impl Into<PathBuf>, server: &Private) -> Self {
        Self::new(
            program,
            server,
            &server.address(),
            &[(server.address(), vec![])],
            None,
        )
    }

    /// A cluster of private servers: the metadata server `meta`, a shard per primary
    /// (with its replicas).
    pub fn new(
        program: impl Into<PathBuf>,
        server: &Private,
        meta: &str,
        shards: &[(String, Vec<String>)],
        cache: Option<(String, String)>,
    ) -> Self {
        let overlay = server.dir.join("shardgate.toml");
        let mut toml = format!(
            "[metadata]\naddress = \"{meta}\"\ndbname = \"shardgate_meta\"\n\n\
             [database]\ndbname = \"shardgate\"\n"
        );
        for (p, replicas) in shards {
            toml += &format!("\n[[shards]]\nprimary = \"{p}\"\nreplicas = {replicas:?}\n");
        }
        std::fs::write(&overlay, toml).expect("write the overlay");
        let config = server.config().display().to_string();
        let mut env = vec![
            ("SHARDGATE__METADATA__ADDRESS".into(), meta.to_owned()),
            (
                "SHARDGATE__BACKUP__PGBACKREST_CONFIG".into(),
                config.clone(),
            ),
            // Never the shared topology's Redis: the test's own, or none.
            (
                "SHARDGATE__CACHE__ENABLED".into(),
                cache.is_some().to_string(),
            ),
        ];
        if let Some((url, prefix)) = &cache {
            env.push(("SHARDGATE__CACHE__URL".into(), url.clone()));
            env.push(("SHARDGATE__CACHE__PREFIX".into(), prefix.clone()));
        }
        Cli {
            program: program.into(),
            overlay,
            env,
            meta: meta.to_owned(),
            config,
            cache,
        }
    }

    /// The settings the CLI reads (the environment's metadata address, pgBackRest
    /// configuration and cache replaced by the private ones, as the CLI's are).
    pub fn settings(&self, _server: &Private) -> ClusterSettings {
        let mut settings: ClusterSettings =
            config::load(Some(&self.overlay)).expect("the private server's settings");
        settings.metadata.address = self.meta.clone();
        settings.backup.pgbackrest_config = self.config.clone();
        settings.cache.enabled = self.cache.is_some();
        settings.failover.ha_monitor = None;
        if let Some((url, prefix)) = &self.cache {
            settings.cache.url = url.clone();
            settings.cache.prefix = prefix.clone();
        }
        settings
    }

    /// Runs the CLI with `args` to its end.
    pub fn run(&self, args: &[&str], more_env: &[(&str, &str)]) -> Output {
        self.command(args, more_env)
            .output()
            .expect("run shard-admin")
    }

    /// The command `run` runs, to be spawned by a test that kills it.
    pub fn command(&self, args: &[&str], more_env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.arg("--config")
            .arg(&self.overlay)
            .args(args)
            .current_dir(repo_root())
            // Private servers: no HA manager runs them, whatever `./setup.sh env` said of
            // the shared topology's (a test names one in `more_env` to see the refusal).
            .env_remove(HA_MONITOR)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(more_env.iter().copied())
            .env("NO_COLOR", "1");
        cmd
    }
}

/// The application role and both databases on the private server, the shard migrated
/// and the map seeded (version 1).
pub fn prepare(server: &Private, settings: &ClusterSettings) {
    prepare_on(server, settings, &[server.port], server.port);
}

/// The application role on every server, the shard database on each of `shards`, the
/// metadata database on `meta`; the shards migrated and the map seeded (version 1).
pub fn prepare_on(server: &Private, settings: &ClusterSettings, shards: &[u16], meta: u16) {
    let mut ports = shards.to_vec();
    ports.push(meta);
    ports.dedup();
    for port in &ports {
        server.query_on(
            *port,
            "postgres",
            &format!("CREATE ROLE \"{}\" LOGIN SUPERUSER", settings.database.user),
        );
    }
    for port in shards {
        server.query_on(*port, "postgres", "CREATE DATABASE shardgate");
    }
    server.query_on(meta, "postgres", "CREATE DATABASE shardgate_meta");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(async {
            for shard in &settings.shards {
                migrate(settings, &shard.primary).await;
            }
            control_plane::map::change::init(settings)
                .await
                .expect("init the map")
        });
}

/// [`prepare_on`], then a pgBackRest stanza created for each server of a cluster
/// started with these `stanzas`.
pub fn prepare_with_stanzas(
    cluster: &Private,
    settings: &ClusterSettings,
    (shards, meta): (&[u16], u16),
    stanzas: &[&str],
) {
    prepare_on(cluster, settings, shards, meta);
    for stanza in stanzas {
        server::check(
            "stanza-create",
            cluster.pgbackrest(&[&format!("--stanza={stanza}"), "stanza-create"]),
        );
    }
}
