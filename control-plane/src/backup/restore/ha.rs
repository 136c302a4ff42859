//! A restore of a cluster whose shards an HA manager runs (`failover.ha_monitor` set:
//! `HA=1 ./setup.sh up`, pg_auto_failover). Each shard is a formation, and its stanza
//! lists every node of it, the formation's first node first (`pg1`).
//!
//! The restore drives servers with `pg_ctl`; a running manager would undo that (a
//! keeper restarts what the restore stops, the monitor promotes another node), so the
//! plan refuses while the monitor answers or a keeper of any stanza's node runs, naming
//! the fix ([`STOP_FIRST`]) and changing nothing. With the manager stopped, each
//! shard's stanza is restored into its first node, whichever node the map names as
//! primary (any may be, after a failover); the other nodes are stopped if running and
//! never started (they hold data from after the point, or from another timeline). The
//! restored first node starts on its own port (a backup taken while another node was
//! primary carries that node's port in its files) and without a synchronous standby
//! (the restored settings name one that is gone: every write would wait for it). Its new
//! incarnation then tells `./setup.sh up` to re-form the formation around it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use shard_manager::live_map::ShardMap;

use super::conf::StanzaConf;
use super::replica::ReplicaPlan;
use super::server;
use crate::backup::pgbackrest::Runner;
use crate::backup::stanza::Target;

/// What to do while the HA manager runs.
pub const STOP_FIRST: &str =
    "stop the HA manager first: ./setup.sh down (the monitor and every keeper; the data is kept)";

/// The refusal while the manager runs (`running` says what of it answered).
pub fn refusal(running: &[String], point: &str) -> String {
    format!(
        "this cluster's shards are run by an HA manager, which runs ({}): {STOP_FIRST}; then `shard-admin restore --point {point} --yes`, then `./setup.sh up` (it re-forms each formation around its restored first node); nothing was changed",
        running.join("; ")
    )
}

/// What of the HA manager runs: its monitor answering at `monitor` (a PostgreSQL URL),
/// a keeper (`pg_autoctl run`) of any of the data directories `nodes`.
pub async fn running(monitor: &str, nodes: &[String], limit: Duration) -> Vec<String> {
    let mut out = Vec::new();
    match monitor_address(monitor) {
        Some(address) => {
            let answered = tokio::time::timeout(limit, tokio::net::TcpStream::connect(&address));
            if matches!(answered.await, Ok(Ok(_))) {
                out.push(format!("its monitor answers on {address}"));
            }
        }
        None => out.push(format!(
            "failover.ha_monitor ({monitor:?}) names no TCP host and port to check it on"
        )),
    }
    for (pid, pgdata) in keepers(nodes) {
        out.push(format!("the keeper of {pgdata} runs, pid {pid}"));
    }
    out
}

/// host:port of the monitor's URL (PostgreSQL's default port when it names none).
pub fn monitor_address(url: &str) -> Option<String> {
    let config: tokio_postgres::Config = url.parse().ok()?;
    let host = config.get_hosts().iter().find_map(|h| match h {
        tokio_postgres::config::Host::Tcp(host) => Some(host.clone()),
        _ => None,
    })?;
    let port = config.get_ports().first().copied().unwrap_or(5432);
    Some(match host.contains(':') {
        true => format!("[{host}]:{port}"),
        false => format!("{host}:{port}"),
    })
}

/// The running keepers of the data directories `nodes`: (pid, data directory).
fn keepers(nodes: &[String]) -> Vec<(u32, String)> {
    let wanted: Vec<&str> = nodes.iter().map(|n| n.trim_end_matches('/')).collect();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let argv: Vec<String> = raw
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if let Some(pgdata) = keeper_pgdata(&argv) {
            let pgdata = pgdata.trim_end_matches('/');
            if wanted.contains(&pgdata) {
                out.push((pid, pgdata.to_owned()));
            }
        }
    }
    out
}

/// The data directory of a keeper's command line (`pg_autoctl run --pgdata DIR`, or
/// `--pgdata=DIR`); None for any other process.
pub fn keeper_pgdata(argv: &[String]) -> Option<&str> {
    let program = Path::new(argv.first()?).file_name()?.to_str()?;
    if program != "pg_autoctl" || !argv.iter().any(|a| a == "run") {
        return None;
    }
    argv.iter()
        .enumerate()
        .find_map(|(i, a)| match a.strip_prefix("--pgdata") {
            Some("") => argv.get(i + 1).map(String::as_str),
            Some(rest) => rest.strip_prefix('='),
            None => None,
        })
}

/// Every data directory the stanzas list (each formation's nodes).
pub fn node_paths(confs: &BTreeMap<String, StanzaConf>) -> Vec<String> {
    confs
        .values()
        .flat_map(|c| {
            c.path
                .iter()
                .chain(c.others.iter().flat_map(|o| o.path.iter()))
        })
        .cloned()
        .collect()
}

/// Each shard's target moved onto its formation's first node (`pg1`) when the map names
/// another node of the stanza as its primary (a failover); the others as they are.
pub fn first_nodes(targets: Vec<Target>, confs: &BTreeMap<String, StanzaConf>) -> Vec<Target> {
    targets
        .into_iter()
        .map(|mut t| {
            if let Some(address) = confs.get(&t.stanza).and_then(|c| first_node(&t.address, c)) {
                t.address = address;
            }
            t
        })
        .collect()
}

/// The first node's host:port when `address` (the map's primary) is another node of
/// the stanza `conf`; None when it is the first node, or no node of it.
pub fn first_node(address: &str, conf: &StanzaConf) -> Option<String> {
    let (host, port) = address.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    (port != conf.port && conf.others.iter().any(|o| o.port == port))
        .then(|| format!("{host}:{}", conf.port))
}

