//! The cluster the load runs on, as the under-load backup test and the backup benchmark
//! both start it: two shards and a metadata server of their own, each with its stanza,
//! prepared for the CLI, the load's tables on both shards; then the load itself, four
//! writers (two a shard) and two transferers, on a runtime of the caller's.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use control_plane::txn::MetaLog;
use shard_manager::ClusterSettings;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

use super::cli::{prepare_with_stanzas, Cli};
use super::load::{tables, transferer, writer, Transfer, Write};
use super::server::Private;

/// Two shards and a metadata server, ready for `shard-admin backup`.
pub struct LoadCluster {
    pub servers: Private,
    pub cli: Cli,
    pub settings: ClusterSettings,
    /// The two shards' ports.
    pub shards: [u16; 2],
    /// The metadata server's port.
    pub meta: u16,
}

/// The load running: its writers and transferers, each answering what it did once the
/// stop flag is raised.
pub struct Load {
    pub writers: Vec<JoinHandle<Vec<Write>>>,
    pub transferers: Vec<JoinHandle<Vec<Transfer>>>,
}

impl LoadCluster {
    /// Starts the servers (ports 26950-26989) and prepares them for `program`, the
    /// `shard-admin` binary.
    pub fn start(program: impl Into<PathBuf>) -> Self {
        let servers = Private::start_cluster(&["shard0", "shard1", "meta"], 26950..26990);
        let (p0, p1, pm) = (
            servers.port_of("shard0"),
            servers.port_of("shard1"),
            servers.port_of("meta"),
        );
        let addr = |p: u16| format!("127.0.0.1:{p}");
        let cli = Cli::new(
            program,
            &servers,
            &addr(pm),
            &[(addr(p0), vec![]), (addr(p1), vec![])],
            None,
        );
        let settings = cli.settings(&servers);
        prepare_with_stanzas(
            &servers,
            &settings,
            (&[p0, p1], pm),
            &["shard0", "shard1", "meta"],
        );
        for p in [p0, p1] {
            servers.query_on(p, "shardgate", &tables());
        }
        LoadCluster {
            servers,
            cli,
            settings,
            shards: [p0, p1],
            meta: pm,
        }
    }

    /// The load started on `rt`, deciding through `log`, until `stop` is raised.
    pub fn start_load(&self, rt: &Runtime, log: Arc<MetaLog>, stop: Arc<AtomicBool>) -> Load {
        let [p0, p1] = self.shards;
        let writers = [(p0, 0), (p0, 0), (p1, 1), (p1, 1)]
            .into_iter()
            .enumerate()
            .map(|(w, (port, s))| rt.spawn(writer(port, s, w as i64 * 10_000_000, stop.clone())))
            .collect();
        let transferers = (0..2)
            .map(|_| rt.spawn(transferer([p0, p1], log.clone(), stop.clone())))
            .collect();
        Load {
            writers,
            transferers,
        }
    }
}