/// `pg_ctl -o` for a restored first node: its own port, and no synchronous standby.
pub fn postgres_options(port: u16) -> String {
    format!("-p {port} -c synchronous_standby_names=''")
}

/// The other nodes of every active shard's formation (`pg2` and up of its stanza), each
/// with its data directory when a server runs there (it is then stopped).
pub async fn other_nodes(
    runner: &Runner,
    map: &ShardMap,
    confs: &BTreeMap<String, StanzaConf>,
) -> Vec<ReplicaPlan> {
    let mut out = Vec::new();
    for shard in map.shards.iter().filter(|s| !s.retired) {
        let Some(conf) = confs.get(&format!("shard{}", shard.id.0)) else {
            continue;
        };
        // The nodes' host: the map's (pgBackRest's configuration names only local ones).
        let host = shard
            .primary
            .rsplit_once(':')
            .map_or("127.0.0.1", |(h, _)| h);
        for other in &conf.others {
            let running = match &other.path {
                Some(path) if server::running(runner, path).await => Some(path.clone()),
                _ => None,
            };
            out.push(ReplicaPlan {
                shard: shard.id.to_string(),
                address: format!("{host}:{}", other.port),
                data_dir: running,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    //! The HA restore's pure parts.

    use super::*;
    use crate::backup::restore::conf;

    fn argv(line: &str) -> Vec<String> {
        line.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn the_refusal_names_what_runs_and_the_three_steps() {
        let why = refusal(
            &[
                "its monitor answers on 127.0.0.1:25420".into(),
                "the keeper of /d/n runs, pid 7".into(),
            ],
            "sg_20261126T010203Z",
        );
        assert!(
        why.starts_with("this cluster's shards are run by an HA manager, which runs (its monitor answers on 127.0.0.1:25420; the keeper of /d/n runs, pid 7): stop the HA manager first: ./setup.sh down (the monitor and every keeper; the data is kept)"),
        "{why}"
    );
        assert!(
        why.contains(
            "then `shard-admin restore --point sg_20261126T010203Z --yes`, then `./setup.sh up`"
        ),
        "{why}"
    );
        assert!(why.ends_with("nothing was changed"), "{why}");
    }

    #[test]
    fn the_monitor_is_checked_on_its_url_s_host_and_port() {
        let url = "postgres://autoctl_node:pw@127.0.0.1:25420/pg_auto_failover?sslmode=disable";
        assert_eq!(monitor_address(url).as_deref(), Some("127.0.0.1:25420"));
        assert_eq!(
            monitor_address("postgres://autoctl_node@db.example/pg_auto_failover").as_deref(),
            Some("db.example:5432")
        );
        assert_eq!(
            monitor_address("host=::1 port=6000 dbname=m").as_deref(),
            Some("[::1]:6000")
        );
        assert_eq!(monitor_address("host=/run/postgresql dbname=m"), None);
        assert_eq!(monitor_address("not a url at all ="), None);
    }

    #[test]
    fn a_keeper_is_pg_autoctl_run_and_names_its_data_directory() {
        let k = argv("pg_autoctl run --pgdata /d/shard0-primary");
        assert_eq!(keeper_pgdata(&k), Some("/d/shard0-primary"));
        let k = argv("/usr/bin/pg_autoctl run --pgdata=/d/m");
        assert_eq!(keeper_pgdata(&k), Some("/d/m"));
        // A keeper's children renamed themselves; other programs; other pg_autoctl commands.
        assert_eq!(keeper_pgdata(&argv("pg_autoctl: node active")), None);
        assert_eq!(keeper_pgdata(&argv("postgres -D /d/shard0-primary")), None);
        let show = argv("pg_autoctl show state --pgdata /d/m");
        assert_eq!(keeper_pgdata(&show), None);
        assert_eq!(keeper_pgdata(&[]), None);
    }

    #[test]
    fn a_shard_is_restored_into_its_first_node_whichever_node_the_map_names() {
        let confs = conf::stanzas(
            "[shard0]\npg1-path=/d/p0\npg1-port=25432\npg2-path=/d/r0\npg2-port=25532\n\
         [meta]\npg1-path=/d/meta\npg1-port=25430\n",
        );
        let c = &confs["shard0"];
        assert_eq!(
            first_node("127.0.0.1:25432", c),
            None,
            "the first node already"
        );
        assert_eq!(
            first_node("127.0.0.1:25532", c).as_deref(),
            Some("127.0.0.1:25432"),
            "after a failover"
        );
        assert_eq!(
            first_node("127.0.0.1:25999", c),
            None,
            "no node of it: placed() refuses"
        );
        let t = |stanza: &str, address: &str| Target {
            stanza: stanza.into(),
            address: address.into(),
            holds_meta: stanza == "meta",
        };
        let moved = first_nodes(
            vec![t("shard0", "127.0.0.1:25532"), t("meta", "127.0.0.1:25430")],
            &confs,
        );
        assert_eq!(moved[0].address, "127.0.0.1:25432");
        assert_eq!(moved[1].address, "127.0.0.1:25430");
        let mut paths = node_paths(&confs);
        paths.sort();
        assert_eq!(paths, ["/d/meta", "/d/p0", "/d/r0"]);
    }

    #[test]
    fn the_first_node_starts_on_its_port_without_a_synchronous_standby() {
        assert_eq!(
            postgres_options(25432),
            "-p 25432 -c synchronous_standby_names=''"
        );
    }
}
